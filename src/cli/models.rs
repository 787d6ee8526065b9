//! The models `--model` names: the presets (whose output layer follows the loss) and model
//! files (which keep their own).
use super::TrainArgs;
use super::options::{default_loss, loss_from_args};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::model::{Model, Sequential};
use crate::nn::{Activation, Bidirectional, Conv2D, Dense, Embedding, Flatten, Lstm, Masking, MaxPooling2D};
use crate::program::Padding;

/// The known model presets.
pub const PRESETS: &str = "mlp, cnn, mnist-cnn, resnet-small, lstm, char-lstm, bilstm-text";

/// Per-sample image shape `[h, w, c]` for data of `sample_shape`: images as they are, a
/// grey `[h, w]` gets one channel, and a flat square vector (digits' 64 pixels) becomes
/// `[s, s, 1]`.
pub fn image_input(sample_shape: &[usize]) -> Option<[usize; 3]> {
    match *sample_shape {
        [h, w, c] => Some([h, w, c]),
        [h, w] => Some([h, w, 1]),
        [n] => {
            let s = (n as f64).sqrt().round() as usize;
            (s * s == n && n > 1).then_some([s, s, 1])
        }
        _ => None,
    }
}

/// The output layer of a preset for `classes` classes (0: a regression target) trained with
/// `loss`: one unit for binary cross-entropy, for a regression target and for a regression
/// loss on two classes (labels 0/1), else one per class; the activation the loss expects
/// ([`Loss::output_activation`]: softmax, sigmoid, or linear for logits and regression).
pub fn output_layer(classes: usize, loss: Loss) -> Dense {
    let units = if loss.binary() || (loss.regression() && classes <= 2) { 1 } else { classes.max(1) };
    Dense::new(units, loss.output_activation())
}

/// The model preset `name` for samples of `sample_shape` and `classes` classes, with the
/// output layer of the loss `kiln train` uses by default (0 classes: a regression target,
/// one linear output; 2: one sigmoid unit; else softmax). See [`preset_for_loss`].
pub fn preset(name: &str, sample_shape: &[usize], classes: usize, seed: u64) -> Result<Model> {
    preset_for_loss(name, sample_shape, classes, default_loss(classes), seed)
}

/// The model preset `name` for samples of `sample_shape` and `classes` classes, ending with
/// the [`output_layer`] for `loss`.
///
/// - `mlp`: Flatten → Dense 64 relu → output.
/// - `cnn` (small images such as digits' 8×8): Conv16 3×3 same relu → Conv32 3×3 same relu →
///   MaxPool 2 → Flatten → Dense 64 relu → output.
/// - `mnist-cnn` (28×28): Conv32 3×3 relu → MaxPool 2 → Conv64 3×3 relu → MaxPool 2 → Conv64
///   3×3 relu → Flatten → Dense 64 relu → output (93,322 parameters for 10 classes).
/// - `resnet-small` (images): a residual CNN, stem Conv16 → BN → relu, three basic blocks
///   (16, 32 stride 2, 64 stride 2 filters; conv-BN-relu-conv-BN + skip, relu) → global
///   average pooling → output (a functional model, see `cli::resnet`).
/// - `lstm` (sequences `[steps, features]`, e.g. `.ts` data, padded with zeros at the end):
///   Masking(0) → LSTM 64 → output.
/// - `char-lstm` (windows of character ids, e.g. `--data shakespeare`): Embedding(V, 32) →
///   LSTM 256 (return_sequences) → output per step, V the vocabulary (the classes: the next
///   character after each position).
/// - `bilstm-text` (id sequences): Embedding(V, 32) → Bidirectional(LSTM 64) → output.
pub fn preset_for_loss(
    name: &str,
    sample_shape: &[usize],
    classes: usize,
    loss: Loss,
    seed: u64,
) -> Result<Model> {
    preset_with(name, sample_shape, classes, PresetHints::default(), loss, seed)
}

/// What a preset may need to know of the data beyond its shape and classes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PresetHints {
    /// The id range of the text presets' Embedding (default: the class count, as for
    /// next-character data whose classes are the characters).
    pub vocabulary: Option<usize>,
    /// The sequences have no padding (series windows): `lstm` leaves out its Masking layer,
    /// which would mask a step whose values happen to be 0.
    pub unpadded: bool,
}

/// [`preset_for_loss`] with [`PresetHints`].
pub fn preset_with(
    name: &str,
    sample_shape: &[usize],
    classes: usize,
    hints: PresetHints,
    loss: Loss,
    seed: u64,
) -> Result<Model> {
    let conv = |filters| Conv2D::new(filters, 3, Activation::Relu);
    let images = || {
        image_input(sample_shape).ok_or_else(|| {
            Error::invalid(
                "model",
                format!(
                    "preset '{name}' needs image samples (height, width, channels), got {sample_shape:?}"
                ),
            )
        })
    };
    let model = match name {
        "resnet-small" => return super::resnet::resnet_small(images()?, output_layer(classes, loss), seed),
        "mlp" => {
            let features: usize = sample_shape.iter().product();
            Sequential::new(&[features]).with_seed(seed).add(Dense::new(64, Activation::Relu))
        }
        "cnn" => Sequential::new(&images()?)
            .with_seed(seed)
            .add(conv(16).padding(Padding::Same))
            .add(conv(32).padding(Padding::Same))
            .add(MaxPooling2D::new(2))
            .add(Flatten)
            .add(Dense::new(64, Activation::Relu)),
        "mnist-cnn" => Sequential::new(&images()?)
            .with_seed(seed)
            .add(conv(32))
            .add(MaxPooling2D::new(2))
            .add(conv(64))
            .add(MaxPooling2D::new(2))
            .add(conv(64))
            .add(Flatten)
            .add(Dense::new(64, Activation::Relu)),
        "lstm" => match *sample_shape {
            [steps, features] if hints.unpadded => {
                Sequential::new(&[steps, features]).with_seed(seed).add(Lstm::new(64))
            }
            [steps, features] => Sequential::new(&[steps, features])
                .with_seed(seed)
                .add(Masking { mask_value: 0.0 })
                .add(Lstm::new(64)),
            _ => {
                return Err(Error::invalid(
                    "model",
                    format!("preset 'lstm' needs sequences (steps, features), got {sample_shape:?}"),
                ));
            }
        },
        "char-lstm" | "bilstm-text" => {
            let &[steps] = sample_shape else {
                return Err(Error::invalid(
                    "model",
                    format!("preset '{name}' needs windows of ids (steps), got {sample_shape:?}"),
                ));
            };
            let embedding = Embedding::new(hints.vocabulary.unwrap_or(classes).max(1), 32);
            let m = Sequential::new(&[steps]).with_seed(seed).add(embedding);
            match name {
                // Per step: the next character after every position of the window.
                "char-lstm" => m.add(Lstm::new(256).return_sequences(true)),
                _ => m.add(Bidirectional::new(Lstm::new(64))),
            }
        }
        other => {
            return Err(Error::invalid("model", format!("unknown preset '{other}' (known: {PRESETS})")));
        }
    };
    Ok(model.add(output_layer(classes, loss)).into_model())
}

/// Whether `--model NAME` names a model file (`.toml`, `.json`, or an existing file) rather
/// than a preset.
pub fn is_model_file(name: &str) -> bool {
    name.ends_with(".toml") || name.ends_with(".json") || std::path::Path::new(name).is_file()
}

/// The model `--model` names and the loss `--loss` / `--from-logits` name (see
/// [`super::loss_from_args`]), for samples of `sample_shape` and `classes` classes: a preset
/// ends with the output layer of the loss; a model file keeps its own, which the loss must fit.
pub fn model_and_loss(args: &TrainArgs, sample_shape: &[usize], classes: usize) -> Result<(Model, Loss)> {
    model_and_loss_for(args, sample_shape, classes, PresetHints::default())
}

/// [`model_and_loss`] with [`PresetHints`] for a preset.
pub fn model_and_loss_for(
    args: &TrainArgs,
    sample_shape: &[usize],
    classes: usize,
    hints: PresetHints,
) -> Result<(Model, Loss)> {
    if !is_model_file(&args.model) {
        let loss = loss_from_args(args, classes, None)?;
        let model = preset_with(&args.model, sample_shape, classes, hints, loss, args.seed)?;
        return Ok((model, loss));
    }
    let model = model_file(&args.model, sample_shape, args.seed)?;
    let outputs = model.output_names();
    if outputs.len() > 1 {
        return Err(Error::invalid(
            format!("model file {}", args.model),
            format!(
                "it has {} outputs ({}), but `kiln train` has one set of labels for one output; \
                 train a model of several outputs through the library (CompileOptions::with_outputs, \
                 fit(x, [&y1, &y2], ..)). `kiln summary` shows it",
                outputs.len(),
                outputs.join(", ")
            ),
        ));
    }
    let loss = loss_from_args(args, classes, Some(model.output_activation()))?;
    Ok((model, loss))
}

/// The network of model file `name` (`.toml` / `.json`, see [`crate::model::spec`]) for
/// samples of `sample_shape`. Without an `input_shape` in the file, the data's shape is used:
/// as images when the first layer takes images, else flattened.
pub fn model_file(name: &str, sample_shape: &[usize], seed: u64) -> Result<Model> {
    let path = std::path::Path::new(name);
    let spec = crate::model::spec::load_model_file(path)?;
    let shape = match (&spec.input_shape, spec.wants_images()) {
        (Some(s), _) => s.clone(),
        (None, false) if spec.wants_sequences() => sample_shape.to_vec(),
        (None, true) => image_input(sample_shape).map(|s| s.to_vec()).ok_or_else(|| {
            Error::invalid(
                format!("model file {name}"),
                format!("the first layer takes images, but the data's samples are {sample_shape:?}"),
            )
        })?,
        (None, false) => vec![sample_shape.iter().product()],
    };
    let want: usize = sample_shape.iter().product();
    if shape.iter().product::<usize>() != want {
        return Err(Error::invalid(
            format!("model file {name}"),
            format!("input_shape {shape:?} does not match the data's samples {sample_shape:?}"),
        ));
    }
    Ok(spec.into_model(&shape, seed))
}
