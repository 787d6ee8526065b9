//! `evaluate` and `predict` (Keras's), over models of one or several inputs and outputs.
use super::fit::Pass;
use super::inputs::{BatchRows, ModelInputs};
use super::{Model, ProgramKind};
use crate::callbacks::Logs;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

impl Model {
    /// Mean loss and accuracy over (x, y); weights are not changed. A model of several
    /// outputs has no single accuracy: use [`Model::evaluate_metrics`].
    pub fn evaluate<'a, 'b>(
        &mut self,
        x: impl ModelInputs<'a>,
        y: impl ModelInputs<'b>,
        batch_size: usize,
    ) -> Result<(f32, f32)> {
        let logs = self.evaluate_metrics(x, y, batch_size)?;
        Ok((logs.get("loss").copied().unwrap_or(0.0), logs.get("accuracy").copied().unwrap_or(0.0)))
    }

    /// Loss (`loss`) and every compiled metric (by its History key: `accuracy`, or
    /// `dense_1_accuracy` and each output's `dense_1_loss` for several outputs) over (x, y);
    /// weights are not changed. Unweighted (see [`Model::evaluate_weighted`]; `fit`'s
    /// validation is unweighted).
    pub fn evaluate_metrics<'a, 'b>(
        &mut self,
        x: impl ModelInputs<'a>,
        y: impl ModelInputs<'b>,
        batch_size: usize,
    ) -> Result<Logs> {
        if batch_size == 0 {
            return Err(Error::invalid("batch_size", "must be at least 1"));
        }
        let (xs, ys) = (x.tensors(), y.tensors());
        let n = self.check_data(&xs, Some(&ys))?;
        let order: Vec<usize> = (0..n).collect();
        Ok(self
            .run_epoch(ProgramKind::Eval, &xs, &ys, None, &order, batch_size, &[], Pass::default())?
            .logs())
    }

    /// [`Model::evaluate_metrics`] with Keras's `sample_weight`: the loss is
    /// (1/N) Σ_i w_i · l_i over the batches, as in training (every output's loss weighted
    /// alike); the metrics are unweighted (as Keras's `metrics=`). `sample_weight`: [n] or
    /// [n, 1], finite and ≥ 0.
    pub fn evaluate_weighted<'a, 'b>(
        &mut self,
        x: impl ModelInputs<'a>,
        y: impl ModelInputs<'b>,
        sample_weight: &Tensor,
        batch_size: usize,
    ) -> Result<Logs> {
        if batch_size == 0 {
            return Err(Error::invalid("batch_size", "must be at least 1"));
        }
        let (xs, ys) = (x.tensors(), y.tensors());
        let n = self.check_data(&xs, Some(&ys))?;
        let w = self.loss_weights(&ys, (n, n), Some(sample_weight), None)?;
        let order: Vec<usize> = (0..n).collect();
        Ok(self
            .run_epoch(ProgramKind::Eval, &xs, &ys, w.as_ref(), &order, batch_size, &[], Pass::default())?
            .logs())
    }

    /// Model outputs for x ([N, outputs...]; class probabilities for a softmax head), for a
    /// model of one output (several: [`Model::predict_outputs`]).
    pub fn predict<'a>(&mut self, x: impl ModelInputs<'a>, batch_size: usize) -> Result<Tensor> {
        if self.outputs.len() != 1 {
            return Err(Error::invalid(
                "predict",
                format!(
                    "the model has {} outputs: use predict_outputs, which returns one tensor each",
                    self.outputs.len()
                ),
            ));
        }
        let mut outputs = self.predict_outputs(x, batch_size)?;
        outputs.pop().ok_or_else(|| Error::invalid("model", "has no outputs"))
    }

    /// Every output for x, in [`Model::output_names`] order, each `[N, output shape…]` (Keras's
    /// list from `predict` on a model of several outputs).
    pub fn predict_outputs<'a>(&mut self, x: impl ModelInputs<'a>, batch_size: usize) -> Result<Vec<Tensor>> {
        if batch_size == 0 {
            return Err(Error::invalid("batch_size", "must be at least 1"));
        }
        let xs = x.tensors();
        let n = self.check_data(&xs, None)?;
        let shapes = self.model_output_shapes()?;
        let order: Vec<usize> = (0..n).collect();
        let mut xb = BatchRows::default();
        // Each batch's output is kept on the device and read back once at the end (or in
        // large chunks), not a device sync per batch. Drop whatever an interrupted call left.
        self.compiled()?.backend.take_collected()?;
        for chunk in order.chunks(batch_size) {
            let id = self.program(ProgramKind::Predict, chunk.len(), false)?;
            let out = self
                .program_output(ProgramKind::Predict, chunk.len(), "output")
                .ok_or_else(|| Error::invalid("plan", "the forward program has no output"))?;
            let args = xb.of(&xs, chunk);
            self.compiled()?.backend.run_collect(id, &args, out)?;
        }
        let data = self.compiled()?.backend.take_collected()?;
        split_outputs(n, &shapes, data)
    }
}

/// The rows `[n, Σ sizes]` of the forward program's output (several outputs flattened side by
/// side, see `build_program`) as one tensor per output.
fn split_outputs(n: usize, shapes: &[Vec<usize>], data: Vec<f32>) -> Result<Vec<Tensor>> {
    let with_rows = |shape: &[usize]| std::iter::once(n).chain(shape.iter().copied()).collect::<Vec<_>>();
    if let [shape] = shapes {
        return Tensor::new(&with_rows(shape), data).map(|t| vec![t]);
    }
    let sizes: Vec<usize> = shapes.iter().map(|s| s.iter().product()).collect();
    let width: usize = sizes.iter().sum();
    let mut parts: Vec<Vec<f32>> = sizes.iter().map(|&s| Vec::with_capacity(n * s)).collect();
    for row in data.chunks(width.max(1)) {
        let mut start = 0;
        for (part, &size) in parts.iter_mut().zip(&sizes) {
            part.extend_from_slice(&row[start..start + size]);
            start += size;
        }
    }
    shapes.iter().zip(parts).map(|(shape, part)| Tensor::new(&with_rows(shape), part)).collect()
}
