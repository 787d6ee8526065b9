//! Building the graph and program of each kind (train step, eval step, forward pass) for one
//! batch size.
use std::cell::RefCell;
use std::collections::HashMap;

use super::{Compiled, Model, ParamSlot, ProgramKind, TensorRef};
use crate::error::Result;
use crate::graph::autodiff::gradients;
use crate::graph::plan::{ArgRef, PlanSpec, plan};
use crate::graph::{Graph, NodeId, Op};
use crate::loss::Loss;
use crate::metrics::Metric;
use crate::nn::{BuildContext, StateUpdate};
use crate::program::{
    ALIGN_ELEMS, Arena, BinaryOp, BufRef, Kernel, PointwiseLoss, Program, UnaryOp, align, pcg_hash,
};

/// Where the steps accumulate in the Accum arena, each slot aligned for direct GPU binding:
/// the step of the first non-finite loss (0: none), the squared gradient norm of norm clipping
/// (scratch written and read within a step), then for the training and the evaluation step
/// each: Σ loss·rows (slot 0) and metric i's counts or sums (slot 1 + i).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AccumLayout {
    /// Offset from the kind's base and length of each slot of one kind.
    slots: Vec<(usize, usize)>,
    /// Elements of one kind's slots.
    per_kind: usize,
}

impl AccumLayout {
    /// Where the training step records the step count of the first non-finite loss.
    pub const NON_FINITE: usize = 0;
    /// Scratch for the squared gradient norm of norm clipping.
    pub const GRAD_NORM: usize = ALIGN_ELEMS;

    /// The layout for `metrics` on a model with `outputs` output units.
    pub fn new(metrics: &[Metric], outputs: usize) -> AccumLayout {
        let mut slots = vec![(0, 1)];
        let mut end = ALIGN_ELEMS;
        for m in metrics {
            let len = m.accum_len(outputs);
            slots.push((end, len));
            end += align(len.max(1));
        }
        AccumLayout { slots, per_kind: end }
    }

    /// The elements of slot `i` of `kind`'s step.
    pub fn slot(&self, kind: ProgramKind, i: usize) -> std::ops::Range<usize> {
        let base = 2 * ALIGN_ELEMS + if kind == ProgramKind::Train { 0 } else { self.per_kind };
        let (offset, len) = self.slots.get(i).copied().unwrap_or((0, 0));
        base + offset..base + offset + len
    }

    /// Elements of the Accum arena.
    pub fn len(&self) -> usize {
        2 * ALIGN_ELEMS + 2 * self.per_kind
    }
}

/// Shape of the label tensor for a batch, given the loss and the model's output shape: per
/// step for per-step outputs (`[steps, units]`), whose class axis is the last.
pub(crate) fn label_shape(loss: Loss, batch: usize, output: &[usize]) -> Vec<usize> {
    let kept = match loss.sparse_labels() {
        true => &output[..output.len().saturating_sub(1)],
        false => output,
    };
    std::iter::once(batch).chain(kept.iter().copied()).collect()
}

/// The seed of layer `index`'s randomness (dropout masks) for a model seed.
fn layer_seed(seed: u64, index: usize) -> u32 {
    pcg_hash((seed as u32) ^ pcg_hash((seed >> 32) as u32) ^ pcg_hash(index as u32 ^ 0x9e37_79b9))
}

/// The nodes of a forward graph (see [`Model::forward`]).
struct Forward {
    /// One per model input.
    xs: Vec<NodeId>,
    params: Vec<NodeId>,
    head: NodeId,
    out: NodeId,
    penalties: Vec<NodeId>,
    /// The `[batch, steps]` mask the output carries (per-step outputs of masked sequences).
    mask: Option<NodeId>,
}

impl Model {
    /// Forward graph: the inputs ("x", or "x:<name>" each for several), the parameter nodes, the head (logits when the loss fuses
    /// the final activation, else the activated output), the activated output, and the
    /// weight-penalty nodes of the regularised parameters (scalars to add to the loss).
    fn forward(
        &self,
        g: &mut Graph,
        batch: usize,
        fuse_last: bool,
        training: bool,
        updates: &RefCell<Vec<StateUpdate>>,
    ) -> Result<Forward> {
        self.check_single_output()?;
        // One graph input per model input: "x" for a model of one (as always), else "x:<name>".
        let xs: Vec<NodeId> = self
            .inputs
            .iter()
            .map(|input| {
                let shape: Vec<usize> = std::iter::once(batch).chain(input.shape.iter().copied()).collect();
                let name = if self.inputs.len() == 1 { "x".to_string() } else { format!("x:{}", input.name) };
                g.input(&name, &shape)
            })
            .collect();
        let mut params = Vec::new();
        let mut penalties = Vec::new();
        let mut slots = self.params.iter();
        // Parameters in layer order, as `param_specs` lists them (and so the slots).
        let mut layer_params: Vec<Vec<NodeId>> = Vec::with_capacity(self.layers.len());
        for (specs, name) in self.layer_params()?.iter().zip(&self.names) {
            let nodes: Vec<NodeId> = specs
                .iter()
                .zip(slots.by_ref())
                .map(|(spec, slot): (_, &ParamSlot)| g.param(&slot.name, &spec.shape))
                .collect();
            params.extend(nodes.iter().copied());
            for (spec, &node) in specs.iter().zip(&nodes) {
                if let Some(r) = spec.regularizer {
                    let context = format!("{name} ({} regularizer)", spec.name);
                    penalties.push(g.add(Op::WeightPenalty { l1: r.l1, l2: r.l2 }, &[node], &context)?);
                }
            }
            layer_params.push(nodes);
        }
        let (mut h, mask) = self.forward_calls(g, &xs, &layer_params, fuse_last, training, updates)?;
        // Per-step outputs [batch, steps, units] as rows [batch · steps, units] (a view), so
        // that the final activation, the loss and the metrics work per row.
        let head_shape = g.shape(h).to_vec();
        if head_shape.len() > 2 {
            let units = head_shape.last().copied().unwrap_or(1);
            let rows = head_shape.iter().product::<usize>() / units.max(1);
            h = g.add(Op::Reshape { shape: vec![rows, units] }, &[h], "per-step outputs")?;
        }
        let out = match (fuse_last, self.output_layer()) {
            (true, Some((layer, name))) => layer.activation().build(g, h, name)?,
            _ => h,
        };
        Ok(Forward { xs, params, head: h, out, penalties, mask })
    }

    /// The inference forward graph on `inputs` with the parameters as the nodes `params` (in
    /// [`Model::parameter_shapes`] order): for gradient checks of whole models.
    #[doc(hidden)]
    pub fn forward_on(&self, g: &mut Graph, inputs: &[NodeId], params: &[NodeId]) -> Result<NodeId> {
        let mut params = params.iter().copied();
        let layer_params: Vec<Vec<NodeId>> =
            self.layer_params()?.iter().map(|specs| params.by_ref().take(specs.len()).collect()).collect();
        let updates = RefCell::new(Vec::new());
        Ok(self.forward_calls(g, inputs, &layer_params, false, false, &updates)?.0)
    }

    /// Every parameter's name and shape, in layer order.
    pub fn parameter_shapes(&self) -> Result<Vec<(String, Vec<usize>)>> {
        Ok(self.param_specs()?.into_iter().map(|(n, p)| (n, p.shape)).collect())
    }

    /// The layer calls on `inputs` with each layer's parameter nodes: the (first) output and
    /// the mask it carries. With `fuse_last`, the output's call leaves out its activation.
    fn forward_calls(
        &self,
        g: &mut Graph,
        inputs: &[NodeId],
        layer_params: &[Vec<NodeId>],
        fuse_last: bool,
        training: bool,
        updates: &RefCell<Vec<StateUpdate>>,
    ) -> Result<(NodeId, Option<NodeId>)> {
        // The activation the loss fuses is left out of the output's call (its first output).
        let output_call = match self.outputs.first() {
            Some(&TensorRef::Call(c, 0)) => Some(c),
            _ => None,
        };
        // Every call's outputs and their masks; an input's mask is none.
        let mut values: Vec<Vec<(NodeId, Option<NodeId>)>> = Vec::with_capacity(self.calls.len());
        let value = |values: &[Vec<(NodeId, Option<NodeId>)>], r: TensorRef| match r {
            TensorRef::Input(i) => (inputs[i], None),
            TensorRef::Call(c, k) => values[c][k],
        };
        for (i, call) in self.calls.iter().enumerate() {
            let (layer, name) = (&self.layers[call.layer], &self.names[call.layer]);
            let ins: Vec<(NodeId, Option<NodeId>)> = call.inputs.iter().map(|&r| value(&values, r)).collect();
            let xs: Vec<NodeId> = ins.iter().map(|v| v.0).collect();
            // Several masks (a merge of masked sequences) combine as their product: a step is
            // valid where it is valid in every input (Keras's logical and).
            let mut mask = None;
            for m in ins.iter().filter_map(|v| v.1) {
                mask = Some(match mask {
                    None => m,
                    Some(acc) => g.add(Op::Binary(BinaryOp::Multiply), &[acc, m], name)?,
                });
            }
            let ctx = BuildContext {
                name,
                params: &layer_params[call.layer],
                activation: !(fuse_last && output_call == Some(i)),
                training,
                seed: layer_seed(self.seed, i),
                updates,
                mask,
            };
            let ys = layer.build_all(g, &xs, &ctx)?;
            // The mask travels with the first output (a returned sequence), not the states.
            let out_mask = layer.output_mask(g, xs[0], &ctx)?;
            values.push(ys.into_iter().enumerate().map(|(k, y)| (y, out_mask.filter(|_| k == 0))).collect());
        }
        let out =
            self.outputs.first().copied().ok_or_else(|| crate::Error::invalid("model", "has no output"))?;
        Ok(value(&values, out))
    }

    /// Plan the program of `kind` for `batch` rows; `weighted`: a training step with an input
    /// "w" [batch] of per-sample weights for the loss (Keras `sample_weight`).
    pub(crate) fn build_program(
        &self,
        c: &Compiled,
        kind: ProgramKind,
        batch: usize,
        weighted: bool,
    ) -> Result<Program> {
        let fuse = c.loss.fuses(self.output_activation())?;
        let mut g = Graph::new();
        let updates = RefCell::new(Vec::new());
        let Forward { xs, params, head, out, penalties, mask } =
            self.forward(&mut g, batch, fuse, kind == ProgramKind::Train, &updates)?;
        let mut fixed: HashMap<NodeId, BufRef> =
            params.iter().zip(&self.params).map(|(&n, p)| (n, p.buf)).collect();
        // GPUs read large convolution patch matrices inside the products (see ImplicitConv).
        let implicit_conv_above = match (c.backend.kind(), c.implicit_conv) {
            (crate::backend::DeviceKind::Cpu, _) | (_, super::ImplicitConv::Never) => None,
            (_, super::ImplicitConv::Auto) => Some(super::IMPLICIT_CONV_BYTES),
            (_, super::ImplicitConv::Always) => Some(0),
        };
        let mut spec = PlanSpec { inputs: xs, implicit_conv_above, ..PlanSpec::default() };
        if kind == ProgramKind::Predict {
            spec.outputs.push(("output".into(), out));
            spec.fixed = fixed;
            return plan(&g, &spec);
        }
        // The model's output per sample: [units], or [steps, units] for per-step outputs
        // (the head is then [batch · steps, units], see `forward`).
        let output_shape = self.output_shape()?;
        let steps: usize = output_shape[..output_shape.len().saturating_sub(1)].iter().product();
        let y_input = g.input("y", &label_shape(c.loss, batch, &output_shape));
        spec.inputs.push(y_input);
        let y = match steps {
            1 => y_input,
            _ => {
                if weighted {
                    return Err(crate::Error::invalid(
                        "sample weights",
                        "per-sample loss weights with per-step outputs are not supported",
                    ));
                }
                let rows = label_shape(c.loss, batch * steps, &output_shape[output_shape.len() - 1..]);
                g.add(Op::Reshape { shape: rows }, &[y_input], "per-step labels")?
            }
        };
        let output_shape = output_shape[output_shape.len().saturating_sub(1)..].to_vec();
        // The reported and differentiated loss includes the weight penalties, as in Keras.
        let smoothed = match c.label_smoothing {
            0.0 => y,
            s => {
                let (scale, shift) = c.loss.smoothing_affine(s, output_shape.iter().product());
                g.add(Op::Affine { scale, shift }, &[y], "label smoothing")?
            }
        };
        // The loss of a training or evaluation step may weigh its samples (the metrics never do).
        let weights = match weighted && kind != ProgramKind::Predict {
            true => {
                let w = g.input("w", &[batch]);
                spec.inputs.push(w);
                Some(w)
            }
            false => None,
        };
        // Per-step outputs of masked sequences: the loss is the mean over the valid steps, as
        // Keras weighs them (mask · total / valid: Σ l·m / Σ m).
        // The [batch · steps] 0/1 mask of per-step outputs' steps, for the masked metrics.
        let step_mask = match mask {
            Some(m) if steps > 1 => {
                Some(g.add(Op::Reshape { shape: vec![batch * steps] }, &[m], "metrics (masked steps)")?)
            }
            _ => None,
        };
        let weights = match (weights, mask) {
            (None, Some(m)) if steps > 1 => Some(valid_step_weights(&mut g, m, batch * steps)?),
            (w, _) => w,
        };
        let mut loss = c.loss.build(&mut g, head, smoothed, weights, fuse)?;
        for p in penalties {
            loss = g.add(Op::Add, &[loss, p], "loss (with regularization)")?;
        }
        let sparse = c.loss.sparse_labels();
        let threshold = if fuse { 0.0 } else { 0.5 };
        let outputs = output_shape.iter().product::<usize>();
        let acc = |i: usize, len: usize| {
            ArgRef::Buf(BufRef { arena: Arena::Accum, offset: c.accum.slot(kind, i).start, len })
        };
        // Probabilities for AUC: a from-logits model's outputs are logits.
        let probabilities = |g: &mut Graph, name: &str| -> Result<NodeId> {
            match c.loss {
                Loss::BinaryCrossentropyFromLogits => g.add(Op::Unary(UnaryOp::Sigmoid), &[head], name),
                Loss::SparseCategoricalCrossentropyFromLogits | Loss::CategoricalCrossentropyFromLogits => {
                    g.add(Op::Softmax, &[head], name)
                }
                _ => Ok(out),
            }
        };
        // One per-class count shared by the macro metrics: one class per sample (argmax), or
        // every output unit on its own under binary cross-entropy.
        let mut class_counts = None;
        let class_threshold = c.loss.binary().then_some(threshold);
        spec.tail
            .push((Kernel::Accumulate { len: 1, scale: batch as f32 }, vec![ArgRef::Node(loss), acc(0, 1)]));
        for (i, m) in c.metrics.iter().enumerate() {
            let name = m.name();
            // Counts add as they are; means are weighted by the batch's rows. Per-step counts
            // weigh a step 1/steps, so that a sample's share is its fraction of correct steps.
            let per_step = 1.0 / steps as f32;
            let (node, scale) = match (*m, step_mask) {
                // Masked per-step outputs: the correct valid steps, and the valid steps counted
                // beside them (Keras weighs a metric by the mask: Σ c·m / Σ m over the epoch).
                (Metric::Accuracy | Metric::TopKAccuracy { .. }, Some(mask)) => {
                    let valid = g.add(Op::SumAll { scale: 1.0 }, &[mask], name)?;
                    let op = match *m {
                        Metric::TopKAccuracy { k } => Op::CountTopK { sparse, k, weighted: true },
                        _ => Op::CountCorrect { sparse, threshold, weighted: true },
                    };
                    let correct = g.add(op, &[head, y, mask], name)?;
                    // One [2] value, [correct, valid], for the metric's two accumulators.
                    (g.add(Op::ConcatColumns, &[correct, valid], name)?, 1.0)
                }
                (Metric::Accuracy, None) => {
                    let op = Op::CountCorrect { sparse, threshold, weighted: false };
                    (g.add(op, &[head, y], name)?, per_step)
                }
                (Metric::TopKAccuracy { k }, None) => {
                    (g.add(Op::CountTopK { sparse, k, weighted: false }, &[head, y], name)?, per_step)
                }
                // Masked per-step outputs: the mean over the valid steps, weighted as the loss
                // (`valid_step_weights`); sample weights never weigh a metric.
                (Metric::MeanAbsoluteError, mask) => {
                    let loss = PointwiseLoss::AbsoluteError;
                    match (mask, weights) {
                        (Some(_), Some(w)) => {
                            (g.add(Op::Pointwise { loss, weighted: true }, &[out, y, w], name)?, batch as f32)
                        }
                        _ => (g.add(Op::Pointwise { loss, weighted: false }, &[out, y], name)?, batch as f32),
                    }
                }
                (Metric::MeanSquaredError, mask) => match (mask, weights) {
                    (Some(_), Some(w)) => {
                        (g.add(Op::MeanSquaredError { weighted: true }, &[out, y, w], name)?, batch as f32)
                    }
                    _ => (g.add(Op::MeanSquaredError { weighted: false }, &[out, y], name)?, batch as f32),
                },
                // Masked per-step outputs: a padded step counts as a true negative, which none
                // of the three reads (its prediction pushed below the threshold, its label to 0).
                (Metric::Precision | Metric::Recall | Metric::F1, Some(mask)) => {
                    let (rows, units) = match *g.shape(head) {
                        [r, u] => (r, u),
                        ref other => {
                            return Err(crate::Error::invalid(name, format!("per-step head {other:?}")));
                        }
                    };
                    let m = crate::nn::broadcast_over_columns(&mut g, mask, rows, units, name)?;
                    let labels = g.add(Op::Binary(BinaryOp::Multiply), &[y, m], name)?;
                    let kept = g.add(Op::Binary(BinaryOp::Multiply), &[head, m], name)?;
                    let below = g.add(Op::Affine { scale: 1e9, shift: -1e9 }, &[m], name)?;
                    let predictions = g.add(Op::Add, &[kept, below], name)?;
                    (g.add(Op::BinaryCounts { threshold }, &[predictions, labels], name)?, 1.0)
                }
                (Metric::Precision | Metric::Recall | Metric::F1, None) => {
                    (g.add(Op::BinaryCounts { threshold }, &[head, y], name)?, 1.0)
                }
                (Metric::Auc { num_thresholds }, _) => {
                    let p = probabilities(&mut g, name)?;
                    let hist =
                        g.add(Op::RocHistogram { sparse, thresholds: num_thresholds }, &[p, y], name)?;
                    (g.add(Op::SumRows, &[hist], name)?, 1.0)
                }
                (Metric::MacroPrecision | Metric::MacroRecall | Metric::MacroF1, _) => {
                    let counts = match class_counts {
                        Some(node) => node,
                        None => {
                            let op = Op::ClassCounts { sparse, threshold: class_threshold };
                            let partial = g.add(op, &[head, y], name)?;
                            *class_counts.insert(g.add(Op::SumRows, &[partial], name)?)
                        }
                    };
                    (counts, 1.0)
                }
            };
            // Accuracy has room for a valid-step count that only masked per-step outputs give.
            let len = m.accum_len(outputs).min(g.shape(node).iter().product());
            spec.tail.push((Kernel::Accumulate { len, scale }, vec![ArgRef::Node(node), acc(1 + i, len)]));
        }
        spec.outputs.push(("loss".into(), loss));
        if kind == ProgramKind::Train {
            let flag = BufRef { arena: Arena::Accum, offset: AccumLayout::NON_FINITE, len: 1 };
            spec.tail.push((Kernel::FirstNonFinite, vec![ArgRef::Node(loss), ArgRef::Buf(flag)]));
            let seed = g.add(Op::Fill { shape: vec![1], value: 1.0 }, &[], "loss")?;
            // Only trainable parameters get gradients; the others keep zero gradients, so the
            // optimizers' updates leave them exactly as they are.
            let (trainable, slots): (Vec<NodeId>, Vec<&ParamSlot>) =
                params.iter().zip(&self.params).filter(|(_, p)| p.trainable).map(|(n, p)| (*n, p)).unzip();
            let grads = gradients(&mut g, loss, seed, &trainable)?;
            for (gnode, p) in grads.iter().zip(slots) {
                fixed.insert(*gnode, BufRef { arena: Arena::Grads, ..p.buf });
            }
            for (kernel, nodes) in updates.into_inner() {
                spec.tail.push((kernel, nodes.into_iter().map(ArgRef::Node).collect()));
            }
            // Clipping, then the update, over the trainable parameters only (frozen ones keep
            // their exact bits whatever the rule, e.g. under AdamW's weight decay).
            let trainable: Vec<BufRef> = self.params.iter().filter(|p| p.trainable).map(|p| p.buf).collect();
            let norm = BufRef { arena: Arena::Accum, offset: AccumLayout::GRAD_NORM, len: 1 };
            for (kernel, args) in c.optimizer.steps(&trainable, norm) {
                spec.tail.push((kernel, args.into_iter().map(ArgRef::Buf).collect()));
            }
        }
        spec.fixed = fixed;
        plan(&g, &spec)
    }

    /// The compiled program of `kind` for `batch` rows, with per-sample weights when
    /// `weighted` (planned and compiled on first use; weighted and unweighted steps are
    /// separate programs).
    pub(crate) fn program(
        &mut self,
        kind: ProgramKind,
        batch: usize,
        weighted: bool,
    ) -> Result<crate::backend::ProgramId> {
        let c =
            self.compiled.as_ref().ok_or_else(|| crate::Error::NotReady("call compile() first".into()))?;
        let key = (kind, batch, weighted && kind != ProgramKind::Predict);
        if let Some((id, _)) = c.programs.get(&key) {
            return Ok(*id);
        }
        let program = self.build_program(c, kind, batch, key.2)?;
        let c = self.compiled()?;
        let id = c.backend.compile(&program)?;
        c.programs.insert(key, (id, program));
        Ok(id)
    }

    /// The output slice `name` of a compiled (unweighted) program.
    pub(crate) fn program_output(&self, kind: ProgramKind, batch: usize, name: &str) -> Option<BufRef> {
        self.compiled.as_ref()?.programs.get(&(kind, batch, false))?.1.output(name)
    }
}

/// Loss weights `[rows]` from a `[batch, steps]` mask: m · rows / max(Σ m, 10⁻⁷), so that a
/// weighted mean over the rows is the mean over the valid steps (Keras's `apply_mask`).
fn valid_step_weights(g: &mut Graph, mask: NodeId, rows: usize) -> Result<NodeId> {
    let name = "loss (masked steps)";
    let m = g.add(Op::Reshape { shape: vec![rows] }, &[mask], name)?;
    let share = g.add(Op::SumAll { scale: 1.0 / rows as f32 }, &[m], name)?;
    let floor = g.add(Op::Fill { shape: vec![1], value: 1e-7 }, &[], name)?;
    let share = g.add(Op::Binary(crate::program::BinaryOp::Maximum), &[share, floor], name)?;
    let share = g.add(Op::BroadcastScalar { shape: vec![rows], scale: 1.0 }, &[share], name)?;
    g.add(Op::Binary(crate::program::BinaryOp::Divide), &[m, share], name)
}
