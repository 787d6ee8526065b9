//! `kiln bench`: the same workloads on every device present (the CPU and each wgpu adapter),
//! side by side in one run, each kernel's output checked against the CPU backend before it
//! is timed.
//!
//! - `kernels`: matmul and conv2d forward/backward as planned graphs (GFLOP/s).
//! - `models`: training steps and inference of the `mlp`, `mnist-cnn` and `resnet-small` presets and of an
//!   LSTM(128) over 50×32 sequences (samples/s).
//! - `report`: the result rows, the table and the JSON document.
//!
//! Times are wall-clock medians over repetitions; a GPU run is timed from submit to the end
//! of the wait, and where the adapter has timestamp queries the GPU time of the pass is
//! reported beside it.
mod kernels;
mod models;
mod report;

pub use report::{BenchReport, BenchResult, DeviceInfo};

use std::time::Instant;

use clap::Args;

use crate::backend::cpu::CpuBackend;
use crate::backend::gpu::{self, GpuBackend};
use crate::backend::{Backend, ProgramId};
use crate::device::{self, Device};
use crate::error::{Error, Result};
use crate::program::StepScalars;

/// Every workload a full report holds, in table order.
pub const WORKLOADS: [&str; 11] = [
    "matmul",
    "conv2d fwd",
    "conv2d bwd",
    "train mlp",
    "predict mlp",
    "train mnist-cnn",
    "predict mnist-cnn",
    "train resnet-small",
    "predict resnet-small",
    "train lstm",
    "predict lstm",
];

/// Relative tolerance of the check against the CPU (see [`check_close`]).
pub const TOLERANCE: f64 = 1e-3;

/// Options of `kiln bench`.
#[derive(Args, Debug, Clone, Default)]
pub struct BenchArgs {
    /// Only this device: cpu, gpu, gpu:N or auto (default: the CPU and every adapter of `kiln
    /// devices`). The CPU always runs too: it is the reference for the checks and the ratios.
    #[arg(long)]
    pub device: Option<String>,
    /// Larger sizes (matmul 1024³ and 2048³, conv2d batch 128) and more repetitions.
    #[arg(long)]
    pub full: bool,
    /// Print one JSON document on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Matmul sizes, comma-separated, each MxKxN or N for N³ [default: 128x784x128,256,512;
    /// --full adds 1024,2048].
    #[arg(long, value_delimiter = ',')]
    pub matmul: Vec<String>,
    /// Batch of the conv2d workload (26×26×32 → 3×3 conv → 64 filters) [default: 32; --full 128].
    #[arg(long)]
    pub conv_batch: Option<usize>,
    /// Batch size of the training and inference workloads [default: 128].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Timed training steps (inference batches) per repetition, at least; fast models take
    /// more, up to 64, so that a repetition lasts ~50 ms [default: 2; --full 4].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Timed repetitions of each workload; the median is reported [default: 5; --full 10].
    #[arg(long)]
    pub reps: Option<usize>,
    /// Run only these workload groups, comma-separated: matmul, conv2d, train.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

/// Sizes and counts after defaults.
#[derive(Debug, Clone)]
struct Config {
    matmul: Vec<[usize; 3]>,
    conv_batch: usize,
    batch: usize,
    steps: usize,
    reps: usize,
    groups: Vec<String>,
}

/// Parse `MxKxN` or `N` (a cube).
fn parse_size(s: &str) -> Result<[usize; 3]> {
    let bad = || Error::invalid("--matmul", format!("'{s}' is not MxKxN or N (e.g. 128x784x128, 512)"));
    let dims = s
        .trim()
        .split(['x', 'X', '×'])
        .map(|d| d.trim().parse::<usize>().map_err(|_| bad()))
        .collect::<Result<Vec<_>>>()?;
    match dims[..] {
        [n] if n > 0 => Ok([n, n, n]),
        [m, k, n] if m > 0 && k > 0 && n > 0 => Ok([m, k, n]),
        _ => Err(bad()),
    }
}

impl Config {
    fn new(args: &BenchArgs) -> Result<Config> {
        let mut matmul = if args.matmul.is_empty() {
            vec![[128, 784, 128], [256; 3], [512; 3]]
        } else {
            args.matmul.iter().map(|s| parse_size(s)).collect::<Result<Vec<_>>>()?
        };
        if args.full && args.matmul.is_empty() {
            matmul.extend([[1024; 3], [2048; 3]]);
        }
        let pick = |v: Option<usize>, default: usize, full: usize| {
            v.unwrap_or(if args.full { full } else { default })
        };
        let config = Config {
            matmul,
            conv_batch: pick(args.conv_batch, 32, 128),
            batch: pick(args.batch, 128, 128),
            steps: pick(args.steps, 2, 4),
            reps: pick(args.reps, 5, 10),
            groups: if args.only.is_empty() {
                vec!["matmul".into(), "conv2d".into(), "train".into()]
            } else {
                args.only.iter().map(|s| s.trim().to_ascii_lowercase()).collect()
            },
        };
        if let Some(g) = config.groups.iter().find(|g| !["matmul", "conv2d", "train"].contains(&g.as_str())) {
            return Err(Error::invalid(
                "--only",
                format!("unknown workload '{g}' (known: matmul, conv2d, train)"),
            ));
        }
        if config.conv_batch == 0 || config.batch == 0 || config.steps == 0 || config.reps == 0 {
            return Err(Error::invalid(
                "arguments",
                "--conv-batch, --batch, --steps and --reps must be at least 1",
            ));
        }
        Ok(config)
    }

    fn runs(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// The devices to run on: the CPU first (the reference), then the adapters asked for.
fn devices(args: &BenchArgs) -> Result<Vec<Device>> {
    let adapters = gpu::adapters();
    let every_adapter = || adapters.iter().map(|a| Device::Gpu(Some(a.index))).collect::<Vec<_>>();
    let chosen = match args.device.as_deref() {
        None => every_adapter(),
        Some(flag) => match flag.parse::<Device>()? {
            Device::Auto => vec![device::resolve_auto(&adapters)?.0],
            Device::Gpu(None) => vec![Device::Gpu(Some(GpuBackend::new(None)?.info().index))],
            d => vec![d],
        },
    };
    let mut out = vec![Device::Cpu];
    out.extend(chosen.into_iter().filter(|d| *d != Device::Cpu));
    Ok(out)
}

/// A backend the kernel workloads drive directly (a fresh one per workload).
enum Engine {
    Cpu(CpuBackend),
    Gpu(Box<GpuBackend>),
}

impl Engine {
    fn open(device: Device) -> Result<Engine> {
        match device {
            Device::Gpu(index) => Ok(Engine::Gpu(Box::new(GpuBackend::new(index)?))),
            _ => Ok(Engine::Cpu(CpuBackend::new())),
        }
    }

    fn backend(&mut self) -> &mut dyn Backend {
        match self {
            Engine::Cpu(c) => c,
            Engine::Gpu(g) => g.as_mut(),
        }
    }

    /// Run a program without inputs and wait for it: (wall seconds, GPU seconds from
    /// timestamp queries where the adapter has them).
    fn timed_run(&mut self, id: ProgramId) -> Result<(f64, Option<f64>)> {
        let t0 = Instant::now();
        let gpu = match self {
            Engine::Cpu(c) => c.run(id, &[], StepScalars::default()).map(|()| None)?,
            Engine::Gpu(g) => g.run_timed(id, &[], StepScalars::default())?,
        };
        Ok((t0.elapsed().as_secs_f64(), gpu))
    }
}

/// What is known about a device, and (for an adapter) a backend that keeps its device and
/// pipeline cache open while the bench runs.
fn describe(device: Device) -> Result<(DeviceInfo, Option<GpuBackend>)> {
    Ok(match device {
        Device::Gpu(index) => {
            let g = GpuBackend::new(index)?;
            let a = g.info();
            let info = DeviceInfo {
                device: format!("gpu:{}", a.index),
                name: a.name.clone(),
                backend: a.backend.clone(),
                device_type: a.device_type.clone(),
                timestamps: a.timestamps,
                error: None,
            };
            (info, Some(g))
        }
        _ => {
            let info = DeviceInfo {
                device: "cpu".into(),
                name: format!("{} ({})", CpuBackend::new().name(), crate::cli::cpu_simd()),
                backend: "cpu".into(),
                device_type: "Cpu".into(),
                timestamps: false,
                error: None,
            };
            (info, None)
        }
    })
}

/// The median of `v` (NaN when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => 0.5 * (s[n / 2 - 1] + s[n / 2]),
    }
}

/// Check a device's output against the reference: every element within `tol` relative,
/// `|got − want| ≤ tol · (|want| + mean |want|)` (the mean keeps entries that cancel to
/// near zero from demanding more than f32 sums give). Returns the largest
/// `|got − want| / (|want| + mean |want|)`; errors, naming `what` and the first bad element,
/// on a length mismatch, a non-finite value or an element out of tolerance.
pub fn check_close(what: &str, got: &[f32], want: &[f32], tol: f64) -> Result<f64> {
    let fail = |message: String| Error::invalid(format!("{what} result"), message);
    if got.len() != want.len() {
        return Err(fail(format!("{} elements, the reference has {}", got.len(), want.len())));
    }
    let scale = want.iter().map(|v| f64::from(v.abs())).sum::<f64>() / want.len().max(1) as f64;
    let mut worst = 0.0f64;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (f64::from(g), f64::from(w));
        let err = (g - w).abs() / (w.abs() + scale).max(f64::MIN_POSITIVE);
        if !g.is_finite() || !w.is_finite() || err > tol {
            return Err(fail(format!(
                "element {i} is {g} but the CPU gives {w} (relative error {err:.2e}, tolerance {tol:.0e})"
            )));
        }
        worst = worst.max(err);
    }
    Ok(worst)
}

/// `kiln bench`: run every workload on every device and return the report (rows of devices or
/// workloads that failed carry their error; see [`BenchReport::failures`]). Progress goes to
/// stderr.
pub fn run(args: &BenchArgs) -> Result<BenchReport> {
    let config = Config::new(args)?;
    let t0 = Instant::now();
    let mut report = BenchReport { full: args.full, ..BenchReport::default() };
    let mut usable = Vec::new();
    let mut open = Vec::new();
    for device in devices(args)? {
        match describe(device) {
            Ok((info, gpu)) => {
                usable.push((device, info.device.clone()));
                report.devices.push(info);
                open.extend(gpu);
            }
            // The CPU, or an adapter asked for by name, must work.
            Err(e) if device == Device::Cpu || args.device.is_some() => return Err(e),
            Err(e) => report.devices.push(DeviceInfo {
                device: device.to_string(),
                error: Some(e.to_string()),
                ..DeviceInfo::default()
            }),
        }
    }
    if config.runs("matmul") {
        for &size in &config.matmul {
            kernels::run_case(&mut report, &usable, &kernels::matmul(size)?, config.reps);
        }
    }
    if config.runs("conv2d") {
        for backward in [false, true] {
            let case = kernels::conv2d(config.conv_batch, backward)?;
            kernels::run_case(&mut report, &usable, &case, config.reps);
        }
    }
    if config.runs("train") {
        let presets = [
            ("mlp", &[784][..]),
            ("mnist-cnn", &[28, 28, 1]),
            ("resnet-small", &[28, 28, 1]),
            ("lstm", &[50, 32]),
        ];
        for (preset, shape) in presets {
            models::run_preset(&mut report, &usable, preset, shape, &config);
        }
    }
    drop(open);
    report.fill_ratios();
    report.seconds = t0.elapsed().as_secs_f64();
    Ok(report)
}
