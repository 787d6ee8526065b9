//! Layers: each builds primitive graph ops and declares its parameters.
mod dense;

pub use dense::Dense;

use rand::Rng;

use crate::error::Result;
use crate::graph::{Graph, NodeId, Op};
use crate::program::UnaryOp;

/// Activation functions a layer can end with (Keras names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    #[default]
    Linear,
    Relu,
    Sigmoid,
    Tanh,
    Softmax,
}

impl Activation {
    /// Keras name of the activation.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
        }
    }

    /// Parse a Keras activation name.
    pub fn parse(s: &str) -> Option<Activation> {
        Some(match s {
            "linear" | "none" => Activation::Linear,
            "relu" => Activation::Relu,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "softmax" => Activation::Softmax,
            _ => return None,
        })
    }

    /// Append the activation to node `x` (identity for linear).
    pub fn build(self, g: &mut Graph, x: NodeId, context: &str) -> Result<NodeId> {
        let op = match self {
            Activation::Linear => return Ok(x),
            Activation::Relu => Op::Unary(UnaryOp::Relu),
            Activation::Sigmoid => Op::Unary(UnaryOp::Sigmoid),
            Activation::Tanh => Op::Unary(UnaryOp::Tanh),
            Activation::Softmax => Op::Softmax,
        };
        g.add(op, &[x], context)
    }
}

/// How a parameter is initialised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Glorot (Xavier) uniform: U(−l, l), l = sqrt(6 / (fan_in + fan_out)).
    GlorotUniform { fan_in: usize, fan_out: usize },
    /// All zeros (biases).
    Zeros,
}

impl Init {
    /// Draw `n` values from `rng`.
    pub fn sample(self, n: usize, rng: &mut impl Rng) -> Vec<f32> {
        match self {
            Init::GlorotUniform { fan_in, fan_out } => {
                let limit = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt() as f32;
                (0..n).map(|_| rng.random_range(-limit..=limit)).collect()
            }
            Init::Zeros => vec![0.0; n],
        }
    }
}

/// A parameter a layer owns: its short name ("kernel", "bias"), shape and initialiser.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub init: Init,
}

/// A layer of a [`Sequential`](crate::model::Sequential) model. Shapes exclude the batch.
pub trait Layer: std::fmt::Debug + Send {
    /// Keras class name, e.g. "Dense".
    fn class_name(&self) -> &'static str;
    /// Base of the auto-generated layer name, e.g. "dense" (→ dense, dense_1, ...).
    fn base_name(&self) -> &'static str;
    /// Output shape for an input shape (per sample); errors name the layer.
    fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>>;
    /// Parameters for an input shape.
    fn params(&self, input: &[usize]) -> Vec<ParamSpec>;
    /// The activation the layer ends with (so losses can fuse softmax/sigmoid).
    fn activation(&self) -> Activation {
        Activation::Linear
    }
    /// Build the layer on `x` ([batch, input...]) with its parameter nodes (in `params` order).
    /// With `activation == false` the final activation is left out (the loss applies it).
    fn build(
        &self,
        g: &mut Graph,
        name: &str,
        x: NodeId,
        params: &[NodeId],
        activation: bool,
    ) -> Result<NodeId>;
}

/// A standalone activation layer (Keras `Activation`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivationLayer(pub Activation);

impl Layer for ActivationLayer {
    fn class_name(&self) -> &'static str {
        "Activation"
    }
    fn base_name(&self) -> &'static str {
        "activation"
    }
    fn output_shape(&self, _name: &str, input: &[usize]) -> Result<Vec<usize>> {
        Ok(input.to_vec())
    }
    fn params(&self, _input: &[usize]) -> Vec<ParamSpec> {
        vec![]
    }
    fn activation(&self) -> Activation {
        self.0
    }
    fn build(
        &self,
        g: &mut Graph,
        name: &str,
        x: NodeId,
        _params: &[NodeId],
        activation: bool,
    ) -> Result<NodeId> {
        if activation { self.0.build(g, x, name) } else { Ok(x) }
    }
}
