//! Per-sample loss weights for `fit` (Keras `sample_weight` and `class_weight`): checked
//! against the data and turned into one weight per training sample.
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::tensor::Tensor;

/// The class of each sample for `class_weight`, as Keras maps labels: sparse labels as they
/// are, one-hot rows by their argmax (first maximum), binary labels [n, 1] rounded (half to
/// even, as TensorFlow's `round`). `outputs`: the model's output units.
pub fn sample_classes(loss: Loss, outputs: usize, y: &Tensor) -> Result<Vec<usize>> {
    if loss.regression() {
        return Err(Error::invalid(
            "class_weight",
            format!("needs class labels, {} is a regression loss (use sample_weight)", loss.name()),
        ));
    }
    if loss.binary() && outputs != 1 {
        return Err(Error::invalid(
            "class_weight",
            format!(
                "with {} needs one sigmoid output unit ([n, 1] labels, classes 0 and 1); the model has {outputs}",
                loss.name()
            ),
        ));
    }
    let width = y.row_len().max(1);
    Ok(y.data
        .chunks(width)
        .map(|row| match loss {
            l if l.sparse_labels() => row[0] as usize,
            l if l.binary() => row[0].round_ties_even() as usize,
            _ => row.iter().enumerate().fold(0, |best, (j, &v)| if v > row[best] { j } else { best }),
        })
        .collect())
}

/// One weight per training sample, the first `train` of the `n` samples of `y` (the rest is
/// a validation split, unweighted), from `sample_weight` ([n] or [n, 1], one per sample of x,
/// as Keras) or `class_weight` (index = class); None when neither is given. Weights must be
/// finite and ≥ 0; giving both is an error, as in Keras.
pub fn sample_weights(
    loss: Loss,
    outputs: usize,
    y: &Tensor,
    (n, train): (usize, usize),
    sample_weight: Option<&Tensor>,
    class_weight: Option<&[f32]>,
) -> Result<Option<Tensor>> {
    let train = train.min(n);
    let check = |what: &str, which: &str, w: &[f32]| match w
        .iter()
        .enumerate()
        .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
    {
        Some((i, v)) => {
            Err(Error::invalid(what, format!("the weight of {which} {i} is {v}, not finite and ≥ 0")))
        }
        None => Ok(()),
    };
    match (sample_weight, class_weight) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => {
            Err(Error::invalid("sample_weight", "give sample_weight or class_weight, not both (as Keras)"))
        }
        (Some(w), None) => {
            if w.shape != [n] && w.shape != [n, 1] {
                return Err(Error::shape("sample_weight (one weight per sample of x)", &[n], &w.shape));
            }
            check("sample_weight", "sample", &w.data)?;
            Ok(Some(Tensor::new(&[train], w.data[..train].to_vec())?))
        }
        (None, Some(cw)) => {
            check("class_weight", "class", cw)?;
            let classes = sample_classes(loss, outputs, y)?;
            let weights = classes[..train]
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    cw.get(c).copied().ok_or_else(|| {
                        Error::invalid(
                            "class_weight",
                            format!(
                                "has no weight for class {c} (sample {i}); it gives classes 0..{}",
                                cw.len()
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<f32>>>()?;
            Ok(Some(Tensor::new(&[train], weights)?))
        }
    }
}
