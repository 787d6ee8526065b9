//! Metrics computed on the device during fit/evaluate and read back once per epoch. Each
//! metric owns one accumulator slot per program kind; the training and evaluation steps add
//! their batch's counts (or sums) to it, and the host turns the epoch's totals into the value.
use crate::error::{Error, Result};
use crate::loss::Loss;

/// A metric reported next to the loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Fraction of samples whose predicted class (argmax, or 0.5 threshold for one sigmoid
    /// unit) equals the label.
    Accuracy,
    /// Fraction of samples whose label is among the `k` highest predictions (ties at the
    /// boundary count as in, as TensorFlow's `in_top_k`). Keras `top_k_categorical_accuracy`
    /// (k = 5 by default); labels as the loss takes them (sparse or one-hot).
    TopKAccuracy { k: usize },
    /// Mean absolute error of the outputs against the targets.
    MeanAbsoluteError,
    /// Mean squared error of the outputs against the targets.
    MeanSquaredError,
    /// Binary precision TP / (TP + FP) of `output > 0.5` (0 when nothing is predicted
    /// positive, as Keras).
    Precision,
    /// Binary recall TP / (TP + FN) (0 when there are no positives).
    Recall,
    /// Binary F1 = 2·P·R / (P + R) (0 when P + R = 0).
    F1,
}

impl Metric {
    /// Keras name, used as the History key.
    pub fn name(&self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::TopKAccuracy { .. } => "top_k_categorical_accuracy",
            Metric::MeanAbsoluteError => "mae",
            Metric::MeanSquaredError => "mse",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::F1 => "f1_score",
        }
    }

    /// The name [`Metric::parse`] reads back to this metric (top-k with k ≠ 5:
    /// `top_<k>_categorical_accuracy`).
    pub fn id(&self) -> String {
        match self {
            Metric::TopKAccuracy { k } if *k != 5 => format!("top_{k}_categorical_accuracy"),
            m => m.name().to_string(),
        }
    }

    /// Parse a Keras metric name.
    pub fn parse(s: &str) -> Result<Metric> {
        let top_k = s
            .strip_prefix("top_")
            .and_then(|r| r.strip_suffix("_categorical_accuracy"))
            .and_then(|k| k.parse::<usize>().ok());
        match s {
            "accuracy" | "acc" => Ok(Metric::Accuracy),
            "top_k_categorical_accuracy" | "sparse_top_k_categorical_accuracy" | "top_k_accuracy" => {
                Ok(Metric::TopKAccuracy { k: 5 })
            }
            "mae" | "mean_absolute_error" => Ok(Metric::MeanAbsoluteError),
            "mse" | "mean_squared_error" => Ok(Metric::MeanSquaredError),
            "precision" => Ok(Metric::Precision),
            "recall" => Ok(Metric::Recall),
            "f1" | "f1_score" => Ok(Metric::F1),
            _ if top_k.is_some_and(|k| k > 0) => Ok(Metric::TopKAccuracy { k: top_k.unwrap_or(5) }),
            other => Err(Error::invalid(
                "metric",
                format!(
                    "unknown metric '{other}' (known: accuracy, top_k_categorical_accuracy, mae, mse, \
                     precision, recall, f1_score)"
                ),
            )),
        }
    }

    /// `Ok` when the metric can be computed with `loss`'s labels.
    pub fn check(&self, loss: Loss) -> Result<()> {
        let fail = |why: &str| {
            Err(Error::invalid("metric", format!("{} {why}, not with {}", self.name(), why_loss(loss))))
        };
        match self {
            Metric::Accuracy => Ok(()),
            Metric::TopKAccuracy { k: 0 } => Err(Error::invalid("metric", "top-k accuracy needs k ≥ 1")),
            Metric::TopKAccuracy { .. } if loss.binary() || loss.regression() => {
                fail("needs class labels (categorical cross-entropy)")
            }
            Metric::MeanAbsoluteError
            | Metric::MeanSquaredError
            | Metric::Precision
            | Metric::Recall
            | Metric::F1
                if loss.sparse_labels() =>
            {
                fail("needs targets of the output's shape")
            }
            _ => Ok(()),
        }
    }

    /// Accumulator values the metric adds per batch (counts or sums).
    pub fn accum_len(&self) -> usize {
        match self {
            Metric::Precision | Metric::Recall | Metric::F1 => 3,
            _ => 1,
        }
    }

    /// The metric's value from its epoch totals `acc` over `samples` samples.
    pub fn value(&self, acc: &[f32], samples: usize) -> f32 {
        let ratio = |a: f32, b: f32| if b > 0.0 { a / b } else { 0.0 };
        let at = |i: usize| acc.get(i).copied().unwrap_or(0.0);
        let (tp, fp, fneg) = (at(0), at(1), at(2));
        match self {
            Metric::Precision => ratio(tp, tp + fp),
            Metric::Recall => ratio(tp, tp + fneg),
            Metric::F1 => {
                let (p, r) = (ratio(tp, tp + fp), ratio(tp, tp + fneg));
                ratio(2.0 * p * r, p + r)
            }
            _ => at(0) / samples.max(1) as f32,
        }
    }
}

fn why_loss(loss: Loss) -> String {
    format!("loss {}", loss.name())
}
