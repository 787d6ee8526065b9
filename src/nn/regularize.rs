//! Regularisation layers: Keras `Dropout`.
use super::{BuildContext, Layer, ParamSpec};
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId, Op};

/// Keras `Dropout(rate)`: in training, each element is zeroed with probability `rate` and the
/// rest are scaled by 1 / (1 − rate) (inverted dropout); in evaluate/predict it is the
/// identity. Masks come from the model seed, the layer and the step, so runs repeat exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout {
    pub rate: f32,
}

impl Dropout {
    /// Dropout with `rate` in [0, 1).
    pub fn new(rate: f32) -> Dropout {
        Dropout { rate }
    }
}

impl Layer for Dropout {
    fn class_name(&self) -> &'static str {
        "Dropout"
    }
    fn base_name(&self) -> &'static str {
        "dropout"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "type": "Dropout", "rate": self.rate })
    }
    fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>> {
        if !(0.0..1.0).contains(&self.rate) {
            return Err(Error::invalid(
                format!("layer '{name}' (Dropout)"),
                format!("rate must be in [0, 1), got {}", self.rate),
            ));
        }
        Ok(input.to_vec())
    }
    fn params(&self, _input: &[usize]) -> Vec<ParamSpec> {
        vec![]
    }
    fn build(&self, g: &mut Graph, x: NodeId, ctx: &BuildContext) -> Result<NodeId> {
        if !ctx.training || self.rate == 0.0 {
            return Ok(x);
        }
        g.add(Op::Dropout { rate: self.rate, seed: ctx.seed }, &[x], ctx.name)
    }
}

/// Keras `RandomFlip("horizontal")`: in training, each image is mirrored left to right with
/// probability ½ (drawn from the model seed, the layer, the step and the image, so runs
/// repeat exactly); in evaluate/predict it is the identity. Takes NHWC images.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RandomFlip;

impl Layer for RandomFlip {
    fn class_name(&self) -> &'static str {
        "RandomFlip"
    }
    fn base_name(&self) -> &'static str {
        "random_flip"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "type": "RandomFlip", "mode": "horizontal" })
    }
    fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>> {
        super::image_shape(name, "RandomFlip", input)?;
        Ok(input.to_vec())
    }
    fn params(&self, _input: &[usize]) -> Vec<ParamSpec> {
        vec![]
    }
    fn build(&self, g: &mut Graph, x: NodeId, ctx: &BuildContext) -> Result<NodeId> {
        if !ctx.training {
            return Ok(x);
        }
        g.add(Op::RandomFlip { seed: ctx.seed }, &[x], ctx.name)
    }
}
