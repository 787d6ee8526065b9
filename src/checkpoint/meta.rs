//! The structured metadata of a checkpoint (input pipeline, training state, optimizer) and
//! its JSON form.
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::NamedTensors;
use crate::data::{Scaler, Scaling};
use crate::error::Error;
use crate::json::{read_f32, short};
use crate::loss::Loss;
use crate::metrics::Metric;
use crate::model::PartialEpoch;

/// How raw samples become model inputs: enough to predict on new files without the
/// training data.
#[derive(Debug, Clone, PartialEq)]
pub struct InputPipeline {
    /// Shape of one sample as loaded (e.g. `[64]` for digits rows, `[28, 28, 1]` for images);
    /// the model's own input shape is in its description.
    pub sample_shape: Vec<usize>,
    /// The scaling fitted on the training data (mode, per-feature offset and divisor).
    pub scaler: Scaler,
    /// One name per class (empty for regression).
    pub class_names: Vec<String>,
    /// The samples are windows of character ids and the classes the characters (the
    /// vocabulary, in id order): a character-level language model, for `kiln generate`.
    pub text: bool,
    /// The samples are windows of a series relative to their last value, in units of this
    /// scale, and the target is the next value's change (see `data::series`): a forecaster.
    pub series_scale: Option<f32>,
}

impl InputPipeline {
    /// The `input` metadata value.
    pub fn to_json(&self) -> Value {
        json!({
            "sample_shape": self.sample_shape,
            "scaling": self.scaler.mode.name(),
            "mean": self.scaler.mean.iter().map(|&v| short(v)).collect::<Vec<_>>(),
            "std": self.scaler.std.iter().map(|&v| short(v)).collect::<Vec<_>>(),
            "class_names": self.class_names,
            "text": self.text,
            "series_scale": self.series_scale.map(short),
        })
    }

    /// Parse the `input` metadata value.
    pub fn from_json(v: &Value) -> std::result::Result<InputPipeline, String> {
        let floats = |key: &str| -> std::result::Result<Vec<f32>, String> {
            v.get(key)
                .and_then(Value::as_array)
                .and_then(|a| a.iter().map(read_f32).collect())
                .ok_or_else(|| format!("metadata 'input' needs '{key}', a list of numbers"))
        };
        let mode: Scaling = v
            .get("scaling")
            .and_then(Value::as_str)
            .ok_or("metadata 'input' needs 'scaling'")?
            .parse()
            .map_err(|e: Error| e.to_string())?;
        let (mean, std) = (floats("mean")?, floats("std")?);
        if mean.len() != std.len() {
            return Err(format!(
                "metadata 'input': {} means but {} standard deviations",
                mean.len(),
                std.len()
            ));
        }
        let sample_shape = v
            .get("sample_shape")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(|x| x.as_u64().map(|n| n as usize)).collect())
            .ok_or("metadata 'input' needs 'sample_shape', a list of sizes")?;
        let class_names = v
            .get("class_names")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|x| x.as_str().unwrap_or_default().to_string()).collect())
            .unwrap_or_default();
        let text = v.get("text").and_then(Value::as_bool).unwrap_or(false);
        let series_scale = match v.get("series_scale") {
            None | Some(Value::Null) => None,
            Some(x) => Some(
                read_f32(x).filter(|s| *s > 0.0).ok_or("'input.series_scale' must be a positive number")?,
            ),
        };
        Ok(InputPipeline {
            sample_shape,
            scaler: Scaler { mode, mean, std },
            class_names,
            text,
            series_scale,
        })
    }
}

/// The position of a ChaCha8 stream: seed, stream number and word position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RngState {
    pub seed: [u8; 32],
    pub stream: u64,
    pub word_pos: u128,
}

impl RngState {
    /// The position of `rng`.
    pub fn of(rng: &ChaCha8Rng) -> RngState {
        RngState { seed: rng.get_seed(), stream: rng.get_stream(), word_pos: rng.get_word_pos() }
    }

    /// A generator at this position.
    pub fn rng(&self) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(self.word_pos);
        rng
    }

    /// `{"seed": 64 hex digits, "stream": n, "word_pos": "n"}` (word_pos is a u128).
    fn to_json(&self) -> Value {
        let seed: String = self.seed.iter().map(|b| format!("{b:02x}")).collect();
        json!({"seed": seed, "stream": self.stream, "word_pos": self.word_pos.to_string()})
    }

    /// [`RngState::to_json`]'s value; `key` names it in errors.
    fn from_json(rng: &Value, key: &str) -> std::result::Result<RngState, String> {
        let hex = rng.get("seed").and_then(Value::as_str).unwrap_or_default();
        let seed: Vec<u8> = (0..hex.len() / 2)
            .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
            .collect();
        let seed: [u8; 32] = seed.try_into().map_err(|_| format!("'{key}.seed' must be 64 hex digits"))?;
        let word_pos = rng
            .get("word_pos")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or(format!("'{key}.word_pos' must be an integer string"))?;
        let stream =
            rng.get("stream").and_then(Value::as_u64).ok_or(format!("'{key}.stream' must be an integer"))?;
        Ok(RngState { seed, stream, word_pos })
    }
}

/// What resuming needs beyond the weights.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingState {
    /// Optimizer name and hyper-parameters (Keras keys), e.g. `{"name": "adam", ...}`.
    pub optimizer: Value,
    /// The learning rate of the next step (callbacks may have changed the optimizer's).
    pub learning_rate: f32,
    /// Loss name (Keras).
    pub loss: String,
    /// The loss's label smoothing (absent in the metadata: 0).
    pub label_smoothing: f32,
    /// Metric names.
    pub metrics: Vec<String>,
    /// Epochs trained.
    pub epoch: usize,
    /// Optimizer steps taken (t).
    pub step: u32,
    /// The shuffling RNG's position.
    pub shuffle_rng: RngState,
    /// Optimizer state: per slot, one tensor per parameter (by parameter name).
    pub slots: Vec<NamedTensors>,
    /// An epoch interrupted after a batch (`training.partial_epoch`: `epoch`, `batches`,
    /// `samples`, `accum`, `shuffle_rng`), which a resumed run continues.
    pub partial_epoch: Option<PartialEpoch>,
    /// A model of several outputs: each output's loss, loss weight and metrics
    /// (`training.outputs`; empty for one output, whose are `loss` and `metrics`).
    pub outputs: Vec<OutputTraining>,
}

/// How one output of a model of several is trained (an entry of `training.outputs`).
#[derive(Debug, Clone, PartialEq)]
pub struct OutputTraining {
    /// Loss name (Keras).
    pub loss: String,
    pub loss_weight: f32,
    /// Metric names.
    pub metrics: Vec<String>,
}

/// The strings of array `v` (none when it is not one).
fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|m| Some(m.as_str()?.to_string())).collect())
        .unwrap_or_default()
}

impl TrainingState {
    /// The `training` metadata value (the slots are tensors, the optimizer its own key).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "epoch": self.epoch,
            "step": self.step,
            "learning_rate": short(self.learning_rate),
            "loss": self.loss,
            "label_smoothing": short(self.label_smoothing),
            "metrics": self.metrics,
            "shuffle_rng": self.shuffle_rng.to_json(),
        });
        if let Some(p) = &self.partial_epoch {
            // f32 → f64 is exact and serde_json prints f64 so that it reads back the same.
            v["partial_epoch"] = json!({
                "epoch": p.epoch, "batches": p.batches, "samples": p.samples, "accum": p.accum,
                "shuffle_rng": RngState::of(&p.rng).to_json(),
            });
        }
        if !self.outputs.is_empty() {
            let outputs: Vec<Value> = self
                .outputs
                .iter()
                .map(|o| json!({"loss": o.loss, "loss_weight": short(o.loss_weight), "metrics": o.metrics}))
                .collect();
            v["outputs"] = Value::Array(outputs);
        }
        v
    }

    /// Parse the `training` and `optimizer` metadata values.
    pub fn from_json(
        v: &Value,
        optimizer: Value,
        slots: Vec<NamedTensors>,
    ) -> std::result::Result<TrainingState, String> {
        let field = |key: &str| v.get(key).ok_or_else(|| format!("metadata 'training' needs '{key}'"));
        let uint =
            |key: &str| field(key)?.as_u64().ok_or_else(|| format!("'training.{key}' must be an integer"));
        let shuffle_rng = RngState::from_json(field("shuffle_rng")?, "training.shuffle_rng")?;
        let partial_epoch = v.get("partial_epoch").map(partial_from_json).transpose()?;
        let outputs = match v.get("outputs") {
            None => Vec::new(),
            Some(list) => list
                .as_array()
                .ok_or("'training.outputs' must be an array")?
                .iter()
                .map(|o| {
                    Ok(OutputTraining {
                        loss: o
                            .get("loss")
                            .and_then(Value::as_str)
                            .ok_or("'training.outputs' entries need a 'loss' name")?
                            .to_string(),
                        loss_weight: o.get("loss_weight").and_then(read_f32).unwrap_or(1.0),
                        metrics: strings(o.get("metrics")),
                    })
                })
                .collect::<std::result::Result<_, String>>()?,
        };
        Ok(TrainingState {
            optimizer,
            learning_rate: read_f32(field("learning_rate")?)
                .ok_or("'training.learning_rate' must be a number")?,
            loss: field("loss")?.as_str().unwrap_or_default().to_string(),
            label_smoothing: v.get("label_smoothing").and_then(read_f32).unwrap_or(0.0),
            metrics: strings(Some(field("metrics")?)),
            epoch: uint("epoch")? as usize,
            step: u32::try_from(uint("step")?).map_err(|_| "'training.step' is too large")?,
            shuffle_rng,
            slots,
            partial_epoch,
            outputs,
        })
    }
}

/// `training.partial_epoch` (see [`TrainingState::partial_epoch`]).
fn partial_from_json(p: &Value) -> std::result::Result<PartialEpoch, String> {
    let uint = |key: &str| {
        p.get(key)
            .and_then(Value::as_u64)
            .map(|n| n as usize)
            .ok_or_else(|| format!("'training.partial_epoch.{key}' must be an integer"))
    };
    let accum = p
        .get("accum")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(read_f32).collect::<Option<Vec<f32>>>())
        .ok_or("'training.partial_epoch.accum' must be an array of numbers")?;
    let rng = p.get("shuffle_rng").ok_or("'training.partial_epoch' needs 'shuffle_rng'")?;
    Ok(PartialEpoch {
        epoch: uint("epoch")?,
        batches: uint("batches")?,
        samples: uint("samples")?,
        accum,
        rng: RngState::from_json(rng, "training.partial_epoch.shuffle_rng")?.rng(),
    })
}

/// For a weights-only checkpoint: the loss and metrics the output activation implies
/// (softmax: sparse cross-entropy, sigmoid: binary cross-entropy, else mean squared error).
pub fn default_loss(model: &Value) -> (Loss, Vec<Metric>) {
    let last = model.get("layers").and_then(Value::as_array).and_then(|l| l.last());
    match last.and_then(|l| l.get("activation")).and_then(Value::as_str) {
        Some("softmax") => (Loss::SparseCategoricalCrossentropy, vec![Metric::Accuracy]),
        Some("sigmoid") => (Loss::BinaryCrossentropy, vec![Metric::Accuracy]),
        _ => (Loss::MeanSquaredError, vec![]),
    }
}

/// `Ok` when two model descriptions are the same network, else what differs first.
pub fn compare_architectures(saved: &Value, ours: &Value) -> std::result::Result<(), String> {
    if saved.get("input_shape") != ours.get("input_shape") {
        return Err(format!(
            "the checkpoint's model takes inputs of shape {}, this model {}",
            saved.get("input_shape").unwrap_or(&Value::Null),
            ours.get("input_shape").unwrap_or(&Value::Null)
        ));
    }
    let layers = |v: &Value| v.get("layers").and_then(Value::as_array).cloned().unwrap_or_default();
    let (a, b) = (layers(saved), layers(ours));
    if let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
        let show = |l: Option<&Value>| l.map_or("nothing".to_string(), Value::to_string);
        return Err(format!(
            "another architecture: layer {} is {} in the checkpoint, {} in this model ({} vs {} layers)",
            i + 1,
            show(a.get(i)),
            show(b.get(i)),
            a.len(),
            b.len()
        ));
    }
    Ok(())
}
