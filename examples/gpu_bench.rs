//! GPU backend timings against the CPU backend, in the same run:
//! 1. matmul 512×512×512 (several launches in one program, one submit) in GFLOP/s, per kernel,
//!    and the transposes of a training step (TN, NT) with and without the vec4 path;
//! 2. the latency of an MLP training step (128 → 64 ReLU → 64 ReLU → 10, no last bias,
//!    softmax cross-entropy, SGD, batch 16): upload the batch, forward, backward, update,
//!    read the loss back.
//!
//! Run: `WGPU_BACKEND=vulkan cargo run --release --example gpu_bench [-- --per-kernel] [--tiled]
//! [--no-vec4]` (`--per-kernel`: microseconds per launch of each kernel of the MLP step;
//! `--tiled`: use the workgroup-memory matmul even on a software adapter; `--no-vec4`: the
//! scalar kernels only). The matmul line lists each kernel: the vec4 path (`matmul_vec4.wgsl`,
//! what aligned shapes take by default: `matmul_vec4` on Direct adapters, `matmul_vec4_tiled`
//! on Tiled ones) and the scalar `matmul_direct` and `matmul` (Tiled).
use std::time::Instant;

use kiln::backend::cpu::CpuBackend;
use kiln::backend::gpu::{GpuBackend, MatmulKernel};
use kiln::backend::{Backend, ProgramId};
use kiln::program::{Arena, BufRef, Kernel, Program, ResidentLayout, Step, StepScalars, UnaryOp, align};

/// Arena allocator for hand-built programs.
struct Alloc(Arena, usize);

impl Alloc {
    fn take(&mut self, len: usize) -> BufRef {
        let b = BufRef { arena: self.0, offset: self.1, len };
        self.1 += align(len.max(1));
        b
    }
}

fn step(kernel: Kernel, args: &[BufRef]) -> Step {
    Step::new(kernel, args.to_vec())
}

fn mm(m: usize, k: usize, n: usize, trans_a: bool, trans_b: bool) -> Kernel {
    Kernel::MatMul { m, k, n, trans_a, trans_b }
}

/// Seconds per call of `f`, after one warm-up call.
fn time(reps: usize, mut f: impl FnMut() -> kiln::Result<()>) -> kiln::Result<f64> {
    f()?;
    let t0 = Instant::now();
    for _ in 0..reps {
        f()?;
    }
    Ok(t0.elapsed().as_secs_f64() / reps as f64)
}

/// `launches` matmuls of size³ (transposes `t`) in one program; returns GFLOP/s.
fn matmul_gflops(
    backend: &mut dyn Backend,
    size: usize,
    launches: usize,
    t: (bool, bool),
) -> kiln::Result<f64> {
    let mut w = Alloc(Arena::Work, 0);
    let (a, b, c) = (w.take(size * size), w.take(size * size), w.take(size * size));
    let program = Program {
        steps: (0..launches).map(|_| step(mm(size, size, size, t.0, t.1), &[a, b, c])).collect(),
        work_len: w.1,
        naive_work_len: w.1,
        inputs: vec![("a".into(), a), ("b".into(), b)],
        outputs: vec![("c".into(), c)],
    };
    let data: Vec<f32> = (0..size * size).map(|i| (i as f32 * 0.37).sin()).collect();
    backend.alloc_resident(&ResidentLayout::default())?;
    let id = backend.compile(&program)?;
    let secs = time(3, || {
        backend.run(id, &[&data, &data], StepScalars::default())?;
        backend.read_work(id, BufRef { len: 1, ..c }).map(|_| ())
    })?;
    Ok(2.0 * (size * size * size * launches) as f64 / secs / 1e9)
}

/// The MLP training-step program, its resident layout and the loss slice.
fn mlp_program(batch: usize) -> (Program, ResidentLayout, BufRef) {
    let (i, h, o) = (128, 64, 10);
    let mut p = Alloc(Arena::Params, 0);
    let (w1, b1, w2, b2, w3) = (p.take(i * h), p.take(h), p.take(h * h), p.take(h), p.take(h * o));
    let params_len = p.1;
    let g = |b: BufRef| BufRef { arena: Arena::Grads, ..b };
    let mut w = Alloc(Arena::Work, 0);
    let (x, labels) = (w.take(batch * i), w.take(batch));
    let (z1, a1, z2, a2, logits) =
        (w.take(batch * h), w.take(batch * h), w.take(batch * h), w.take(batch * h), w.take(batch * o));
    let (loss, dloss, dlogits) = (w.take(1), w.take(1), w.take(batch * o));
    let (da2, dz2, da1, dz1) = (w.take(batch * h), w.take(batch * h), w.take(batch * h), w.take(batch * h));
    let relu = UnaryOp::Relu;
    let n = batch * h;
    let sparse = true;
    let steps = vec![
        step(mm(batch, i, h, false, false), &[x, w1, z1]),
        step(Kernel::BiasAdd { rows: batch, cols: h }, &[z1, b1, a1]),
        step(Kernel::Unary { op: relu, len: n }, &[a1, z1]),
        step(mm(batch, h, h, false, false), &[z1, w2, z2]),
        step(Kernel::BiasAdd { rows: batch, cols: h }, &[z2, b2, a2]),
        step(Kernel::Unary { op: relu, len: n }, &[a2, z2]),
        step(mm(batch, h, o, false, false), &[z2, w3, logits]),
        step(
            Kernel::SoftmaxCrossEntropy { rows: batch, cols: o, sparse, weighted: false },
            &[logits, labels, loss],
        ),
        step(Kernel::Fill { len: 1, value: 1.0 }, &[dloss]),
        step(
            Kernel::SoftmaxCrossEntropyGrad { rows: batch, cols: o, sparse, weighted: false },
            &[logits, labels, dloss, dlogits],
        ),
        step(mm(h, batch, o, true, false), &[z2, dlogits, g(w3)]),
        step(mm(batch, o, h, false, true), &[dlogits, w3, da2]),
        step(Kernel::UnaryGrad { op: relu, len: n }, &[z2, da2, dz2]),
        step(Kernel::SumRows { rows: batch, cols: h }, &[dz2, g(b2)]),
        step(mm(h, batch, h, true, false), &[z1, dz2, g(w2)]),
        step(mm(batch, h, h, false, true), &[dz2, w2, da1]),
        step(Kernel::UnaryGrad { op: relu, len: n }, &[z1, da1, dz1]),
        step(Kernel::SumRows { rows: batch, cols: h }, &[dz1, g(b1)]),
        step(mm(i, batch, h, true, false), &[x, dz1, g(w1)]),
        step(
            Kernel::SgdUpdate { len: params_len, momentum: 0.0, nesterov: false },
            &[
                BufRef { arena: Arena::Params, offset: 0, len: params_len },
                BufRef { arena: Arena::Grads, offset: 0, len: params_len },
                BufRef { arena: Arena::Slot(0), offset: 0, len: 0 },
            ],
        ),
    ];
    let program = Program {
        steps,
        work_len: w.1,
        naive_work_len: w.1,
        inputs: vec![("x".into(), x), ("labels".into(), labels)],
        outputs: vec![("loss".into(), loss)],
    };
    let layout = ResidentLayout { params_len, slots: 0, accum_len: 0 };
    (program, layout, loss)
}

/// Compile the MLP training step; returns the program id and the loss slice.
fn mlp_step(backend: &mut dyn Backend, batch: usize) -> kiln::Result<(ProgramId, BufRef)> {
    let (program, layout, loss) = mlp_program(batch);
    let params_len = layout.params_len;
    backend.alloc_resident(&layout)?;
    let init: Vec<f32> = (0..params_len).map(|k| ((k as f32 * 0.61).sin()) * 0.1).collect();
    backend.write(Arena::Params, 0, &init)?;
    Ok((backend.compile(&program)?, loss))
}

/// Seconds per training step and per-step losses after 20 steps.
fn mlp_latency(backend: &mut dyn Backend, batch: usize) -> kiln::Result<(f64, f32)> {
    let (id, loss) = mlp_step(backend, batch)?;
    let x: Vec<f32> = (0..batch * 128).map(|k| (k as f32 * 0.13).cos()).collect();
    let labels: Vec<f32> = (0..batch).map(|k| (k % 10) as f32).collect();
    let scalars = StepScalars { lr: 0.05, t: 1 };
    let mut last = 0.0;
    let secs = time(200, || {
        backend.run(id, &[&x, &labels], scalars)?;
        last = backend.read_work(id, loss)?[0];
        Ok(())
    })?;
    Ok((secs, last))
}

/// Microseconds per launch of each MLP step kernel (the step repeated 50 times in one program).
fn per_kernel_costs(backend: &mut dyn Backend, batch: usize) -> kiln::Result<Vec<(String, f64)>> {
    let (program, layout, _) = mlp_program(batch);
    backend.alloc_resident(&layout)?;
    let reps = 50;
    let mut out = Vec::new();
    for s in &program.steps {
        let single = Program {
            steps: vec![s.clone(); reps],
            work_len: program.work_len,
            naive_work_len: program.work_len,
            inputs: vec![],
            outputs: vec![],
        };
        let id = backend.compile(&single)?;
        let probe = BufRef { arena: Arena::Work, offset: 0, len: 1 };
        let secs = time(5, || {
            backend.run(id, &[], StepScalars::default())?;
            backend.read_work(id, probe).map(|_| ())
        })?;
        let name = format!("{:?}", s.kernel);
        out.push((name, secs / reps as f64 * 1e6));
    }
    Ok(out)
}

fn main() -> kiln::Result<()> {
    let mut gpu = GpuBackend::new(None)?;
    if std::env::args().any(|a| a == "--tiled") {
        gpu.set_matmul_kernel(MatmulKernel::Tiled);
    }
    if std::env::args().any(|a| a == "--no-vec4") {
        gpu.set_matmul_vec4(false);
    }
    if std::env::args().any(|a| a == "--per-kernel") {
        for (name, us) in per_kernel_costs(&mut gpu, 16)? {
            println!("{us:8.1} us  {name}");
        }
        return Ok(());
    }
    let info = gpu.info().clone();
    println!("adapter: {} ({}, {}), driver {}", info.name, info.backend, info.device_type, info.driver);
    let mut cpu = CpuBackend::new();
    let size = 512;
    let c = matmul_gflops(&mut cpu, size, 4, (false, false))?;
    let mut kernels = Vec::new();
    for (name, kernel, vec4) in [
        ("vec4 direct", MatmulKernel::Direct, true),
        ("vec4 tiled", MatmulKernel::Tiled, true),
        ("direct", MatmulKernel::Direct, false),
        ("tiled", MatmulKernel::Tiled, false),
    ] {
        let mut g = GpuBackend::new(None)?;
        g.set_matmul_kernel(kernel);
        g.set_matmul_vec4(vec4);
        let entry = kiln::backend::gpu::entry_point(&mm(size, size, size, false, false), kernel, vec4)?;
        let gflops = matmul_gflops(&mut g, size, 4, (false, false))?;
        kernels.push(format!("{name} ({entry}) {gflops:.2}"));
    }
    println!("matmul {size}³ GFLOP/s: gpu {}; cpu {c:.2}", kernels.join(", "));
    // The training-step transposes: weight gradient Aᵀ·G (TN), input gradient G·Bᵀ (NT).
    let mut g = GpuBackend::new(None)?;
    let kernel = g.matmul_kernel();
    let mut line = Vec::new();
    for (name, t) in [("TN", (true, false)), ("NT", (false, true))] {
        for vec4 in [true, false] {
            g.set_matmul_vec4(vec4);
            let entry = kiln::backend::gpu::entry_point(&mm(size, size, size, t.0, t.1), kernel, vec4)?;
            line.push(format!("{name} {entry} {:.2}", matmul_gflops(&mut g, size, 4, t)?));
        }
    }
    println!("matmul {size}³ transposed, GFLOP/s: {}", line.join(", "));
    let (gs, gl) = mlp_latency(&mut gpu, 16)?;
    let (cs, cl) = mlp_latency(&mut cpu, 16)?;
    println!(
        "MLP train step (batch 16, 20 kernels, loss read back; gpu matmul {:?}, vec4 {}): \
         gpu {:.3} ms, cpu {:.3} ms, gpu/cpu {:.1}x; loss after 201 steps gpu {gl:.6} cpu {cl:.6}",
        gpu.matmul_kernel(),
        !std::env::args().any(|a| a == "--no-vec4"),
        gs * 1e3,
        cs * 1e3,
        gs / cs
    );
    Ok(())
}
