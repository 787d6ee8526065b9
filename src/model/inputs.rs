//! The data a model call takes: one tensor per model input ([`ModelInputs`]), the rows of a
//! batch, and the checks of inputs and labels against the model.
use super::Model;
use super::heads::label_shape;
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::tensor::Tensor;

/// The inputs of `fit`, `evaluate` and `predict`: one tensor (a model of one input), or one
/// per model input in [`Model::inputs`] order (Keras's list of arrays), each `[N, shape…]`.
pub trait ModelInputs<'a> {
    fn tensors(self) -> Vec<&'a Tensor>;
}

impl<'a> ModelInputs<'a> for &'a Tensor {
    fn tensors(self) -> Vec<&'a Tensor> {
        vec![self]
    }
}

impl<'a> ModelInputs<'a> for &'a [Tensor] {
    fn tensors(self) -> Vec<&'a Tensor> {
        self.iter().collect()
    }
}

impl<'a> ModelInputs<'a> for &'a Vec<Tensor> {
    fn tensors(self) -> Vec<&'a Tensor> {
        self.iter().collect()
    }
}

impl<'a> ModelInputs<'a> for &[&'a Tensor] {
    fn tensors(self) -> Vec<&'a Tensor> {
        self.to_vec()
    }
}

impl<'a, const N: usize> ModelInputs<'a> for &[&'a Tensor; N] {
    fn tensors(self) -> Vec<&'a Tensor> {
        self.to_vec()
    }
}

impl<'a, const N: usize> ModelInputs<'a> for [&'a Tensor; N] {
    fn tensors(self) -> Vec<&'a Tensor> {
        self.to_vec()
    }
}

/// Rows `idx` of `t`, gathered into `out`.
pub(super) fn gather(t: &Tensor, idx: &[usize], out: &mut Vec<f32>) {
    out.clear();
    let w = t.row_len();
    for &i in idx {
        out.extend_from_slice(&t.data[i * w..(i + 1) * w]);
    }
}

/// Rows `idx` of `t` as one slice: borrowed straight from `t` when the rows are consecutive
/// (evaluate, predict, unshuffled fit), else gathered into `buf`.
pub(super) fn rows<'a>(t: &'a Tensor, idx: &[usize], buf: &'a mut Vec<f32>) -> &'a [f32] {
    let consecutive = idx.windows(2).all(|w| w[1] == w[0] + 1);
    match (consecutive, idx.first()) {
        (true, Some(&first)) => {
            let w = t.row_len();
            &t.data[first * w..(first + idx.len()) * w]
        }
        _ => {
            gather(t, idx, buf);
            buf
        }
    }
}

/// The rows of one batch of every input, borrowed or gathered into buffers kept between
/// batches.
#[derive(Default)]
pub(super) struct BatchRows {
    buffers: Vec<Vec<f32>>,
}

impl BatchRows {
    /// Rows `idx` of each of `xs`.
    pub fn of<'a>(&'a mut self, xs: &[&'a Tensor], idx: &[usize]) -> Vec<&'a [f32]> {
        self.buffers.resize_with(xs.len(), Vec::new);
        xs.iter().zip(self.buffers.iter_mut()).map(|(x, buf)| rows(x, idx, buf)).collect()
    }
}

impl Model {
    /// Check that `xs` are one tensor per model input, of its shape and of one sample count,
    /// and `ys` one label tensor per output in its loss's layout; returns the sample count.
    pub(super) fn check_data(&mut self, xs: &[&Tensor], ys: Option<&[&Tensor]>) -> Result<usize> {
        let names = || self.inputs.iter().map(|i| format!("'{}'", i.name)).collect::<Vec<_>>().join(", ");
        if xs.len() != self.inputs.len() {
            return Err(Error::invalid(
                "model inputs",
                format!("the model takes {} ({}), got {} tensors", self.inputs.len(), names(), xs.len()),
            ));
        }
        let n = xs.first().map_or(0, |x| x.rows());
        for (i, x) in xs.iter().enumerate() {
            let input = &self.inputs[i];
            if x.rows() != n {
                return Err(Error::invalid(
                    "model inputs",
                    format!("'{}' has {n} samples but '{}' {}", self.inputs[0].name, input.name, x.rows()),
                ));
            }
            let want: Vec<usize> = std::iter::once(n).chain(input.shape.iter().copied()).collect();
            if x.shape != want {
                let what = match (self.readers_of_input(i).next(), self.inputs.len()) {
                    (Some((l, name)), 1) => format!("input of layer '{name}' ({})", l.class_name()),
                    (Some((l, name)), _) => {
                        format!("input '{}' of layer '{name}' ({})", input.name, l.class_name())
                    }
                    (None, _) => format!("model input '{}'", input.name),
                };
                return Err(Error::shape(what, &want, &x.shape));
            }
            for (layer, name) in self.readers_of_input(i) {
                layer.check_input(name, x)?;
            }
        }
        let Some(ys) = ys else { return Ok(n) };
        let shapes = self.model_output_shapes()?;
        let names = self.output_names();
        if ys.len() != shapes.len() {
            return Err(Error::invalid(
                "labels",
                format!(
                    "the model has {} outputs ({}), got {} label tensors",
                    shapes.len(),
                    names.join(", "),
                    ys.len()
                ),
            ));
        }
        let losses: Vec<Loss> = self.compiled()?.heads.iter().map(|h| h.loss).collect();
        for (k, (y, output)) in ys.iter().zip(&shapes).enumerate() {
            // A model of one output keeps its messages; several name the output.
            let what = |loss: Loss| match shapes.len() {
                1 => format!("labels y for loss {}", loss.name()),
                _ => format!("labels of output '{}' for loss {}", names[k], loss.name()),
            };
            let layer = self.outputs.get(k).map_or("", |&r| self.source_name(r));
            check_labels(y, n, output, losses[k], &what(losses[k]), layer).map_err(|e| {
                match (shapes.len(), e) {
                    (1, e) | (_, e @ Error::Invalid { .. }) | (_, e @ Error::Shape { .. }) => e,
                    (_, e) => Error::invalid(what(losses[k]), e.to_string()),
                }
            })?;
        }
        Ok(n)
    }
}

/// Check labels `y` of `n` samples for an output of per-sample shape `output` (made by layer
/// `layer`) under `loss`; `what` names them in errors.
fn check_labels(y: &Tensor, n: usize, output: &[usize], loss: Loss, what: &str, layer: &str) -> Result<()> {
    let want = label_shape(loss, n, output);
    if y.len() != want.iter().product::<usize>() {
        return Err(Error::shape(what, &want, &y.shape));
    }
    let classes = output.last().copied().unwrap_or(0);
    if loss.sparse_labels() {
        return y.data.iter().enumerate().try_for_each(|(i, &v)| {
            if v.fract() != 0.0 || v < 0.0 {
                return Err(Error::LabelOutOfRange { label: v as f64, index: i, classes, file: None });
            }
            // An integer label past the output: the model is too small for the data.
            if v as usize >= classes {
                return Err(Error::invalid(
                    format!("output layer '{layer}'"),
                    format!(
                        "label {v} at sample {i} is outside its {classes} classes 0..{classes}: the output \
                         layer needs a unit per class of the data"
                    ),
                ));
            }
            Ok(())
        });
    }
    // Binary cross-entropy takes soft labels, probabilities of the positive class in
    // [0, 1], as Keras does. The counting metrics take a label above 0.5 as positive:
    // accuracy compares (label > 0.5) with the thresholded prediction (Keras compares the
    // label itself, so a soft label never counts as correct there), precision/recall/F1
    // (binary and macro) count it as a positive; AUC weighs a label t as t positive and
    // 1 − t negative, as Keras.
    if loss.binary()
        && let Some((i, v)) = y.data.iter().enumerate().find(|(_, v)| !(0.0..=1.0).contains(*v))
    {
        return Err(Error::invalid(
            what,
            format!("label {v} at sample {i} is not in [0, 1] (the probability of the positive class)"),
        ));
    }
    Ok(())
}
