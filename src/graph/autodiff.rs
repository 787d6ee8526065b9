//! Reverse-mode autodiff as a graph transformation: one backward rule per op, all in
//! [`backward_rule`]. Gradients flowing into a node from several users are summed with `Add`.
//! Contract for every rule: the gradient returned for an input has that input's shape and is
//! a function of the incoming gradient `g` (never of an implicit seed of ones).
use std::collections::HashMap;

use super::{Graph, Node, NodeId, Op};
use crate::error::{Error, Result};
use crate::program::{BinaryOp, GradSource, Operand, SequencePart};

/// Add the nodes computing d⟨seed, output⟩/d(wrt[i]) for each `wrt` node and return them.
/// `seed` has the shape of `output` (for a scalar loss, a `Fill` of 1.0).
pub fn gradients(g: &mut Graph, output: NodeId, seed: NodeId, wrt: &[NodeId]) -> Result<Vec<NodeId>> {
    if g.shape(seed) != g.shape(output) {
        return Err(Error::shape("backward seed", g.shape(output), g.shape(seed)));
    }
    // Nodes through which a gradient must flow: those that depend on some `wrt` node.
    let n = output + 1;
    let mut on_path = vec![false; n];
    for &w in wrt {
        if w < n {
            on_path[w] = true;
        }
    }
    for id in 0..n {
        if g.nodes[id].inputs.iter().any(|&i| on_path[i]) {
            on_path[id] = true;
        }
    }
    let mut grads: HashMap<NodeId, NodeId> = HashMap::new();
    grads.insert(output, seed);
    for id in (0..n).rev() {
        let Some(&gy) = grads.get(&id) else { continue };
        if !on_path[id] || g.nodes[id].inputs.is_empty() {
            continue;
        }
        let input_grads = backward_rule(g, id, gy)?;
        let inputs = g.nodes[id].inputs.clone();
        for (input, gx) in inputs.into_iter().zip(input_grads) {
            let Some(gx) = gx else { continue };
            if !on_path[input] {
                continue;
            }
            let total = match grads.get(&input) {
                Some(&prev) => {
                    let ctx = g.nodes[input].context.clone();
                    g.add(Op::Add, &[prev, gx], &format!("{ctx} (gradient sum)"))?
                }
                None => gx,
            };
            grads.insert(input, total);
        }
    }
    wrt.iter()
        .map(|w| {
            grads.get(w).copied().ok_or_else(|| {
                let ctx = &g.nodes[*w].context;
                Error::invalid(
                    "autodiff",
                    format!("'{ctx}' does not influence the output, it has no gradient"),
                )
            })
        })
        .collect()
}

/// The backward rule of node `id` given its incoming gradient `gy`: one optional gradient
/// node per input (None where the input takes no gradient, e.g. labels).
fn backward_rule(g: &mut Graph, id: NodeId, gy: NodeId) -> Result<Vec<Option<NodeId>>> {
    let node = g.nodes[id].clone();
    let ctx = format!("{} (backward)", node.context);
    let x = |i: usize| node.inputs[i];
    let shape_of = |g: &Graph, i: usize| g.shape(node.inputs[i]).to_vec();
    Ok(match node.op {
        // c = op(a)·op(b). With op(X) = X or Xᵀ:
        //   da = gy·op(b)ᵀ (stored [m,k]), or op(b)·gyᵀ when a is stored transposed ([k,m]);
        //   db = op(a)ᵀ·gy (stored [k,n]), or gyᵀ·op(a) when b is stored transposed ([n,k]).
        Op::MatMul { trans_a, trans_b } => {
            let da = if trans_a {
                g.add(Op::MatMul { trans_a: trans_b, trans_b: true }, &[x(1), gy], &ctx)?
            } else {
                g.add(Op::MatMul { trans_a: false, trans_b: !trans_b }, &[gy, x(1)], &ctx)?
            };
            let db = if trans_b {
                g.add(Op::MatMul { trans_a: true, trans_b: trans_a }, &[gy, x(0)], &ctx)?
            } else {
                g.add(Op::MatMul { trans_a: !trans_a, trans_b: false }, &[x(0), gy], &ctx)?
            };
            vec![Some(da), Some(db)]
        }
        Op::BiasAdd => vec![Some(gy), Some(g.add(Op::SumRows, &[gy], &ctx)?)],
        Op::Add => vec![Some(gy), Some(gy)],
        Op::Unary(op) => {
            let from = if op.grad_source() == GradSource::Input { x(0) } else { id };
            vec![Some(g.add(Op::UnaryGrad(op), &[from, gy], &ctx)?)]
        }
        Op::Binary(op) => {
            let grad = |g: &mut Graph, wrt| g.add(Op::BinaryGrad { op, wrt }, &[x(0), x(1), gy], &ctx);
            vec![Some(grad(g, Operand::A)?), Some(grad(g, Operand::B)?)]
        }
        // dz by backpropagation through time; the recurrent kernel's gradient is one GEMM over
        // every step, Σ_t h_{t−1}ᵀ·dz_t = Previous(s)ᵀ·dz with both as [B·T, ·] matrices.
        // The GRU's recurrent pre-activations q = h_{t−1}·U + b_r have their own gradient dq
        // (RecurrentGateGrad); dU = Previous(s)ᵀ·dq, db_r = Σ dq.
        // With recurrent dropout the product reads h_{t−1}·drop: so does dU.
        Op::Recurrent(rec) => {
            let dz = g.add(Op::RecurrentGrad(rec), &[id, x(1), gy, x(3), x(4)], &ctx)?;
            let dq = if rec.has_recurrent_bias() {
                g.add(Op::RecurrentGateGrad(rec), &[id, dz], &ctx)?
            } else {
                dz
            };
            let mut prev = g.add(Op::RecurrentGather { rec, part: SequencePart::Previous }, &[id], &ctx)?;
            if rec.recurrent_dropout {
                prev = g.add(Op::Binary(BinaryOp::Multiply), &[prev, x(4)], &ctx)?;
            }
            let rows = rec.batch * rec.steps;
            let prev = g.add(Op::Reshape { shape: vec![rows, rec.units] }, &[prev], &ctx)?;
            let dq_rows = g.add(Op::Reshape { shape: vec![rows, rec.gates() * rec.units] }, &[dq], &ctx)?;
            let du = g.add(Op::MatMul { trans_a: true, trans_b: false }, &[prev, dq_rows], &ctx)?;
            let db = match rec.has_recurrent_bias() {
                true => Some(g.add(Op::SumRows, &[dq_rows], &ctx)?),
                false => None,
            };
            vec![Some(dz), Some(du), db, None, None]
        }
        Op::Embedding => {
            let vocab = shape_of(g, 0)[0];
            vec![Some(g.add(Op::EmbeddingGrad { vocab }, &[x(1), gy], &ctx)?), None]
        }
        Op::ConcatColumns => {
            let (a, b) = (shape_of(g, 0), shape_of(g, 1));
            let (a, b) = (a[a.len() - 1], b[b.len() - 1]);
            vec![
                Some(g.add(Op::SliceColumns { start: 0, len: a }, &[gy], &ctx)?),
                Some(g.add(Op::SliceColumns { start: a, len: b }, &[gy], &ctx)?),
            ]
        }
        Op::Row { index } => {
            let rows = shape_of(g, 0)[0];
            vec![Some(g.add(Op::PlaceRow { index, rows }, &[gy], &ctx)?)]
        }
        Op::PlaceRow { index, .. } => vec![Some(g.add(Op::Row { index }, &[gy], &ctx)?)],
        Op::RecurrentGather { rec, part } => {
            vec![Some(g.add(Op::RecurrentScatter { rec, part }, &[gy], &ctx)?)]
        }
        Op::Affine { scale, .. } => vec![Some(g.add(Op::Affine { scale, shift: 0.0 }, &[gy], &ctx)?)],
        Op::Softmax => vec![Some(g.add(Op::SoftmaxGrad, &[id, gy], &ctx)?)],
        Op::LogSoftmax => vec![Some(g.add(Op::LogSoftmaxGrad, &[id, gy], &ctx)?)],
        Op::SumRows => {
            let rows = shape_of(g, 0)[0];
            vec![Some(g.add(Op::BroadcastRows { rows }, &[gy], &ctx)?)]
        }
        Op::BroadcastRows { .. } => vec![Some(g.add(Op::SumRows, &[gy], &ctx)?)],
        Op::SumAll { scale } => {
            let shape = shape_of(g, 0);
            vec![Some(g.add(Op::BroadcastScalar { shape, scale }, &[gy], &ctx)?)]
        }
        Op::BroadcastScalar { scale, .. } => {
            vec![Some(g.add(Op::SumAll { scale }, &[gy], &ctx)?)]
        }
        // The losses: a gradient for the prediction only (none for the labels or the sample
        // weights, which are data); a weighted loss passes its weights on to its gradient.
        Op::SoftmaxCrossEntropy { sparse, weighted } => {
            loss_rule(g, &node, Op::SoftmaxCrossEntropyGrad { sparse, weighted }, gy, &ctx)?
        }
        Op::MeanSquaredError { weighted } => {
            loss_rule(g, &node, Op::MeanSquaredErrorGrad { weighted }, gy, &ctx)?
        }
        Op::Pointwise { loss, weighted } => {
            loss_rule(g, &node, Op::PointwiseGrad { loss, weighted }, gy, &ctx)?
        }
        Op::SigmoidBinaryCrossEntropy { weighted } => {
            loss_rule(g, &node, Op::SigmoidBinaryCrossEntropyGrad { weighted }, gy, &ctx)?
        }
        Op::Reshape { .. } => {
            let shape = shape_of(g, 0);
            vec![Some(g.add(Op::Reshape { shape }, &[gy], &ctx)?)]
        }
        Op::Im2Col { win } => vec![Some(g.add(Op::Col2Im { win }, &[gy], &ctx)?)],
        Op::Col2Im { win } => vec![Some(g.add(Op::Im2Col { win }, &[gy], &ctx)?)],
        Op::MaxPool { win } => vec![Some(g.add(Op::MaxPoolGrad { win }, &[x(0), gy], &ctx)?)],
        Op::AvgPool { win } => vec![Some(g.add(Op::AvgPoolGrad { win }, &[gy], &ctx)?)],
        Op::AvgPoolGrad { win } => vec![Some(g.add(Op::AvgPool { win }, &[gy], &ctx)?)],
        // A flip is its own adjoint: the same images flip back.
        Op::RandomFlip { seed } => vec![Some(g.add(Op::RandomFlip { seed }, &[gy], &ctx)?)],
        // The same mask scales the gradient.
        Op::Dropout { rate, seed, steps } => {
            vec![Some(g.add(Op::Dropout { rate, seed, steps }, &[gy], &ctx)?)]
        }
        // dx is the whole gradient, through the batch moments too, so the moments (a function
        // of x) take none of their own.
        Op::BatchNorm { eps } => {
            // One pass for Σdy (dβ) and Σdy·x̂ (dγ), which dx needs too.
            let sums = g.add(Op::BatchNormGradSums { eps }, &[x(0), x(1), gy], &ctx)?;
            let dx = g.add(Op::BatchNormGrad { eps }, &[x(0), x(1), x(2), gy, sums], &ctx)?;
            let dgamma = g.add(Op::Row { index: 1 }, &[sums], &ctx)?;
            let dbeta = g.add(Op::Row { index: 0 }, &[sums], &ctx)?;
            vec![Some(dx), None, Some(dgamma), Some(dbeta)]
        }
        Op::WeightPenalty { l1, l2 } => {
            vec![Some(g.add(Op::WeightPenaltyGrad { l1, l2 }, &[x(0), gy], &ctx)?)]
        }
        Op::Input { .. } | Op::Param { .. } | Op::Fill { .. } => vec![],
        Op::UnaryGrad(_)
        | Op::BinaryGrad { .. }
        | Op::RecurrentGrad(_)
        | Op::RecurrentGateGrad(_)
        | Op::SequenceMask { .. }
        | Op::SliceColumns { .. }
        | Op::EmbeddingGrad { .. }
        | Op::RecurrentScatter { .. }
        | Op::SoftmaxGrad
        | Op::LogSoftmaxGrad
        | Op::SoftmaxCrossEntropyGrad { .. }
        | Op::MeanSquaredErrorGrad { .. }
        | Op::SigmoidBinaryCrossEntropyGrad { .. }
        | Op::PointwiseGrad { .. }
        | Op::MaxPoolGrad { .. }
        | Op::BatchNormGrad { .. }
        | Op::BatchNormGradSums { .. }
        | Op::BatchNormInference { .. }
        | Op::BatchMoments
        | Op::WeightPenaltyGrad { .. }
        | Op::CountTopK { .. }
        | Op::BinaryCounts { .. }
        | Op::RocHistogram { .. }
        | Op::ClassCounts { .. }
        | Op::CountCorrect { .. } => {
            return Err(Error::invalid(
                ctx,
                format!("{} has no backward rule (no higher-order gradients)", node.op.name()),
            ));
        }
    })
}

/// The rule of a loss (pred, labels [, w]) → [1]: dpred = `grad`(pred, labels [, w], gy); the
/// labels and weights take no gradient.
fn loss_rule(g: &mut Graph, node: &Node, grad: Op, gy: NodeId, ctx: &str) -> Result<Vec<Option<NodeId>>> {
    let mut args = node.inputs.clone();
    args.push(gy);
    let dpred = g.add(grad, &args, ctx)?;
    Ok(std::iter::once(Some(dpred)).chain(node.inputs[1..].iter().map(|_| None)).collect())
}
