//! A model's outputs as the training step sees them ("heads"): each output's loss, loss weight
//! and metrics (Keras's per-output `loss`, `loss_weights` and `metrics`), where their
//! accumulators live, and the graph of one head's loss and metrics.
use super::{CompileOptions, Model, ProgramKind, TensorRef};
use crate::error::{Error, Result};
use crate::graph::plan::ArgRef;
use crate::graph::{Graph, NodeId, Op};
use crate::loss::Loss;
use crate::metrics::Metric;
use crate::nn::Activation;
use crate::program::{ALIGN_ELEMS, Arena, BinaryOp, BufRef, Kernel, PointwiseLoss, UnaryOp, align};

/// How one output of a model with several is trained and measured: an entry of Keras's
/// lists `loss=[…]`, `loss_weights=[…]` and `metrics=[[…], …]`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputOptions {
    pub loss: Loss,
    /// The output's share of the training loss, Σ weight · loss over the outputs (default 1).
    pub weight: f32,
    pub metrics: Vec<Metric>,
}

impl OutputOptions {
    /// `loss` with weight 1 and no metrics.
    pub fn new(loss: Loss) -> OutputOptions {
        OutputOptions { loss, weight: 1.0, metrics: Vec::new() }
    }

    /// With loss weight `weight` (finite, ≥ 0).
    pub fn weight(mut self, weight: f32) -> OutputOptions {
        self.weight = weight;
        self
    }

    /// With `metrics` reported for this output.
    pub fn metrics(mut self, metrics: &[Metric]) -> OutputOptions {
        self.metrics = metrics.to_vec();
        self
    }
}

/// One compiled output.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Head {
    /// The prefix of its History keys (`dense_1` → `dense_1_loss`, `dense_1_accuracy`); empty
    /// for a model of one output, whose keys are `loss` and the metric names.
    pub key: String,
    pub loss: Loss,
    pub weight: f32,
    pub metrics: Vec<Metric>,
    /// Units per sample or step (the last axis of the output).
    pub units: usize,
}

impl Head {
    /// The History key of metric `m` of this output (`accuracy`, or `dense_1_accuracy`).
    pub fn metric_key(&self, m: &Metric) -> String {
        match self.key.is_empty() {
            true => m.name().to_string(),
            false => format!("{}_{}", self.key, m.name()),
        }
    }

    /// What the loss and metrics were given (for checkpoints).
    pub fn options(&self) -> OutputOptions {
        OutputOptions { loss: self.loss, weight: self.weight, metrics: self.metrics.clone() }
    }
}

impl Model {
    /// The name of each output (Keras `output_names`): the layer that makes it, with `_1`,
    /// `_2`, … appended when one layer makes several outputs. History keys start with it.
    pub fn output_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::with_capacity(self.outputs.len());
        for &r in &self.outputs {
            let name = super::sequential::unique_name(&names, self.source_name(r));
            names.push(name);
        }
        names
    }

    /// Per-sample shape of every output.
    pub fn model_output_shapes(&self) -> Result<Vec<Vec<usize>>> {
        let shapes = self.call_shapes()?;
        Ok(self.outputs.iter().map(|&r| self.shape_in(r, &shapes).to_vec()).collect())
    }

    /// The activation that ends output `k` (a loss may fuse it): its layer's for a layer's
    /// first output, linear for the others (recurrent states).
    pub(crate) fn output_activation_of(&self, k: usize) -> Activation {
        match self.outputs.get(k) {
            Some(&TensorRef::Call(c, 0)) => {
                self.calls.get(c).map(|call| self.layers[call.layer].activation()).unwrap_or_default()
            }
            _ => Activation::Linear,
        }
    }

    /// Each output's compiled loss, weight and metrics from `opts`: `opts.outputs` one per
    /// output, or (empty) `opts.loss` and `opts.metrics` for every output with weight 1, as
    /// Keras applies one loss to every output.
    pub(crate) fn resolve_heads(&self, opts: &CompileOptions) -> Result<Vec<Head>> {
        let n = self.outputs.len();
        if n == 0 {
            return Err(Error::invalid("model", "has no outputs"));
        }
        let names = self.output_names();
        let specs = match opts.outputs.len() {
            0 => vec![OutputOptions { loss: opts.loss, weight: 1.0, metrics: opts.metrics.clone() }; n],
            k if k == n => opts.outputs.clone(),
            k => {
                return Err(Error::invalid(
                    "compile options",
                    format!("give {k} outputs' losses, but the model has {n} outputs ({})", names.join(", ")),
                ));
            }
        };
        let shapes = self.model_output_shapes()?;
        let mut heads = Vec::with_capacity(n);
        for (k, spec) in specs.into_iter().enumerate() {
            // A model of one output keeps the errors of before; several name the output.
            let name = |e: Error| match n {
                1 => e,
                _ => Error::invalid(format!("output '{}'", names[k]), e.to_string()),
            };
            spec.loss.fuses(self.output_activation_of(k)).map_err(name)?;
            spec.loss.check_label_smoothing(opts.label_smoothing).map_err(name)?;
            spec.metrics.iter().try_for_each(|m| m.check(spec.loss)).map_err(name)?;
            if !(spec.weight.is_finite() && spec.weight >= 0.0) {
                return Err(name(Error::invalid(
                    "loss weight",
                    format!("{} is not finite and ≥ 0", spec.weight),
                )));
            }
            heads.push(Head {
                key: if n == 1 { String::new() } else { names[k].clone() },
                loss: spec.loss,
                weight: spec.weight,
                metrics: spec.metrics,
                units: shapes[k].last().copied().unwrap_or(0),
            });
        }
        Ok(heads)
    }
}

/// Where the steps accumulate in the Accum arena, each slot aligned for direct GPU binding:
/// the step of the first non-finite loss (0: none), the squared gradient norm of norm clipping
/// (scratch written and read within a step), then for the training and the evaluation step
/// each: Σ loss·rows (slot 0), then per output its own Σ loss·rows (models of several outputs
/// only) and its metrics' counts or sums.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AccumLayout {
    /// Offset from the kind's base and length of each slot of one kind.
    slots: Vec<(usize, usize)>,
    /// Per head, the index of its first slot (its loss's with several heads).
    head_first: Vec<usize>,
    several: bool,
    /// Elements of one kind's slots.
    per_kind: usize,
}

impl AccumLayout {
    /// Where the training step records the step count of the first non-finite loss.
    pub const NON_FINITE: usize = 0;
    /// Scratch for the squared gradient norm of norm clipping.
    pub const GRAD_NORM: usize = ALIGN_ELEMS;

    /// The layout for `heads`' losses and metrics.
    pub fn new(heads: &[Head]) -> AccumLayout {
        let mut slots = vec![(0, 1)];
        let mut end = ALIGN_ELEMS;
        let several = heads.len() > 1;
        let mut head_first = Vec::with_capacity(heads.len());
        for h in heads {
            head_first.push(slots.len());
            if several {
                slots.push((end, 1));
                end += ALIGN_ELEMS;
            }
            for m in &h.metrics {
                let len = m.accum_len(h.units);
                slots.push((end, len));
                end += align(len.max(1));
            }
        }
        AccumLayout { slots, head_first, several, per_kind: end }
    }

    /// The elements of slot `i` of `kind`'s step.
    fn slot(&self, kind: ProgramKind, i: usize) -> std::ops::Range<usize> {
        let base = 2 * ALIGN_ELEMS + if kind == ProgramKind::Train { 0 } else { self.per_kind };
        let (offset, len) = self.slots.get(i).copied().unwrap_or((0, 0));
        base + offset..base + offset + len
    }

    /// The total loss's slot of `kind`.
    pub fn loss(&self, kind: ProgramKind) -> std::ops::Range<usize> {
        self.slot(kind, 0)
    }

    /// Head `h`'s own loss slot (models of several outputs).
    pub fn head_loss(&self, kind: ProgramKind, h: usize) -> Option<std::ops::Range<usize>> {
        self.several.then(|| self.slot(kind, self.head_first[h]))
    }

    /// Metric `i` of head `h`.
    pub fn metric(&self, kind: ProgramKind, h: usize, i: usize) -> std::ops::Range<usize> {
        self.slot(kind, self.head_first[h] + usize::from(self.several) + i)
    }

    /// Elements of the Accum arena.
    pub fn len(&self) -> usize {
        2 * ALIGN_ELEMS + 2 * self.per_kind
    }
}

/// The nodes of one output in the forward graph: the head the loss reads (logits when the loss
/// fuses the output's activation, else the activated output), the activated output, both as
/// rows (`[batch · steps, units]` for per-step outputs), and the `[batch, steps]` mask it
/// carries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadNodes {
    pub head: NodeId,
    pub out: NodeId,
    pub mask: Option<NodeId>,
    pub fused: bool,
}

/// One output's loss and what its metrics read.
pub(crate) struct HeadLoss {
    pub loss: NodeId,
    /// The labels as rows of the head.
    pub y: NodeId,
    /// The loss's per-row weights (sample weights, or the valid-step weights of masked
    /// per-step outputs).
    pub weights: Option<NodeId>,
    /// The `[batch · steps]` 0/1 mask of masked per-step outputs.
    pub step_mask: Option<NodeId>,
    /// Steps per sample (1 unless per-step outputs).
    pub steps: usize,
}

/// Shape of the label tensor for a batch, given the loss and the output's shape: per step for
/// per-step outputs (`[steps, units]`), whose class axis is the last.
pub(crate) fn label_shape(loss: Loss, batch: usize, output: &[usize]) -> Vec<usize> {
    let kept = match loss.sparse_labels() {
        true => &output[..output.len().saturating_sub(1)],
        false => output,
    };
    std::iter::once(batch).chain(kept.iter().copied()).collect()
}

/// The loss of one head of output shape `output_shape` on labels `y_input` (as fed), with
/// optional per-sample `weights` [batch] and label smoothing.
pub(crate) fn head_loss(
    g: &mut Graph,
    head: &Head,
    nodes: &HeadNodes,
    y_input: NodeId,
    weights: Option<NodeId>,
    output_shape: &[usize],
    label_smoothing: f32,
) -> Result<HeadLoss> {
    let batch = g.shape(y_input).first().copied().unwrap_or(0);
    // The output per sample: [units], or [steps, units] for per-step outputs (the head is then
    // [batch · steps, units], see `Model::forward`).
    let steps: usize = output_shape[..output_shape.len().saturating_sub(1)].iter().product();
    let y = match steps {
        1 => y_input,
        _ => {
            if weights.is_some() {
                return Err(Error::invalid(
                    "sample weights",
                    "per-sample loss weights with per-step outputs are not supported",
                ));
            }
            let rows = label_shape(head.loss, batch * steps, &output_shape[output_shape.len() - 1..]);
            g.add(Op::Reshape { shape: rows }, &[y_input], "per-step labels")?
        }
    };
    let smoothed = match label_smoothing {
        0.0 => y,
        s => {
            let (scale, shift) = head.loss.smoothing_affine(s, head.units);
            g.add(Op::Affine { scale, shift }, &[y], "label smoothing")?
        }
    };
    // Per-step outputs of masked sequences: the loss is the mean over the valid steps, as
    // Keras weighs them (mask · total / valid: Σ l·m / Σ m).
    let step_mask = match nodes.mask {
        Some(m) if steps > 1 => {
            Some(g.add(Op::Reshape { shape: vec![batch * steps] }, &[m], "metrics (masked steps)")?)
        }
        _ => None,
    };
    let weights = match (weights, nodes.mask) {
        (None, Some(m)) if steps > 1 => Some(valid_step_weights(g, m, batch * steps)?),
        (w, _) => w,
    };
    let loss = head.loss.build(g, nodes.head, smoothed, weights, nodes.fused)?;
    Ok(HeadLoss { loss, y, weights, step_mask, steps })
}

/// The accumulation steps of head `h`'s metrics (appended to `tail`) of a `kind` step.
pub(crate) fn head_metrics(
    g: &mut Graph,
    (h, head): (usize, &Head),
    nodes: &HeadNodes,
    hl: &HeadLoss,
    accum: &AccumLayout,
    kind: ProgramKind,
    tail: &mut Vec<(Kernel, Vec<ArgRef>)>,
) -> Result<()> {
    let (out, y, steps) = (nodes.out, hl.y, hl.steps);
    let batch = g.shape(out).first().copied().unwrap_or(0) / steps.max(1);
    let sparse = head.loss.sparse_labels();
    let threshold = if nodes.fused { 0.0 } else { 0.5 };
    let head_node = nodes.head;
    // Probabilities for AUC: a from-logits model's outputs are logits.
    let probabilities = |g: &mut Graph, name: &str| -> Result<NodeId> {
        match head.loss {
            Loss::BinaryCrossentropyFromLogits => g.add(Op::Unary(UnaryOp::Sigmoid), &[head_node], name),
            Loss::SparseCategoricalCrossentropyFromLogits | Loss::CategoricalCrossentropyFromLogits => {
                g.add(Op::Softmax, &[head_node], name)
            }
            _ => Ok(out),
        }
    };
    // One per-class count shared by the macro metrics: one class per sample (argmax), or
    // every output unit on its own under binary cross-entropy.
    let mut class_counts = None;
    let class_threshold = head.loss.binary().then_some(threshold);
    for (i, m) in head.metrics.iter().enumerate() {
        let name = m.name();
        // Counts add as they are; means are weighted by the batch's rows. Per-step counts
        // weigh a step 1/steps, so that a sample's share is its fraction of correct steps.
        let per_step = 1.0 / steps as f32;
        let (node, scale) = match (*m, hl.step_mask) {
            // Masked per-step outputs: the correct valid steps, and the valid steps counted
            // beside them (Keras weighs a metric by the mask: Σ c·m / Σ m over the epoch).
            (Metric::Accuracy | Metric::TopKAccuracy { .. }, Some(mask)) => {
                let valid = g.add(Op::SumAll { scale: 1.0 }, &[mask], name)?;
                let op = match *m {
                    Metric::TopKAccuracy { k } => Op::CountTopK { sparse, k, weighted: true },
                    _ => Op::CountCorrect { sparse, threshold, weighted: true },
                };
                let correct = g.add(op, &[head_node, y, mask], name)?;
                // One [2] value, [correct, valid], for the metric's two accumulators.
                (g.add(Op::ConcatColumns, &[correct, valid], name)?, 1.0)
            }
            (Metric::Accuracy, None) => {
                let op = Op::CountCorrect { sparse, threshold, weighted: false };
                (g.add(op, &[head_node, y], name)?, per_step)
            }
            (Metric::TopKAccuracy { k }, None) => {
                (g.add(Op::CountTopK { sparse, k, weighted: false }, &[head_node, y], name)?, per_step)
            }
            // Masked per-step outputs: the mean over the valid steps, weighted as the loss
            // (`valid_step_weights`); sample weights never weigh a metric.
            (Metric::MeanAbsoluteError, mask) => {
                let loss = PointwiseLoss::AbsoluteError;
                match (mask, hl.weights) {
                    (Some(_), Some(w)) => {
                        (g.add(Op::Pointwise { loss, weighted: true }, &[out, y, w], name)?, batch as f32)
                    }
                    _ => (g.add(Op::Pointwise { loss, weighted: false }, &[out, y], name)?, batch as f32),
                }
            }
            (Metric::MeanSquaredError, mask) => match (mask, hl.weights) {
                (Some(_), Some(w)) => {
                    (g.add(Op::MeanSquaredError { weighted: true }, &[out, y, w], name)?, batch as f32)
                }
                _ => (g.add(Op::MeanSquaredError { weighted: false }, &[out, y], name)?, batch as f32),
            },
            // Masked per-step outputs: a padded step counts as a true negative, which none
            // of the three reads (its prediction pushed below the threshold, its label to 0).
            (Metric::Precision | Metric::Recall | Metric::F1, Some(mask)) => {
                let (rows, units) = match *g.shape(head_node) {
                    [r, u] => (r, u),
                    ref other => {
                        return Err(Error::invalid(name, format!("per-step head {other:?}")));
                    }
                };
                let m = crate::nn::broadcast_over_columns(g, mask, rows, units, name)?;
                let labels = g.add(Op::Binary(BinaryOp::Multiply), &[y, m], name)?;
                let kept = g.add(Op::Binary(BinaryOp::Multiply), &[head_node, m], name)?;
                let below = g.add(Op::Affine { scale: 1e9, shift: -1e9 }, &[m], name)?;
                let predictions = g.add(Op::Add, &[kept, below], name)?;
                (g.add(Op::BinaryCounts { threshold }, &[predictions, labels], name)?, 1.0)
            }
            (Metric::Precision | Metric::Recall | Metric::F1, None) => {
                (g.add(Op::BinaryCounts { threshold }, &[head_node, y], name)?, 1.0)
            }
            (Metric::Auc { num_thresholds }, _) => {
                let p = probabilities(g, name)?;
                let hist = g.add(Op::RocHistogram { sparse, thresholds: num_thresholds }, &[p, y], name)?;
                (g.add(Op::SumRows, &[hist], name)?, 1.0)
            }
            (Metric::MacroPrecision | Metric::MacroRecall | Metric::MacroF1, _) => {
                let counts = match class_counts {
                    Some(node) => node,
                    None => {
                        let op = Op::ClassCounts { sparse, threshold: class_threshold };
                        let partial = g.add(op, &[head_node, y], name)?;
                        *class_counts.insert(g.add(Op::SumRows, &[partial], name)?)
                    }
                };
                (counts, 1.0)
            }
        };
        // Accuracy has room for a valid-step count that only masked per-step outputs give.
        let len = m.accum_len(head.units).min(g.shape(node).iter().product());
        let slot = accum.metric(kind, h, i);
        let acc = ArgRef::Buf(BufRef { arena: Arena::Accum, offset: slot.start, len });
        tail.push((Kernel::Accumulate { len, scale }, vec![ArgRef::Node(node), acc]));
    }
    Ok(())
}

/// Loss weights `[rows]` from a `[batch, steps]` mask: m · rows / max(Σ m, 10⁻⁷), so that a
/// weighted mean over the rows is the mean over the valid steps (Keras's `apply_mask`).
fn valid_step_weights(g: &mut Graph, mask: NodeId, rows: usize) -> Result<NodeId> {
    let name = "loss (masked steps)";
    let m = g.add(Op::Reshape { shape: vec![rows] }, &[mask], name)?;
    let share = g.add(Op::SumAll { scale: 1.0 / rows as f32 }, &[m], name)?;
    let floor = g.add(Op::Fill { shape: vec![1], value: 1e-7 }, &[], name)?;
    let share = g.add(Op::Binary(BinaryOp::Maximum), &[share, floor], name)?;
    let share = g.add(Op::BroadcastScalar { shape: vec![rows], scale: 1.0 }, &[share], name)?;
    g.add(Op::Binary(BinaryOp::Divide), &[m, share], name)
}

/// The training loss of the heads: Σ weight_k · loss_k (a weight of 1 adds no op, so a model
/// of one output has its loss as it is).
pub(crate) fn weighted_total(g: &mut Graph, heads: &[Head], losses: &[NodeId]) -> Result<NodeId> {
    let mut total = None;
    for (head, &loss) in heads.iter().zip(losses) {
        let context = format!("loss of output '{}'", head.key);
        let term = match head.weight {
            1.0 => loss,
            w => g.add(Op::Affine { scale: w, shift: 0.0 }, &[loss], &context)?,
        };
        total = Some(match total {
            None => term,
            Some(t) => g.add(Op::Add, &[t, term], "loss (weighted sum over the outputs)")?,
        });
    }
    total.ok_or_else(|| Error::invalid("model", "has no outputs"))
}
