//! Kernel workloads: matmul and conv2d forward/backward, built from graph primitives and
//! planned exactly as a model's layers are. Their operands are parameters fixed in the Params
//! arena (written once), so a run is the kernels alone, without uploads.
use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::report::{BenchReport, BenchResult};
use super::{Engine, TOLERANCE, check_close, median};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::graph::autodiff::gradients;
use crate::graph::plan::{PlanSpec, plan};
use crate::graph::{Graph, NodeId, Op};
use crate::program::{Arena, BufRef, Padding, Program, ResidentLayout, Window2d, align};

/// A run should last about this long (seconds): short kernels are launched several times per
/// run, so a GPU's submit and wait are amortised.
const TARGET_RUN_SECONDS: f64 = 0.01;
/// At most this many launches of a kernel per run.
const MAX_LAUNCHES: usize = 64;

/// One kernel workload, ready to compile on any backend.
pub(super) struct KernelCase {
    /// One of [`super::WORKLOADS`].
    pub(super) workload: &'static str,
    pub(super) size: String,
    /// Floating-point operations of one run.
    pub(super) flops: f64,
    pub(super) program: Program,
    pub(super) layout: ResidentLayout,
    /// The operands: (offset in Params, values).
    pub(super) params: Vec<(usize, Vec<f32>)>,
    /// [m, k, n] of a plain matmul: the CPU result is spot-checked against f64 dot products.
    pub(super) matmul: Option<[usize; 3]>,
}

/// Builds a graph whose operands are parameters at consecutive aligned offsets of Params,
/// filled with seeded uniform values.
struct Operands {
    g: Graph,
    fixed: HashMap<NodeId, BufRef>,
    params: Vec<(usize, Vec<f32>)>,
    len: usize,
    rng: ChaCha8Rng,
}

impl Operands {
    fn new(seed: u64) -> Operands {
        Operands {
            g: Graph::new(),
            fixed: HashMap::new(),
            params: Vec::new(),
            len: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// A resident operand of `shape` with values uniform in [lo, hi).
    fn operand(&mut self, name: &str, shape: &[usize], lo: f32, hi: f32) -> NodeId {
        let node = self.g.param(name, shape);
        let len: usize = shape.iter().product();
        self.fixed.insert(node, BufRef { arena: Arena::Params, offset: self.len, len });
        let values = (0..len).map(|_| self.rng.random_range(lo..hi)).collect();
        self.params.push((self.len, values));
        self.len += align(len.max(1));
        node
    }

    fn add(&mut self, op: Op, inputs: &[NodeId]) -> Result<NodeId> {
        self.g.add(op, inputs, "bench")
    }

    /// Plan the graph for `outputs`.
    fn finish(
        self,
        outputs: Vec<(String, NodeId)>,
        workload: &'static str,
        size: String,
        flops: f64,
    ) -> Result<KernelCase> {
        let spec = PlanSpec { outputs, fixed: self.fixed, ..PlanSpec::default() };
        let program = plan(&self.g, &spec)?;
        let layout = ResidentLayout { params_len: self.len.max(1), slots: 0, accum_len: 0 };
        Ok(KernelCase { workload, size, flops, program, layout, params: self.params, matmul: None })
    }
}

/// C = A·B with A [m, k] and B [k, n]: 2·m·k·n flops.
pub(super) fn matmul([m, k, n]: [usize; 3]) -> Result<KernelCase> {
    // The operands live on the host (values and the CPU's arenas) before any device sees them.
    let elements = [m * k, k * n, m * n].iter().map(|&e| e as u64).sum::<u64>();
    crate::backend::cpu::check_memory(2 * elements, &format!("the {m}x{k}x{n} matmul's operands"))?;
    let mut o = Operands::new(1);
    let a = o.operand("a", &[m, k], -1.0, 1.0);
    let b = o.operand("b", &[k, n], -1.0, 1.0);
    let c = o.add(Op::MatMul { trans_a: false, trans_b: false }, &[a, b])?;
    let flops = 2.0 * (m * k * n) as f64;
    let mut case = o.finish(vec![("c".into(), c)], "matmul", format!("{m}x{k}x{n}"), flops)?;
    case.matmul = Some([m, k, n]);
    Ok(case)
}

/// The second layer of an mnist-cnn-like network as the Conv2D layer builds it:
/// x [batch, 26, 26, 32] → im2col [batch·24·24, 288] · filter (HWIO [3, 3, 32, 64] viewed as
/// [288, 64]) → y [batch, 24, 24, 64], valid padding. Forward: 2·M·N·K flops with M =
/// batch·24·24, N = 64, K = 288. Backward (dx through col2im and the filter gradient, from a
/// given dy): counted as twice the forward.
pub(super) fn conv2d(batch: usize, backward: bool) -> Result<KernelCase> {
    let (hw, channels, filters) = (26, 32, 64);
    let win = Window2d::new([batch, hw, hw, channels], (3, 3), (1, 1), (1, 1), Padding::Valid)
        .ok_or_else(|| Error::invalid("conv2d bench", format!("no 3x3 window fits batch {batch}")))?;
    let mut o = Operands::new(2);
    let x = o.operand("x", &[batch, hw, hw, channels], 0.0, 1.0);
    let w = o.operand("w", &[3, 3, channels, filters], -0.1, 0.1);
    let cols = o.add(Op::Im2Col { win }, &[x])?;
    let wm = o.add(Op::Reshape { shape: vec![win.patch_len(), filters] }, &[w])?;
    let ym = o.add(Op::MatMul { trans_a: false, trans_b: false }, &[cols, wm])?;
    let y = o.add(Op::Reshape { shape: vec![batch, win.out.0, win.out.1, filters] }, &[ym])?;
    let flops = 2.0 * (win.positions() * win.patch_len() * filters) as f64;
    let size = format!("{batch}x{hw}x{hw}x{channels} 3x3->{filters}");
    if !backward {
        return o.finish(vec![("y".into(), y)], "conv2d fwd", size, flops);
    }
    let dy = o.operand("dy", &[batch, win.out.0, win.out.1, filters], -1.0, 1.0);
    let grads = gradients(&mut o.g, y, dy, &[x, w])?;
    let outputs = vec![("dx".into(), grads[0]), ("dw".into(), grads[1])];
    o.finish(outputs, "conv2d bwd", size, 2.0 * flops)
}

/// `program` with its steps repeated `times` (each step overwrites its output, so repeating
/// computes the same values).
fn repeated(program: &Program, times: usize) -> Program {
    let steps = (0..times).flat_map(|_| program.steps.iter().cloned()).collect();
    Program { steps, ..program.clone() }
}

/// A matmul result checked at 64 entries against f64 dot products of the operands.
fn spot_check(case: &KernelCase, c: &[f32], [m, k, n]: [usize; 3]) -> Result<f64> {
    let (a, b) = match &case.params[..] {
        [(_, a), (_, b)] => (a, b),
        _ => return Err(Error::invalid("matmul bench", "expected two operands")),
    };
    let entries: Vec<usize> = (0..64u64).map(|s| ((s * 2_654_435_761) % (m * n) as u64) as usize).collect();
    let want: Vec<f32> = entries
        .iter()
        .map(|&e| {
            let (i, j) = (e / n, e % n);
            (0..k).map(|p| f64::from(a[i * k + p]) * f64::from(b[p * n + j])).sum::<f64>() as f32
        })
        .collect();
    let got: Vec<f32> = entries.iter().map(|&e| c.get(e).copied().unwrap_or(f32::NAN)).collect();
    check_close(&format!("cpu matmul {} (f64 spot check)", case.size), &got, &want, TOLERANCE)
}

/// Why a device has no measurement of a case.
enum Missing {
    /// The device refused to compile the program (e.g. a size beyond its limits).
    NotRun(Error),
    /// A check against the reference, or running, failed.
    Failed(Error),
}

impl From<Error> for Missing {
    fn from(e: Error) -> Missing {
        Missing::Failed(e)
    }
}

/// What one device measured on a case.
struct Measured {
    outputs: Vec<Vec<f32>>,
    seconds: f64,
    gpu_seconds: Option<f64>,
    launches: usize,
    max_error: Option<f64>,
}

/// Compile, run once, check the outputs (against `reference`, or the CPU's own spot check),
/// then time `reps` runs.
fn measure(
    device: Device,
    label: &str,
    case: &KernelCase,
    reps: usize,
    reference: Option<&[Vec<f32>]>,
) -> std::result::Result<Measured, Missing> {
    let mut engine = Engine::open(device)?;
    let b = engine.backend();
    b.alloc_resident(&case.layout)?;
    for (offset, data) in &case.params {
        b.write(Arena::Params, *offset, data)?;
    }
    let id = b.compile(&case.program).map_err(Missing::NotRun)?;
    engine.timed_run(id)?; // first use: a GPU driver compiles its pipelines here
    let outputs = case
        .program
        .outputs
        .iter()
        .map(|(_, o)| engine.backend().read_work(id, *o))
        .collect::<Result<Vec<_>>>()?;
    let max_error = match (reference, case.matmul) {
        (Some(reference), _) => {
            let mut worst = 0.0f64;
            for (((name, _), got), want) in case.program.outputs.iter().zip(&outputs).zip(reference) {
                let what = format!("{label} {} {} output '{name}'", case.workload, case.size);
                worst = worst.max(check_close(&what, got, want, TOLERANCE)?);
            }
            Some(worst)
        }
        (None, Some(mkn)) => Some(spot_check(case, &outputs[0], mkn)?),
        (None, None) => None,
    };
    let (once, _) = engine.timed_run(id)?;
    let launches = ((TARGET_RUN_SECONDS / once.max(1e-9)).ceil() as usize).clamp(1, MAX_LAUNCHES);
    let id = if launches > 1 {
        let id = engine.backend().compile(&repeated(&case.program, launches))?;
        engine.timed_run(id)?;
        id
    } else {
        id
    };
    let (mut wall, mut gpu) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let (w, g) = engine.timed_run(id)?;
        wall.push(w / launches as f64);
        gpu.extend(g.map(|g| g / launches as f64));
    }
    let gpu_seconds = (!gpu.is_empty()).then(|| median(&gpu));
    Ok(Measured { outputs, seconds: median(&wall), gpu_seconds, launches, max_error })
}

/// Run `case` on every device (the CPU first: its outputs are the reference) and add a row
/// per device to `report`.
pub(super) fn run_case(
    report: &mut BenchReport,
    devices: &[(Device, String)],
    case: &KernelCase,
    reps: usize,
) {
    let mut reference: Option<Vec<Vec<f32>>> = None;
    for (device, label) in devices {
        let mut row = BenchResult::new(label, case.workload, &case.size);
        let measured = match (&reference, device) {
            (None, Device::Gpu(_)) => Err(Missing::Failed(Error::invalid(
                "check",
                "no CPU reference to check against (the CPU run failed)",
            ))),
            _ => measure(*device, label, case, reps, reference.as_deref()),
        };
        match measured {
            Ok(m) => {
                row.seconds = Some(m.seconds);
                row.gpu_seconds = m.gpu_seconds;
                row.runs = reps;
                row.launches_per_run = m.launches;
                row.gflops = Some(case.flops / m.seconds / 1e9);
                row.max_error = m.max_error;
                if *device == Device::Cpu {
                    reference = Some(m.outputs);
                }
            }
            Err(Missing::NotRun(e)) => row.not_run = Some(e.to_string()),
            Err(Missing::Failed(e)) => row.error = Some(e.to_string()),
        }
        eprintln!("bench: {}", row.progress_line());
        report.results.push(row);
    }
}
