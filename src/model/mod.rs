//! `Model` (and `Sequential`, the chain of layers): a network of layers with the Keras workflow: compile, fit, evaluate, predict,
//! summary. Parameters live in the backend's resident arenas; each (program kind, batch size)
//! is planned and compiled once and cached.
mod build;
mod evaluate;
mod fit;
pub mod functional;
mod heads;
mod inputs;
pub mod sample_weight;
mod sequential;
pub mod spec;
mod spec_graph;
mod state;
mod summary;
mod topology;

pub use fit::{FitOptions, History, Validation};
pub use functional::{CallLayer, Input, Shared, SymbolicTensor};
pub use heads::OutputOptions;
pub use inputs::ModelInputs;
pub use sequential::Sequential;
pub use state::PartialEpoch;
pub use topology::{Call, ModelInput, TensorRef};

use std::collections::HashMap;
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::backend::{Backend, ProgramId};
use crate::device::{self, Device};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::metrics::Metric;
use crate::nn::Layer;
use crate::optim::Optimizer;
use crate::program::{Arena, BufRef, Program, ResidentLayout, align};
use crate::tensor::Tensor;

/// Which program of a model: a training step, an evaluation step, or a forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProgramKind {
    Train,
    Eval,
    Predict,
}

/// One parameter: its stable name (`dense_1.kernel`), shape and place in the Params arena.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSlot {
    pub name: String,
    pub shape: Vec<usize>,
    pub buf: BufRef,
    /// Updated by the optimizer (false for batch-norm moving statistics).
    pub trainable: bool,
}

/// Everything `compile` sets up.
pub(crate) struct Compiled {
    pub backend: Box<dyn Backend>,
    pub device_reason: String,
    pub optimizer: Optimizer,
    /// Each output's loss, loss weight and metrics.
    pub heads: Vec<heads::Head>,
    pub label_smoothing: f32,
    pub implicit_conv: ImplicitConv,
    /// Where the steps accumulate the losses and the metrics.
    pub accum: heads::AccumLayout,
    pub layout: ResidentLayout,
    /// By (kind, batch rows, weighted training step).
    pub programs: HashMap<(ProgramKind, usize, bool), (ProgramId, Program)>,
    /// Optimizer steps taken (Adam's t).
    pub step: u32,
}

/// A network of layers (Keras `Model`): layer calls over the model's inputs in an order where
/// every call comes after the calls it reads (see [`Call`]). A layer called several times is
/// one entry of `layers` (one set of parameters). [`Sequential`] builds the chain; [`Model::new`]
/// builds any graph from symbolic layer calls (`model::functional`).
pub struct Model {
    inputs: Vec<ModelInput>,
    /// Every layer once (in the order of its first call; a model file's in its own order),
    /// which is also the order of the parameters.
    layers: Vec<Arc<dyn Layer>>,
    names: Vec<String>,
    calls: Vec<Call>,
    outputs: Vec<TensorRef>,
    /// Built from layer calls (Keras's "functional" model) rather than a Sequential stack:
    /// its summary has a "Connected to" column and its config names every layer's inputs.
    functional: bool,
    seed: u64,
    /// Shuffles the training rows each epoch; continues across `fit` calls.
    shuffle_rng: ChaCha8Rng,
    params: Vec<ParamSlot>,
    compiled: Option<Compiled>,
    /// Epochs trained over all `fit` calls (restored from checkpoints).
    epochs_trained: usize,
    /// Set by a callback to end `fit` after the current epoch (Keras `model.stop_training`).
    stop_requested: bool,
    /// Where an interrupted `fit` stopped inside an epoch; the next `fit` from that epoch
    /// continues there (restored from checkpoints).
    partial_epoch: Option<PartialEpoch>,
}

/// Options of [`Model::compile`].
#[derive(Debug, Clone)]
pub struct CompileOptions {
    pub optimizer: Optimizer,
    pub loss: Loss,
    pub metrics: Vec<Metric>,
    pub device: Device,
    /// Keras `label_smoothing` of categorical and binary cross-entropy, in [0, 1]: the loss
    /// sees y·(1 − s) + s/k (k classes; 2 for binary). 0 (default) is off.
    pub label_smoothing: f32,
    /// When a GPU reads convolution patches inside its products instead of materialising them.
    pub implicit_conv: ImplicitConv,
    /// One entry per output of a model with several (Keras's lists of `loss`, `loss_weights`
    /// and `metrics`); empty: `loss` and `metrics` apply to every output with weight 1.
    pub outputs: Vec<OutputOptions>,
}

/// When a GPU runs a convolution as an implicit GEMM (`shaders/conv_gemm.wgsl`: the patches
/// read inside the product) instead of im2col, a materialised patch matrix and the tiled
/// matmul. The CPU always materialises (its im2col is cheap and kept for the backward pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImplicitConv {
    /// Implicit for patch matrices larger than [`IMPLICIT_CONV_BYTES`]. Smaller ones are
    /// faster materialised on lavapipe (mnist-cnn training 240 against 178 samples/s, `kiln
    /// bench`); large ones would cost their memory (170 MB for a 224×224 RGB batch of 32).
    #[default]
    Auto,
    /// Every convolution with patches (not 1×1 stride 1).
    Always,
    /// None: im2col everywhere.
    Never,
}

/// Patch matrices above this size run as implicit GEMMs on GPUs with [`ImplicitConv::Auto`].
pub const IMPLICIT_CONV_BYTES: u64 = 32 << 20;

impl Model {
    /// A model of `layers` (named `names`) and `calls`, with
    /// no parameters yet. The callers (Sequential, `Model::new`, model files) keep the call
    /// order and the output references valid.
    pub(crate) fn from_parts(
        inputs: Vec<ModelInput>,
        layers: Vec<Arc<dyn Layer>>,
        names: Vec<String>,
        calls: Vec<Call>,
        outputs: Vec<TensorRef>,
        functional: bool,
    ) -> Model {
        Model {
            inputs,
            layers,
            names,
            calls,
            outputs,
            functional,
            seed: 0,
            shuffle_rng: shuffle_rng(0),
            params: Vec::new(),
            compiled: None,
            epochs_trained: 0,
            stop_requested: false,
            partial_epoch: None,
        }
    }

    /// Seed for weight initialisation and shuffling (default 0).
    pub fn with_seed(mut self, seed: u64) -> Model {
        self.seed = seed;
        self.shuffle_rng = shuffle_rng(seed);
        self
    }

    /// Per-sample shape of the (first) input.
    pub fn input_shape(&self) -> &[usize] {
        self.inputs.first().map_or(&[], |i| &i.shape)
    }

    /// The model's inputs: names and per-sample shapes.
    pub fn inputs(&self) -> &[ModelInput] {
        &self.inputs
    }

    /// Layer names, in the order of their first call.
    pub fn layer_names(&self) -> &[String] {
        &self.names
    }

    /// Whether the model was built from layer calls (`Model::new`, a model file with inputs)
    /// rather than as a Sequential stack.
    pub fn is_functional(&self) -> bool {
        self.functional
    }

    /// Output units per sample (the last axis of the output shape).
    pub fn output_units(&self) -> Result<usize> {
        // Per-step outputs ([steps, units]) count the last axis.
        Ok(self.output_shape()?.last().copied().unwrap_or(0))
    }

    /// The activation of the layer that makes the output (linear for a layer without one, or
    /// no layers).
    pub fn output_activation(&self) -> crate::nn::Activation {
        self.output_layer().map(|(l, _)| l.activation()).unwrap_or_default()
    }

    /// Total number of trainable parameters.
    pub fn param_count(&self) -> Result<usize> {
        Ok(self.param_specs()?.iter().map(|(_, p)| p.shape.iter().product::<usize>()).sum())
    }

    /// Choose the device, lay out and initialise the parameters (Glorot uniform from the
    /// seed, identical on every backend), and prepare the optimizer state.
    pub fn compile(&mut self, opts: CompileOptions) -> Result<()> {
        if self.layers.is_empty() {
            return Err(Error::invalid("model", "has no layers"));
        }
        if self.inputs.is_empty() {
            return Err(Error::invalid("model", "has no inputs"));
        }
        self.output_shapes()?;
        let heads = self.resolve_heads(&opts)?;
        opts.optimizer.validate()?;
        let (mut backend, device_reason) = device::open(opts.device)?;
        // Parameters one after another, each 64-element aligned for direct GPU binding.
        let mut params = Vec::new();
        let mut inits = Vec::new();
        let mut offset = 0;
        for (name, spec) in self.param_specs()? {
            let len: usize = spec.shape.iter().product();
            inits.push(spec.init);
            params.push(ParamSlot {
                name,
                trainable: spec.trainable,
                shape: spec.shape,
                buf: BufRef { arena: Arena::Params, offset, len },
            });
            offset += align(len.max(1));
        }
        let accum = heads::AccumLayout::new(&heads);
        let layout = ResidentLayout {
            params_len: offset.max(crate::program::ALIGN_ELEMS),
            slots: opts.optimizer.slots(),
            accum_len: accum.len(),
        };
        // Allocate first: a model too large for the device fails before any work is done.
        backend.alloc_resident(&layout)?;
        for k in 0..layout.slots {
            let init = opts.optimizer.slot_init(k);
            if init != 0.0 {
                backend.write(Arena::Slot(k as u8), 0, &vec![init; layout.params_len])?;
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        for (p, init) in params.iter().zip(inits) {
            backend.write(Arena::Params, p.buf.offset, &init.sample(p.buf.len, &mut rng))?;
        }
        self.params = params;
        self.epochs_trained = 0;
        self.compiled = Some(Compiled {
            backend,
            device_reason,
            heads,
            label_smoothing: opts.label_smoothing,
            implicit_conv: opts.implicit_conv,
            accum,
            layout,
            programs: HashMap::new(),
            optimizer: opts.optimizer,
            step: 0,
        });
        Ok(())
    }

    pub(crate) fn compiled(&mut self) -> Result<&mut Compiled> {
        self.compiled
            .as_mut()
            .ok_or_else(|| Error::NotReady("call compile() before fit/evaluate/predict".into()))
    }

    /// Name of the device the model runs on and why it was chosen.
    pub fn device(&self) -> Option<(String, String)> {
        self.compiled.as_ref().map(|c| (c.backend.name(), c.device_reason.clone()))
    }

    /// The backend the model runs on (after compile).
    pub fn backend(&self) -> Option<&dyn Backend> {
        self.compiled.as_ref().map(|c| c.backend.as_ref())
    }

    /// Bytes the planner allocated on the device: resident arenas plus the Work arena the
    /// compiled programs share (the largest program's).
    pub fn planned_memory_bytes(&self) -> u64 {
        self.compiled.as_ref().map_or(0, |c| {
            c.layout.bytes() + c.programs.values().map(|(_, p)| p.work_bytes()).max().unwrap_or(0)
        })
    }

    /// The planned program of `kind` for `batch` rows (after compile), for inspection.
    pub fn planned_program(&self, kind: ProgramKind, batch: usize) -> Result<Program> {
        let c = self.compiled.as_ref().ok_or_else(|| Error::NotReady("call compile() first".into()))?;
        self.build_program(c, kind, batch, false)
    }

    /// The learning rate the next training step will use (the optimizer's schedule at the
    /// number of updates made so far; Keras `model.optimizer.learning_rate`).
    pub fn learning_rate(&self) -> Result<f32> {
        let c = self.compiled.as_ref().ok_or_else(|| Error::NotReady("call compile() first".into()))?;
        Ok(c.optimizer.learning_rate_at(c.step + 1))
    }

    /// Use learning rate `lr` from the next step on (for callbacks such as ReduceLROnPlateau);
    /// it replaces any schedule the optimizer had. Nothing is recompiled: the rate is a per-run
    /// scalar.
    pub fn set_learning_rate(&mut self, lr: f32) -> Result<()> {
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(Error::invalid("learning rate", format!("must be finite and at least 0, got {lr}")));
        }
        self.compiled()?.optimizer.schedule = crate::optim::LearningRateSchedule::Constant(lr);
        Ok(())
    }

    /// The optimizer (after compile), with its current schedule.
    pub fn optimizer(&self) -> Option<&Optimizer> {
        self.compiled.as_ref().map(|c| &c.optimizer)
    }

    /// The parameters and where they live.
    pub fn params(&self) -> &[ParamSlot] {
        &self.params
    }

    /// Current weights, by stable name.
    pub fn get_weights(&mut self) -> Result<Vec<(String, Tensor)>> {
        let params = self.params.clone();
        let c = self.compiled()?;
        params
            .iter()
            .map(|p| {
                Ok((
                    p.name.clone(),
                    Tensor::new(&p.shape, c.backend.read(Arena::Params, p.buf.offset, p.buf.len)?)?,
                ))
            })
            .collect()
    }

    /// Overwrite weights by name; every name must exist with the same shape.
    pub fn set_weights(&mut self, weights: &[(String, Tensor)]) -> Result<()> {
        let params = self.params.clone();
        let c = self.compiled()?;
        for (name, t) in weights {
            let p = params
                .iter()
                .find(|p| &p.name == name)
                .ok_or_else(|| Error::invalid("weights", format!("the model has no parameter '{name}'")))?;
            if p.shape != t.shape {
                return Err(Error::shape(format!("weight '{name}'"), &p.shape, &t.shape));
            }
            c.backend.write(Arena::Params, p.buf.offset, &t.data)?;
        }
        Ok(())
    }
}

/// The shuffling stream of a seed (independent of the weight-initialisation stream).
fn shuffle_rng(seed: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1);
    rng
}

/// Convenience for [`CompileOptions`].
impl CompileOptions {
    /// Options with accuracy as the only metric.
    pub fn new(optimizer: Optimizer, loss: Loss, device: Device) -> CompileOptions {
        CompileOptions {
            optimizer,
            loss,
            metrics: vec![Metric::Accuracy],
            device,
            label_smoothing: 0.0,
            implicit_conv: ImplicitConv::Auto,
            outputs: Vec::new(),
        }
    }

    /// With a loss, loss weight and metrics per output (in the model's output order), for a
    /// model of several outputs.
    pub fn with_outputs(mut self, outputs: Vec<OutputOptions>) -> CompileOptions {
        self.outputs = outputs;
        self
    }

    /// With convolutions planned as `implicit` says (GPUs).
    pub fn with_implicit_conv(mut self, implicit: ImplicitConv) -> CompileOptions {
        self.implicit_conv = implicit;
        self
    }

    /// With Keras `label_smoothing` (categorical and binary cross-entropy only).
    pub fn with_label_smoothing(mut self, smoothing: f32) -> CompileOptions {
        self.label_smoothing = smoothing;
        self
    }
}
