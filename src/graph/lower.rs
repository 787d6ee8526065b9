//! Lowering: the kernel launch of each graph node (`Graph::kernel`), with the dimensions its
//! input shapes fix. Ops without a kernel (inputs, parameters, reshapes) lower to None.
use super::{Graph, NodeId, Op};
use crate::program::{Kernel, Padding, Window2d};

impl Graph {
    /// The kernel computing node `id` from its inputs (None for inputs and parameters).
    pub fn kernel(&self, id: NodeId) -> Option<Kernel> {
        let node = &self.nodes[id];
        let s = |i: usize| self.shape(node.inputs[i]);
        let len = node.len();
        let rc = |sh: &[usize]| (sh.first().copied().unwrap_or(1), sh.get(1).copied().unwrap_or(1));
        Some(match &node.op {
            Op::Input { .. } | Op::Param { .. } | Op::Reshape { .. } => return None,
            Op::MatMul { trans_a, trans_b } => {
                let (ar, ac) = rc(s(0));
                let (m, k) = if *trans_a { (ac, ar) } else { (ar, ac) };
                Kernel::MatMul { m, k, n: node.shape[1], trans_a: *trans_a, trans_b: *trans_b }
            }
            Op::BiasAdd => Kernel::BiasAdd { rows: rc(&node.shape).0, cols: rc(&node.shape).1 },
            Op::Add => Kernel::Add { len },
            Op::Unary(op) => Kernel::Unary { op: *op, len },
            Op::Affine { scale, shift } => Kernel::Affine { len, scale: *scale, shift: *shift },
            Op::UnaryGrad(op) => Kernel::UnaryGrad { op: *op, len },
            Op::Binary(op) => Kernel::Binary { op: *op, len },
            Op::BinaryGrad { op, wrt } => Kernel::BinaryGrad { op: *op, wrt: *wrt, len },
            Op::Recurrent(rec) => Kernel::RecurrentForward { rec: *rec },
            Op::RecurrentGrad(rec) => Kernel::RecurrentBackward { rec: *rec },
            Op::RecurrentGateGrad(rec) => Kernel::RecurrentGateGrad { rec: *rec },
            Op::Embedding => {
                let (vocab, dim) = rc(s(0));
                Kernel::Embedding { ids: len / dim.max(1), vocab, dim }
            }
            Op::EmbeddingGrad { vocab } => Kernel::EmbeddingGrad {
                ids: self.nodes[node.inputs[0]].len(),
                vocab: *vocab,
                dim: node.shape[1],
            },
            Op::ConcatColumns => {
                let (a, b) = (s(0).last().copied().unwrap_or(1), s(1).last().copied().unwrap_or(1));
                Kernel::ConcatColumns { rows: len / (a + b).max(1), a_cols: a, b_cols: b }
            }
            Op::SliceColumns { start, len: cols } => {
                let from = s(0).last().copied().unwrap_or(1);
                Kernel::SliceColumns { rows: len / (*cols).max(1), cols: from, start: *start, len: *cols }
            }
            Op::SequenceMask { value } => {
                Kernel::SequenceMask { rows: len, features: s(0).last().copied().unwrap_or(0), value: *value }
            }
            Op::RecurrentGather { rec, part } => Kernel::RecurrentGather { rec: *rec, part: *part },
            Op::RecurrentScatter { rec, part } => Kernel::RecurrentScatter { rec: *rec, part: *part },
            Op::Softmax => Kernel::Softmax { rows: rc(&node.shape).0, cols: rc(&node.shape).1 },
            Op::LogSoftmax => Kernel::LogSoftmax { rows: rc(&node.shape).0, cols: rc(&node.shape).1 },
            Op::SoftmaxGrad => Kernel::SoftmaxGrad { rows: rc(&node.shape).0, cols: rc(&node.shape).1 },
            Op::LogSoftmaxGrad => Kernel::LogSoftmaxGrad { rows: rc(&node.shape).0, cols: rc(&node.shape).1 },
            Op::SumRows => Kernel::SumRows { rows: rc(s(0)).0, cols: rc(s(0)).1 },
            Op::BroadcastRows { rows } => Kernel::BroadcastRows { rows: *rows, cols: node.shape[1] },
            Op::SumAll { scale } => Kernel::SumAll { len: self.nodes[node.inputs[0]].len(), scale: *scale },
            Op::BroadcastScalar { scale, .. } => Kernel::BroadcastScalar { len, scale: *scale },
            Op::Fill { value, .. } => Kernel::Fill { len, value: *value },
            Op::SoftmaxCrossEntropy { sparse, weighted } => Kernel::SoftmaxCrossEntropy {
                rows: rc(s(0)).0,
                cols: rc(s(0)).1,
                sparse: *sparse,
                weighted: *weighted,
            },
            Op::SoftmaxCrossEntropyGrad { sparse, weighted } => Kernel::SoftmaxCrossEntropyGrad {
                rows: rc(s(0)).0,
                cols: rc(s(0)).1,
                sparse: *sparse,
                weighted: *weighted,
            },
            Op::MeanSquaredError { weighted } => Kernel::MeanSquaredError {
                len: self.nodes[node.inputs[0]].len(),
                rows: rc(s(0)).0,
                weighted: *weighted,
            },
            Op::MeanSquaredErrorGrad { weighted } => {
                Kernel::MeanSquaredErrorGrad { len, rows: rc(s(0)).0, weighted: *weighted }
            }
            Op::SigmoidBinaryCrossEntropy { weighted } => Kernel::SigmoidBinaryCrossEntropy {
                len: self.nodes[node.inputs[0]].len(),
                rows: rc(s(0)).0,
                weighted: *weighted,
            },
            Op::SigmoidBinaryCrossEntropyGrad { weighted } => {
                Kernel::SigmoidBinaryCrossEntropyGrad { len, rows: rc(s(0)).0, weighted: *weighted }
            }
            Op::Pointwise { loss, weighted } => Kernel::Pointwise {
                loss: *loss,
                len: self.nodes[node.inputs[0]].len(),
                rows: rc(s(0)).0,
                weighted: *weighted,
            },
            Op::PointwiseGrad { loss, weighted } => {
                Kernel::PointwiseGrad { loss: *loss, len, rows: rc(s(0)).0, weighted: *weighted }
            }
            Op::CountTopK { sparse, k, weighted } => {
                let (rows, cols) = rc(s(0));
                Kernel::CountTopK { rows, cols, sparse: *sparse, k: *k, weighted: *weighted }
            }
            Op::BinaryCounts { threshold } => {
                Kernel::BinaryCounts { len: self.nodes[node.inputs[0]].len(), threshold: *threshold }
            }
            Op::RocHistogram { sparse, thresholds } => Kernel::RocHistogram {
                rows: rc(s(0)).0,
                cols: rc(s(0)).1,
                sparse: *sparse,
                thresholds: *thresholds,
            },
            Op::ClassCounts { sparse, threshold } => Kernel::ClassCounts {
                rows: rc(s(0)).0,
                cols: rc(s(0)).1,
                sparse: *sparse,
                threshold: *threshold,
            },
            Op::CountCorrect { sparse, threshold, weighted } => Kernel::CountCorrect {
                rows: rc(s(0)).0,
                cols: rc(s(0)).1,
                sparse: *sparse,
                threshold: *threshold,
                weighted: *weighted,
            },
            Op::Im2Col { win } => Kernel::Im2Col { win: *win },
            Op::Col2Im { win } => Kernel::Col2Im { win: *win },
            Op::MaxPool { win } => Kernel::MaxPool { win: *win },
            Op::MaxPoolGrad { win } => Kernel::MaxPoolGrad { win: *win, relu: false },
            Op::AvgPool { win } => Kernel::AvgPool { win: *win },
            Op::AvgPoolGrad { win } => Kernel::AvgPoolGrad { win: *win },
            Op::BatchMoments => Kernel::BatchMoments { rows: rc(s(0)).0, cols: rc(s(0)).1 },
            Op::BatchNorm { eps } => Kernel::BatchNormTrain { rows: rc(s(0)).0, cols: rc(s(0)).1, eps: *eps },
            Op::BatchNormGrad { eps } => {
                Kernel::BatchNormGrad { rows: rc(s(0)).0, cols: rc(s(0)).1, eps: *eps }
            }
            Op::BatchNormGradSums { eps } => {
                Kernel::BatchNormGradSums { rows: rc(s(0)).0, cols: rc(s(0)).1, eps: *eps }
            }
            Op::Row { index } => Kernel::Copy { len, offset: index * len },
            Op::PlaceRow { index, rows } => Kernel::PlaceRow { rows: *rows, cols: len / rows, index: *index },
            Op::BatchNormInference { eps } => {
                Kernel::BatchNormInference { rows: rc(s(0)).0, cols: rc(s(0)).1, eps: *eps }
            }
            Op::RandomFlip { seed } => {
                let sh = &node.shape;
                let win =
                    Window2d::new([sh[0], sh[1], sh[2], sh[3]], (1, 1), (1, 1), (1, 1), Padding::Valid)?;
                Kernel::RandomFlip { win, seed: *seed }
            }
            Op::WeightPenalty { l1, l2 } => {
                Kernel::WeightPenalty { len: self.nodes[node.inputs[0]].len(), l1: *l1, l2: *l2 }
            }
            Op::WeightPenaltyGrad { l1, l2 } => Kernel::WeightPenaltyGrad { len, l1: *l1, l2: *l2 },
            Op::Dropout { rate, seed, steps } => {
                // Keep when the word is ≥ rate · 2³² (rate < 1, so this fits a u32).
                let threshold = (f64::from(*rate) * 4_294_967_296.0) as u32;
                // One mask per sequence: element (b, t, f) draws word (b, f).
                let features = self.nodes[node.inputs[0]].shape.last().copied().unwrap_or(1);
                let (inner, period) = if *steps > 1 { (features, steps * features) } else { (0, 0) };
                Kernel::Dropout { len, seed: *seed, threshold, scale: 1.0 / (1.0 - *rate), inner, period }
            }
        })
    }
}
