//! Losses. Softmax and sigmoid output layers are fused with their cross-entropy (the graph
//! computes the loss from the logits), which is both faster and numerically stable. The
//! `…FromLogits` losses take the logits of a linear output layer directly (Keras
//! `from_logits=True`); binary cross-entropy on any other output treats it as probabilities,
//! clipped to [ε, 1 − ε] with ε = 1e-7 as Keras.
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId, Op};
use crate::nn::Activation;
use crate::program::PointwiseLoss;

/// Keras' `epsilon()`: the clip of probabilities in cross-entropy.
pub const EPSILON: f32 = 1e-7;

/// A training loss (Keras names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Integer class labels, softmax output.
    SparseCategoricalCrossentropy,
    /// One-hot labels, softmax output.
    CategoricalCrossentropy,
    /// Labels in [0, 1] (0/1, or soft labels as Keras accepts): on one sigmoid output unit
    /// (fused), or on outputs that are probabilities (clipped to [ε, 1 − ε]).
    BinaryCrossentropy,
    /// Mean squared error against targets of the output's shape.
    MeanSquaredError,
    /// Mean absolute error against targets of the output's shape.
    MeanAbsoluteError,
    /// Huber loss with delta 1.0 (Keras default): ½ d² for |d| ≤ 1, else |d| − ½.
    Huber,
    /// Integer class labels, linear output (the logits); softmax inside the loss.
    SparseCategoricalCrossentropyFromLogits,
    /// One-hot labels, linear output (the logits); softmax inside the loss.
    CategoricalCrossentropyFromLogits,
    /// Labels in [0, 1], linear output (the logits); sigmoid inside the loss.
    BinaryCrossentropyFromLogits,
}

impl Loss {
    /// Every loss, in a fixed order.
    pub const ALL: [Loss; 9] = [
        Loss::SparseCategoricalCrossentropy,
        Loss::CategoricalCrossentropy,
        Loss::BinaryCrossentropy,
        Loss::MeanSquaredError,
        Loss::MeanAbsoluteError,
        Loss::Huber,
        Loss::SparseCategoricalCrossentropyFromLogits,
        Loss::CategoricalCrossentropyFromLogits,
        Loss::BinaryCrossentropyFromLogits,
    ];

    /// Keras name (with `_from_logits` for `from_logits=True`).
    pub fn name(&self) -> &'static str {
        match self {
            Loss::SparseCategoricalCrossentropy => "sparse_categorical_crossentropy",
            Loss::CategoricalCrossentropy => "categorical_crossentropy",
            Loss::BinaryCrossentropy => "binary_crossentropy",
            Loss::MeanSquaredError => "mse",
            Loss::MeanAbsoluteError => "mae",
            Loss::Huber => "huber",
            Loss::SparseCategoricalCrossentropyFromLogits => "sparse_categorical_crossentropy_from_logits",
            Loss::CategoricalCrossentropyFromLogits => "categorical_crossentropy_from_logits",
            Loss::BinaryCrossentropyFromLogits => "binary_crossentropy_from_logits",
        }
    }

    /// The loss with Keras name `name` (also the long names `mean_squared_error`,
    /// `mean_absolute_error`).
    pub fn from_name(name: &str) -> Result<Loss> {
        let name = match name {
            "mean_squared_error" => "mse",
            "mean_absolute_error" => "mae",
            n => n,
        };
        Loss::ALL
            .into_iter()
            .find(|l| l.name() == name)
            .ok_or_else(|| Error::invalid("loss", format!("unknown loss '{name}'")))
    }

    /// Labels are class indices (one per sample).
    pub fn sparse_labels(&self) -> bool {
        matches!(self, Loss::SparseCategoricalCrossentropy | Loss::SparseCategoricalCrossentropyFromLogits)
    }

    /// Labels are one-hot rows (categorical cross-entropy).
    pub fn one_hot_labels(&self) -> bool {
        matches!(self, Loss::CategoricalCrossentropy | Loss::CategoricalCrossentropyFromLogits)
    }

    /// Binary cross-entropy (labels in [0, 1]).
    pub fn binary(&self) -> bool {
        matches!(self, Loss::BinaryCrossentropy | Loss::BinaryCrossentropyFromLogits)
    }

    /// A regression loss (targets of the output's shape, no classes).
    pub fn regression(&self) -> bool {
        matches!(self, Loss::MeanSquaredError | Loss::MeanAbsoluteError | Loss::Huber)
    }

    /// Takes logits (Keras `from_logits=True`): the model's outputs are not probabilities.
    pub fn from_logits(&self) -> bool {
        matches!(
            self,
            Loss::SparseCategoricalCrossentropyFromLogits
                | Loss::CategoricalCrossentropyFromLogits
                | Loss::BinaryCrossentropyFromLogits
        )
    }

    /// The same cross-entropy on logits (itself if it already is); None for the regression
    /// losses.
    pub fn logits_form(self) -> Option<Loss> {
        match self {
            Loss::SparseCategoricalCrossentropy => Some(Loss::SparseCategoricalCrossentropyFromLogits),
            Loss::CategoricalCrossentropy => Some(Loss::CategoricalCrossentropyFromLogits),
            Loss::BinaryCrossentropy => Some(Loss::BinaryCrossentropyFromLogits),
            l if l.from_logits() => Some(l),
            _ => None,
        }
    }

    /// The output activation a model trained with this loss ends with, as Keras models are
    /// built: softmax for (sparse) categorical cross-entropy, sigmoid for binary
    /// cross-entropy, linear for the `from_logits` forms and the regression losses.
    pub fn output_activation(&self) -> Activation {
        match self {
            Loss::SparseCategoricalCrossentropy | Loss::CategoricalCrossentropy => Activation::Softmax,
            Loss::BinaryCrossentropy => Activation::Sigmoid,
            _ => Activation::Linear,
        }
    }

    /// `Ok` when `smoothing` is a valid Keras `label_smoothing` for this loss: in [0, 1],
    /// and 0 unless the loss is categorical (one-hot) or binary cross-entropy.
    pub fn check_label_smoothing(&self, smoothing: f32) -> Result<()> {
        if !(0.0..=1.0).contains(&smoothing) {
            return Err(Error::invalid("label_smoothing", format!("{smoothing} is not in [0, 1]")));
        }
        let smoothable = self.binary()
            || matches!(self, Loss::CategoricalCrossentropy | Loss::CategoricalCrossentropyFromLogits);
        if smoothing != 0.0 && !smoothable {
            return Err(Error::invalid(
                "label_smoothing",
                format!("applies to categorical and binary cross-entropy, not {} (as Keras)", self.name()),
            ));
        }
        Ok(())
    }

    /// The labels the loss sees with `smoothing` over `classes` outputs (binary: 2), Keras's
    /// y·(1 − s) + s/k, as (scale, shift). Only the loss sees them: metrics take the labels
    /// as given (as Keras).
    pub fn smoothing_affine(&self, smoothing: f32, classes: usize) -> (f32, f32) {
        let k = if self.binary() { 2 } else { classes.max(1) };
        (1.0 - smoothing, smoothing / k as f32)
    }

    /// Whether the loss consumes the logits instead of the activated output, given the
    /// model's last activation. Errors for combinations kiln does not support.
    pub fn fuses(&self, last: Activation) -> Result<bool> {
        let needs = |what: &str| {
            Err(Error::invalid(
                "loss",
                format!("{} needs a {what} output layer, the model ends with {}", self.name(), last.name()),
            ))
        };
        match (self, last) {
            (Loss::SparseCategoricalCrossentropy | Loss::CategoricalCrossentropy, Activation::Softmax) => {
                Ok(true)
            }
            (Loss::SparseCategoricalCrossentropy | Loss::CategoricalCrossentropy, _) => needs("softmax"),
            (Loss::BinaryCrossentropy, Activation::Sigmoid) => Ok(true),
            (Loss::BinaryCrossentropy, Activation::Softmax) => needs("sigmoid (or probability)"),
            (Loss::BinaryCrossentropy, _) => Ok(false),
            (
                Loss::SparseCategoricalCrossentropyFromLogits
                | Loss::CategoricalCrossentropyFromLogits
                | Loss::BinaryCrossentropyFromLogits,
                Activation::Linear,
            ) => Ok(true),
            (
                Loss::SparseCategoricalCrossentropyFromLogits
                | Loss::CategoricalCrossentropyFromLogits
                | Loss::BinaryCrossentropyFromLogits,
                _,
            ) => needs("linear (logits)"),
            (Loss::MeanSquaredError | Loss::MeanAbsoluteError | Loss::Huber, _) => Ok(false),
        }
    }

    /// The scalar loss node from the model's head and the labels; `fused` (from
    /// [`Loss::fuses`]): the head is the logits, else the activated output. `weights` [batch]:
    /// per-sample weights, the loss (1/batch) Σ_i w_i · l_i (Keras's `sample_weight` under the
    /// default reduction "sum_over_batch_size").
    pub fn build(
        &self,
        g: &mut Graph,
        head: NodeId,
        labels: NodeId,
        weights: Option<NodeId>,
        fused: bool,
    ) -> Result<NodeId> {
        let weighted = weights.is_some();
        let op = match self {
            Loss::SparseCategoricalCrossentropy | Loss::SparseCategoricalCrossentropyFromLogits => {
                Op::SoftmaxCrossEntropy { sparse: true, weighted }
            }
            Loss::CategoricalCrossentropy | Loss::CategoricalCrossentropyFromLogits => {
                Op::SoftmaxCrossEntropy { sparse: false, weighted }
            }
            Loss::BinaryCrossentropy if !fused => {
                Op::Pointwise { loss: PointwiseLoss::BinaryCrossEntropy { eps: EPSILON }, weighted }
            }
            Loss::BinaryCrossentropy | Loss::BinaryCrossentropyFromLogits => {
                Op::SigmoidBinaryCrossEntropy { weighted }
            }
            Loss::MeanSquaredError => Op::MeanSquaredError { weighted },
            Loss::MeanAbsoluteError => Op::Pointwise { loss: PointwiseLoss::AbsoluteError, weighted },
            Loss::Huber => Op::Pointwise { loss: PointwiseLoss::Huber { delta: 1.0 }, weighted },
        };
        let inputs: Vec<NodeId> = [head, labels].into_iter().chain(weights).collect();
        g.add(op, &inputs, "loss")
    }
}
