//! Dense (fully connected) layer: y = act(x · W + b).
use super::{Activation, BuildContext, Init, Layer, ParamSpec, Regularizer};
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId, Op};

/// Keras `Dense(units, activation)`: kernel [in, units] Glorot-uniform, bias [units] zeros.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dense {
    pub units: usize,
    pub activation: Activation,
    pub use_bias: bool,
    /// Weight penalty on the kernel (Keras `kernel_regularizer`), added to the loss.
    pub kernel_regularizer: Option<Regularizer>,
}

impl Dense {
    /// A dense layer with `units` outputs and an activation.
    pub fn new(units: usize, activation: Activation) -> Dense {
        Dense { units, activation, use_bias: true, kernel_regularizer: None }
    }

    /// The same layer with a kernel regulariser (Keras `kernel_regularizer=l2(0.01)`).
    pub fn kernel_regularizer(mut self, r: Regularizer) -> Dense {
        self.kernel_regularizer = Some(r);
        self
    }
}

impl Layer for Dense {
    fn class_name(&self) -> &'static str {
        "Dense"
    }
    fn base_name(&self) -> &'static str {
        "dense"
    }
    fn config(&self) -> serde_json::Value {
        let mut c = serde_json::json!({
            "type": "Dense", "units": self.units, "activation": self.activation.name(), "use_bias": self.use_bias,
        });
        if let Some(r) = self.kernel_regularizer {
            c["kernel_regularizer"] = r.config();
        }
        c
    }
    fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>> {
        if !(1..=2).contains(&input.len()) {
            return Err(Error::invalid(
                format!("layer '{name}' (Dense)"),
                format!(
                    "expects features (features,) or sequences (steps, features), got {input:?}; add a \
                     Flatten layer first"
                ),
            ));
        }
        if self.units == 0 {
            return Err(Error::invalid(format!("layer '{name}' (Dense)"), "units must be at least 1"));
        }
        if let Some(r) = self.kernel_regularizer {
            r.validate(&format!("layer '{name}' (Dense)"))?;
        }
        // On sequences, Dense applies to the last axis, every step alike (as Keras).
        Ok(input[..input.len() - 1].iter().copied().chain([self.units]).collect())
    }
    fn params(&self, input: &[usize]) -> Vec<ParamSpec> {
        let fan_in = input.last().copied().unwrap_or(0);
        let mut p = vec![
            ParamSpec::new(
                "kernel",
                vec![fan_in, self.units],
                Init::GlorotUniform { fan_in, fan_out: self.units },
            )
            .regularized(self.kernel_regularizer),
        ];
        if self.use_bias {
            p.push(ParamSpec::new("bias", vec![self.units], Init::Zeros));
        }
        p
    }
    fn activation(&self) -> Activation {
        self.activation
    }
    /// On sequences the mask passes through (Keras `supports_masking`).
    fn output_mask(&self, _g: &mut Graph, _x: NodeId, ctx: &BuildContext) -> Result<Option<NodeId>> {
        Ok(ctx.mask)
    }
    // x: [N, in], kernel: [in, units], bias: [units] -> [N, units]; sequences x: [N, T, in]
    // are the rows [N·T, in] of one product (a view each way) -> [N, T, units].
    fn build(&self, g: &mut Graph, x: NodeId, ctx: &BuildContext) -> Result<NodeId> {
        let name = ctx.name;
        let shape = g.shape(x).to_vec();
        let rows = shape[..shape.len() - 1].iter().product::<usize>();
        let fan_in = shape.last().copied().unwrap_or(0);
        let x = match shape.len() {
            2 => x,
            _ => g.add(Op::Reshape { shape: vec![rows, fan_in] }, &[x], name)?,
        };
        let mut y = g.add(Op::MatMul { trans_a: false, trans_b: false }, &[x, ctx.params[0]], name)?;
        if self.use_bias {
            y = g.add(Op::BiasAdd, &[y, ctx.params[1]], name)?;
        }
        let y = if ctx.activation { self.activation.build(g, y, name)? } else { y };
        match shape.len() {
            2 => Ok(y),
            _ => {
                let out: Vec<usize> = shape[..shape.len() - 1].iter().copied().chain([self.units]).collect();
                g.add(Op::Reshape { shape: out }, &[y], name)
            }
        }
    }
}
