//! What the `kiln` binary does, as library functions (so tests can call them).
mod args;
mod data;
mod forecast;
mod generate;
mod infer;
mod interrupt;
mod models;
mod options;
mod report;
mod resnet;
mod run;

pub use args::{SummaryArgs, TrainArgs};
pub use data::{DataKind, DataOptions, LoadedData, load_data, load_data_sized, load_data_with};
pub use generate::{GenerateArgs, generate, sample};
pub use infer::{EvalArgs, PredictArgs, eval, predict, summary_of_checkpoint};
pub use models::{
    PRESETS, PresetHints, image_input, is_model_file, model_and_loss, model_and_loss_for, model_file,
    output_layer, preset, preset_for_loss, preset_with,
};
pub use options::{default_loss, labels, loss_from_args};
pub use report::{ClassScores, ForecastErrors, class_scores, classification_report, confusion_table};

use std::time::Instant;

use crate::backend::gpu::AdapterSummary;
use crate::data::{Dataset, Scaler, Scaling};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::model::{CompileOptions, FitOptions, Validation};
use crate::nn::RandomFlip;
use crate::optim::LearningRateSchedule;
use crate::tensor::Tensor;

/// The text of `kiln devices`.
pub fn devices_report(adapters: &[AdapterSummary]) -> String {
    let mut s = String::new();
    if adapters.is_empty() {
        s += "no GPU adapters found (install a Vulkan driver, e.g. mesa-vulkan-drivers, for lavapipe)\n";
    }
    for a in adapters {
        let sub = a.subgroups.map_or("no".to_string(), |(lo, hi)| format!("{lo}..{hi}"));
        s += &format!(
            "gpu:{} {} ({}, {}{}) driver: {}\n    f16: {}, subgroups: {}, timestamps: {}, max buffer: {} MiB, max storage binding: {} MiB, workgroup: {} invocations, {} KiB shared\n",
            a.index,
            a.name,
            a.backend,
            a.device_type,
            if a.is_software { ", software" } else { "" },
            a.driver,
            a.f16,
            sub,
            a.timestamps,
            a.max_buffer_size >> 20,
            a.max_storage_binding >> 20,
            a.max_workgroup_invocations,
            a.max_workgroup_storage >> 10
        );
    }
    s += &format!("cpu: {} threads, SIMD: {}\n", crate::backend::cpu::pool::global().threads(), cpu_simd());
    match crate::device::resolve_auto(adapters) {
        Ok((d, why)) => s += &format!("--device auto uses {d} ({why})\n"),
        Err(e) => s += &format!("--device auto: {e}\n"),
    }
    s
}

/// The widest SIMD extension the CPU offers (runtime detection).
pub fn cpu_simd() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512f";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return "avx2+fma";
        }
        "sse2"
    }
    #[cfg(target_arch = "aarch64")]
    {
        "neon"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "none"
    }
}

/// Result of `kiln train`.
#[derive(Debug, Clone)]
pub struct TrainReport {
    pub device: String,
    pub backend: String,
    pub adapter: String,
    pub test_loss: f32,
    /// NaN for a regression target (no accuracy).
    pub test_accuracy: f32,
    pub train_seconds: f64,
    pub samples_per_sec: f64,
    pub planned_memory_bytes: u64,
    /// Every compiled metric on the test split (accuracy included), by Keras name.
    pub test_metrics: crate::callbacks::Logs,
    /// Epochs trained in this invocation (fewer than asked after a resume).
    pub epochs_run: usize,
    /// The per-epoch metrics of the whole run (including epochs before a resume).
    pub history: crate::model::History,
    /// Text: the test loss in bits per character (cross-entropy / ln 2).
    pub bits_per_char: Option<f32>,
    /// Series: the test errors in the series' units, and the persistence baseline's.
    pub forecast: Option<ForecastErrors>,
}

/// `kiln train`: split 80/20 (stratified, seeded) unless the data comes with its own test split,
/// hold out a validation part of the training split when asked (`--validation-split`, or 0.1
/// with `--out`), standardise on the training part, train, evaluate on the test split. With
/// `--out DIR` it keeps a run directory; with `--resume DIR` it continues one. Prints progress
/// unless `json` and returns the report.
pub fn train(args: &TrainArgs) -> Result<TrainReport> {
    // A resumed run takes its settings from the checkpoint, the device and output from `args`.
    let resumed = args.resume.as_deref().map(|dir| run::load_resume(args, dir)).transpose()?;
    let args = resumed.as_ref().map_or(args, |r| &r.args);
    let device: Device = args.device.parse()?;
    let mut opt = options::optimizer(args)?;
    if args.epochs == 0 || args.batch_size == 0 {
        return Err(Error::invalid("arguments", "--epochs and --batch-size must be at least 1"));
    }
    if args.verbose > 2 {
        return Err(Error::invalid(
            "--verbose",
            format!("{} (0 silent, 1 progress, 2 a line per epoch)", args.verbose),
        ));
    }
    if args.save_best_only && args.out.is_none() && args.resume.is_none() {
        return Err(Error::invalid(
            "--save-best-only",
            "keeps the best model in a run directory: give --out DIR",
        ));
    }
    LearningRateSchedule::from_epochs_spec(&args.lr_schedule, opt.learning_rate(), args.epochs, 1)?;
    let checkpoint_shape =
        resumed.as_ref().and_then(|r| r.checkpoint.input.as_ref()).map(|i| &i.sample_shape);
    let size = options::image_size(args)?.or_else(|| checkpoint_shape.and_then(|s| options::image_hw(s)));
    let data_opts = DataOptions { image_size: size, window: args.window, stride: args.stride };
    let data = load_data_with(args.data_name(), &data_opts)?;
    if args.image_size.is_some() && !data.image_folder {
        return Err(Error::invalid(
            "--image-size",
            format!("applies to image folders; {} is not one", data.source),
        ));
    }
    let (classes, source, kind) = (data.train.classes, data.source.clone(), data.kind);
    let source_scaler = data.scaler.clone();
    let (mut train, mut test) = data.into_split(0.2, args.seed)?;
    // One class gives loss 0 and an accuracy that means nothing: refuse it.
    let present = train.class_counts().iter().filter(|&&c| c > 0).count();
    if classes > 0 && present < 2 {
        return Err(Error::invalid(
            "data",
            format!(
                "{source}: every training label is the same class; a classifier needs at least 2 classes"
            ),
        ));
    }
    if test.is_empty() {
        return Err(Error::invalid("data", format!("{source}: the test split is empty")));
    }
    let mut val = match run::validation_fraction(args)? {
        0.0 => None,
        f => {
            // Its own seed: reusing the test split's would correlate the two selections.
            let (rest, val) = train.stratified_split(f, args.seed ^ VALIDATION_SEED)?;
            train = rest;
            Some(val)
        }
    };
    let features = train.features();
    let (mut model, loss) = match &resumed {
        Some(r) => {
            let model = r.checkpoint.build_model()?;
            let loss = match r.checkpoint.training.as_ref() {
                Some(t) => crate::loss::Loss::from_name(&t.loss)?,
                None => loss_from_args(args, classes, Some(model.output_activation()))?,
            };
            (model, loss)
        }
        None => {
            let hints = PresetHints { unpadded: matches!(kind, DataKind::Series { .. }), vocabulary: None };
            models::model_and_loss_for(args, train.sample_shape(), classes, hints)?
        }
    };
    let units = model.output_units()?;
    if classes > 2 && !loss.regression() && !loss.binary() && units != classes {
        let layer = model.layer_names().last().cloned().unwrap_or_default();
        return Err(Error::invalid(
            format!("output layer '{layer}'"),
            format!("{units} units for the {classes} classes of {source}: it needs one unit per class"),
        ));
    }
    // Per-step labels (text) for a model with one output per window: the last step's.
    if model.output_shape()?.len() == 1 {
        (train, test) = (train.last_labels(), test.last_labels());
        val = val.map(Dataset::last_labels);
    }
    if args.flip && resumed.is_none() {
        if model.input_shape().len() != 3 {
            return Err(Error::invalid(
                "--flip",
                format!("needs an image model; '{}' takes flat samples", args.model),
            ));
        }
        model = model.prepend(RandomFlip);
    }
    // Image models see pixels in [0, 1] (as Keras examples do); dense ones standardised
    // features, from the training split's statistics (a resumed run: the checkpoint's).
    let scaling = match &args.scaling {
        Some(s) => s.parse()?,
        None if model.input_shape().len() == 3 => Scaling::UnitRange,
        None => Scaling::Standardize,
    };
    let scaler = match (resumed.as_ref().and_then(|r| r.checkpoint.input.as_ref()), source_scaler) {
        (Some(input), _) => input.scaler.clone(),
        // The source's own (sequences), unless --scaling names another.
        (None, Some(own)) if args.scaling.is_none() => own,
        (None, _) => Scaler::fit(&train.x, scaling),
    };
    scaler.apply(&mut train.x)?;
    scaler.apply(&mut test.x)?;
    if let Some(v) = val.as_mut() {
        scaler.apply(&mut v.x)?;
    }
    let input = crate::checkpoint::InputPipeline {
        sample_shape: train.sample_shape().to_vec(),
        scaler,
        class_names: train.class_names.clone(),
        text: kind == DataKind::Text,
        series_scale: match kind {
            DataKind::Series { scale } => Some(scale),
            _ => None,
        },
    };
    let shape = model.input_shape().to_vec();
    let (x_train, x_test) = (as_input(&train.x, &shape)?, as_input(&test.x, &shape)?);
    // A resumed run continues with the checkpoint's optimizer, schedule included.
    match &resumed {
        Some(r) => opt = r.checkpoint.optimizer()?,
        None => {
            let steps_per_epoch = train.len().div_ceil(args.batch_size);
            opt.schedule = LearningRateSchedule::from_epochs_spec(
                &args.lr_schedule,
                opt.learning_rate(),
                args.epochs,
                steps_per_epoch,
            )?;
        }
    }
    let mut compile = CompileOptions::new(opt, loss, device);
    compile.metrics = options::metrics(args.metrics.as_deref(), classes)?;
    model.compile(compile)?;
    if let Some(r) = &resumed {
        r.checkpoint.restore(&mut model, &r.path)?;
        // Past the asked epoch count (a finished run resumed as it is only reports again).
        if model.epochs_trained() > args.epochs {
            return Err(Error::invalid(
                "--resume",
                format!(
                    "{} has trained {} epochs already, past --epochs {}; give more epochs to extend the \
                     run",
                    r.path.display(),
                    model.epochs_trained(),
                    args.epochs
                ),
            ));
        }
    }
    let (dev_name, reason) = model.device().unwrap_or_default();
    let quiet = args.json;
    if !quiet {
        println!("device: {dev_name} ({reason})");
        let target =
            if classes == 0 { "a regression target".to_string() } else { format!("{classes} classes") };
        let val_part = val.as_ref().map_or(String::new(), |v| format!(" / {} validation", v.len()));
        println!(
            "data: {source} — {} train{val_part} / {} test samples, {features} features, {target}",
            train.len(),
            test.len()
        );
        if let Some(r) = &resumed {
            let at = match model.partial_epoch() {
                Some(p) => format!("batch {} of epoch {}/{}", p.batches + 1, p.epoch + 1, args.epochs),
                None => format!("epoch {}/{}", model.epochs_trained() + 1, args.epochs),
            };
            println!("resuming {} at {at}", r.path.display());
        }
        print!("{}", model.summary()?);
    }
    let validation = match &val {
        Some(v) => Validation::Data(as_input(&v.x, &shape)?, labels(v, loss, units)?),
        None => Validation::None,
    };
    // One run at a time per directory: the lock is held until training and its report end.
    let _lock = args.out.as_ref().or(args.resume.as_ref()).map(|d| run::RunLock::take(d)).transpose()?;
    let run_dir = run::run_directory(args, resumed.as_ref(), &input, val.is_some())?;
    let class_weight = options::class_weight(args.class_weight.as_deref(), &train, loss)?;
    if let (Some(w), false) = (&class_weight, quiet) {
        let w: Vec<String> = w.iter().enumerate().map(|(c, w)| format!("{c}: {w:.4}")).collect();
        println!("class weights: {}", w.join(", "));
    }
    let opts = FitOptions {
        batch_size: args.batch_size,
        epochs: args.epochs,
        verbose: if quiet { 0 } else { args.verbose },
        validation,
        initial_epoch: model.epochs_trained(),
        callbacks: run_dir.iter().map(|r| r.clone() as crate::callbacks::SharedCallback).collect(),
        class_weight,
        ..FitOptions::default()
    };
    let t0 = Instant::now();
    let y_train = labels(&train, loss, units)?;
    let phase = interrupt::TrainingPhase::begin();
    let fitted = model.fit(&x_train, &y_train, &FitOptions { interrupt: phase.flag.clone(), ..opts })?;
    drop(phase);
    let train_seconds = t0.elapsed().as_secs_f64();
    let mut test_metrics = model.evaluate_metrics(&x_test, &labels(&test, loss, units)?, args.batch_size)?;
    let test_loss = test_metrics.remove("loss").unwrap_or(f32::NAN);
    let test_accuracy = match classes {
        0 => f32::NAN,
        _ => test_metrics.get("accuracy").copied().unwrap_or(f32::NAN),
    };
    let bits_per_char = (kind == DataKind::Text).then(|| test_loss / std::f32::consts::LN_2);
    let forecast = match kind {
        DataKind::Series { scale } => {
            let predicted = model.predict(&x_test, args.batch_size)?;
            Some(ForecastErrors::new(&test.y, &predicted.data, scale))
        }
        _ => None,
    };
    let backend_kind = model.backend().map(|b| b.kind());
    let (device_name, backend) = match backend_kind {
        Some(crate::backend::DeviceKind::Gpu { backend, .. }) => ("gpu".to_string(), backend),
        _ => ("cpu".to_string(), "cpu".to_string()),
    };
    let epochs_run = fitted.epochs();
    let history = match &run_dir {
        Some(r) => r.lock().unwrap_or_else(|p| p.into_inner()).history.clone(),
        None => fitted,
    };
    let report = TrainReport {
        device: device_name,
        backend,
        adapter: dev_name,
        test_loss,
        test_accuracy,
        train_seconds,
        samples_per_sec: (train.len() * epochs_run) as f64 / train_seconds.max(1e-9),
        planned_memory_bytes: model.planned_memory_bytes(),
        test_metrics,
        epochs_run,
        history,
        bits_per_char,
        forecast,
    };
    if quiet {
        let j = serde_json::json!({
            "device": report.device, "backend": report.backend, "adapter": report.adapter,
            "data": args.data_name(), "model": args.model, "loss": loss.name(), "epochs": args.epochs,
            "batch_size": args.batch_size,
            "test_loss": report.test_loss, "test_accuracy": report.test_accuracy,
            "train_seconds": report.train_seconds, "samples_per_sec": report.samples_per_sec,
            "planned_memory_bytes": report.planned_memory_bytes, "epochs_run": report.epochs_run,
            "test_metrics": report.test_metrics, "test_bits_per_char": report.bits_per_char,
            "test_rmse": forecast.map(|f| f.rmse), "test_mae_units": forecast.map(|f| f.mae),
            "persistence_rmse": forecast.map(|f| f.persistence_rmse),
            "out": args.out.as_ref().or(args.resume.as_ref()),
        });
        println!("{j}");
    } else {
        let mut metrics: Vec<(&String, &f32)> = report.test_metrics.iter().collect();
        // Accuracy first (as before), the others by name.
        metrics.sort_by_key(|(k, _)| (k.as_str() != "accuracy", k.to_string()));
        let metrics: String =
            metrics.iter().map(|(k, v)| format!(" - test {}: {v:.4}", k.replace('_', " "))).collect();
        println!(
            "test loss: {test_loss:.4}{metrics} ({train_seconds:.2}s training, {:.0} samples/s)",
            report.samples_per_sec
        );
        if let Some(b) = bits_per_char {
            println!("test bits per character: {b:.4}");
        }
        if let Some(f) = forecast {
            println!(
                "test error in the series' units: RMSE {:.3}, MAE {:.3} (persistence, the window's last \
                 value: RMSE {:.3}, MAE {:.3})",
                f.rmse, f.mae, f.persistence_rmse, f.persistence_mae
            );
        }
        if let Some(dir) = args.out.as_ref().or(args.resume.as_ref()) {
            println!("run directory: {}", dir.display());
        }
    }
    Ok(report)
}

/// Samples viewed with the model's per-sample input shape (same element count).
fn as_input(x: &Tensor, input_shape: &[usize]) -> Result<Tensor> {
    let shape: Vec<usize> = std::iter::once(x.rows()).chain(input_shape.iter().copied()).collect();
    Tensor::new(&shape, x.data.clone())
}

/// `kiln summary`: the preset's table for the data set's shape.
pub fn summary(args: &TrainArgs) -> Result<()> {
    let name = args.data_name();
    // The packaged 28×28 sets need not be read (or even installed) for their shape.
    let (shape, classes) = match name {
        "fashion-mnist" | "mnist" => (vec![28, 28, 1], 10),
        _ => {
            let opts =
                DataOptions { image_size: options::image_size(args)?, window: args.window, stride: None };
            let data = load_data_with(name, &opts)?.train;
            (data.sample_shape().to_vec(), data.classes)
        }
    };
    let (model, _) = model_and_loss(args, &shape, classes)?;
    print!("{}", model.summary()?);
    Ok(())
}

/// Mixed into `--seed` for the validation split (the test split uses the seed itself).
const VALIDATION_SEED: u64 = 0x9e37_79b9_7f4a_7c15;
