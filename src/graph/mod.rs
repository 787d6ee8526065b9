//! The graph: primitive ops with static shapes, checked when a node is added. Node ids are
//! in insertion order, which is a topological order (inputs always exist before their users).
pub mod autodiff;
mod lower;
pub mod plan;

use crate::error::{Error, Result};
use crate::program::{
    BinaryOp, CLASS_COUNT_CHUNK, Operand, PointwiseLoss, ROC_CHUNK, Recurrence, SequencePart, UnaryOp,
    Window2d,
};

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
    /// A recurrent layer's time loop: (z [B, T, G·u], recurrent kernel [u, G·u]) → the
    /// states [T, B, width] (program/recurrent.rs).
    Recurrent(Recurrence),
    /// (states, recurrent kernel, d states) → dz [B, T, G·u]: backpropagation through time.
    RecurrentGrad(Recurrence),
    /// (states, dz) → the gradient of the recurrent pre-activations (the GRU's differs from dz).
    RecurrentGateGrad(Recurrence),
    /// states → the part a layer returns ([B, T, u] or [B, u]).
    RecurrentGather { rec: Recurrence, part: SequencePart },
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
    CountCorrect { sparse: bool, threshold: f32 },
    /// (pred [r,c], labels) → rows whose label is among the top k predictions, [1].
    CountTopK { sparse: bool, k: usize },
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
    Dropout { rate: f32, seed: u32 },
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

fn matrix(context: &str, what: &str, shape: &[usize]) -> Result<(usize, usize)> {
    match shape {
        [r, c] => Ok((*r, *c)),
        _ => {
            Err(Error::invalid(context, format!("{what} must be a matrix [rows, cols], got shape {shape:?}")))
        }
    }
}

/// The shape of a recurrent layer's `part`.
fn sequence_part_shape(rec: &Recurrence, part: SequencePart) -> Vec<usize> {
    match part {
        SequencePart::Sequence | SequencePart::Previous | SequencePart::InputOrder => {
            vec![rec.batch, rec.steps, rec.units]
        }
        SequencePart::Last => vec![rec.batch, rec.units],
    }
}

fn same(context: &str, a: &[usize], b: &[usize]) -> Result<()> {
    if a == b { Ok(()) } else { Err(Error::shape(context, a, b)) }
}

fn images(win: &Window2d) -> Vec<usize> {
    vec![win.batch, win.height, win.width, win.channels]
}

fn pooled(win: &Window2d) -> Vec<usize> {
    vec![win.batch, win.out.0, win.out.1, win.channels]
}

fn patches(win: &Window2d) -> Vec<usize> {
    vec![win.positions(), win.patch_len()]
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

    fn infer(&self, op: &Op, inputs: &[NodeId], ctx: &str) -> Result<Vec<usize>> {
        let expected = arity(op);
        if inputs.len() != expected {
            return Err(Error::invalid(
                ctx,
                format!("{} takes {expected} inputs, got {}", op.name(), inputs.len()),
            ));
        }
        let s = |i: usize| self.shape(inputs[i]);
        let labels_ok = |sparse: bool, rows: usize, cols: usize, l: &[usize]| -> Result<()> {
            let want = if sparse { vec![rows] } else { vec![rows, cols] };
            if l == want.as_slice() || (sparse && l == [rows, 1]) {
                Ok(())
            } else {
                Err(Error::shape(format!("{ctx} labels"), &want, l))
            }
        };
        Ok(match op {
            Op::Input { .. } | Op::Param { .. } => unreachable_shape(op, ctx)?,
            Op::MatMul { trans_a, trans_b } => {
                let (ar, ac) = matrix(ctx, "matmul lhs", s(0))?;
                let (br, bc) = matrix(ctx, "matmul rhs", s(1))?;
                let (m, k) = if *trans_a { (ac, ar) } else { (ar, ac) };
                let (k2, n) = if *trans_b { (bc, br) } else { (br, bc) };
                if k != k2 {
                    return Err(Error::Shape {
                        context: format!("{ctx} (matmul inner dimension)"),
                        expected: vec![m, k],
                        got: vec![k2, n],
                    });
                }
                vec![m, n]
            }
            Op::BiasAdd => {
                let (_, c) = matrix(ctx, "bias input", s(0))?;
                same(&format!("{ctx} bias"), &[c], s(1))?;
                s(0).to_vec()
            }
            Op::Add | Op::Binary(_) | Op::UnaryGrad(_) | Op::SoftmaxGrad | Op::LogSoftmaxGrad => {
                same(ctx, s(0), s(1))?;
                s(0).to_vec()
            }
            Op::BinaryGrad { .. } => {
                same(ctx, s(0), s(1))?;
                same(ctx, s(0), s(2))?;
                s(0).to_vec()
            }
            Op::Unary(_) | Op::Affine { .. } => s(0).to_vec(),
            Op::Softmax | Op::LogSoftmax => {
                matrix(ctx, "softmax input", s(0))?;
                s(0).to_vec()
            }
            Op::SumRows => vec![matrix(ctx, "sum-rows input", s(0))?.1],
            Op::BroadcastRows { rows } => match s(0) {
                [c] => vec![*rows, *c],
                other => {
                    return Err(Error::invalid(
                        ctx,
                        format!("broadcast-rows input must be a vector, got {other:?}"),
                    ));
                }
            },
            Op::WeightPenalty { .. } => vec![1],
            Op::WeightPenaltyGrad { .. } => {
                same(&format!("{ctx} penalty gradient"), &[1], s(1))?;
                s(0).to_vec()
            }
            Op::SumAll { .. } => vec![1],
            Op::MeanSquaredError { weighted }
            | Op::SigmoidBinaryCrossEntropy { weighted }
            | Op::Pointwise { weighted, .. } => {
                same(&format!("{ctx} targets"), s(0), s(1))?;
                if *weighted {
                    same(&format!("{ctx} sample weights"), &s(0)[..1], s(2))?;
                }
                vec![1]
            }
            Op::BroadcastScalar { shape, .. } => {
                same(ctx, &[1], s(0))?;
                shape.clone()
            }
            Op::Fill { shape, .. } => shape.clone(),
            Op::BinaryCounts { .. } => {
                same(&format!("{ctx} labels"), s(0), s(1))?;
                vec![3]
            }
            Op::RocHistogram { sparse, thresholds } => {
                let (r, c) = matrix(ctx, "predictions", s(0))?;
                labels_ok(*sparse, r, c, s(1))?;
                vec![(r * c).div_ceil(ROC_CHUNK).max(1), 2 * thresholds]
            }
            Op::ClassCounts { sparse, .. } => {
                let (r, c) = matrix(ctx, "predictions", s(0))?;
                labels_ok(*sparse, r, c, s(1))?;
                vec![r.div_ceil(CLASS_COUNT_CHUNK).max(1), 3 * c]
            }
            Op::SoftmaxCrossEntropy { sparse, .. }
            | Op::CountCorrect { sparse, .. }
            | Op::CountTopK { sparse, .. } => {
                let (r, c) = matrix(ctx, "predictions", s(0))?;
                if matches!(op, Op::CountCorrect { .. }) && c == 1 {
                    same(&format!("{ctx} labels"), &[r], &[s(1).iter().product()])?;
                } else {
                    labels_ok(*sparse, r, c, s(1))?;
                }
                if let Op::SoftmaxCrossEntropy { weighted: true, .. } = op {
                    same(&format!("{ctx} sample weights"), &[r], s(2))?;
                }
                vec![1]
            }
            Op::SoftmaxCrossEntropyGrad { sparse, weighted } => {
                let (r, c) = matrix(ctx, "logits", s(0))?;
                labels_ok(*sparse, r, c, s(1))?;
                if *weighted {
                    same(&format!("{ctx} sample weights"), &[r], s(2))?;
                }
                same(&format!("{ctx} loss gradient"), &[1], s(2 + usize::from(*weighted)))?;
                s(0).to_vec()
            }
            Op::MeanSquaredErrorGrad { weighted }
            | Op::SigmoidBinaryCrossEntropyGrad { weighted }
            | Op::PointwiseGrad { weighted, .. } => {
                same(&format!("{ctx} targets"), s(0), s(1))?;
                if *weighted {
                    same(&format!("{ctx} sample weights"), &s(0)[..1], s(2))?;
                }
                same(&format!("{ctx} loss gradient"), &[1], s(2 + usize::from(*weighted)))?;
                s(0).to_vec()
            }
            Op::Recurrent(rec) => {
                let names = [
                    "input projection",
                    "recurrent kernel",
                    "recurrent bias (empty without)",
                    "mask (empty without)",
                ];
                for (i, (name, shape)) in names.iter().zip(rec.input_shapes()).enumerate() {
                    same(&format!("{ctx} {name}"), &shape, s(i))?;
                }
                vec![rec.steps, rec.batch, rec.width()]
            }
            Op::ConcatColumns => {
                let (a, b) = (s(0), s(1));
                if a.is_empty() || a.len() != b.len() || a[..a.len() - 1] != b[..b.len() - 1] {
                    return Err(Error::shape(format!("{ctx} (joined along the last axis)"), a, b));
                }
                let mut out = a.to_vec();
                out[a.len() - 1] += b[b.len() - 1];
                out
            }
            Op::SliceColumns { start, len } => {
                let x = s(0);
                if x.last().is_none_or(|&c| start + len > c) {
                    return Err(Error::invalid(ctx, format!("columns {start}..{} of {x:?}", start + len)));
                }
                let mut out = x.to_vec();
                out[x.len() - 1] = *len;
                out
            }
            Op::SequenceMask { .. } => match s(0) {
                [b, t, _] => vec![*b, *t],
                other => {
                    return Err(Error::invalid(
                        ctx,
                        format!("a mask needs sequences [batch, steps, features], got {other:?}"),
                    ));
                }
            },
            Op::RecurrentGateGrad(rec) => {
                same(&format!("{ctx} states"), &[rec.steps, rec.batch, rec.width()], s(0))?;
                same(
                    &format!("{ctx} projection gradient"),
                    &[rec.batch, rec.steps, rec.gates() * rec.units],
                    s(1),
                )?;
                s(1).to_vec()
            }
            Op::RecurrentGrad(rec) => {
                let states = [rec.steps, rec.batch, rec.width()];
                same(&format!("{ctx} states"), &states, s(0))?;
                same(&format!("{ctx} recurrent kernel"), &rec.input_shapes()[1], s(1))?;
                same(&format!("{ctx} state gradient"), &states, s(2))?;
                same(&format!("{ctx} mask (empty without)"), &rec.input_shapes()[3], s(3))?;
                vec![rec.batch, rec.steps, rec.gates() * rec.units]
            }
            Op::RecurrentGather { rec, part } => {
                same(&format!("{ctx} states"), &[rec.steps, rec.batch, rec.width()], s(0))?;
                sequence_part_shape(rec, *part)
            }
            Op::RecurrentScatter { rec, part } => {
                same(&format!("{ctx} output gradient"), &sequence_part_shape(rec, *part), s(0))?;
                vec![rec.steps, rec.batch, rec.width()]
            }
            Op::Reshape { shape } => {
                let (have, want) = (s(0).iter().product::<usize>(), shape.iter().product::<usize>());
                if have != want {
                    return Err(Error::invalid(
                        ctx,
                        format!("cannot reshape {:?} ({have} elements) to {shape:?} ({want})", s(0)),
                    ));
                }
                shape.clone()
            }
            Op::Im2Col { win } => {
                same(&format!("{ctx} input images"), &images(win), s(0))?;
                patches(win)
            }
            Op::Col2Im { win } => {
                same(&format!("{ctx} patches"), &patches(win), s(0))?;
                images(win)
            }
            Op::MaxPool { win } | Op::AvgPool { win } => {
                same(&format!("{ctx} input images"), &images(win), s(0))?;
                pooled(win)
            }
            Op::MaxPoolGrad { win } => {
                same(&format!("{ctx} input images"), &images(win), s(0))?;
                same(&format!("{ctx} output gradient"), &pooled(win), s(1))?;
                images(win)
            }
            Op::AvgPoolGrad { win } => {
                same(&format!("{ctx} output gradient"), &pooled(win), s(0))?;
                images(win)
            }
            Op::BatchMoments => vec![2, matrix(ctx, "batch-norm input", s(0))?.1],
            Op::BatchNorm { .. } | Op::BatchNormInference { .. } => {
                let (_, c) = matrix(ctx, "batch-norm input", s(0))?;
                // Training: (x, moments, gamma, beta); inference: (x, gamma, beta, mean, var).
                let first = if matches!(op, Op::BatchNorm { .. }) {
                    same(&format!("{ctx} batch moments"), &[2, c], s(1))?;
                    2
                } else {
                    1
                };
                for i in first..inputs.len() {
                    same(&format!("{ctx} per-channel parameter"), &[c], s(i))?;
                }
                s(0).to_vec()
            }
            Op::BatchNormGrad { .. } => {
                let (_, c) = matrix(ctx, "batch-norm input", s(0))?;
                same(&format!("{ctx} batch moments"), &[2, c], s(1))?;
                same(&format!("{ctx} gamma"), &[c], s(2))?;
                same(&format!("{ctx} output gradient"), s(0), s(3))?;
                same(&format!("{ctx} gradient sums"), &[2, c], s(4))?;
                s(0).to_vec()
            }
            Op::BatchNormGradSums { .. } => {
                let (_, c) = matrix(ctx, "batch-norm input", s(0))?;
                same(&format!("{ctx} batch moments"), &[2, c], s(1))?;
                same(&format!("{ctx} output gradient"), s(0), s(2))?;
                vec![2, c]
            }
            Op::Row { index } => {
                let (r, c) = matrix(ctx, "row source", s(0))?;
                if *index >= r {
                    return Err(Error::invalid(ctx, format!("row {index} of a matrix of {r} rows")));
                }
                vec![c]
            }
            Op::PlaceRow { index, rows } => {
                if *index >= *rows || s(0).len() != 1 {
                    return Err(Error::invalid(ctx, format!("row {index} of {rows} rows from {:?}", s(0))));
                }
                vec![*rows, s(0)[0]]
            }
            Op::RandomFlip { .. } => {
                if s(0).len() != 4 {
                    return Err(Error::invalid(ctx, format!("expects NHWC images, got {:?}", s(0))));
                }
                s(0).to_vec()
            }
            Op::Dropout { rate, .. } => {
                if !(0.0..1.0).contains(rate) {
                    return Err(Error::invalid(ctx, format!("dropout rate must be in [0, 1), got {rate}")));
                }
                s(0).to_vec()
            }
        })
    }
}

fn unreachable_shape(op: &Op, ctx: &str) -> Result<Vec<usize>> {
    Err(Error::invalid(ctx, format!("{} is created with Graph::input/param, not Graph::add", op.name())))
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
        | Op::CountTopK { .. }
        | Op::BinaryCounts { .. }
        | Op::RocHistogram { .. }
        | Op::ClassCounts { .. }
        | Op::CountCorrect { .. } => 2,
        Op::SoftmaxCrossEntropyGrad { weighted: false, .. }
        | Op::MeanSquaredErrorGrad { weighted: false }
        | Op::SigmoidBinaryCrossEntropyGrad { weighted: false }
        | Op::PointwiseGrad { weighted: false, .. }
        | Op::SoftmaxCrossEntropy { weighted: true, .. }
        | Op::MeanSquaredError { weighted: true }
        | Op::SigmoidBinaryCrossEntropy { weighted: true }
        | Op::Pointwise { weighted: true, .. }
        | Op::BinaryGrad { .. }
        | Op::BatchNormGradSums { .. } => 3,
        Op::BatchNorm { .. }
        | Op::Recurrent(_)
        | Op::RecurrentGrad(_)
        | Op::SoftmaxCrossEntropyGrad { weighted: true, .. }
        | Op::MeanSquaredErrorGrad { weighted: true }
        | Op::SigmoidBinaryCrossEntropyGrad { weighted: true }
        | Op::PointwiseGrad { weighted: true, .. } => 4,
        Op::BatchNormInference { .. } | Op::BatchNormGrad { .. } => 5,
    }
}
