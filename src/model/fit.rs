//! The training loop (Keras `fit`), `evaluate` and `predict`.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rand::seq::SliceRandom;

use super::heads::AccumLayout;
use super::inputs::{BatchRows, ModelInputs, rows};
use super::sample_weight::sample_weights;
use super::{Model, PartialEpoch, ProgramKind};
use crate::callbacks::{Logs, ProgbarLogger, SharedCallback, lock};
use crate::error::{Error, Result};
use crate::program::{Arena, StepScalars};
use crate::tensor::Tensor;

/// Held-out data for validation after each epoch.
#[derive(Debug, Clone, Default)]
pub enum Validation {
    #[default]
    None,
    /// Explicit validation inputs and labels.
    Data(Tensor, Tensor),
    /// Explicit validation inputs of a model with several, one per model input, and labels.
    Inputs(Vec<Tensor>, Tensor),
    /// Explicit validation inputs, labels and per-sample weights of the validation loss
    /// (Keras's `validation_data=(x, y, sample_weight)`; the metrics stay unweighted).
    WeightedData(Tensor, Tensor, Tensor),
    /// Explicit validation inputs (one per model input) and labels (one per model output),
    /// for models of several inputs or outputs.
    Tensors(Vec<Tensor>, Vec<Tensor>),
    /// The last fraction of the samples, as given (before shuffling), as in Keras.
    Split(f64),
}

/// Options of [`Model::fit`] (Keras defaults: batch 32, 1 epoch, verbose 1, shuffle).
#[derive(Clone)]
pub struct FitOptions {
    pub batch_size: usize,
    /// The epoch to end at (exclusive): epochs `initial_epoch..epochs` run, as in Keras.
    pub epochs: usize,
    /// 0 silent, 1 progress bar (plain line per epoch when not a terminal), 2 one line per epoch.
    pub verbose: u8,
    pub validation: Validation,
    pub shuffle: bool,
    /// The epoch to start at (Keras `initial_epoch`; a resumed run's epochs trained).
    pub initial_epoch: usize,
    /// Run at the start and end of training and of every epoch (see [`crate::callbacks`]).
    pub callbacks: Vec<SharedCallback>,
    /// Keras `sample_weight`: one weight (finite, ≥ 0) per sample of x, [n] or [n, 1]; the
    /// training loss is (1/batch) Σ_i w_i · l_i over each batch. Validation is unweighted (the
    /// weights of a `Validation::Split` part are not used) unless given as
    /// `Validation::WeightedData`.
    pub sample_weight: Option<Tensor>,
    /// Keras `class_weight`: the weight of each class (index = class; binary cross-entropy
    /// with [n, 1] labels: classes 0 and 1), turned into w_i = class_weight[y_i]. Needs class
    /// labels and a weight for every class present; not together with `sample_weight`.
    pub class_weight: Option<Vec<f32>>,
    /// Set (by a signal handler, another thread or a callback) to stop after the current
    /// training batch: callbacks' `on_interrupt` runs (a run directory saves the state, the
    /// partial epoch included) and `fit` returns [`Error::Interrupted`]. A later `fit` from
    /// the same epoch continues the interrupted one with the same batches, dropout masks and
    /// History as a run that never stopped.
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            batch_size: 32,
            epochs: 1,
            verbose: 1,
            validation: Validation::None,
            shuffle: true,
            initial_epoch: 0,
            callbacks: Vec::new(),
            sample_weight: None,
            class_weight: None,
            interrupt: None,
        }
    }
}

impl std::fmt::Debug for FitOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FitOptions")
            .field("batch_size", &self.batch_size)
            .field("epochs", &self.epochs)
            .field("verbose", &self.verbose)
            .field("validation", &self.validation)
            .field("shuffle", &self.shuffle)
            .field("initial_epoch", &self.initial_epoch)
            .field("callbacks", &self.callbacks.len())
            .field("sample_weight", &self.sample_weight.as_ref().map(|w| &w.shape))
            .field("class_weight", &self.class_weight)
            .field("interrupt", &self.interrupt)
            .finish()
    }
}

/// Per-epoch metrics (`loss`, `accuracy`, `val_loss`, `val_accuracy`, ...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub history: BTreeMap<String, Vec<f32>>,
    /// Wall-clock seconds of each epoch (training and validation).
    pub epoch_seconds: Vec<f64>,
}

impl History {
    /// Append one epoch's logs and duration.
    pub fn push(&mut self, logs: &Logs, seconds: f64) {
        for (k, v) in logs {
            self.history.entry(k.clone()).or_default().push(*v);
        }
        self.epoch_seconds.push(seconds);
    }

    /// Number of epochs recorded.
    pub fn epochs(&self) -> usize {
        self.epoch_seconds.len()
    }

    /// The last value recorded for `key`.
    pub fn last(&self, key: &str) -> Option<f32> {
        self.history.get(key).and_then(|v| v.last().copied())
    }
}

/// What the device accumulated over an epoch (means over its samples).
pub(super) struct EpochTotals {
    loss: f32,
    /// Each compiled metric's History key and value, in compile order; with several outputs,
    /// each output's loss (`dense_1_loss`) before its metrics.
    metrics: Vec<(String, f32)>,
    /// Step within the epoch (from 1) of the first non-finite training loss.
    non_finite_step: Option<usize>,
}

/// How a training pass starts and may stop (evaluation passes: the default).
#[derive(Default)]
pub(super) struct Pass<'a> {
    /// The epoch (from 0), and the shuffle RNG as it began: a [`PartialEpoch`]'s.
    epoch: usize,
    start_rng: Option<rand_chacha::ChaCha8Rng>,
    /// An interrupted epoch to continue: the batches to skip, the accumulators to start from.
    resume: Option<PartialEpoch>,
    interrupt: Option<&'a AtomicBool>,
}

impl EpochTotals {
    /// `loss` and every metric by name.
    pub(super) fn logs(&self) -> Logs {
        let mut logs = Logs::from([("loss".to_string(), self.loss)]);
        logs.extend(self.metrics.iter().map(|(k, v)| (k.clone(), *v)));
        logs
    }
}

/// Validation inputs, labels and the rows of them to evaluate.
type ValidationRows<'a> = (Vec<&'a Tensor>, Vec<&'a Tensor>, Vec<usize>, Option<Tensor>);

impl Model {
    /// Run `kind` over all of (xs, ys) in batches, calling `callbacks`' batch hooks around each
    /// batch; returns the epoch's totals (over the batches run: a batch hook may stop early,
    /// and an interrupt, which leaves the partial epoch in the model).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run_epoch(
        &mut self,
        kind: ProgramKind,
        xs: &[&Tensor],
        ys: &[&Tensor],
        w: Option<&Tensor>,
        order: &[usize],
        batch_size: usize,
        callbacks: &[SharedCallback],
        pass: Pass,
    ) -> Result<EpochTotals> {
        // Epochs of different kinds never interleave: start every one from zeroed accumulators
        // (or, continuing an interrupted epoch, from its accumulators).
        let accum_len = self.compiled()?.accum.len();
        let (skip, mut seen, accum) = match pass.resume {
            Some(p) if p.accum.len() == accum_len => (p.batches, p.samples, p.accum),
            Some(p) => {
                return Err(Error::invalid(
                    format!("the interrupted epoch {}", p.epoch + 1),
                    format!("has {} accumulators, the model {accum_len}", p.accum.len()),
                ));
            }
            None => (0, 0, vec![0.0; accum_len]),
        };
        self.compiled()?.backend.write(Arena::Accum, 0, &accum)?;
        let first_step = self.compiled()?.step + 1 - skip as u32;
        let (mut xb, mut yb, mut wb) = (BatchRows::default(), BatchRows::default(), Vec::new());
        let of = order.len().div_ceil(batch_size);
        for (batch, chunk) in order.chunks(batch_size).enumerate().skip(skip) {
            for cb in callbacks {
                lock(cb).on_train_batch_begin(batch, self)?;
            }
            let id = self.program(kind, chunk.len(), w.is_some())?;
            // The program's inputs: every model input's rows, every output's labels', and the
            // batch's sample weights (gathered as its rows, so shuffling keeps x, y, w aligned).
            let mut args = xb.of(xs, chunk);
            args.extend(yb.of(ys, chunk));
            if let Some(w) = w {
                args.push(rows(w, chunk, &mut wb));
            }
            let c = self.compiled()?;
            let scalars = if kind == ProgramKind::Train {
                c.step += 1;
                StepScalars { lr: c.optimizer.learning_rate_at(c.step), t: c.step }
            } else {
                StepScalars::default()
            };
            c.backend.run(id, &args, scalars)?;
            seen += chunk.len();
            if !callbacks.is_empty() {
                // The running logs are a readback: only when some callback wants them now
                // (every callback is asked).
                let wanted = callbacks.iter().fold(false, |w, cb| lock(cb).wants_logs_after(batch) | w);
                let logs = match wanted {
                    true => self.read_totals(kind, seen, first_step)?.logs(),
                    false => Logs::new(),
                };
                for cb in callbacks {
                    lock(cb).on_train_batch_end(batch, &logs, self)?;
                }
                if self.stop_requested() {
                    break;
                }
            }
            if batch + 1 < of && pass.interrupt.is_some_and(|f| f.load(Ordering::SeqCst)) {
                let accum = self.compiled()?.backend.read(Arena::Accum, 0, accum_len)?;
                let rng = pass.start_rng.clone().unwrap_or_else(|| self.shuffle_rng.clone());
                let epoch = pass.epoch;
                self.set_partial_epoch(Some(PartialEpoch {
                    epoch,
                    batches: batch + 1,
                    samples: seen,
                    accum,
                    rng,
                }));
                break;
            }
        }
        self.read_totals(kind, seen, first_step)
    }

    /// The accumulators over `samples` samples, in one readback of the Accum arena.
    fn read_totals(&mut self, kind: ProgramKind, samples: usize, first_step: u32) -> Result<EpochTotals> {
        let c = self.compiled()?;
        let acc = c.backend.read(Arena::Accum, 0, c.accum.len())?;
        let n = samples.max(1) as f32;
        let bad_step = acc[AccumLayout::NON_FINITE];
        let mut metrics = Vec::new();
        for (h, head) in c.heads.iter().enumerate() {
            if let Some(slot) = c.accum.head_loss(kind, h) {
                metrics.push((format!("{}_loss", head.key), acc[slot.start] / n));
            }
            for (i, m) in head.metrics.iter().enumerate() {
                metrics.push((head.metric_key(m), m.value(&acc[c.accum.metric(kind, h, i)], samples)));
            }
        }
        Ok(EpochTotals {
            loss: acc[c.accum.loss(kind).start] / n,
            metrics,
            non_finite_step: (kind == ProgramKind::Train && bad_step != 0.0)
                .then(|| (bad_step as u32).saturating_sub(first_step) as usize + 1),
        })
    }

    /// Train epochs `opts.initial_epoch..opts.epochs`; returns the per-epoch History. The last
    /// partial batch of each epoch is trained too. Callbacks run at the start and end of
    /// training, of every epoch and of every training batch; one that calls `stop_training()`
    /// ends training after the current epoch (from a batch hook: after the current batch,
    /// then the epoch's validation and `on_epoch_end`).
    ///
    /// `y`: the labels, one tensor per model output (in [`Model::output_names`] order) as
    /// Keras's list of arrays; a model of one output takes one tensor.
    pub fn fit<'a, 'b>(
        &mut self,
        x: impl ModelInputs<'a>,
        y: impl ModelInputs<'b>,
        opts: &FitOptions,
    ) -> Result<History> {
        if opts.batch_size == 0 {
            return Err(Error::invalid("batch_size", "must be at least 1"));
        }
        let (xs, ys) = (x.tensors(), y.tensors());
        let rows_in = self.check_data(&xs, Some(&ys))?;
        // Validation rows: a separate data set, or the last fraction of (x, y) as given.
        let (n, val): (usize, Option<ValidationRows>) = match &opts.validation {
            Validation::None => (rows_in, None),
            Validation::Data(vx, vy) => {
                let v = self.check_data(&[vx], Some(&[vy]))?;
                (rows_in, Some((vec![vx], vec![vy], (0..v).collect(), None)))
            }
            Validation::Inputs(vxs, vy) => {
                let vxs: Vec<&Tensor> = vxs.iter().collect();
                let v = self.check_data(&vxs, Some(&[vy]))?;
                (rows_in, Some((vxs, vec![vy], (0..v).collect(), None)))
            }
            Validation::Tensors(vxs, vys) => {
                let (vxs, vys): (Vec<&Tensor>, Vec<&Tensor>) = (vxs.iter().collect(), vys.iter().collect());
                let v = self.check_data(&vxs, Some(&vys))?;
                (rows_in, Some((vxs, vys, (0..v).collect(), None)))
            }
            Validation::WeightedData(vx, vy, vw) => {
                let n = self.check_data(&[vx], Some(&[vy]))?;
                let w = self.loss_weights(&[vy], (n, n), Some(vw), None)?;
                (rows_in, Some((vec![vx], vec![vy], (0..n).collect(), w)))
            }
            Validation::Split(f) => {
                if !(0.0..1.0).contains(f) {
                    return Err(Error::invalid("validation_split", format!("{f} is not in [0, 1)")));
                }
                let n_train = rows_in - (rows_in as f64 * f).round() as usize;
                (
                    n_train,
                    (n_train < rows_in).then(|| (xs.clone(), ys.clone(), (n_train..rows_in).collect(), None)),
                )
            }
        };
        if n == 0 {
            return Err(Error::invalid("training data", "has no samples"));
        }
        let (sw, cw) = (opts.sample_weight.as_ref(), opts.class_weight.as_deref());
        let weights = self.loss_weights(&ys, (rows_in, n), sw, cw)?;
        let mut order: Vec<usize> = (0..n).collect();
        let steps = n.div_ceil(opts.batch_size);
        let mut history = History::default();
        // Keras's default callback first: the progress output (none at verbose 0).
        let mut callbacks: Vec<SharedCallback> = Vec::with_capacity(opts.callbacks.len() + 1);
        if opts.verbose > 0 {
            callbacks.push(crate::callbacks::shared(ProgbarLogger::new(opts.verbose, opts.epochs, steps)));
        }
        callbacks.extend(opts.callbacks.iter().cloned());
        let callbacks = &callbacks;
        self.clear_stop();
        for cb in callbacks {
            lock(cb).on_train_begin(self)?;
        }
        let mut logs = Logs::new();
        for epoch in opts.initial_epoch..opts.epochs {
            for cb in callbacks {
                lock(cb).on_epoch_begin(epoch, self)?;
            }
            // An interrupted epoch continues from its start's RNG, batches and accumulators.
            let resume = self.take_partial_epoch().filter(|p| p.epoch == epoch);
            if let Some(p) = &resume {
                self.shuffle_rng = p.rng.clone();
            }
            let start_rng = self.shuffle_rng.clone();
            if opts.shuffle {
                // Each epoch's order depends on the RNG alone (not on the previous order), so a
                // run resumed from a checkpoint shuffles exactly as an uninterrupted one.
                order.iter_mut().enumerate().for_each(|(i, o)| *o = i);
                order.shuffle(&mut self.shuffle_rng);
            }
            let t0 = Instant::now();
            let interrupt = opts.interrupt.as_deref();
            let pass = Pass { epoch, start_rng: Some(start_rng), resume, interrupt };
            let totals = self.run_epoch(
                ProgramKind::Train,
                &xs,
                &ys,
                weights.as_ref(),
                &order,
                opts.batch_size,
                callbacks,
                pass,
            )?;
            // The pass stopped on the interrupt: it left the partial epoch (the one it began
            // from was taken above).
            if let Some(batches) = self.partial_epoch().map(|p| p.batches) {
                return self.interrupted(callbacks, epoch, batches, steps);
            }
            logs = totals.logs();
            // The device recorded the step of the first non-finite loss, if any.
            if totals.non_finite_step.is_some() || !totals.loss.is_finite() {
                let step = totals.non_finite_step.unwrap_or(steps);
                for cb in callbacks {
                    lock(cb).on_non_finite_loss(epoch, step, self)?;
                }
                if !self.stop_requested() {
                    return Err(Error::NonFiniteLoss { value: totals.loss, epoch: epoch + 1, step });
                }
                history.push(&logs, t0.elapsed().as_secs_f64());
                break;
            }
            if let Some((vx, vy, rows, vw)) = &val {
                let v = self.run_epoch(
                    ProgramKind::Eval,
                    vx,
                    vy,
                    vw.as_ref(),
                    rows,
                    opts.batch_size,
                    &[],
                    Pass::default(),
                )?;
                for (k, value) in &v.metrics {
                    logs.insert(format!("val_{k}"), *value);
                }
                logs.insert("val_loss".into(), v.loss);
            }
            history.push(&logs, t0.elapsed().as_secs_f64());
            self.count_epoch();
            for cb in callbacks {
                lock(cb).on_epoch_end(epoch, &logs, self)?;
            }
            if self.stop_requested() {
                break;
            }
            // Between epochs the run directory has just saved the state.
            if epoch + 1 < opts.epochs && interrupt.is_some_and(|f| f.load(Ordering::SeqCst)) {
                return self.interrupted(callbacks, epoch, steps, steps);
            }
        }
        for cb in callbacks {
            lock(cb).on_train_end(&logs, self)?;
        }
        Ok(history)
    }

    /// `fit`'s end on an interrupt in epoch `epoch` (from 0) after `batches` of `of`: the
    /// callbacks' `on_interrupt` (a run directory saves), then [`Error::Interrupted`].
    fn interrupted(
        &mut self,
        callbacks: &[SharedCallback],
        epoch: usize,
        batches: usize,
        of: usize,
    ) -> Result<History> {
        let mut saved = None;
        for cb in callbacks {
            if let Some(path) = lock(cb).on_interrupt(epoch, self)? {
                saved = Some(path);
            }
        }
        Err(Error::Interrupted { epoch: epoch + 1, batches, of, saved })
    }

    /// The per-sample loss weights of `fit` and `evaluate_weighted` (see [`sample_weights`])
    /// for labels `ys`: Keras applies sample weights to every output's loss, and class weights
    /// only to a model of one output.
    pub(super) fn loss_weights(
        &mut self,
        ys: &[&Tensor],
        rows: (usize, usize),
        sample_weight: Option<&Tensor>,
        class_weight: Option<&[f32]>,
    ) -> Result<Option<Tensor>> {
        let heads = &self.compiled()?.heads;
        if heads.len() > 1 && class_weight.is_some() {
            return Err(Error::invalid(
                "class_weight",
                format!(
                    "is only supported for models of one output (as in Keras); this one has {}",
                    heads.len()
                ),
            ));
        }
        let (loss, units) = heads
            .first()
            .map(|h| (h.loss, h.units))
            .ok_or_else(|| Error::invalid("model", "has no outputs"))?;
        let y = ys.first().ok_or_else(|| Error::invalid("labels", "none given"))?;
        sample_weights(loss, units, y, rows, sample_weight, class_weight)
    }
}
