//! Shape inference: the output shape of every op from its inputs' shapes, with errors naming
//! the layer (`context`) and both shapes.
use super::{Graph, NodeId, Op, arity};
use crate::error::{Error, Result};
use crate::program::{CLASS_COUNT_CHUNK, ROC_CHUNK, Recurrence, SequencePart, Window2d};

impl Graph {
    pub(super) fn infer(&self, op: &Op, inputs: &[NodeId], ctx: &str) -> Result<Vec<usize>> {
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
                if let Op::SoftmaxCrossEntropy { weighted: true, .. }
                | Op::CountCorrect { weighted: true, .. }
                | Op::CountTopK { weighted: true, .. } = op
                {
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
                    "recurrent dropout mask (empty without)",
                ];
                for (i, (name, shape)) in names.iter().zip(rec.input_shapes()).enumerate() {
                    same(&format!("{ctx} {name}"), &shape, s(i))?;
                }
                vec![rec.steps, rec.batch, rec.width()]
            }
            Op::Embedding => {
                let (_, dim) = matrix(ctx, "embedding table", s(0))?;
                s(1).iter().copied().chain([dim]).collect()
            }
            Op::EmbeddingGrad { vocab } => match s(1).split_last() {
                Some((&dim, lead)) if lead == s(0) => vec![*vocab, dim],
                _ => return Err(Error::shape(format!("{ctx} (embedding gradient)"), s(0), s(1))),
            },
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
                let drop = &rec.input_shapes()[4];
                same(&format!("{ctx} recurrent dropout mask (empty without)"), drop, s(4))?;
                vec![rec.batch, rec.steps, rec.gates() * rec.units]
            }
            Op::RecurrentGather { rec, part } => {
                same(&format!("{ctx} states"), &[rec.steps, rec.batch, rec.width()], s(0))?;
                if *part == SequencePart::LastCell && rec.cell != crate::program::RecurrentCell::Lstm {
                    return Err(Error::invalid(ctx, "only an LSTM has a cell state"));
                }
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
            Op::Dropout { rate, steps, .. } => {
                if !(0.0..1.0).contains(rate) {
                    return Err(Error::invalid(ctx, format!("dropout rate must be in [0, 1), got {rate}")));
                }
                if *steps > 1 && (s(0).len() != 3 || s(0)[1] != *steps) {
                    return Err(Error::invalid(
                        ctx,
                        format!("per-sequence dropout over {steps} steps of a {:?} input", s(0)),
                    ));
                }
                s(0).to_vec()
            }
        })
    }
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
        SequencePart::Last | SequencePart::LastCell => vec![rec.batch, rec.units],
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

fn unreachable_shape(op: &Op, ctx: &str) -> Result<Vec<usize>> {
    Err(Error::invalid(ctx, format!("{} is created with Graph::input/param, not Graph::add", op.name())))
}
