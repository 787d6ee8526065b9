//! Layers that only change the shape: Keras `Flatten` and `Reshape` (views, no copy).
use super::{BuildContext, Layer, ParamSpec};
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId, Op};

/// Keras `Flatten`: `[d1, d2, ...]` → `[d1·d2·...]` per sample.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Flatten;

impl Layer for Flatten {
    fn class_name(&self) -> &'static str {
        "Flatten"
    }
    fn base_name(&self) -> &'static str {
        "flatten"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "type": "Flatten" })
    }
    fn output_shape(&self, _name: &str, input: &[usize]) -> Result<Vec<usize>> {
        Ok(vec![input.iter().product()])
    }
    fn params(&self, _input: &[usize]) -> Vec<ParamSpec> {
        vec![]
    }
    fn build(&self, g: &mut Graph, x: NodeId, ctx: &BuildContext) -> Result<NodeId> {
        let shape = g.shape(x);
        let batch = shape.first().copied().unwrap_or(1);
        let features = shape.iter().skip(1).product();
        g.add(Op::Reshape { shape: vec![batch, features] }, &[x], ctx.name)
    }
}

/// Keras `Reshape(target_shape)`: the per-sample shape becomes `target_shape` (same size).
#[derive(Debug, Clone, PartialEq)]
pub struct Reshape {
    pub target_shape: Vec<usize>,
}

impl Reshape {
    /// Reshape each sample to `target_shape`.
    pub fn new(target_shape: &[usize]) -> Reshape {
        Reshape { target_shape: target_shape.to_vec() }
    }
}

impl Layer for Reshape {
    fn class_name(&self) -> &'static str {
        "Reshape"
    }
    fn base_name(&self) -> &'static str {
        "reshape"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "type": "Reshape", "target_shape": self.target_shape })
    }
    fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>> {
        let (have, want) = (input.iter().product::<usize>(), self.target_shape.iter().product::<usize>());
        if have != want {
            return Err(Error::invalid(
                format!("layer '{name}' (Reshape)"),
                format!("cannot reshape {input:?} ({have} elements) to {:?} ({want})", self.target_shape),
            ));
        }
        Ok(self.target_shape.clone())
    }
    fn params(&self, _input: &[usize]) -> Vec<ParamSpec> {
        vec![]
    }
    fn build(&self, g: &mut Graph, x: NodeId, ctx: &BuildContext) -> Result<NodeId> {
        let batch = g.shape(x).first().copied().unwrap_or(1);
        let shape = std::iter::once(batch).chain(self.target_shape.iter().copied()).collect();
        g.add(Op::Reshape { shape }, &[x], ctx.name)
    }
}
