//! Using a checkpoint without its training run: `kiln eval` (loss, accuracy, confusion
//! matrix), `kiln predict` (top classes of images or CSV rows) and `kiln summary --checkpoint`.
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{Value, json};

use super::{ClassScores, as_input, class_scores, classification_report, confusion_table, labels};
use crate::backend::cpu::kernels;
use crate::checkpoint::{Checkpoint, InputPipeline};
use crate::data::{self, Dataset};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::model::Model;
use crate::tensor::Tensor;

/// Options of `kiln eval`.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// A checkpoint (model.safetensors or last.safetensors of a run directory).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Data set, as for `kiln train` (default: the one the checkpoint was trained on).
    #[arg(long)]
    pub data: Option<String>,
    /// test: the data's own test split, or the 80/20 split `kiln train` makes with the same
    /// seed; all: every sample.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Seed of the 80/20 split (default: the checkpoint's run seed, else 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// auto, cpu, gpu or gpu:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Samples per step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Metrics to report instead of the checkpoint's (comma-separated Keras names, as
    /// `kiln train --metrics`; classes always report accuracy).
    #[arg(long, value_name = "LIST")]
    pub metrics: Option<String>,
}

/// Options of `kiln predict`.
#[derive(Args, Debug, Clone)]
pub struct PredictArgs {
    /// A checkpoint (model.safetensors or last.safetensors of a run directory).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Image files (.png, .jpg), CSV files of feature rows (a trailing label column is
    /// ignored, a header line skipped) or sktime/UEA .ts files (one prediction per series,
    /// labels ignored); with a forecaster's checkpoint (trained on a series), series CSV
    /// files (values in the last column), whose next values are forecast.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Classes to print per input, most probable first.
    #[arg(long, default_value_t = 3)]
    pub top: usize,
    /// auto, cpu, gpu or gpu:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Series forecasters: how many values to forecast after the end of each series file,
    /// each from the window before it (the forecast ones included).
    #[arg(long, default_value_t = 1)]
    pub horizon: usize,
}

/// What `kiln eval` measured.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalReport {
    pub samples: usize,
    pub loss: f32,
    /// NaN for a regression model.
    pub accuracy: f32,
    /// `matrix[true][predicted]` counts (empty for a regression model).
    pub confusion: Vec<Vec<usize>>,
    pub class_names: Vec<String>,
    /// Each class's precision, recall, F1 and support (from the confusion matrix).
    pub per_class: Vec<ClassScores>,
    /// Every metric the checkpoint's model was compiled with, on this data (device-computed).
    pub metrics: crate::callbacks::Logs,
}

/// The checkpoint's model, compiled on `device` (with `metrics` instead of the checkpoint's
/// when given) and restored.
pub(super) fn open(path: &Path, device: &str, metrics: Option<&str>) -> Result<(Checkpoint, Model)> {
    let checkpoint = Checkpoint::load(path)?;
    let mut opts = checkpoint.compile_options(device.parse::<Device>()?)?;
    if let Some(list) = metrics {
        let class_data = !opts.loss.regression();
        opts.metrics = super::options::metrics(Some(list), usize::from(class_data))?;
    }
    let model = checkpoint.into_model_from(opts, path)?;
    Ok((checkpoint, model))
}

/// A stored `kiln train` argument of the checkpoint's run.
fn run_setting(checkpoint: &Checkpoint, key: &str) -> Option<Value> {
    let args: Value = serde_json::from_str(checkpoint.extra.get(super::run::ARGS_KEY)?).ok()?;
    args.get(key).cloned()
}

/// Class count of a model's output (`class_data`: it was trained on classes, not a regression
/// target): the units of a multi-unit head, 2 for one sigmoid unit (or one output of a
/// regression loss on two classes), 0 for regression.
fn output_classes(model: &Model, class_data: bool) -> Result<usize> {
    let units = model.output_units()?;
    Ok(match model.loss() {
        Some(l) if l.binary() => 2,
        Some(l) if l.regression() && !class_data => 0,
        Some(l) if l.regression() && units == 1 => 2,
        None => 0,
        _ => units,
    })
}

/// The model's outputs `p` ([N, units]) as probabilities: for a loss on logits (Keras
/// `from_logits=True`) the softmax of each row (categorical) or the sigmoid of each output
/// (binary), computed here on the host; otherwise as they are (a softmax or sigmoid head
/// already gives probabilities, a regression loss its values).
pub(super) fn probabilities(mut p: Tensor, loss: Option<Loss>) -> Tensor {
    match loss {
        // The CPU backend's kernels: the same formulas as the training graph's.
        Some(l) if l.from_logits() && l.binary() => p.data.iter_mut().for_each(|z| *z = kernels::sigmoid(*z)),
        Some(l) if l.from_logits() => {
            let logits = p.data.clone();
            kernels::softmax(p.row_len().max(1), &logits, &mut p.data);
        }
        _ => {}
    }
    p
}

/// Per sample, the class probabilities (two for a sigmoid unit).
fn class_probabilities(p: &Tensor, classes: usize) -> Vec<Vec<f32>> {
    (0..p.rows())
        .map(|i| match (classes, p.row(i)) {
            (2, &[q]) => vec![1.0 - q, q],
            (_, row) => row.to_vec(),
        })
        .collect()
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold(0, |best, (i, &x)| if x > v[best] { i } else { best })
}

/// Samples of `d` scaled by the checkpoint's pipeline and shaped for the model.
fn model_input(x: &Tensor, input: Option<&InputPipeline>, model: &Model) -> Result<Tensor> {
    let mut x = x.clone();
    if let Some(p) = input {
        p.scaler.apply(&mut x)?;
    }
    as_input(&x, model.input_shape())
}

/// `kiln eval`: loss, accuracy and confusion matrix of a checkpoint on a data set.
pub fn eval(args: &EvalArgs) -> Result<EvalReport> {
    let (checkpoint, mut model) = open(&args.checkpoint, &args.device, args.metrics.as_deref())?;
    let name = match (&args.data, run_setting(&checkpoint, "data")) {
        (Some(d), _) => d.clone(),
        (None, Some(Value::String(d))) => d,
        _ => {
            return Err(Error::invalid("--data", "the checkpoint does not say which data it was trained on"));
        }
    };
    let seed = args.seed.or(run_setting(&checkpoint, "seed").and_then(|v| v.as_u64())).unwrap_or(0);
    // Image folders are resized to the size the model was trained at.
    let size = checkpoint.input.as_ref().and_then(|i| super::options::image_hw(&i.sample_shape));
    // Text and series: the run's windows.
    let window = checkpoint.input.as_ref().and_then(|i| i.sample_shape.first().copied());
    let stride = run_setting(&checkpoint, "stride").and_then(|v| v.as_u64()).map(|n| n as usize);
    let opts = super::DataOptions {
        image_size: size,
        window: run_setting(&checkpoint, "window").and(window),
        stride,
    };
    let loaded = super::load_data_with(&name, &opts)?;
    let source = loaded.source.clone();
    let d: Dataset = match args.split.as_str() {
        "test" => loaded.into_split(0.2, seed)?.1,
        "all" => match loaded.test {
            Some(test) => concat(&loaded.train, &test)?,
            None => loaded.train,
        },
        other => return Err(Error::invalid("--split", format!("'{other}' (expected test or all)"))),
    };
    let input = checkpoint.input.as_ref();
    if let Some(p) = input
        && !p.class_names.is_empty()
        && !d.class_names.is_empty()
        && p.class_names != d.class_names
    {
        return Err(Error::invalid(
            "data",
            format!(
                "{source} has classes {:?}, the checkpoint was trained on {:?}",
                d.class_names, p.class_names
            ),
        ));
    }
    // Per-step labels (text) for a model with one output per window: the last step's.
    let d = match model.output_shape()?.len() {
        1 => d.last_labels(),
        _ => d,
    };
    let loss = model.loss().unwrap_or(Loss::MeanSquaredError);
    let x = model_input(&d.x, input, &model)?;
    let y = labels(&d, loss, model.output_units()?)?;
    let mut metrics = model.evaluate_metrics(&x, &y, args.batch_size)?;
    let loss_value = metrics.remove("loss").unwrap_or(f32::NAN);
    let compiled_accuracy = metrics.get("accuracy").copied();
    let classes = output_classes(&model, d.classes > 0)?;
    let mut confusion = vec![vec![0usize; classes]; classes];
    if classes > 0 {
        let mut p = probabilities(model.predict(&x, args.batch_size)?, model.loss());
        // Per-step outputs [N, steps, units]: one row per step, as the labels.
        let units = p.shape.last().copied().unwrap_or(1).max(1);
        p.shape = vec![p.len() / units, units];
        for (probs, &label) in class_probabilities(&p, classes).iter().zip(&d.y) {
            if let Some(row) = confusion.get_mut(label as usize) {
                row[argmax(probs)] += 1;
            }
        }
    }
    // A model compiled without accuracy: the confusion matrix's diagonal.
    let diagonal: usize = (0..classes).map(|c| confusion[c][c]).sum();
    let accuracy = compiled_accuracy.unwrap_or(diagonal as f32 / d.y.len().max(1) as f32);
    let class_names = match input.map(|p| p.class_names.clone()).filter(|c| !c.is_empty()) {
        Some(names) => names,
        None => (0..classes).map(|c| c.to_string()).collect(),
    };
    let report = EvalReport {
        samples: d.len(),
        loss: loss_value,
        accuracy: if classes == 0 { f32::NAN } else { accuracy },
        per_class: class_scores(&confusion),
        confusion,
        class_names,
        metrics,
    };
    if args.json {
        let j = json!({
            "checkpoint": args.checkpoint, "data": source, "split": args.split, "samples": report.samples,
            "loss": report.loss, "accuracy": report.accuracy, "class_names": report.class_names,
            "confusion_matrix": report.confusion, "per_class": report.per_class.iter().map(ClassScores::to_json).collect::<Vec<_>>(), "metrics": report.metrics,
        });
        println!("{j}");
    } else {
        println!("checkpoint: {}", args.checkpoint.display());
        println!("data: {source} — {} split, {} samples", args.split, report.samples);
        let mut metrics: Vec<(&String, &f32)> = report.metrics.iter().collect();
        metrics.sort_by_key(|(k, _)| (k.as_str() != "accuracy", k.to_string()));
        let metrics: String = metrics.iter().map(|(k, v)| format!(" - {k}: {v:.4}")).collect();
        println!("loss: {loss_value:.4}{metrics}");
        let text = input.is_some_and(|p| p.text);
        if text {
            println!("bits per character: {:.4}", loss_value / std::f32::consts::LN_2);
        }
        // A character model's classes are its vocabulary: no table of them.
        if classes > 0 && !text {
            print!("{}", confusion_table(&report.confusion, &report.class_names));
            print!("{}", classification_report(&report.per_class, &report.class_names));
        }
    }
    Ok(report)
}

/// `a` followed by `b` (same sample shape).
fn concat(a: &Dataset, b: &Dataset) -> Result<Dataset> {
    let mut x = a.x.clone();
    x.data.extend_from_slice(&b.x.data);
    x.shape[0] += b.len();
    let y = a.y.iter().chain(&b.y).copied().collect();
    Dataset::with_label_steps(x, y, a.label_steps, a.classes, a.class_names.clone())
}

/// One prediction: the input it came from and the classes with their probabilities, most
/// probable first (for regression: the outputs, named by index).
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub input: String,
    pub top: Vec<(usize, String, f32)>,
}

/// `kiln predict`: the top classes of every image file, CSV row or `.ts` series.
pub fn predict(args: &PredictArgs) -> Result<Vec<Prediction>> {
    if args.top == 0 {
        return Err(Error::invalid("--top", "0 classes per input prints nothing: give 1 or more"));
    }
    let (checkpoint, mut model) = open(&args.checkpoint, &args.device, None)?;
    let input = checkpoint.input.as_ref();
    if let Some(scale) = input.and_then(|p| p.series_scale) {
        return predict_series(args, &mut model, scale);
    }
    let sample_shape = input.map_or(model.input_shape().to_vec(), |p| p.sample_shape.clone());
    let features: usize = sample_shape.iter().product();
    let (mut names, mut data) = (Vec::new(), Vec::new());
    for path in &args.inputs {
        if data::is_image_file(path) {
            let image_shape = [&sample_shape[..], model.input_shape()].into_iter().find(|s| s.len() == 3);
            let Some(&[h, w, c]) = image_shape else {
                return Err(Error::invalid(
                    "input",
                    format!(
                        "{} is an image, but the model takes samples of shape {sample_shape:?}",
                        path.display()
                    ),
                ));
            };
            data.extend(data::load_image(path, (h, w), c)?);
            names.push(path.display().to_string());
        } else if is_ts_file(path) {
            for (i, series) in ts_samples(path, &sample_shape, input)?.into_iter().enumerate() {
                data.extend(series);
                names.push(format!("{}:{}", path.display(), i + 1));
            }
        } else {
            for (line, row) in csv_rows(path, features)? {
                data.extend(row);
                names.push(format!("{}:{line}", path.display()));
            }
        }
    }
    // A NaN or infinite feature would give a confident-looking answer: refuse it, as training
    // does, naming the input.
    let per_sample = features.max(1);
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(Error::invalid(
            format!("input {}", names.get(i / per_sample).cloned().unwrap_or_default()),
            format!("feature {} is {}: predictions need finite numbers", i % per_sample, data[i]),
        ));
    }
    let shape: Vec<usize> = std::iter::once(names.len()).chain(sample_shape.iter().copied()).collect();
    let x = model_input(&Tensor::new(&shape, data)?, input, &model)?;
    let p = probabilities(model.predict(&x, 128)?, model.loss());
    let class_data = input.is_some_and(|p| !p.class_names.is_empty());
    let classes = output_classes(&model, class_data)?;
    let class_name =
        |i: usize| input.and_then(|p| p.class_names.get(i)).cloned().unwrap_or_else(|| i.to_string());
    let predictions: Vec<Prediction> = class_probabilities(&p, classes.max(1))
        .into_iter()
        .zip(names)
        .map(|(probs, input)| {
            let mut top: Vec<(usize, String, f32)> =
                probs.iter().enumerate().map(|(i, &q)| (i, class_name(i), q)).collect();
            if classes > 0 {
                top.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
                top.truncate(args.top.max(1));
            }
            Prediction { input, top }
        })
        .collect();
    if args.json {
        let list: Vec<Value> = predictions
            .iter()
            .map(|p| {
                let top: Vec<Value> =
                    p.top.iter().map(|(i, n, q)| json!({"index": i, "class": n, "probability": q})).collect();
                json!({"input": p.input, "top": top})
            })
            .collect();
        println!("{}", json!({ "checkpoint": args.checkpoint, "predictions": list }));
    } else {
        for p in &predictions {
            let top: Vec<String> = p.top.iter().map(|(_, n, q)| format!("{n} ({q:.4})")).collect();
            println!("{}: {}", p.input, top.join(", "));
        }
    }
    Ok(predictions)
}

/// `kiln predict` with a forecaster: `--horizon` values after the end of each series file.
fn predict_series(args: &PredictArgs, model: &mut Model, scale: f32) -> Result<Vec<Prediction>> {
    if args.horizon == 0 {
        return Err(Error::invalid("--horizon", "0 values to forecast prints nothing: give 1 or more"));
    }
    let window = model.input_shape().first().copied().unwrap_or(1);
    let mut predictions = Vec::new();
    let mut list = Vec::new();
    for path in &args.inputs {
        let next = super::forecast::forecast_series(model, path, window, scale, args.horizon)?;
        if !args.json {
            let shown: Vec<String> = next.iter().map(|v| format!("{v:.4}")).collect();
            println!("{}: next {} value(s): {}", path.display(), next.len(), shown.join(", "));
        }
        list.push(json!({"input": path, "forecast": next}));
        let name = |k: usize| format!("{}:+{k}", path.display());
        predictions.extend(
            next.iter()
                .enumerate()
                .map(|(k, &v)| Prediction { input: name(k + 1), top: vec![(0, "value".to_string(), v)] }),
        );
    }
    if args.json {
        println!("{}", json!({ "checkpoint": args.checkpoint, "predictions": list }));
    }
    Ok(predictions)
}

fn is_ts_file(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.ends_with(".ts") || name.ends_with(".ts.gz")
}

/// The series of a `.ts` file as samples of `sample_shape` (`[steps, dims]`): padded at the
/// end with the training mean (which the checkpoint's standardisation turns into the zeros
/// that `Masking(0)` masks, as in training); a longer series or other dimensions are errors.
fn ts_samples(path: &Path, sample_shape: &[usize], input: Option<&InputPipeline>) -> Result<Vec<Vec<f32>>> {
    let &[steps, dims] = sample_shape else {
        return Err(Error::invalid(
            "input",
            format!("{} holds series, but the model takes samples of shape {sample_shape:?}", path.display()),
        ));
    };
    let set = data::ts::load_ts(path)?;
    if set.dims != dims {
        return Err(Error::invalid(
            format!("input {}", path.display()),
            format!("series of {} dimensions, the model was trained on {dims}", set.dims),
        ));
    }
    let mean = input.map_or(vec![0.0; dims], |p| p.scaler.mean.iter().take(dims).copied().collect());
    let mean = if mean.len() == dims { mean } else { vec![0.0; dims] };
    let (x, _) = set.padded_with(Some(steps), &mean, false).map_err(|e| {
        Error::invalid(format!("input {}", path.display()), format!("{e} (the model takes {steps} steps)"))
    })?;
    Ok(x.data.chunks(steps * dims).map(<[f32]>::to_vec).collect())
}

/// The feature rows of a CSV file: `features` numbers per line, or one more (a label, dropped);
/// a first line that is not numeric is a header. Errors name the file and line.
fn csv_rows(path: &Path, features: usize) -> Result<Vec<(usize, Vec<f32>)>> {
    let text =
        std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: std::result::Result<Vec<f32>, _> =
            line.split(',').map(|f| f.trim().parse::<f32>()).collect();
        let parse_error = |message: String| Error::Parse {
            path: path.to_path_buf(),
            location: format!("line {}", i + 1),
            message,
        };
        match fields {
            Err(_) if rows.is_empty() && i == 0 => continue,
            Err(e) => return Err(parse_error(format!("not a row of numbers: {e}"))),
            Ok(mut v) if v.len() == features || v.len() == features + 1 => {
                v.truncate(features);
                rows.push((i + 1, v));
            }
            Ok(v) => {
                return Err(parse_error(format!(
                    "{} values, the model takes {features} features (optionally followed by a label)",
                    v.len()
                )));
            }
        }
    }
    if rows.is_empty() {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            location: "file".into(),
            message: "no rows".into(),
        });
    }
    Ok(rows)
}

/// `kiln summary --checkpoint FILE`: the model's table and what the checkpoint holds.
pub fn summary_of_checkpoint(path: &Path) -> Result<String> {
    let checkpoint = Checkpoint::load(path)?;
    let model = checkpoint.build_model()?;
    let mut s = model.summary()?;
    s += &format!("checkpoint: {} (seed {})\n", path.display(), checkpoint.seed);
    if let Some(t) = &checkpoint.training {
        s += &format!(
            "training: {} epochs, {} steps, loss {}, optimizer {}, learning rate {}\n",
            t.epoch, t.step, t.loss, t.optimizer, t.learning_rate
        );
    }
    if let Some(p) = &checkpoint.input {
        s += &format!("input: samples {:?}, scaling {}", p.sample_shape, p.scaler.mode.name());
        if !p.class_names.is_empty() {
            s += &format!(", classes {}", p.class_names.join(", "));
        }
        s += "\n";
    }
    if let Some(h) =
        checkpoint.extra.get(crate::run_dir::HISTORY_KEY).and_then(|h| serde_json::from_str(h).ok())
    {
        let h = crate::run_dir::history_from_json(&h);
        let last: Vec<String> =
            h.history.iter().filter_map(|(k, v)| Some(format!("{k} {:.4}", v.last()?))).collect();
        s += &format!("last epoch: {}\n", last.join(", "));
    }
    Ok(s)
}
