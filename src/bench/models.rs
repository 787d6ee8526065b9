//! Model workloads: training steps (`fit`) and inference (`predict`) of the CLI presets (and an
//! LSTM(128) over 50 steps of 32 features) on
//! synthetic data, through the same API a user calls. Only the time matters here: the data
//! are random, the results are not checked (training parity is tested elsewhere).
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::report::{BenchReport, BenchResult};
use super::{Config, median};
use crate::device::Device;
use crate::error::Result;
use crate::loss::Loss;
use crate::model::{CompileOptions, FitOptions};
use crate::optim::Optimizer;
use crate::tensor::Tensor;

/// Classes of the synthetic labels (and outputs of the preset).
const CLASSES: usize = 10;
/// Training steps (and inference batches) run twice before timing: the first time compiles
/// the program (and a GPU driver its pipelines), the second estimates the step time.
const WARMUP_STEPS: usize = 2;
/// A timed repetition should last about this long (seconds)...
const TARGET_REP_SECONDS: f64 = 0.05;
/// ...with at most this many steps.
const MAX_STEPS: usize = 64;

/// `rows` samples of `sample_shape` uniform in [0, 1) and labels in 0..CLASSES.
fn synthetic(sample_shape: &[usize], rows: usize, seed: u64) -> Result<(Tensor, Tensor)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let shape: Vec<usize> = std::iter::once(rows).chain(sample_shape.iter().copied()).collect();
    let len: usize = shape.iter().product();
    let x = Tensor::new(&shape, (0..len).map(|_| rng.random_range(0.0..1.0)).collect())?;
    let y = Tensor::new(&[rows], (0..rows).map(|_| rng.random_range(0..CLASSES) as f32).collect())?;
    Ok((x, y))
}

/// Seconds per training step and per inference batch (medians over `config.reps`), and the
/// steps per repetition: at least `config.steps`, more for fast models so that a repetition
/// lasts about [`TARGET_REP_SECONDS`] (the per-epoch readback is amortised as in real use).
fn measure(
    device: Device,
    preset: &str,
    sample_shape: &[usize],
    config: &Config,
) -> Result<(f64, f64, usize)> {
    let mut model = match preset {
        // LSTM(128) over sequences, the classic recurrent training workload.
        "lstm" => crate::model::Sequential::new(sample_shape)
            .add(crate::nn::Lstm::new(128))
            .add(crate::nn::Dense::new(CLASSES, crate::nn::Activation::Softmax))
            .into_model(),
        _ => crate::cli::preset(preset, sample_shape, CLASSES, 0)?,
    };
    let loss = Loss::SparseCategoricalCrossentropy;
    model.compile(CompileOptions::new(Optimizer::adam(1e-3), loss, device))?;
    let batch = config.batch;
    let opts =
        FitOptions { batch_size: batch, epochs: 1, verbose: 0, shuffle: false, ..FitOptions::default() };
    let (warm_x, warm_y) = synthetic(sample_shape, batch * WARMUP_STEPS, 1)?;
    model.fit(&warm_x, &warm_y, &opts)?; // compiles the program (and the GPU's pipelines)
    let t0 = Instant::now();
    model.fit(&warm_x, &warm_y, &opts)?;
    let estimate = t0.elapsed().as_secs_f64() / WARMUP_STEPS as f64;
    let steps = ((TARGET_REP_SECONDS / estimate.max(1e-9)).ceil() as usize).min(MAX_STEPS).max(config.steps);
    let (x, y) = synthetic(sample_shape, batch * steps, 2)?;
    let per_step = |t0: Instant| t0.elapsed().as_secs_f64() / steps as f64;
    let mut train = Vec::new();
    for _ in 0..config.reps {
        let t0 = Instant::now();
        model.fit(&x, &y, &opts)?;
        train.push(per_step(t0));
    }
    model.predict(&warm_x, batch)?;
    let mut infer = Vec::new();
    for _ in 0..config.reps {
        let t0 = Instant::now();
        model.predict(&x, batch)?;
        infer.push(per_step(t0));
    }
    Ok((median(&train), median(&infer), steps))
}

/// Train and predict with `preset` on every device; two rows per device.
pub(super) fn run_preset(
    report: &mut BenchReport,
    devices: &[(Device, String)],
    preset: &str,
    sample_shape: &[usize],
    config: &Config,
) {
    let dims: Vec<String> = sample_shape.iter().map(|d| d.to_string()).collect();
    let size = format!("batch {} of {}", config.batch, dims.join("x"));
    let workloads = [format!("train {preset}"), format!("predict {preset}")];
    for (device, label) in devices {
        let mut rows = workloads.clone().map(|w| BenchResult::new(label, &w, &size));
        match measure(*device, preset, sample_shape, config) {
            Ok((train, infer, steps)) => {
                for (row, s) in rows.iter_mut().zip([train, infer]) {
                    row.seconds = Some(s);
                    row.runs = config.reps;
                    row.launches_per_run = steps;
                    row.samples_per_sec = Some(config.batch as f64 / s);
                }
            }
            Err(e) => rows.iter_mut().for_each(|r| r.error = Some(e.to_string())),
        }
        for row in rows {
            let raised = row.launches_per_run > config.steps;
            let why =
                if raised { "; --steps is a minimum, raised so that a repetition lasts ~50 ms" } else { "" };
            eprintln!("bench: {}{why}", row.progress_line());
            report.results.push(row);
        }
    }
}
