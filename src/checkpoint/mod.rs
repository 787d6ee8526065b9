//! Checkpoints in safetensors: enough to use a model without its training data, and to
//! resume training exactly.
//!
//! Tensors (all F32, little-endian, with their shapes):
//! - every parameter under its stable name (`dense_1.kernel`, `batch_normalization.moving_mean`);
//! - optimizer state slot `k` of each parameter as `optimizer.slot{k}.<parameter name>`, same
//!   shape as the parameter (SGD with momentum: slot0 = velocity; Adam: slot0 = m, slot1 = v).
//!
//! `__metadata__` (strings; JSON where structured):
//! - `format`: `kiln-checkpoint-1`; `model`: the model description (`Model::config()`);
//!   `seed`: the model seed (initialisation, shuffling, dropout masks);
//! - `input` (optional): the input pipeline — `sample_shape` of the data as loaded, `scaling`
//!   mode with its per-feature `mean` and `std`, `class_names`;
//! - `optimizer` (with training state): `Optimizer::config()` — name, hyper-parameters with
//!   Keras's keys, learning rate or schedule, clipping;
//! - `training`: `epoch` (epochs trained), `step` (optimizer steps, t), `learning_rate`
//!   (of the next step, for reading; the schedule in `optimizer` is what is restored), `loss`,
//!   `metrics`, `shuffle_rng` (ChaCha8 `seed` as hex, `stream`, `word_pos`), and after an
//!   interrupt inside an epoch `partial_epoch` (`epoch`, `batches` and `samples` done, the
//!   loss/metric accumulators `accum`, the `shuffle_rng` as the epoch began);
//! - `extra.<key>`: free-form strings (the CLI keeps its arguments and the History there);
//! - `data_crc32`: CRC32 of the tensor data, checked on load.
//!
//! Saving reads the state from whichever backend the model runs on, and loading writes it to
//! whichever it runs on, so a checkpoint moves between the CPU and a GPU.
mod file;
mod meta;

pub use file::{temp_path, write_atomic};
pub use meta::{InputPipeline, OutputTraining, RngState, TrainingState};

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::Value;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::model::{CompileOptions, Model};
use crate::tensor::Tensor;

/// The value of the `format` metadata key.
pub const FORMAT: &str = "kiln-checkpoint-1";
/// Tensors by name.
pub type NamedTensors = Vec<(String, Tensor)>;
/// Prefix of the optimizer-state tensors.
const SLOT_PREFIX: &str = "optimizer.slot";

/// A model's weights, description and (optionally) input pipeline and training state.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The model description (`Model::config()`).
    pub model: Value,
    /// The model seed.
    pub seed: u64,
    /// Parameters by stable name.
    pub weights: NamedTensors,
    /// How raw inputs become model inputs (scaling, shapes, class names).
    pub input: Option<InputPipeline>,
    /// Optimizer state, step, epoch, RNG: what resuming needs.
    pub training: Option<TrainingState>,
    /// Free-form metadata, stored as `extra.<key>`.
    pub extra: BTreeMap<String, String>,
}

impl Checkpoint {
    /// The state of a compiled model: weights, description, optimizer slots, step, epoch,
    /// learning rate and shuffle RNG.
    pub fn capture(model: &mut Model) -> Result<Checkpoint> {
        let weights = model.get_weights()?;
        let slots =
            (0..model.optimizer_slot_count()).map(|k| model.optimizer_slot(k)).collect::<Result<_>>()?;
        let rng = model.shuffle_rng_state();
        let training = TrainingState {
            optimizer: model.optimizer().ok_or_else(not_compiled)?.config(),
            learning_rate: model.learning_rate()?,
            loss: model.loss().ok_or_else(not_compiled)?.name().to_string(),
            label_smoothing: model.label_smoothing(),
            metrics: model.metrics().iter().map(|m| m.id()).collect(),
            epoch: model.epochs_trained(),
            step: model.steps_taken(),
            shuffle_rng: RngState::of(rng),
            slots,
            partial_epoch: model.partial_epoch().cloned(),
            outputs: match model.output_options() {
                several if several.len() > 1 => several
                    .iter()
                    .map(|o| meta::OutputTraining {
                        loss: o.loss.name().to_string(),
                        loss_weight: o.weight,
                        metrics: o.metrics.iter().map(|m| m.id()).collect(),
                    })
                    .collect(),
                _ => Vec::new(),
            },
        };
        Ok(Checkpoint {
            model: model.config(),
            seed: model.seed(),
            weights,
            input: None,
            training: Some(training),
            extra: BTreeMap::new(),
        })
    }

    /// The checkpoint as safetensors bytes (see the module docs for the layout).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut metadata = HashMap::new();
        metadata.insert("format".to_string(), FORMAT.to_string());
        metadata.insert("model".to_string(), self.model.to_string());
        metadata.insert("seed".to_string(), self.seed.to_string());
        if let Some(input) = &self.input {
            metadata.insert("input".to_string(), input.to_json().to_string());
        }
        let mut tensors = self.weights.clone();
        if let Some(t) = &self.training {
            metadata.insert("optimizer".to_string(), t.optimizer.to_string());
            metadata.insert("training".to_string(), t.to_json().to_string());
            for (k, slot) in t.slots.iter().enumerate() {
                tensors.extend(slot.iter().map(|(name, v)| (format!("{SLOT_PREFIX}{k}.{name}"), v.clone())));
            }
        }
        for (k, v) in &self.extra {
            metadata.insert(format!("extra.{k}"), v.clone());
        }
        file::encode(&tensors, metadata)
    }

    /// Parse checkpoint bytes; `path` names the source in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
        let (tensors, metadata) = file::decode(bytes, path)?;
        let corrupt = |message: String| Error::CorruptCheckpoint { path: path.to_path_buf(), message };
        let get = |key: &str| {
            metadata
                .get(key)
                .ok_or_else(|| corrupt(format!("the metadata has no '{key}' (not a kiln checkpoint?)")))
        };
        let json = |key: &str| -> Result<Value> {
            serde_json::from_str(get(key)?)
                .map_err(|e| corrupt(format!("metadata '{key}' is not valid JSON: {e}")))
        };
        if get("format")? != FORMAT {
            return Err(corrupt(format!("format '{}' (this kiln reads '{FORMAT}')", get("format")?)));
        }
        let seed = get("seed")?.parse().map_err(|_| corrupt("metadata 'seed' is not an integer".into()))?;
        let input = match metadata.get("input") {
            Some(_) => Some(InputPipeline::from_json(&json("input")?).map_err(corrupt)?),
            None => None,
        };
        let (mut weights, mut slots): (NamedTensors, Vec<NamedTensors>) = (Vec::new(), Vec::new());
        for (name, t) in tensors {
            let Some(rest) = name.strip_prefix(SLOT_PREFIX) else {
                weights.push((name, t));
                continue;
            };
            let (k, param) =
                rest.split_once('.').and_then(|(k, p)| Some((k.parse::<usize>().ok()?, p))).ok_or_else(
                    || corrupt(format!("tensor '{name}' is not named {SLOT_PREFIX}<k>.<parameter>")),
                )?;
            if slots.len() <= k {
                slots.resize(k + 1, Vec::new());
            }
            slots[k].push((param.to_string(), t));
        }
        let training = match metadata.get("training") {
            Some(_) => Some(
                TrainingState::from_json(&json("training")?, json("optimizer")?, slots).map_err(corrupt)?,
            ),
            None => None,
        };
        let extra = metadata
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("extra.")?.to_string(), v.clone())))
            .collect();
        Ok(Checkpoint { model: json("model")?, seed, weights, input, training, extra })
    }

    /// Save atomically to `path` (temporary file, fsync, rename): an interrupted save leaves
    /// the previous file as it was.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        file::write_atomic(path.as_ref(), &self.to_bytes()?)
    }

    /// Load from `path`; errors name the file and what is wrong with it.
    pub fn load(path: impl AsRef<Path>) -> Result<Checkpoint> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Checkpoint::from_bytes(&bytes, path)
    }

    /// The optimizer the checkpoint was trained with (hyper-parameters, schedule, clipping).
    pub fn optimizer(&self) -> Result<crate::Optimizer> {
        let t = self
            .training
            .as_ref()
            .ok_or_else(|| Error::invalid("checkpoint", "holds weights only, no optimizer"))?;
        crate::Optimizer::from_config(&t.optimizer)
    }

    /// A fresh (uncompiled) model of the checkpoint's architecture and seed.
    pub fn build_model(&self) -> Result<Model> {
        let spec = crate::model::spec::parse_model(&self.model)?;
        let shape = spec
            .input_shape
            .clone()
            .ok_or_else(|| Error::invalid("checkpoint model", "the description has no input_shape"))?;
        Ok(spec.into_model(&shape, self.seed))
    }

    /// The model, compiled on `device` with the checkpoint's optimizer, loss and metrics, and
    /// restored (weights and, when present, the training state).
    pub fn into_model(&self, device: Device) -> Result<Model> {
        self.into_model_with(self.compile_options(device)?)
    }

    /// The model, compiled with `opts` (e.g. [`Checkpoint::compile_options`] with other
    /// metrics) and restored.
    pub fn into_model_with(&self, opts: CompileOptions) -> Result<Model> {
        self.into_model_from(opts, Path::new(""))
    }

    /// [`Checkpoint::into_model_with`] for the checkpoint read from `path` (named in errors).
    pub fn into_model_from(&self, opts: CompileOptions, path: &Path) -> Result<Model> {
        let mut model = self.build_model()?;
        model.compile(opts)?;
        self.restore(&mut model, path)?;
        Ok(model)
    }

    /// How the checkpoint's model was compiled (optimizer, loss, metrics, label smoothing), on
    /// `device`; a weights-only checkpoint: a plain SGD and the loss its output layer implies.
    pub fn compile_options(&self, device: Device) -> Result<CompileOptions> {
        Ok(match &self.training {
            Some(t) => CompileOptions {
                optimizer: crate::Optimizer::from_config(&t.optimizer)?,
                loss: crate::Loss::from_name(&t.loss)?,
                metrics: t.metrics.iter().map(|m| crate::Metric::parse(m)).collect::<Result<_>>()?,
                device,
                label_smoothing: t.label_smoothing,
                implicit_conv: Default::default(),
                outputs: t
                    .outputs
                    .iter()
                    .map(|o| {
                        let metrics =
                            o.metrics.iter().map(|m| crate::Metric::parse(m)).collect::<Result<Vec<_>>>()?;
                        Ok(crate::model::OutputOptions::new(crate::Loss::from_name(&o.loss)?)
                            .weight(o.loss_weight)
                            .metrics(&metrics))
                    })
                    .collect::<Result<_>>()?,
            },
            // Weights only: a plain SGD (no state) and the loss the output layer implies.
            None => {
                let (loss, metrics) = meta::default_loss(&self.model);
                CompileOptions {
                    optimizer: crate::Optimizer::sgd(0.0),
                    loss,
                    metrics,
                    device,
                    label_smoothing: 0.0,
                    implicit_conv: Default::default(),
                    outputs: Vec::new(),
                }
            }
        })
    }

    /// Check that the weights fit `model` — every parameter present with its shape, no
    /// tensor the model lacks, the same architecture — naming the first problem.
    pub fn check_fits(&self, model: &Model, path: &Path) -> Result<()> {
        let mismatch = |message: String| Error::CheckpointMismatch { path: path.to_path_buf(), message };
        for p in model.params() {
            match self.weights.iter().find(|(name, _)| name == &p.name) {
                None => {
                    return Err(mismatch(format!(
                        "tensor '{}' is missing (the model needs shape {:?})",
                        p.name, p.shape
                    )));
                }
                Some((_, t)) if t.shape != p.shape => {
                    return Err(mismatch(format!(
                        "tensor '{}' has shape {:?} in the checkpoint, the model expects {:?}",
                        p.name, t.shape, p.shape
                    )));
                }
                Some(_) => {}
            }
        }
        if let Some((name, t)) =
            self.weights.iter().find(|(name, _)| !model.params().iter().any(|p| &p.name == name))
        {
            return Err(mismatch(format!("tensor '{name}' {:?} has no parameter in the model", t.shape)));
        }
        meta::compare_architectures(&self.model, &model.config()).map_err(mismatch)
    }

    /// Put the weights and, when the checkpoint has them and the model is compiled with the
    /// same optimizer, the optimizer slots, step, epoch, learning rate and shuffle RNG into
    /// `model`. `path` names the checkpoint in errors.
    pub fn restore(&self, model: &mut Model, path: &Path) -> Result<()> {
        self.check_fits(model, path)?;
        let mismatch = |message: String| Error::CheckpointMismatch { path: path.to_path_buf(), message };
        let Some(t) = &self.training else { return model.set_weights(&self.weights) };
        let name = t.optimizer.get("name").and_then(Value::as_str).unwrap_or("?");
        let ours = model.optimizer().map_or("none", |o| o.name());
        if name != ours || t.slots.len() != model.optimizer_slot_count() {
            return Err(mismatch(format!(
                "the checkpoint's optimizer is {name} with {} state slots, the model was compiled with {ours} ({})",
                t.slots.len(),
                model.optimizer_slot_count()
            )));
        }
        model.set_weights(&self.weights)?;
        for (k, slot) in t.slots.iter().enumerate() {
            if slot.len() != model.params().len() {
                return Err(mismatch(format!(
                    "optimizer slot {k} holds {} tensors, the model has {} parameters",
                    slot.len(),
                    model.params().len()
                )));
            }
            model.set_optimizer_slot(k, slot)?;
        }
        // The schedule as it was (a callback may have replaced the compiled one).
        let schedule = crate::Optimizer::from_config(&t.optimizer)?.schedule;
        model.set_training_state(t.step, schedule, t.epoch, t.shuffle_rng.rng())?;
        model.set_partial_epoch(t.partial_epoch.clone());
        Ok(())
    }

    /// Load `path` and restore it into `model` (see [`Checkpoint::restore`]).
    pub fn load_into(path: impl AsRef<Path>, model: &mut Model) -> Result<Checkpoint> {
        let path = path.as_ref();
        let checkpoint = Checkpoint::load(path)?;
        checkpoint.restore(model, path)?;
        Ok(checkpoint)
    }
}

impl Model {
    /// Save a checkpoint of the model (weights, description, training state) to `path`,
    /// atomically.
    pub fn save(&mut self, path: impl AsRef<Path>) -> Result<()> {
        Checkpoint::capture(self)?.save(path)
    }
}

fn not_compiled() -> Error {
    Error::NotReady("call compile() before saving a checkpoint".into())
}
