//! Keras `BatchNormalization` over the last axis (channels last).
use super::{BuildContext, Init, Layer, ParamSpec};
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId, Op};
use crate::program::Kernel;

/// Keras `BatchNormalization(momentum=0.99, epsilon=1e-3)`: in training, each channel (last
/// axis) is normalised with the batch's mean and (biased) variance, then scaled by γ (init 1)
/// and shifted by β (init 0), and the moving statistics (init 0 and 1, not trained) follow
/// the batch ones with `momentum`; in evaluate/predict the moving statistics are used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormalization {
    pub momentum: f32,
    pub epsilon: f32,
}

impl Default for BatchNormalization {
    fn default() -> Self {
        BatchNormalization { momentum: 0.99, epsilon: 1e-3 }
    }
}

impl BatchNormalization {
    /// Batch normalisation with the Keras defaults.
    pub fn new() -> BatchNormalization {
        BatchNormalization::default()
    }
}

impl Layer for BatchNormalization {
    fn class_name(&self) -> &'static str {
        "BatchNormalization"
    }
    fn base_name(&self) -> &'static str {
        "batch_normalization"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "type": "BatchNormalization", "momentum": self.momentum, "epsilon": self.epsilon })
    }
    fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>> {
        let context = || format!("layer '{name}' (BatchNormalization)");
        if input.is_empty() || input.contains(&0) {
            return Err(Error::invalid(context(), format!("needs a non-empty input, got {input:?}")));
        }
        if !(0.0..=1.0).contains(&self.momentum) || self.epsilon.is_nan() || self.epsilon <= 0.0 {
            return Err(Error::invalid(context(), "momentum must be in [0, 1] and epsilon positive"));
        }
        Ok(input.to_vec())
    }
    fn params(&self, input: &[usize]) -> Vec<ParamSpec> {
        let c = vec![input.last().copied().unwrap_or(1)];
        vec![
            ParamSpec::new("gamma", c.clone(), Init::Ones),
            ParamSpec::new("beta", c.clone(), Init::Zeros),
            ParamSpec::new("moving_mean", c.clone(), Init::Zeros).frozen(),
            ParamSpec::new("moving_variance", c, Init::Ones).frozen(),
        ]
    }
    // x [N, ..., C] is viewed as [N·..., C]: statistics per channel over batch and positions.
    fn build(&self, g: &mut Graph, x: NodeId, ctx: &BuildContext) -> Result<NodeId> {
        let shape = g.shape(x).to_vec();
        let c = shape.last().copied().unwrap_or(1);
        let rows = shape.iter().product::<usize>() / c.max(1);
        let flat =
            if shape.len() == 2 { x } else { g.add(Op::Reshape { shape: vec![rows, c] }, &[x], ctx.name)? };
        let p = ctx.params;
        let eps = self.epsilon;
        let y = if ctx.training {
            // The batch moments, computed once, feed the normalisation, its gradients and the
            // moving statistics.
            let moments = g.add(Op::BatchMoments, &[flat], ctx.name)?;
            ctx.updates.borrow_mut().push((
                Kernel::BatchNormMoving { cols: c, momentum: self.momentum },
                vec![moments, p[2], p[3]],
            ));
            g.add(Op::BatchNorm { eps }, &[flat, moments, p[0], p[1]], ctx.name)?
        } else {
            g.add(Op::BatchNormInference { eps }, &[flat, p[0], p[1], p[2], p[3]], ctx.name)?
        };
        if shape.len() == 2 { Ok(y) } else { g.add(Op::Reshape { shape }, &[y], ctx.name) }
    }
}
