//! Keras `Embedding(input_dim, output_dim, mask_zero)`: integer ids `[steps]` (as f32) in,
//! rows of a learned `[input_dim, output_dim]` table out, `[steps, output_dim]`. The gradient
//! is a scatter-add into the table in a fixed order (no float atomics, the same bits every
//! run). With `mask_zero`, id 0 is padding: the mask goes to the recurrent layers downstream.
use super::{BuildContext, Init, Layer, ParamSpec};
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId, Op};
use crate::tensor::Tensor;

/// Keras `Embedding` (see the module docs); embeddings start U(−0.05, 0.05), as Keras's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Embedding {
    pub input_dim: usize,
    pub output_dim: usize,
    pub mask_zero: bool,
}

impl Embedding {
    /// A table of `input_dim` ids × `output_dim` values.
    pub fn new(input_dim: usize, output_dim: usize) -> Embedding {
        Embedding { input_dim, output_dim, mask_zero: false }
    }

    /// Id 0 is padding (Keras `mask_zero=True`).
    pub fn mask_zero(mut self, on: bool) -> Embedding {
        self.mask_zero = on;
        self
    }
}

impl Layer for Embedding {
    fn class_name(&self) -> &'static str {
        "Embedding"
    }
    fn base_name(&self) -> &'static str {
        "embedding"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "Embedding", "input_dim": self.input_dim, "output_dim": self.output_dim,
            "mask_zero": self.mask_zero,
        })
    }
    fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>> {
        let context = || format!("layer '{name}' (Embedding)");
        if self.input_dim == 0 || self.output_dim == 0 {
            return Err(Error::invalid(context(), "input_dim and output_dim must be at least 1"));
        }
        match *input {
            [steps] => Ok(vec![steps, self.output_dim]),
            _ => Err(Error::invalid(context(), format!("expects sequences of ids (steps,), got {input:?}"))),
        }
    }
    fn params(&self, _input: &[usize]) -> Vec<ParamSpec> {
        vec![ParamSpec::new(
            "embeddings",
            vec![self.input_dim, self.output_dim],
            Init::Uniform { limit: 0.05 },
        )]
    }
    fn check_input(&self, name: &str, x: &Tensor) -> Result<()> {
        let steps = x.shape.get(1).copied().unwrap_or(1).max(1);
        for (i, &id) in x.data.iter().enumerate() {
            if id.fract() != 0.0 || id < 0.0 || id as usize >= self.input_dim {
                return Err(Error::invalid(
                    format!("input of layer '{name}' (Embedding)"),
                    format!(
                        "id {id} at batch row {}, step {} is not an integer in 0..{}",
                        i / steps,
                        i % steps,
                        self.input_dim
                    ),
                ));
            }
        }
        Ok(())
    }
    // ids [N, T] → [N, T, output_dim].
    fn build(&self, g: &mut Graph, x: NodeId, ctx: &BuildContext) -> Result<NodeId> {
        g.add(Op::Embedding, &[ctx.params[0], x], ctx.name)
    }
    fn output_mask(&self, g: &mut Graph, x: NodeId, ctx: &BuildContext) -> Result<Option<NodeId>> {
        if !self.mask_zero {
            return Ok(None);
        }
        let mut shape = g.shape(x).to_vec();
        shape.push(1);
        let ids = g.add(Op::Reshape { shape }, &[x], ctx.name)?;
        Ok(Some(g.add(Op::SequenceMask { value: 0.0 }, &[ids], ctx.name)?))
    }
}
