//! `kiln train`'s arguments as training options: the optimizer `--optimizer` and its flags
//! name, the loss `--loss` / `--from-logits` name (checked against the data and the model's
//! output layer), and the labels in the layout that loss takes.
use super::TrainArgs;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::nn::Activation;
use crate::optim::Optimizer;
use crate::tensor::Tensor;

/// The optimizer `--optimizer` and its flags name, with a constant learning rate (the
/// schedule needs the run's length: see [`crate::optim::LearningRateSchedule::from_epochs_spec`]). Flags
/// that do not apply to the chosen optimizer are errors.
pub fn optimizer(args: &TrainArgs) -> Result<Optimizer> {
    use crate::optim::{Adagrad, Adam, AdamW, GradientClip, Rmsprop, Sgd};
    let name = args.optimizer.as_str();
    let only = |flag: &str, set: bool, for_: &[&str]| {
        if set && !for_.contains(&name) {
            return Err(Error::invalid(flag, format!("applies to {}, not to {name}", for_.join(" and "))));
        }
        Ok(())
    };
    only("--nesterov", args.nesterov, &["sgd"])?;
    only("--momentum", args.momentum != 0.0, &["sgd", "rmsprop"])?;
    only("--weight-decay", args.weight_decay.is_some(), &["adamw"])?;
    only("--amsgrad", args.amsgrad, &["adam", "adamw"])?;
    only("--centered", args.centered, &["rmsprop"])?;
    let lr = args.lr.unwrap_or(if name == "sgd" { 0.01 } else { 1e-3 });
    let mut opt = match name {
        "sgd" => Optimizer::new(Sgd { momentum: args.momentum, nesterov: args.nesterov }, lr),
        "adam" => Optimizer::new(Adam { amsgrad: args.amsgrad, ..Adam::default() }, lr),
        "adamw" => {
            let d = AdamW::default();
            let weight_decay = args.weight_decay.unwrap_or(d.weight_decay);
            Optimizer::new(AdamW { weight_decay, amsgrad: args.amsgrad, ..d }, lr)
        }
        "adagrad" => Optimizer::new(Adagrad::default(), lr),
        "rmsprop" => Optimizer::new(
            Rmsprop { momentum: args.momentum, centered: args.centered, ..Rmsprop::default() },
            lr,
        ),
        other => {
            return Err(Error::invalid(
                "optimizer",
                format!("unknown optimizer '{other}' (known: sgd, adam, adamw, adagrad, rmsprop)"),
            ));
        }
    };
    let clips = [
        args.clipnorm.map(GradientClip::Norm),
        args.global_clipnorm.map(GradientClip::GlobalNorm),
        args.clipvalue.map(GradientClip::Value),
    ];
    let mut clips = clips.into_iter().flatten();
    if let Some(clip) = clips.next() {
        if clips.next().is_some() {
            return Err(Error::invalid(
                "gradient clipping",
                "give only one of --clipnorm, --global-clipnorm and --clipvalue (as Keras)",
            ));
        }
        opt = opt.with_clip(clip);
    }
    opt.validate()?;
    Ok(opt)
}

/// The loss `kiln train` uses without `--loss`: sparse categorical cross-entropy for classes
/// (binary cross-entropy on one sigmoid unit for two), mean squared error for a regression
/// target (`classes` 0).
pub fn default_loss(classes: usize) -> Loss {
    match classes {
        0 => Loss::MeanSquaredError,
        2 => Loss::BinaryCrossentropy,
        _ => Loss::SparseCategoricalCrossentropy,
    }
}

/// The loss `--loss` and `--from-logits` name, for data with `classes` classes (0: a
/// regression target). `model_file_output` is the last activation of a `--model` file (None
/// for a preset, whose output layer follows the loss): the file keeps it, so the loss must
/// fit it, and without `--loss` a linear one means logits. Errors name the flag.
pub fn loss_from_args(
    args: &TrainArgs,
    classes: usize,
    model_file_output: Option<Activation>,
) -> Result<Loss> {
    let mut loss = match &args.loss {
        Some(name) => Loss::from_name(name).map_err(|_| {
            let known: Vec<&str> = Loss::ALL.iter().map(|l| l.name()).collect();
            Error::invalid(
                "--loss",
                format!(
                    "unknown loss '{name}' (known: {}, mean_squared_error, mean_absolute_error)",
                    known.join(", ")
                ),
            )
        })?,
        None if classes > 0 && model_file_output == Some(Activation::Linear) => {
            default_loss(classes).logits_form().unwrap_or(default_loss(classes))
        }
        None => default_loss(classes),
    };
    if args.from_logits {
        loss = loss.logits_form().ok_or_else(|| {
            Error::invalid(
                "--from-logits",
                format!("applies to the cross-entropy losses, not to {}", loss.name()),
            )
        })?;
    }
    let name = loss.name();
    let data = if classes == 0 { "a regression target".to_string() } else { format!("{classes} classes") };
    if (loss.sparse_labels() || loss.one_hot_labels()) && classes == 0 {
        return Err(Error::invalid(
            "--loss",
            format!("{name} needs class labels, the data has {data} (use mse, mae or huber)"),
        ));
    }
    if loss.binary() && classes != 2 {
        return Err(Error::invalid(
            "--loss",
            format!(
                "{name} needs two classes, the data has {data} (use sparse_categorical_crossentropy or \
                 categorical_crossentropy for more)"
            ),
        ));
    }
    if let Some(output) = model_file_output {
        loss.fuses(output).map_err(|_| {
            Error::invalid(
                "--loss",
                format!(
                    "{name} does not fit the model file's output activation {} (a model file keeps \
                     its own; {name} wants {})",
                    output.name(),
                    loss.output_activation().name()
                ),
            )
        })?;
    }
    Ok(loss)
}

/// Labels of `d` as `loss` takes them from a model with `units` outputs: class indices `[n]`
/// for sparse cross-entropy; one-hot rows `[n, classes]` for categorical cross-entropy, and
/// for a regression loss on classes with more than one output; else one value per sample
/// `[n, 1]` (binary labels 0/1, the class index on one output, a regression target).
pub fn labels(d: &Dataset, loss: Loss, units: usize) -> Result<Tensor> {
    let n = d.len();
    // Per-step labels: one more axis, the steps.
    let steps: &[usize] = if d.label_steps > 1 { &[d.label_steps] } else { &[] };
    let shape = |tail: &[usize]| -> Vec<usize> { [&[n], steps, tail].concat() };
    if loss.sparse_labels() {
        return Tensor::new(&shape(&[]), d.y.clone());
    }
    let one_hot = d.classes > 0 && (loss.one_hot_labels() || (loss.regression() && units > 1));
    if one_hot { Ok(d.one_hot()) } else { Tensor::new(&shape(&[1]), d.y.clone()) }
}

/// The metrics `--metrics` names (comma-separated Keras names), for a data set with `classes`
/// classes (0: a regression target). Default: accuracy for classes, none for regression;
/// classes always report accuracy (first), which the train report shows.
pub fn metrics(list: Option<&str>, classes: usize) -> Result<Vec<crate::metrics::Metric>> {
    use crate::metrics::Metric;
    let mut metrics = match list {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|name| Metric::parse(name).map_err(|e| Error::invalid("--metrics", e.to_string())))
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    if classes > 0 && !metrics.contains(&Metric::Accuracy) {
        metrics.insert(0, Metric::Accuracy);
    }
    let mut seen = Vec::new();
    metrics.retain(|m| {
        let new = !seen.contains(m);
        seen.push(*m);
        new
    });
    Ok(metrics)
}

/// The class weights `--class-weight` names for training on `train` with `loss`: "balanced"
/// (scikit-learn's n_samples / (n_classes · count_c) over `train`; a class absent from it
/// weighs 1) or "C:W,..." pairs (classes not listed weigh 1). None without the flag.
pub fn class_weight(spec: Option<&str>, train: &Dataset, loss: Loss) -> Result<Option<Vec<f32>>> {
    let Some(spec) = spec else { return Ok(None) };
    let classes = train.classes;
    if classes == 0 || loss.regression() {
        let what = if classes == 0 {
            "the data is a regression target".to_string()
        } else {
            loss.name().to_string()
        };
        return Err(Error::invalid(
            "--class-weight",
            format!("needs class labels and a classification loss ({what})"),
        ));
    }
    if spec.trim() == "balanced" {
        let n = train.len() as f64;
        let counts = train.class_counts();
        let weights = counts
            .iter()
            .map(|&c| if c == 0 { 1.0 } else { (n / (classes as f64 * c as f64)) as f32 })
            .collect();
        return Ok(Some(weights));
    }
    let mut weights = vec![1.0f32; classes];
    let mut seen = vec![false; classes];
    for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = |why: &str| {
            Error::invalid(
                "--class-weight",
                format!("'{pair}': {why} (expected balanced or CLASS:WEIGHT,...)"),
            )
        };
        let (c, w) = pair.split_once(':').ok_or_else(|| bad("no ':'"))?;
        let c: usize = c.trim().parse().map_err(|_| bad("the class is not an index"))?;
        let w: f32 = w.trim().parse().map_err(|_| bad("the weight is not a number"))?;
        if c >= classes {
            return Err(bad(&format!("class {c} is outside 0..{classes}")));
        }
        if !(w.is_finite() && w >= 0.0) {
            return Err(bad("the weight must be finite and at least 0"));
        }
        if std::mem::replace(&mut seen[c], true) {
            return Err(bad(&format!("class {c} is given twice")));
        }
        weights[c] = w;
    }
    Ok(Some(weights))
}

/// `--image-size HxW` (or `N` for N×N) as (height, width); without it, the model file's
/// `input_shape` when that is an image shape. None: the images' most common size.
pub fn image_size(args: &TrainArgs) -> Result<Option<(usize, usize)>> {
    if let Some(text) = &args.image_size {
        let bad = || {
            Error::invalid(
                "--image-size",
                format!("'{text}' (expected HEIGHTxWIDTH such as 224x224, or one size such as 64)"),
            )
        };
        let parts: Vec<&str> = text.split(['x', 'X', '×']).map(str::trim).collect();
        let dims = parts.iter().map(|p| p.parse::<usize>().map_err(|_| bad())).collect::<Result<Vec<_>>>()?;
        return match dims[..] {
            [n] if n > 0 => Ok(Some((n, n))),
            [h, w] if h > 0 && w > 0 => Ok(Some((h, w))),
            _ => Err(bad()),
        };
    }
    let is_file = args.model.ends_with(".toml") || args.model.ends_with(".json");
    if !is_file {
        return Ok(None);
    }
    let spec = crate::model::spec::load_model_file(std::path::Path::new(&args.model))?;
    Ok(spec.input_shape.as_deref().and_then(image_hw))
}

/// (height, width) of an image shape `[height, width, channels]`, else None.
pub fn image_hw(shape: &[usize]) -> Option<(usize, usize)> {
    match *shape {
        [h, w, _] => Some((h, w)),
        _ => None,
    }
}
