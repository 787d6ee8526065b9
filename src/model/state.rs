//! The training state beyond the weights — step count, learning-rate schedule, shuffle RNG,
//! optimizer slots, epochs trained, the stop flag — read and written by callbacks and
//! checkpoints (the learning rate itself: `Model::learning_rate` / `set_learning_rate`).
use rand_chacha::ChaCha8Rng;

use super::Model;
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::metrics::Metric;
use crate::optim::LearningRateSchedule;
use crate::program::Arena;
use crate::tensor::Tensor;

/// An epoch that [`FitOptions::interrupt`](super::FitOptions::interrupt) stopped after a
/// batch: enough to continue it as if it had never stopped (the same batches, masks and
/// History). Checkpoints keep it.
#[derive(Debug, Clone, PartialEq)]
pub struct PartialEpoch {
    /// The epoch (from 0).
    pub epoch: usize,
    /// Batches of it already trained.
    pub batches: usize,
    /// Samples in those batches.
    pub samples: usize,
    /// The epoch's loss and metric accumulators so far (the Accum arena).
    pub accum: Vec<f32>,
    /// The shuffle RNG as the epoch began (before its shuffle).
    pub rng: ChaCha8Rng,
}

impl Model {
    /// The model's seed (weight initialisation, shuffling, dropout masks).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The loss given to compile (the first output's, for a model of several).
    pub fn loss(&self) -> Option<Loss> {
        self.compiled.as_ref().and_then(|c| c.heads.first()).map(|h| h.loss)
    }

    /// Each output's loss, loss weight and metrics as compiled (one entry per output).
    pub fn output_options(&self) -> Vec<super::OutputOptions> {
        self.compiled.as_ref().map(|c| c.heads.iter().map(|h| h.options()).collect()).unwrap_or_default()
    }

    /// The label smoothing given to compile (0 when off or not compiled).
    pub fn label_smoothing(&self) -> f32 {
        self.compiled.as_ref().map(|c| c.label_smoothing).unwrap_or(0.0)
    }

    /// The metrics given to compile (the first output's, for a model of several).
    pub fn metrics(&self) -> Vec<Metric> {
        self.compiled.as_ref().and_then(|c| c.heads.first()).map(|h| h.metrics.clone()).unwrap_or_default()
    }

    /// Optimizer steps taken so far (Adam's t; dropout masks depend on it too).
    pub fn steps_taken(&self) -> u32 {
        self.compiled.as_ref().map_or(0, |c| c.step)
    }

    /// Epochs trained since compile, over all `fit` calls (restored from a checkpoint).
    pub fn epochs_trained(&self) -> usize {
        self.epochs_trained
    }

    /// Ask `fit` to stop after the current epoch (Keras `model.stop_training = True`).
    pub fn stop_training(&mut self) {
        self.stop_requested = true;
    }

    /// Whether a callback asked `fit` to stop.
    pub fn stop_requested(&self) -> bool {
        self.stop_requested
    }

    /// The shuffling RNG (its position continues across `fit` calls).
    pub(crate) fn shuffle_rng_state(&self) -> &ChaCha8Rng {
        &self.shuffle_rng
    }

    /// Everything a resumed run needs besides weights and optimizer slots: the step count,
    /// the learning-rate schedule (a callback may have replaced the compiled one), the epochs
    /// trained and the shuffle RNG.
    pub(crate) fn set_training_state(
        &mut self,
        step: u32,
        schedule: LearningRateSchedule,
        epochs: usize,
        rng: ChaCha8Rng,
    ) -> Result<()> {
        let c = self.compiled()?;
        c.step = step;
        c.optimizer.schedule = schedule;
        self.epochs_trained = epochs;
        self.shuffle_rng = rng;
        Ok(())
    }

    /// Where an interrupted `fit` stopped inside an epoch, if it did.
    pub fn partial_epoch(&self) -> Option<&PartialEpoch> {
        self.partial_epoch.as_ref()
    }

    pub(crate) fn set_partial_epoch(&mut self, partial: Option<PartialEpoch>) {
        self.partial_epoch = partial;
    }

    pub(crate) fn take_partial_epoch(&mut self) -> Option<PartialEpoch> {
        self.partial_epoch.take()
    }

    pub(crate) fn count_epoch(&mut self) {
        self.epochs_trained += 1;
    }

    pub(crate) fn clear_stop(&mut self) {
        self.stop_requested = false;
    }

    /// Optimizer state slot `k` of every parameter, by parameter name (same shapes).
    pub fn optimizer_slot(&mut self, k: usize) -> Result<Vec<(String, Tensor)>> {
        let params = self.params.clone();
        let c = self.compiled()?;
        if k >= c.layout.slots {
            return Err(Error::invalid(
                "optimizer slot",
                format!("{k} (the optimizer has {})", c.layout.slots),
            ));
        }
        params
            .iter()
            .map(|p| {
                let data = c.backend.read(Arena::Slot(k as u8), p.buf.offset, p.buf.len)?;
                Ok((p.name.clone(), Tensor::new(&p.shape, data)?))
            })
            .collect()
    }

    /// Overwrite optimizer state slot `k` by parameter name; names and shapes must match.
    pub fn set_optimizer_slot(&mut self, k: usize, values: &[(String, Tensor)]) -> Result<()> {
        let params = self.params.clone();
        let c = self.compiled()?;
        if k >= c.layout.slots {
            return Err(Error::invalid(
                "optimizer slot",
                format!("{k} (the optimizer has {})", c.layout.slots),
            ));
        }
        for (name, t) in values {
            let p = params.iter().find(|p| &p.name == name).ok_or_else(|| {
                Error::invalid("optimizer state", format!("the model has no parameter '{name}'"))
            })?;
            if p.shape != t.shape {
                return Err(Error::shape(format!("optimizer slot {k} of '{name}'"), &p.shape, &t.shape));
            }
            c.backend.write(Arena::Slot(k as u8), p.buf.offset, &t.data)?;
        }
        Ok(())
    }

    /// Number of optimizer state slots per parameter (0 before compile).
    pub fn optimizer_slot_count(&self) -> usize {
        self.compiled.as_ref().map_or(0, |c| c.layout.slots)
    }
}
