//! The graph: primitive ops with static shapes, checked when a node is added. Node ids are
//! in insertion order, which is a topological order (inputs always exist before their users).
pub mod autodiff;
mod infer;
mod lower;
pub mod plan;

use crate::error::{Error, Result};
use crate::program::{BinaryOp, Operand, PointwiseLoss, Recurrence, SequencePart, UnaryOp, Window2d};

/// Index of a node in its graph.
pub type NodeId = usize;

/// Primitive ops. Shapes: matrices are [rows, cols]; scalars (losses) are [1].
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// A tensor fed by the host on every run.
    Input { name: String },
    /// A trainable parameter, resident on the device.
    Param { name: String },
    /// [m,k]·[k,n] → [m,n], with either operand stored transposed.
    MatMul { trans_a: bool, trans_b: bool },
    /// [r,c] + [c] → [r,c].
    BiasAdd,
    /// Elementwise sum of two tensors of one shape.
    Add,
    /// Elementwise activation.
    Unary(UnaryOp),
    /// y = scale·x + shift elementwise.
    Affine { scale: f32, shift: f32 },
    /// (v, dy) → dx, v the forward input or output (`UnaryOp::grad_source`).
    UnaryGrad(UnaryOp),
    /// Elementwise f(a, b) of two tensors of one shape.
    Binary(BinaryOp),
    /// A recurrent layer's time loop: (z [B, T, G·u], recurrent kernel [u, G·u], b_r, mask,
    /// recurrent dropout mask) → the states [T, B, width] (program/recurrent.rs).
    Recurrent(Recurrence),
    /// (states, recurrent kernel, d states, mask, recurrent dropout mask) → dz [B, T, G·u]:
    /// backpropagation through time.
    RecurrentGrad(Recurrence),
    /// (states, dz) → the gradient of the recurrent pre-activations (the GRU's differs from dz).
    RecurrentGateGrad(Recurrence),
    /// states → the part a layer returns ([B, T, u] or [B, u]).
    RecurrentGather { rec: Recurrence, part: SequencePart },
    /// (table [V, D], ids [...]) → [..., D]: row ids[i] of the table for every id.
    Embedding,
    /// (ids [...], dy [..., D]) → d table [V, D]: Σ of the dy rows with each id, in order.
    EmbeddingGrad { vocab: usize },
    /// [..., a] and [..., b] → [..., a + b]: joined along the last axis.
    ConcatColumns,
    /// [..., c] → [..., len]: columns `start..start + len` of the last axis.
    SliceColumns { start: usize, len: usize },
    /// [B, T, F] → the mask [B, T]: 1 where some feature differs from `value` (Keras
    /// `Masking`), else 0.
    SequenceMask { value: f32 },
    /// The gradient of a gather → d states [T, B, width].
    RecurrentScatter { rec: Recurrence, part: SequencePart },
    /// (a, b, dy) → the gradient with respect to operand `wrt`.
    BinaryGrad { op: BinaryOp, wrt: Operand },
    /// Row-wise softmax of [r,c].
    Softmax,
    /// Row-wise log-softmax of [r,c].
    LogSoftmax,
    /// (y, dy) → dx for softmax.
    SoftmaxGrad,
    /// (y, dy) → dx for log-softmax.
    LogSoftmaxGrad,
    /// [r,c] → [c], sum over rows.
    SumRows,
    /// [c] → [rows,c].
    BroadcastRows { rows: usize },
    /// any → [1], scale · sum of all elements (mean: scale = 1/len).
    SumAll { scale: f32 },
    /// [1] → `shape`, every element scale · x.
    BroadcastScalar { shape: Vec<usize>, scale: f32 },
    /// A constant tensor (the backward seed 1.0).
    Fill { shape: Vec<usize>, value: f32 },
    // The losses. `weighted`: a third input w [rows] of per-sample weights (Keras
    // `sample_weight`), the loss (1/rows) Σ_i w_i · l_i with l_i row i's loss (its mean over the
    // row's outputs for the elementwise losses); their gradients take w before dloss.
    /// (logits [r,c], labels [r] or [r,c] [, w [r]]) → mean cross-entropy of softmax(logits), [1].
    SoftmaxCrossEntropy { sparse: bool, weighted: bool },
    /// (logits, labels [, w], dloss [1]) → dlogits.
    SoftmaxCrossEntropyGrad { sparse: bool, weighted: bool },
    /// (pred, target [, w]) → mean squared error, [1].
    MeanSquaredError { weighted: bool },
    /// (pred, target [, w], dloss) → dpred.
    MeanSquaredErrorGrad { weighted: bool },
    /// (pred, target [, w]) → mean elementwise loss, [1].
    Pointwise { loss: PointwiseLoss, weighted: bool },
    /// (pred, target [, w], dloss) → dpred.
    PointwiseGrad { loss: PointwiseLoss, weighted: bool },
    /// (logits, targets in [0,1] [, w]) → mean binary cross-entropy of sigmoid(logits), [1].
    SigmoidBinaryCrossEntropy { weighted: bool },
    /// (logits, targets [, w], dloss) → dlogits.
    SigmoidBinaryCrossEntropyGrad { weighted: bool },
    /// (pred [r,c], labels) → number of correct rows, [1]. Not differentiable.
    CountCorrect { sparse: bool, threshold: f32, weighted: bool },
    /// (pred [r,c], labels) → rows whose label is among the top k predictions, [1].
    CountTopK { sparse: bool, k: usize, weighted: bool },
    /// (pred, labels of pred's shape) → [TP, FP, FN] of pred > threshold, [3].
    BinaryCounts { threshold: f32 },
    /// (probabilities [r,c], labels) → partial ROC histograms [chunks, 2·thresholds] (see
    /// `Kernel::RocHistogram`).
    RocHistogram { sparse: bool, thresholds: usize },
    /// (pred [r,c], labels) → partial per-class TP/FP/FN [chunks, 3c] (see `Kernel::ClassCounts`).
    ClassCounts { sparse: bool, threshold: Option<f32> },
    /// The same elements viewed with another shape (no kernel: the planner aliases the buffer).
    Reshape { shape: Vec<usize> },
    /// NHWC images → convolution patches `[positions, patch_len]` (see `Kernel::Im2Col`).
    Im2Col { win: Window2d },
    /// Patches → NHWC images, summing overlaps: the adjoint of `Im2Col`.
    Col2Im { win: Window2d },
    /// NHWC → `[batch, out.0, out.1, channels]`, the maximum of each window.
    MaxPool { win: Window2d },
    /// (x, dy) → dx for `MaxPool`.
    MaxPoolGrad { win: Window2d },
    /// NHWC → `[batch, out.0, out.1, channels]`, the mean of each window (padding not counted).
    AvgPool { win: Window2d },
    /// dy → dx for `AvgPool` (its adjoint).
    AvgPoolGrad { win: Window2d },
    /// Inverted dropout with a mask drawn from (seed, step, index); see `Kernel::Dropout`.
    /// `steps` > 1 on `[batch, steps, features]`: one mask per sequence, the same at every
    /// step (Keras's recurrent `dropout`).
    Dropout { rate: f32, seed: u32, steps: usize },
    /// NHWC images, some mirrored left to right (drawn from (seed, step, image)).
    RandomFlip { seed: u32 },
    /// (x [r,c], gamma [c], beta [c]) → batch-normalised x with batch statistics.
    BatchNorm { eps: f32 },
    /// x [rows, cols] → [2, cols]: per-column batch mean and biased variance.
    BatchMoments,
    /// (x, moments, dy) → [2, cols]: per column Σdy (dβ) and Σdy·x̂ (dγ) for `BatchNorm`.
    BatchNormGradSums { eps: f32 },
    /// (x, moments, gamma, dy, sums) → dx for `BatchNorm` (through the moments too).
    BatchNormGrad { eps: f32 },
    /// [rows, cols] → row `index`, [cols] (a copy).
    Row { index: usize },
    /// [cols] → [rows, cols]: zeros but row `index` (the gradient of `Row`).
    PlaceRow { index: usize, rows: usize },
    /// (x, gamma, beta, moving mean, moving variance) → normalised x (inference).
    BatchNormInference { eps: f32 },
    /// any → [1], the L1/L2 weight penalty l1·Σ|x| + l2·Σx² (Keras kernel regularisers).
    WeightPenalty { l1: f32, l2: f32 },
    /// (x, dy [1]) → dx for `WeightPenalty`.
    WeightPenaltyGrad { l1: f32, l2: f32 },
}

impl Op {
    /// The op's name (its variant), for messages.
    pub fn name(&self) -> String {
        let debug = format!("{self:?}");
        debug.split([' ', '(', '{']).next().unwrap_or_default().to_string()
    }
}

/// One node: its op, input nodes, inferred shape and the layer it belongs to (for errors).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub op: Op,
    pub inputs: Vec<NodeId>,
    pub shape: Vec<usize>,
    pub context: String,
}

impl Node {
    /// Number of elements of the node's value.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True for a zero-sized value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A graph of primitive ops.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    pub nodes: Vec<Node>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    /// The node `id`.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    /// Shape of node `id`.
    pub fn shape(&self, id: NodeId) -> &[usize] {
        &self.nodes[id].shape
    }

    /// A host-fed input of `shape`.
    pub fn input(&mut self, name: &str, shape: &[usize]) -> NodeId {
        self.push(Op::Input { name: name.into() }, vec![], shape.to_vec(), name)
    }

    /// A trainable parameter of `shape`.
    pub fn param(&mut self, name: &str, shape: &[usize]) -> NodeId {
        self.push(Op::Param { name: name.into() }, vec![], shape.to_vec(), name)
    }

    fn push(&mut self, op: Op, inputs: Vec<NodeId>, shape: Vec<usize>, context: &str) -> NodeId {
        self.nodes.push(Node { op, inputs, shape, context: context.into() });
        self.nodes.len() - 1
    }

    /// Add `op` over `inputs`, inferring its shape; `context` (the layer name) goes into errors.
    pub fn add(&mut self, op: Op, inputs: &[NodeId], context: &str) -> Result<NodeId> {
        if let Some(&bad) = inputs.iter().find(|&&i| i >= self.nodes.len()) {
            return Err(Error::invalid(context, format!("input node {bad} does not exist")));
        }
        let shape = self.infer(&op, inputs, context)?;
        Ok(self.push(op, inputs.to_vec(), shape, context))
    }
}

/// Number of inputs each op takes.
pub fn arity(op: &Op) -> usize {
    match op {
        Op::Input { .. } | Op::Param { .. } | Op::Fill { .. } => 0,
        Op::Unary(_)
        | Op::Affine { .. }
        | Op::Softmax
        | Op::LogSoftmax
        | Op::SumRows
        | Op::BroadcastRows { .. }
        | Op::SumAll { .. }
        | Op::BroadcastScalar { .. }
        | Op::Reshape { .. }
        | Op::Im2Col { .. }
        | Op::Col2Im { .. }
        | Op::MaxPool { .. }
        | Op::AvgPool { .. }
        | Op::AvgPoolGrad { .. }
        | Op::RandomFlip { .. }
        | Op::Dropout { .. }
        | Op::BatchMoments
        | Op::Row { .. }
        | Op::PlaceRow { .. }
        | Op::SequenceMask { .. }
        | Op::SliceColumns { .. }
        | Op::RecurrentGather { .. }
        | Op::RecurrentScatter { .. }
        | Op::WeightPenalty { .. } => 1,
        Op::MatMul { .. }
        | Op::BiasAdd
        | Op::Add
        | Op::Binary(_)
        | Op::Embedding
        | Op::EmbeddingGrad { .. }
        | Op::ConcatColumns
        | Op::RecurrentGateGrad(_)
        | Op::UnaryGrad(_)
        | Op::SoftmaxGrad
        | Op::LogSoftmaxGrad
        | Op::MaxPoolGrad { .. }
        | Op::WeightPenaltyGrad { .. } => 2,
        Op::SoftmaxCrossEntropy { weighted: false, .. }
        | Op::MeanSquaredError { weighted: false }
        | Op::SigmoidBinaryCrossEntropy { weighted: false }
        | Op::Pointwise { weighted: false, .. }
        | Op::CountTopK { weighted: false, .. }
        | Op::BinaryCounts { .. }
        | Op::RocHistogram { .. }
        | Op::ClassCounts { .. }
        | Op::CountCorrect { weighted: false, .. } => 2,
        Op::SoftmaxCrossEntropyGrad { weighted: false, .. }
        | Op::MeanSquaredErrorGrad { weighted: false }
        | Op::SigmoidBinaryCrossEntropyGrad { weighted: false }
        | Op::PointwiseGrad { weighted: false, .. }
        | Op::SoftmaxCrossEntropy { weighted: true, .. }
        | Op::MeanSquaredError { weighted: true }
        | Op::SigmoidBinaryCrossEntropy { weighted: true }
        | Op::Pointwise { weighted: true, .. }
        | Op::CountCorrect { weighted: true, .. }
        | Op::CountTopK { weighted: true, .. }
        | Op::BinaryGrad { .. }
        | Op::BatchNormGradSums { .. } => 3,
        Op::BatchNorm { .. }
        | Op::SoftmaxCrossEntropyGrad { weighted: true, .. }
        | Op::MeanSquaredErrorGrad { weighted: true }
        | Op::SigmoidBinaryCrossEntropyGrad { weighted: true }
        | Op::PointwiseGrad { weighted: true, .. } => 4,
        Op::BatchNormInference { .. }
        | Op::BatchNormGrad { .. }
        | Op::Recurrent(_)
        | Op::RecurrentGrad(_) => 5,
    }
}
