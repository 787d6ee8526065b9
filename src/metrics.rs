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
    /// Area under the ROC curve as Keras `AUC()`: `num_thresholds` evenly spaced thresholds
    /// (200 by default), true/false positive rates at each from device histograms, and the
    /// trapezoidal sum. On the probabilities (the sigmoid/softmax of a `from_logits` model's
    /// outputs). With several outputs every (sample, class) pair counts as one binary
    /// decision (Keras's micro-averaged AUC on one-hot labels; sparse labels are taken as
    /// one-hot). 0 when the labels hold only one class, as Keras.
    Auc { num_thresholds: usize },
    /// Precision of each class, averaged over the classes (Keras `Precision` per class /
    /// `F1Score(average="macro")`-style): one class per sample by argmax, or each output unit
    /// thresholded at 0.5 under binary cross-entropy.
    MacroPrecision,
    /// Recall of each class, averaged over the classes.
    MacroRecall,
    /// F1 of each class, averaged over the classes (Keras `F1Score(average="macro")`).
    MacroF1,
}

/// Keras's default number of AUC thresholds.
pub const AUC_THRESHOLDS: usize = 200;

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
            Metric::Auc { .. } => "auc",
            Metric::MacroPrecision => "macro_precision",
            Metric::MacroRecall => "macro_recall",
            Metric::MacroF1 => "macro_f1",
        }
    }

    /// The name [`Metric::parse`] reads back to this metric (top-k with k ≠ 5:
    /// `top_<k>_categorical_accuracy`).
    pub fn id(&self) -> String {
        match self {
            Metric::TopKAccuracy { k } if *k != 5 => format!("top_{k}_categorical_accuracy"),
            Metric::Auc { num_thresholds } if *num_thresholds != AUC_THRESHOLDS => {
                format!("auc_{num_thresholds}")
            }
            m => m.name().to_string(),
        }
    }

    /// Parse a Keras metric name.
    pub fn parse(s: &str) -> Result<Metric> {
        let top_k = s
            .strip_prefix("top_")
            .and_then(|r| r.strip_suffix("_categorical_accuracy"))
            .and_then(|k| k.parse::<usize>().ok());
        let auc = s.strip_prefix("auc_").and_then(|n| n.parse::<usize>().ok());
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
            "auc" | "AUC" => Ok(Metric::Auc { num_thresholds: AUC_THRESHOLDS }),
            "macro_precision" | "precision_macro" => Ok(Metric::MacroPrecision),
            "macro_recall" | "recall_macro" => Ok(Metric::MacroRecall),
            "macro_f1" | "f1_macro" => Ok(Metric::MacroF1),
            _ if top_k.is_some_and(|k| k > 0) => Ok(Metric::TopKAccuracy { k: top_k.unwrap_or(5) }),
            _ if auc.is_some() => Ok(Metric::Auc { num_thresholds: auc.unwrap_or(AUC_THRESHOLDS) }),
            other => Err(Error::invalid(
                "metric",
                format!(
                    "unknown metric '{other}' (known: accuracy, top_k_categorical_accuracy, mae, mse, \
                     precision, recall, f1_score, auc, auc_<thresholds>, macro_precision, macro_recall, \
                     macro_f1)"
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
            Metric::Auc { num_thresholds: n } if !(2..=MAX_AUC_THRESHOLDS).contains(n) => {
                Err(Error::invalid(
                    "metric",
                    format!("AUC num_thresholds {n} is not in 2..={MAX_AUC_THRESHOLDS}"),
                ))
            }
            Metric::Auc { .. } | Metric::MacroPrecision | Metric::MacroRecall | Metric::MacroF1
                if loss.regression() =>
            {
                fail("needs class labels (a cross-entropy loss)")
            }
            _ => Ok(()),
        }
    }

    /// Accumulator values the metric adds per batch (counts or sums) for a model with
    /// `outputs` output units.
    pub fn accum_len(&self, outputs: usize) -> usize {
        match self {
            Metric::Precision | Metric::Recall | Metric::F1 => 3,
            Metric::Auc { num_thresholds } => 2 * num_thresholds,
            Metric::MacroPrecision | Metric::MacroRecall | Metric::MacroF1 => 3 * outputs,
            // The correct count, and the valid steps of masked per-step outputs (else 0).
            Metric::Accuracy | Metric::TopKAccuracy { .. } => 2,
            _ => 1,
        }
    }

    /// The metric's value from its epoch totals `acc` over `samples` samples.
    pub fn value(&self, acc: &[f32], samples: usize) -> f32 {
        let at = |i: usize| acc.get(i).copied().unwrap_or(0.0);
        let (p, r, f1) = precision_recall_f1(at(0).into(), at(1).into(), at(2).into());
        match self {
            Metric::Precision => p as f32,
            Metric::Recall => r as f32,
            Metric::F1 => f1 as f32,
            Metric::Auc { .. } => roc_auc(acc),
            Metric::MacroPrecision | Metric::MacroRecall | Metric::MacroF1 => macro_average(*self, acc),
            Metric::Accuracy | Metric::TopKAccuracy { .. } if at(1) > 0.0 => at(0) / at(1),
            _ => at(0) / samples.max(1) as f32,
        }
    }
}

/// Most AUC thresholds (the device histogram kernel's limit).
pub const MAX_AUC_THRESHOLDS: usize = 1024;

/// `a / b`, or 0 when b is 0 (TensorFlow's `divide_no_nan`).
fn ratio(a: f64, b: f64) -> f64 {
    if b != 0.0 { a / b } else { 0.0 }
}

/// Precision TP / (TP + FP), recall TP / (TP + FN) and F1 = 2·P·R / (P + R), each 0 where its
/// denominator is 0 (as Keras) — for the binary and macro metrics and `kiln eval`'s report.
pub fn precision_recall_f1(tp: f64, fp: f64, fneg: f64) -> (f64, f64, f64) {
    let (p, r) = (ratio(tp, tp + fp), ratio(tp, tp + fneg));
    (p, r, ratio(2.0 * p * r, p + r))
}

/// Keras's ROC AUC (summation_method "interpolation") from the bucket histograms `acc` =
/// [positives per bucket (T), negatives per bucket (T)]: TP and FP at threshold t are the sums
/// over buckets ≥ t, the rates TP/P and FP/N, and the area Σ (fpr_t − fpr_t+1)·(tpr_t + tpr_t+1)/2.
pub fn roc_auc(acc: &[f32]) -> f32 {
    let t = acc.len() / 2;
    let suffix_sums = |h: &[f32]| -> Vec<f64> {
        let mut out = vec![0.0; h.len()];
        let mut total = 0.0;
        for (o, &v) in out.iter_mut().zip(h).rev() {
            total += v as f64;
            *o = total;
        }
        out
    };
    let (tp, fp) = (suffix_sums(&acc[..t]), suffix_sums(&acc[t..2 * t]));
    let (positives, negatives) = (tp.first().copied().unwrap_or(0.0), fp.first().copied().unwrap_or(0.0));
    let tpr: Vec<f64> = tp.iter().map(|&v| ratio(v, positives)).collect();
    let fpr: Vec<f64> = fp.iter().map(|&v| ratio(v, negatives)).collect();
    let area: f64 =
        (0..t.saturating_sub(1)).map(|i| (fpr[i] - fpr[i + 1]) * (tpr[i] + tpr[i + 1]) / 2.0).sum();
    area as f32
}

/// The mean over classes of precision, recall or F1 from `acc` = [TP (k), FP (k), FN (k)].
fn macro_average(metric: Metric, acc: &[f32]) -> f32 {
    let k = acc.len() / 3;
    if k == 0 {
        return 0.0;
    }
    let per_class = |c: usize| {
        let (p, r, f1) = precision_recall_f1(acc[c].into(), acc[k + c].into(), acc[2 * k + c].into());
        match metric {
            Metric::MacroPrecision => p,
            Metric::MacroRecall => r,
            _ => f1,
        }
    };
    ((0..k).map(per_class).sum::<f64>() / k as f64) as f32
}

fn why_loss(loss: Loss) -> String {
    format!("loss {}", loss.name())
}
