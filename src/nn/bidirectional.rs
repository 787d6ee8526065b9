//! Keras `Bidirectional(layer, merge_mode)`: the layer over the sequence forwards and a copy of
//! it backwards (its own weights), merged. A returned sequence's backward half is flipped back
//! into time order, so step t of both halves describes input step t.
use super::recurrent::RecurrentLayer;
use super::{BuildContext, Layer, ParamSpec};
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId, Op};
use crate::program::BinaryOp;

/// How `Bidirectional` merges its two halves (Keras `merge_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MergeMode {
    /// Joined along the last axis (2·units).
    #[default]
    Concat,
    Sum,
    Mul,
    /// The mean of the two.
    Ave,
}

impl MergeMode {
    /// The Keras name.
    pub fn name(self) -> &'static str {
        match self {
            MergeMode::Concat => "concat",
            MergeMode::Sum => "sum",
            MergeMode::Mul => "mul",
            MergeMode::Ave => "ave",
        }
    }

    /// The mode a Keras name stands for.
    pub fn parse(name: &str) -> Option<MergeMode> {
        [MergeMode::Concat, MergeMode::Sum, MergeMode::Mul, MergeMode::Ave]
            .into_iter()
            .find(|m| m.name() == name)
    }
}

/// A recurrent layer run in both directions (see the module docs).
#[derive(Debug)]
pub struct Bidirectional {
    forward: Box<dyn RecurrentLayer>,
    backward: Box<dyn RecurrentLayer>,
    pub merge_mode: MergeMode,
}

impl Bidirectional {
    /// `layer` forwards and backwards, concatenated.
    pub fn new(layer: impl RecurrentLayer + 'static) -> Bidirectional {
        Bidirectional::of(&layer)
    }

    /// The same from a boxed layer (model files).
    pub fn of(layer: &dyn RecurrentLayer) -> Bidirectional {
        let forward = layer.boxed_clone();
        let mut backward = layer.boxed_clone();
        let o = backward.options_mut();
        o.go_backwards = !o.go_backwards;
        o.input_order = true;
        Bidirectional { forward, backward, merge_mode: MergeMode::Concat }
    }

    /// With another merge mode.
    pub fn merge_mode(mut self, mode: MergeMode) -> Bidirectional {
        self.merge_mode = mode;
        self
    }
}

/// `forward_<name>` / `backward_<name>` for the recurrent layers' parameters.
fn half_name(forward: bool, name: &'static str) -> &'static str {
    match (forward, name) {
        (true, "kernel") => "forward_kernel",
        (true, "recurrent_kernel") => "forward_recurrent_kernel",
        (true, "bias") => "forward_bias",
        (false, "kernel") => "backward_kernel",
        (false, "recurrent_kernel") => "backward_recurrent_kernel",
        (false, "bias") => "backward_bias",
        (_, other) => other,
    }
}

impl Layer for Bidirectional {
    fn class_name(&self) -> &'static str {
        "Bidirectional"
    }
    fn base_name(&self) -> &'static str {
        "bidirectional"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "Bidirectional", "merge_mode": self.merge_mode.name(), "layer": self.forward.config(),
        })
    }
    fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>> {
        let mut shape = self.forward.output_shape(name, input)?;
        if self.merge_mode == MergeMode::Concat
            && let Some(last) = shape.last_mut()
        {
            *last *= 2;
        }
        Ok(shape)
    }
    fn params(&self, input: &[usize]) -> Vec<ParamSpec> {
        let half = |layer: &dyn RecurrentLayer, forward: bool| {
            layer.params(input).into_iter().map(move |p| ParamSpec { name: half_name(forward, p.name), ..p })
        };
        half(self.forward.as_ref(), true).chain(half(self.backward.as_ref(), false)).collect()
    }
    fn build(&self, g: &mut Graph, x: NodeId, ctx: &BuildContext) -> Result<NodeId> {
        Ok(self.build_all(g, &[x], ctx)?.swap_remove(0))
    }
    fn output_mask(&self, _g: &mut Graph, _x: NodeId, ctx: &BuildContext) -> Result<Option<NodeId>> {
        Ok(ctx.mask.filter(|_| self.forward.options().return_sequences))
    }
    /// With `return_state` on the wrapped layer: the merged output, then the forward half's
    /// states, then the backward half's (Keras's order: `[out, h_f, c_f, h_b, c_b]`).
    fn output_count(&self) -> usize {
        2 * self.forward.output_count() - 1
    }
    fn output_shapes_all(&self, name: &str, inputs: &[(&str, &[usize])]) -> Result<Vec<Vec<usize>>> {
        let first = self.output_shape_many(name, inputs)?;
        let states = self.forward.output_shapes_all(name, inputs)?;
        Ok(std::iter::once(first)
            .chain(states[1..].iter().cloned())
            .chain(states[1..].iter().cloned())
            .collect())
    }
    fn build_all(&self, g: &mut Graph, xs: &[NodeId], ctx: &BuildContext) -> Result<Vec<NodeId>> {
        let name = ctx.name;
        let &[x] = xs else {
            return Err(Error::invalid(format!("layer '{name}' (Bidirectional)"), "takes one input"));
        };
        let sample = g.shape(x).get(1..).map(<[usize]>::to_vec).unwrap_or_default();
        let n = self.forward.params(&sample).len();
        if ctx.params.len() != 2 * n {
            return Err(Error::invalid(format!("layer '{name}'"), "parameters of both directions"));
        }
        let forward_all =
            self.forward.build_all(g, &[x], &BuildContext { params: &ctx.params[..n], ..*ctx })?;
        // The backward half draws its own dropout masks, as a separate Keras layer would.
        let seed = ctx.seed ^ 0x5bd1_e995;
        let backward_ctx = BuildContext { params: &ctx.params[n..], seed, ..*ctx };
        let backward_all = self.backward.build_all(g, &[x], &backward_ctx)?;
        let (forward, backward) = (forward_all[0], backward_all[0]);
        let states = forward_all[1..].iter().chain(&backward_all[1..]).copied();
        let merged = match self.merge_mode {
            MergeMode::Concat => g.add(Op::ConcatColumns, &[forward, backward], name)?,
            MergeMode::Sum => g.add(Op::Add, &[forward, backward], name)?,
            MergeMode::Mul => g.add(Op::Binary(BinaryOp::Multiply), &[forward, backward], name)?,
            MergeMode::Ave => {
                let sum = g.add(Op::Add, &[forward, backward], name)?;
                g.add(Op::Affine { scale: 0.5, shift: 0.0 }, &[sum], name)?
            }
        };
        // Keras's Bidirectional returns zeros at masked steps (its layers run with
        // `zero_output_for_mask`), where a lone recurrent layer repeats the previous output.
        let merged = match ctx.mask.filter(|_| self.forward.options().return_sequences) {
            Some(mask) => {
                let shape = g.shape(merged).to_vec();
                match shape[..] {
                    [batch, t, f] => {
                        let m = super::sequence::mask_over_features(g, mask, [batch, t, f], name)?;
                        g.add(Op::Binary(BinaryOp::Multiply), &[merged, m], name)?
                    }
                    _ => merged,
                }
            }
            None => merged,
        };
        Ok(std::iter::once(merged).chain(states).collect())
    }
}
