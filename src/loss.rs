//! Losses. Softmax and sigmoid output layers are fused with their cross-entropy (the graph
//! computes the loss from the logits), which is both faster and numerically stable.
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId, Op};
use crate::nn::Activation;

/// A training loss (Keras names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Integer class labels, softmax output.
    SparseCategoricalCrossentropy,
    /// One-hot labels, softmax output.
    CategoricalCrossentropy,
    /// Labels in {0, 1}, one sigmoid output unit.
    BinaryCrossentropy,
    /// Mean squared error against targets of the output's shape.
    MeanSquaredError,
}

impl Loss {
    /// Keras name.
    pub fn name(&self) -> &'static str {
        match self {
            Loss::SparseCategoricalCrossentropy => "sparse_categorical_crossentropy",
            Loss::CategoricalCrossentropy => "categorical_crossentropy",
            Loss::BinaryCrossentropy => "binary_crossentropy",
            Loss::MeanSquaredError => "mse",
        }
    }

    /// Labels are class indices (one per sample).
    pub fn sparse_labels(&self) -> bool {
        matches!(self, Loss::SparseCategoricalCrossentropy)
    }

    /// Whether the loss consumes the logits instead of the activated output, given the
    /// model's last activation. Errors for combinations kiln does not support yet.
    pub fn fuses(&self, last: Activation) -> Result<bool> {
        match (self, last) {
            (Loss::SparseCategoricalCrossentropy | Loss::CategoricalCrossentropy, Activation::Softmax) => {
                Ok(true)
            }
            (Loss::BinaryCrossentropy, Activation::Sigmoid) => Ok(true),
            (Loss::MeanSquaredError, _) => Ok(false),
            (l, a) => Err(Error::invalid(
                "loss",
                format!(
                    "{} needs a {} output layer, the model ends with {}",
                    l.name(),
                    if matches!(l, Loss::BinaryCrossentropy) { "sigmoid" } else { "softmax" },
                    a.name()
                ),
            )),
        }
    }

    /// The scalar loss node from the model's head (logits when fused) and the labels.
    pub fn build(&self, g: &mut Graph, head: NodeId, labels: NodeId) -> Result<NodeId> {
        let op = match self {
            Loss::SparseCategoricalCrossentropy => Op::SoftmaxCrossEntropy { sparse: true },
            Loss::CategoricalCrossentropy => Op::SoftmaxCrossEntropy { sparse: false },
            Loss::BinaryCrossentropy => Op::SigmoidBinaryCrossEntropy,
            Loss::MeanSquaredError => Op::MeanSquaredError,
        };
        g.add(op, &[head, labels], "loss")
    }
}
