//! Regularisation: Keras `Dropout`, `RandomFlip` and the L1/L2 weight regularisers of Dense and
//! Conv2D.
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
    /// Dropout keeps the mask (Keras `supports_masking`).
    fn output_mask(&self, _g: &mut Graph, _x: NodeId, ctx: &BuildContext) -> Result<Option<NodeId>> {
        Ok(ctx.mask)
    }
    fn build(&self, g: &mut Graph, x: NodeId, ctx: &BuildContext) -> Result<NodeId> {
        if !ctx.training || self.rate == 0.0 {
            return Ok(x);
        }
        g.add(Op::Dropout { rate: self.rate, seed: ctx.seed, steps: 1 }, &[x], ctx.name)
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

/// Keras `L1L2` kernel regulariser: adds l1·Σ|w| + l2·Σw² to the loss (no ½ factor, as Keras),
/// so the reported loss includes it and the gradient gets l1·sign(w) + 2·l2·w.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Regularizer {
    pub l1: f32,
    pub l2: f32,
}

impl Regularizer {
    /// Keras `l1(factor)` (Keras's default factor: 0.01).
    pub fn l1(factor: f32) -> Regularizer {
        Regularizer { l1: factor, l2: 0.0 }
    }

    /// Keras `l2(factor)` (Keras's default factor: 0.01).
    pub fn l2(factor: f32) -> Regularizer {
        Regularizer { l1: 0.0, l2: factor }
    }

    /// Keras `l1_l2(l1, l2)`.
    pub fn l1_l2(l1: f32, l2: f32) -> Regularizer {
        Regularizer { l1, l2 }
    }

    /// Check the factors (finite, at least 0); `context` names the layer.
    pub fn validate(&self, context: &str) -> Result<()> {
        for (name, v) in [("l1", self.l1), ("l2", self.l2)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(
                    context,
                    format!("kernel_regularizer {name} must be at least 0, got {v}"),
                ));
            }
        }
        Ok(())
    }

    /// The model-file form: `{"l1": …, "l2": …}`.
    pub fn config(&self) -> serde_json::Value {
        serde_json::json!({ "l1": self.l1, "l2": self.l2 })
    }
}
