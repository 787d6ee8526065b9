//! Building the graph and program of each kind (train step, eval step, forward pass) for one
//! batch size.
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use super::heads::{AccumLayout, Head, HeadNodes, head_loss, head_metrics, label_shape, weighted_total};
use super::{Compiled, Model, ParamSlot, ProgramKind, TensorRef};
use crate::error::Result;
use crate::graph::autodiff::gradients;
use crate::graph::plan::{ArgRef, PlanSpec, plan};
use crate::graph::{Graph, NodeId, Op};
use crate::nn::{BuildContext, StateUpdate};
use crate::program::{Arena, BinaryOp, BufRef, Kernel, Program, pcg_hash};

/// `v` as rows `[batch · steps, units]` when it has more than two axes (a view), so that the
/// final activation, the loss and the metrics work per row.
fn as_rows(g: &mut Graph, v: NodeId) -> Result<NodeId> {
    let shape = g.shape(v).to_vec();
    if shape.len() <= 2 {
        return Ok(v);
    }
    let units = shape.last().copied().unwrap_or(1);
    let rows = shape.iter().product::<usize>() / units.max(1);
    g.add(Op::Reshape { shape: vec![rows, units] }, &[v], "per-step outputs")
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
    /// One per model output.
    heads: Vec<HeadNodes>,
    penalties: Vec<NodeId>,
}

impl Model {
    /// Forward graph: the inputs ("x", or "x:<name>" each for several), the parameter nodes,
    /// each output's head (`fuse[k]`: logits for a loss that fuses the output's activation)
    /// and activated output, and the weight-penalty nodes of the regularised parameters
    /// (scalars to add to the loss).
    fn forward(
        &self,
        g: &mut Graph,
        batch: usize,
        fuse: &[bool],
        training: bool,
        updates: &RefCell<Vec<StateUpdate>>,
    ) -> Result<Forward> {
        if self.inputs.is_empty() {
            return Err(crate::Error::invalid("model", "has no inputs"));
        }
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
        let (params, layer_params, penalties) = self.param_nodes(g)?;
        let heads = self.forward_calls(g, &xs, &layer_params, fuse, training, updates)?;
        Ok(Forward { xs, params, heads, penalties })
    }

    /// A parameter node per parameter slot (in layer order, as `param_specs` lists them), the
    /// same grouped by layer, and the weight penalties of the regularised ones.
    #[allow(clippy::type_complexity)]
    fn param_nodes(&self, g: &mut Graph) -> Result<(Vec<NodeId>, Vec<Vec<NodeId>>, Vec<NodeId>)> {
        let mut params = Vec::new();
        let mut penalties = Vec::new();
        let mut slots = self.params.iter();
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
        Ok((params, layer_params, penalties))
    }

    /// The inference forward graph on `inputs` with the parameters as the nodes `params` (in
    /// [`Model::parameter_shapes`] order): the first output, for gradient checks of whole
    /// models.
    #[doc(hidden)]
    pub fn forward_on(&self, g: &mut Graph, inputs: &[NodeId], params: &[NodeId]) -> Result<NodeId> {
        let layer_params = self.group_params(params)?;
        let updates = RefCell::new(Vec::new());
        let no_fusion = vec![false; self.outputs.len()];
        let heads = self.forward_calls(g, inputs, &layer_params, &no_fusion, false, &updates)?;
        let first = heads.first().ok_or_else(|| crate::Error::invalid("model", "has no outputs"))?;
        Ok(first.out)
    }

    /// The training loss (without weight penalties) on `inputs`, labels `labels` (one per
    /// output, as `fit` takes them) and parameters `params`, with the losses and loss weights
    /// of `opts` and the inference forward pass: for gradient checks of whole models.
    #[doc(hidden)]
    pub fn training_loss_on(
        &self,
        g: &mut Graph,
        inputs: &[NodeId],
        labels: &[NodeId],
        params: &[NodeId],
        opts: &super::CompileOptions,
    ) -> Result<NodeId> {
        let heads = self.resolve_heads(opts)?;
        let fuse = self.fusions(&heads)?;
        let layer_params = self.group_params(params)?;
        let updates = RefCell::new(Vec::new());
        let nodes = self.forward_calls(g, inputs, &layer_params, &fuse, false, &updates)?;
        let shapes = self.model_output_shapes()?;
        let mut losses = Vec::with_capacity(heads.len());
        for (k, head) in heads.iter().enumerate() {
            let y = *labels.get(k).ok_or_else(|| crate::Error::invalid("labels", "one per output"))?;
            losses.push(head_loss(g, head, &nodes[k], y, None, &shapes[k], opts.label_smoothing)?.loss);
        }
        weighted_total(g, &heads, &losses)
    }

    /// `params` (in slot order) grouped by layer.
    fn group_params(&self, params: &[NodeId]) -> Result<Vec<Vec<NodeId>>> {
        let mut params = params.iter().copied();
        Ok(self.layer_params()?.iter().map(|specs| params.by_ref().take(specs.len()).collect()).collect())
    }

    /// Every parameter's name and shape, in layer order.
    pub fn parameter_shapes(&self) -> Result<Vec<(String, Vec<usize>)>> {
        Ok(self.param_specs()?.into_iter().map(|(n, p)| (n, p.shape)).collect())
    }

    /// Whether each head's loss reads logits (fuses its output's activation).
    fn fusions(&self, heads: &[Head]) -> Result<Vec<bool>> {
        heads.iter().enumerate().map(|(k, h)| h.loss.fuses(self.output_activation_of(k))).collect()
    }

    /// The layer calls on `inputs` with each layer's parameter nodes: each output's nodes (see
    /// [`HeadNodes`]). An output whose loss fuses its activation (`fuse[k]`, only for a
    /// layer's first output) is built without it; the activation is then applied once and
    /// is what other layers reading that output see.
    fn forward_calls(
        &self,
        g: &mut Graph,
        inputs: &[NodeId],
        layer_params: &[Vec<NodeId>],
        fuse: &[bool],
        training: bool,
        updates: &RefCell<Vec<StateUpdate>>,
    ) -> Result<Vec<HeadNodes>> {
        let mut fused_calls = HashSet::new();
        for (&r, &f) in self.outputs.iter().zip(fuse) {
            match (r, f) {
                (TensorRef::Call(c, 0), true) => {
                    fused_calls.insert(c);
                }
                (_, true) => return Err(crate::Error::invalid("model", "only a layer's first output fuses")),
                _ => {}
            }
        }
        // Every call's outputs and their masks; an input's mask is none.
        let mut values: Vec<Vec<(NodeId, Option<NodeId>)>> = Vec::with_capacity(self.calls.len());
        // The fused calls' (logits, activated) as rows.
        let mut fused: HashMap<usize, (NodeId, NodeId)> = HashMap::new();
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
            let fuses = fused_calls.contains(&i);
            let ctx = BuildContext {
                name,
                params: &layer_params[call.layer],
                activation: !fuses,
                training,
                seed: layer_seed(self.seed, i),
                updates,
                mask,
            };
            let mut ys = layer.build_all(g, &xs, &ctx)?;
            if fuses && let Some(first) = ys.first_mut() {
                let shape = g.shape(*first).to_vec();
                let logits = as_rows(g, *first)?;
                let activated = layer.activation().build(g, logits, name)?;
                fused.insert(i, (logits, activated));
                *first = match shape.len() > 2 {
                    true => g.add(Op::Reshape { shape }, &[activated], name)?,
                    false => activated,
                };
            }
            // The mask travels with the first output (a returned sequence), not the states.
            let out_mask = layer.output_mask(g, xs[0], &ctx)?;
            values.push(ys.into_iter().enumerate().map(|(k, y)| (y, out_mask.filter(|_| k == 0))).collect());
        }
        self.outputs
            .iter()
            .zip(fuse)
            .map(|(&r, &f)| {
                let (v, mask) = value(&values, r);
                Ok(match (r, f) {
                    (TensorRef::Call(c, 0), true) => {
                        let (head, out) = fused[&c];
                        HeadNodes { head, out, mask, fused: true }
                    }
                    _ => {
                        let rows = as_rows(g, v)?;
                        HeadNodes { head: rows, out: rows, mask, fused: false }
                    }
                })
            })
            .collect()
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
        let fuse = self.fusions(&c.heads)?;
        let mut g = Graph::new();
        let updates = RefCell::new(Vec::new());
        let Forward { xs, params, heads, penalties } =
            self.forward(&mut g, batch, &fuse, kind == ProgramKind::Train, &updates)?;
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
            // Several outputs leave as one [batch, Σ per-sample sizes] value (one readback),
            // which `predict_outputs` splits.
            let mut output = None;
            for h in &heads {
                let size = g.shape(h.out).iter().product::<usize>() / batch.max(1);
                let flat = g.add(Op::Reshape { shape: vec![batch, size] }, &[h.out], "outputs")?;
                output = Some(match output {
                    None if heads.len() == 1 => h.out,
                    None => flat,
                    Some(acc) => g.add(Op::ConcatColumns, &[acc, flat], "outputs")?,
                });
            }
            let output = output.ok_or_else(|| crate::Error::invalid("model", "has no outputs"))?;
            spec.outputs.push(("output".into(), output));
            spec.fixed = fixed;
            return plan(&g, &spec);
        }
        // The labels of each output ("y", or "y:<name>" each for several), then the weights.
        let shapes = self.model_output_shapes()?;
        let several = c.heads.len() > 1;
        for (head, shape) in c.heads.iter().zip(&shapes) {
            let name = if several { format!("y:{}", head.key) } else { "y".to_string() };
            let y = g.input(&name, &label_shape(head.loss, batch, shape));
            spec.inputs.push(y);
        }
        let labels = spec.inputs[spec.inputs.len() - c.heads.len()..].to_vec();
        // The loss of a training or evaluation step may weigh its samples (the metrics never do).
        let weights = match weighted {
            true => {
                let w = g.input("w", &[batch]);
                spec.inputs.push(w);
                Some(w)
            }
            false => None,
        };
        let acc = |slot: std::ops::Range<usize>| {
            ArgRef::Buf(BufRef { arena: Arena::Accum, offset: slot.start, len: 1 })
        };
        let mut losses = Vec::with_capacity(heads.len());
        for (h, head) in c.heads.iter().enumerate() {
            let hl = head_loss(&mut g, head, &heads[h], labels[h], weights, &shapes[h], c.label_smoothing)?;
            if let Some(slot) = c.accum.head_loss(kind, h) {
                let scale = batch as f32;
                spec.tail
                    .push((Kernel::Accumulate { len: 1, scale }, vec![ArgRef::Node(hl.loss), acc(slot)]));
            }
            head_metrics(&mut g, (h, head), &heads[h], &hl, &c.accum, kind, &mut spec.tail)?;
            losses.push(hl.loss);
        }
        // The reported and differentiated loss includes the weight penalties, as in Keras.
        let mut loss = weighted_total(&mut g, &c.heads, &losses)?;
        for p in penalties {
            loss = g.add(Op::Add, &[loss, p], "loss (with regularization)")?;
        }
        // The total first: the per-output accumulators above run after it, in any order.
        spec.tail.insert(
            0,
            (
                Kernel::Accumulate { len: 1, scale: batch as f32 },
                vec![ArgRef::Node(loss), acc(c.accum.loss(kind))],
            ),
        );
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
