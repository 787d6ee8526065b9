//! Layers: each builds primitive graph ops and declares its parameters.
mod bidirectional;
mod conv;
mod dense;
mod embedding;
mod merge;
mod norm;
mod pool;
mod recurrent;
mod regularize;
mod sequence;
pub(crate) use sequence::broadcast_over_columns;
mod shape;

pub use bidirectional::{Bidirectional, MergeMode};
pub use conv::Conv2D;
pub use dense::Dense;
pub use embedding::Embedding;
pub use merge::{Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract};
pub use norm::BatchNormalization;
pub use pool::{AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D};
pub use recurrent::{Gru, Lstm, Masking, RecurrentLayer, RecurrentOptions, SimpleRnn};
pub use regularize::{Dropout, RandomFlip, Regularizer};
pub use sequence::{Conv1D, GlobalAveragePooling1D, GlobalMaxPooling1D};
pub use shape::{Flatten, Reshape};

use rand::Rng;

use crate::error::Result;
use crate::graph::{Graph, NodeId, Op};
use crate::program::UnaryOp;

/// `Activation`: linear, every activation of the table in program/unary.rs, and softmax.
macro_rules! activation_enum {
    ($($variant:ident { doc: $doc:literal, $($entry:tt)* },)*) => {
        /// Activation functions a layer can end with (Keras names).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub enum Activation {
            /// The identity (`linear`, `none`).
            #[default]
            Linear,
            $(#[doc = $doc] $variant,)*
            /// Softmax over the last axis.
            Softmax,
        }

        impl Activation {
            /// Every activation.
            pub const ALL: &'static [Activation] =
                &[Activation::Linear, $(Activation::$variant,)* Activation::Softmax];

            /// The elementwise activation, for those that are one.
            pub fn unary(self) -> Option<UnaryOp> {
                match self {
                    $(Activation::$variant => Some(UnaryOp::$variant),)*
                    Activation::Linear | Activation::Softmax => None,
                }
            }

            /// The layer activation of an elementwise one.
            pub fn from_unary(op: UnaryOp) -> Activation {
                match op {
                    $(UnaryOp::$variant => Activation::$variant,)*
                }
            }
        }
    };
}
crate::program::unary::unary_table!(activation_enum);

impl Activation {
    /// Keras name of the activation.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Softmax => "softmax",
            other => other.unary().map_or("linear", UnaryOp::name),
        }
    }

    /// Parse a Keras activation name (or alias: `none`, `swish`, `hard_swish`).
    pub fn parse(s: &str) -> Option<Activation> {
        match s {
            "linear" | "none" => Some(Activation::Linear),
            "softmax" => Some(Activation::Softmax),
            other => UnaryOp::from_name(other).map(Activation::from_unary),
        }
    }

    /// The canonical names of every activation, comma separated (for error messages).
    pub fn known_names() -> String {
        Activation::ALL.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
    }

    /// Append the activation to node `x` (identity for linear).
    pub fn build(self, g: &mut Graph, x: NodeId, context: &str) -> Result<NodeId> {
        let op = match self {
            Activation::Linear => return Ok(x),
            Activation::Softmax => Op::Softmax,
            other => match other.unary() {
                Some(op) => Op::Unary(op),
                None => return Ok(x),
            },
        };
        g.add(op, &[x], context)
    }
}

/// How a parameter is initialised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Glorot (Xavier) uniform: U(−l, l), l = sqrt(6 / (fan_in + fan_out)).
    GlorotUniform { fan_in: usize, fan_out: usize },
    /// All zeros (biases).
    Zeros,
    /// All ones (batch-norm scales and variances).
    Ones,
    /// U(−limit, limit) (Keras `RandomUniform`; embeddings: 0.05).
    Uniform { limit: f32 },
    /// Keras `Orthogonal` (gain 1) for a `[rows, cols]` matrix: the Q of a QR decomposition of
    /// a standard normal matrix (signs fixed so R's diagonal is positive), orthonormal rows
    /// or columns, whichever are fewer (recurrent kernels).
    Orthogonal { rows: usize, cols: usize },
    /// An LSTM bias with Keras's `unit_forget_bias`: ones for the forget gate's `units`
    /// (the second quarter), zeros elsewhere.
    ForgetBias { units: usize },
}

impl Init {
    /// Draw `n` values from `rng`.
    pub fn sample(self, n: usize, rng: &mut impl Rng) -> Vec<f32> {
        match self {
            Init::GlorotUniform { fan_in, fan_out } => {
                let limit = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt() as f32;
                (0..n).map(|_| rng.random_range(-limit..=limit)).collect()
            }
            Init::Zeros => vec![0.0; n],
            Init::Ones => vec![1.0; n],
            Init::Uniform { limit } => (0..n).map(|_| rng.random_range(-limit..=limit)).collect(),
            Init::Orthogonal { rows, cols } => orthogonal(rows, cols, rng),
            Init::ForgetBias { units } => {
                (0..n).map(|i| if (units..2 * units).contains(&i) { 1.0 } else { 0.0 }).collect()
            }
        }
    }
}

/// A `[rows, cols]` matrix with orthonormal rows (rows ≤ cols) or columns (see
/// [`Init::Orthogonal`]): modified Gram–Schmidt, in f64, on the columns of a tall normal matrix.
fn orthogonal(rows: usize, cols: usize, rng: &mut impl Rng) -> Vec<f32> {
    let (tall, narrow) = (rows.max(cols), rows.min(cols));
    // Standard normal values by Box–Muller; column k of the tall matrix is a[k].
    let mut normal = || {
        let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
        let u2: f64 = rng.random();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    };
    let mut a: Vec<Vec<f64>> = (0..narrow).map(|_| (0..tall).map(|_| normal()).collect()).collect();
    for k in 0..narrow {
        let (done, rest) = a.split_at_mut(k);
        let col = &mut rest[0];
        for q in done.iter() {
            let dot: f64 = q.iter().zip(col.iter()).map(|(x, y)| x * y).sum();
            col.iter_mut().zip(q).for_each(|(c, x)| *c -= dot * x);
        }
        // Dividing by the (positive) norm is the sign fix: R's diagonal is positive.
        let norm = col.iter().map(|x| x * x).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
        col.iter_mut().for_each(|c| *c /= norm);
    }
    let mut out = vec![0.0f32; rows * cols];
    for (k, q) in a.iter().enumerate() {
        for (i, &v) in q.iter().enumerate() {
            // Q is [tall, narrow]; transposed when the matrix is wide.
            let at = if rows >= cols { i * cols + k } else { k * cols + i };
            out[at] = v as f32;
        }
    }
    out
}

/// A parameter a layer owns: its short name ("kernel", "bias"), shape and initialiser.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub init: Init,
    /// Updated by the optimizer (false for state such as batch-norm moving statistics, which
    /// the training step updates itself).
    pub trainable: bool,
    /// A weight penalty added to the loss (Keras `kernel_regularizer`).
    pub regularizer: Option<Regularizer>,
}

impl ParamSpec {
    /// A trainable parameter.
    pub fn new(name: &'static str, shape: Vec<usize>, init: Init) -> ParamSpec {
        ParamSpec { name, shape, init, trainable: true, regularizer: None }
    }

    /// The same parameter with a weight penalty (None: without).
    pub fn regularized(mut self, regularizer: Option<Regularizer>) -> ParamSpec {
        self.regularizer = regularizer;
        self
    }

    /// The same parameter, not trained by the optimizer.
    pub fn frozen(mut self) -> ParamSpec {
        self.trainable = false;
        self
    }
}

/// A state update the training step runs after its graph (e.g. batch-norm moving
/// statistics): a kernel over graph nodes (parameters are updated in place).
pub type StateUpdate = (crate::program::Kernel, Vec<NodeId>);

/// What a layer's `build` gets besides its input node.
#[derive(Debug, Clone, Copy)]
pub struct BuildContext<'a> {
    /// The layer's name (for errors).
    pub name: &'a str,
    /// The layer's parameter nodes, in `params` order.
    pub params: &'a [NodeId],
    /// Apply the final activation (false when the loss applies it).
    pub activation: bool,
    /// Building the training step (dropout active, batch statistics).
    pub training: bool,
    /// A seed for the layer's randomness (dropout masks), fixed per model and layer.
    pub seed: u32,
    /// Where a layer registers the state updates of the training step.
    pub updates: &'a std::cell::RefCell<Vec<StateUpdate>>,
    /// The `[batch, steps]` mask that comes with the input (1: a step of data, 0: padding),
    /// from a `Masking` layer upstream; None without one.
    pub mask: Option<NodeId>,
}

/// "(None, 14, 14, 32)": a per-sample shape with the batch, as Keras's summaries print it.
pub(crate) fn batch_shape(shape: &[usize]) -> String {
    let dims: Vec<String> =
        std::iter::once("None".to_string()).chain(shape.iter().map(|d| d.to_string())).collect();
    format!("({})", dims.join(", "))
}

/// The per-sample shape `input` as images `(height, width, channels)`, or an error naming the
/// layer.
pub(crate) fn image_shape(name: &str, class: &str, input: &[usize]) -> Result<[usize; 3]> {
    match *input {
        [h, w, c] => Ok([h, w, c]),
        _ => Err(crate::error::Error::invalid(
            format!("layer '{name}' ({class})"),
            format!("expects images (height, width, channels), got {input:?}"),
        )),
    }
}

/// A layer of a [`Model`](crate::model::Model). Shapes exclude the batch.
pub trait Layer: std::fmt::Debug + Send + Sync {
    /// Keras class name, e.g. "Dense".
    fn class_name(&self) -> &'static str;
    /// Base of the auto-generated layer name, e.g. "dense" (→ dense, dense_1, ...).
    fn base_name(&self) -> &'static str;
    /// The layer's settings as a JSON object with its `type` (the model-file format, see
    /// `model::spec`).
    fn config(&self) -> serde_json::Value;
    /// Output shape for an input shape (per sample); errors name the layer.
    fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>>;
    /// Parameters for an input shape.
    fn params(&self, input: &[usize]) -> Vec<ParamSpec>;
    /// The activation the layer ends with (so losses can fuse softmax/sigmoid).
    fn activation(&self) -> Activation {
        Activation::Linear
    }
    /// Build the layer on `x` ([batch, input...]).
    fn build(&self, g: &mut Graph, x: NodeId, ctx: &BuildContext) -> Result<NodeId>;
    /// Checks what only the data can show, when the layer is the model's first (an
    /// `Embedding`'s ids in range); `name` is the layer's.
    fn check_input(&self, _name: &str, _x: &crate::tensor::Tensor) -> Result<()> {
        Ok(())
    }
    /// The mask the output carries (Keras `compute_mask`), built from the input `x` and the
    /// input's mask `ctx.mask`. By default none: the mask stops at this layer.
    fn output_mask(&self, _g: &mut Graph, _x: NodeId, _ctx: &BuildContext) -> Result<Option<NodeId>> {
        Ok(None)
    }
    /// Whether the layer takes several inputs (the merge layers of functional models).
    fn merges(&self) -> bool {
        false
    }
    /// Output shape for the inputs of one call, each with the name of the layer it comes from
    /// (for errors). By default one input, given to [`Layer::output_shape`].
    fn output_shape_many(&self, name: &str, inputs: &[(&str, &[usize])]) -> Result<Vec<usize>> {
        match inputs {
            [(_, shape)] => self.output_shape(name, shape),
            _ => Err(crate::error::Error::invalid(
                format!("layer '{name}' ({})", self.class_name()),
                format!("takes one input, got {}", inputs.len()),
            )),
        }
    }
    /// Build the layer on the inputs of one call (by default one, given to [`Layer::build`]).
    fn build_many(&self, g: &mut Graph, xs: &[NodeId], ctx: &BuildContext) -> Result<NodeId> {
        match xs {
            [x] => self.build(g, *x, ctx),
            _ => Err(crate::error::Error::invalid(
                format!("layer '{}' ({})", ctx.name, self.class_name()),
                format!("takes one input, got {}", xs.len()),
            )),
        }
    }
    /// How many tensors a call returns: 1, or more for a recurrent layer with `return_state`
    /// (its output, then the final states).
    fn output_count(&self) -> usize {
        1
    }
    /// The shapes of every output of a call (by default the one of
    /// [`Layer::output_shape_many`]).
    fn output_shapes_all(&self, name: &str, inputs: &[(&str, &[usize])]) -> Result<Vec<Vec<usize>>> {
        Ok(vec![self.output_shape_many(name, inputs)?])
    }
    /// Build every output of a call (by default the one of [`Layer::build_many`]).
    fn build_all(&self, g: &mut Graph, xs: &[NodeId], ctx: &BuildContext) -> Result<Vec<NodeId>> {
        Ok(vec![self.build_many(g, xs, ctx)?])
    }
}

/// A standalone activation layer (Keras `Activation`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivationLayer(pub Activation);

impl Layer for ActivationLayer {
    fn class_name(&self) -> &'static str {
        "Activation"
    }
    fn base_name(&self) -> &'static str {
        "activation"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "type": "Activation", "activation": self.0.name() })
    }
    fn output_shape(&self, _name: &str, input: &[usize]) -> Result<Vec<usize>> {
        Ok(input.to_vec())
    }
    fn params(&self, _input: &[usize]) -> Vec<ParamSpec> {
        vec![]
    }
    fn activation(&self) -> Activation {
        self.0
    }
    fn build(&self, g: &mut Graph, x: NodeId, ctx: &BuildContext) -> Result<NodeId> {
        if ctx.activation { self.0.build(g, x, ctx.name) } else { Ok(x) }
    }
}
