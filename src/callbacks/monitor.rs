//! Callbacks that watch one value of the logs (`val_loss` by default): EarlyStopping,
//! ReduceLROnPlateau and ModelCheckpoint, sharing one [`Monitor`] (Keras's comparison rules).
use std::path::{Path, PathBuf};

use super::{Callback, Logs};
use crate::checkpoint::{Checkpoint, InputPipeline};
use crate::error::Result;
use crate::model::Model;
use crate::tensor::Tensor;

/// Whether the monitored value should go down or up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// `max` for names containing `acc`, `auc`, `precision`, `recall` or `f1`; `min` otherwise.
    #[default]
    Auto,
    /// Lower is better (losses).
    Min,
    /// Higher is better (accuracy).
    Max,
}

impl Mode {
    /// True when higher values of `monitor` are better under this mode.
    pub fn maximizes(self, monitor: &str) -> bool {
        match self {
            Mode::Min => false,
            Mode::Max => true,
            Mode::Auto => {
                let name = monitor.strip_prefix("val_").unwrap_or(monitor);
                ["acc", "auc", "precision", "recall", "f1"].iter().any(|k| name.contains(k))
            }
        }
    }
}

/// A value of the epoch logs watched for improvement, with Keras's rules: `key` (e.g.
/// `val_loss`), whether lower or higher is better (`mode`; `auto` resolves from the key), the
/// smallest change that counts (`min_delta`, ≥ 0) and the best value so far.
#[derive(Debug, Clone)]
pub struct Monitor {
    /// The logs key watched.
    pub key: String,
    /// Whether lower or higher is better.
    pub mode: Mode,
    /// Smallest change that counts as an improvement (non-negative).
    pub min_delta: f32,
    /// The best value so far (None before the first finite one).
    pub best: Option<f32>,
    warned: bool,
}

impl Monitor {
    /// Watch `key` (mode auto, min_delta 0, nothing seen yet).
    pub fn new(key: &str) -> Monitor {
        Monitor { key: key.to_string(), mode: Mode::Auto, min_delta: 0.0, best: None, warned: false }
    }

    /// The same monitor with `mode`.
    pub fn with_mode(mut self, mode: Mode) -> Monitor {
        self.mode = mode;
        self
    }

    /// The same monitor with smallest improvement |`min_delta`|.
    pub fn with_min_delta(mut self, min_delta: f32) -> Monitor {
        self.min_delta = min_delta.abs();
        self
    }

    /// True when higher values are better (the mode, `auto` resolved from the key).
    pub fn maximizes(&self) -> bool {
        self.mode.maximizes(&self.key)
    }

    /// Whether `current` beats `reference` by more than `min_delta` in the monitor's direction
    /// (Keras: `current − min_delta > reference` when maximizing, `current + min_delta <
    /// reference` when minimizing).
    pub fn better(&self, current: f32, reference: f32) -> bool {
        if self.maximizes() {
            current - self.min_delta > reference
        } else {
            current + self.min_delta < reference
        }
    }

    /// Whether `current` improves on the best value so far (the first finite value always
    /// does; NaN and infinities never do before it).
    pub fn improved(&self, current: f32) -> bool {
        match self.best {
            None => current.is_finite(),
            Some(best) => self.better(current, best),
        }
    }

    /// The watched value of `logs`; a warning naming `who` and the keys there are (once per
    /// monitor) when the logs lack it.
    pub fn read(&mut self, logs: &Logs, who: &str) -> Option<f32> {
        let value = logs.get(&self.key).copied();
        if value.is_none() && !self.warned {
            let known: Vec<&str> = logs.keys().map(String::as_str).collect();
            eprintln!(
                "warning: {who} monitors '{}', which is not in the logs ({})",
                self.key,
                known.join(", ")
            );
            self.warned = true;
        }
        value
    }
}

/// Keras EarlyStopping: stop when `monitor` has not improved by more than `min_delta` for
/// `patience` epochs. With `restore_best_weights`, the weights of the best epoch are put back
/// when training ends (Keras 3: also when no early stop happened).
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    monitor: Monitor,
    patience: usize,
    restore_best_weights: bool,
    baseline: Option<f32>,
    wait: usize,
    best_weights: Option<Vec<(String, Tensor)>>,
    /// The epoch (from 0) of the best value.
    pub best_epoch: Option<usize>,
    /// The epoch (from 0) after which training stopped, if it stopped early.
    pub stopped_epoch: Option<usize>,
}

impl EarlyStopping {
    /// Watch `monitor` (Keras defaults: min_delta 0, patience 0, mode auto, no restore).
    pub fn new(monitor: &str) -> EarlyStopping {
        EarlyStopping {
            monitor: Monitor::new(monitor),
            patience: 0,
            restore_best_weights: false,
            baseline: None,
            wait: 0,
            best_weights: None,
            best_epoch: None,
            stopped_epoch: None,
        }
    }
    /// Smallest change that counts as an improvement.
    pub fn min_delta(mut self, min_delta: f32) -> Self {
        self.monitor.min_delta = min_delta.abs();
        self
    }
    /// Epochs without improvement before stopping.
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }
    /// Whether lower or higher is better.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor.mode = mode;
        self
    }
    /// Put the best epoch's weights back when training ends.
    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }
    /// Stop unless the value improves on `baseline` within `patience` epochs.
    pub fn baseline(mut self, baseline: f32) -> Self {
        self.baseline = Some(baseline);
        self
    }
    /// The best monitored value of this `fit` so far (None before the first finite one).
    pub fn best(&self) -> Option<f32> {
        self.monitor.best
    }
}

impl Callback for EarlyStopping {
    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        self.wait = 0;
        self.stopped_epoch = None;
        self.best_epoch = None;
        self.best_weights = None;
        self.monitor.best = None;
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, model: &mut Model) -> Result<()> {
        let Some(current) = self.monitor.read(logs, "EarlyStopping") else {
            return Ok(());
        };
        self.wait += 1;
        if self.monitor.improved(current) {
            self.monitor.best = Some(current);
            self.best_epoch = Some(epoch);
            if self.restore_best_weights {
                self.best_weights = Some(model.get_weights()?);
            }
            // Only an improvement on the baseline resets the wait.
            if self.baseline.is_none_or(|b| self.monitor.better(current, b)) {
                self.wait = 0;
                return Ok(());
            }
        }
        if self.wait >= self.patience && epoch > 0 {
            self.stopped_epoch = Some(epoch);
            model.stop_training();
        }
        Ok(())
    }

    fn on_train_end(&mut self, _logs: &Logs, model: &mut Model) -> Result<()> {
        if let Some(weights) = self.best_weights.take() {
            model.set_weights(&weights)?;
        }
        Ok(())
    }
}

/// Keras ReduceLROnPlateau: multiply the learning rate by `factor` (0.1) when `monitor` has
/// not improved by more than `min_delta` (1e-4) for `patience` (10) epochs, never below
/// `min_lr` (0), then wait `cooldown` (0) epochs before counting again.
#[derive(Debug, Clone)]
pub struct ReduceLROnPlateau {
    monitor: Monitor,
    factor: f32,
    patience: usize,
    cooldown: usize,
    min_lr: f32,
    wait: usize,
    cooldown_counter: usize,
    /// (epoch from 0, new learning rate) of every reduction.
    pub reductions: Vec<(usize, f32)>,
}

impl ReduceLROnPlateau {
    /// Watch `monitor` with Keras's defaults.
    pub fn new(monitor: &str) -> ReduceLROnPlateau {
        ReduceLROnPlateau {
            monitor: Monitor::new(monitor).with_min_delta(1e-4),
            factor: 0.1,
            patience: 10,
            cooldown: 0,
            min_lr: 0.0,
            wait: 0,
            cooldown_counter: 0,
            reductions: Vec::new(),
        }
    }
    /// Factor the learning rate is multiplied by (must be below 1).
    pub fn factor(mut self, factor: f32) -> Self {
        self.factor = factor;
        self
    }
    /// Epochs without improvement before a reduction.
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }
    /// Whether lower or higher is better.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor.mode = mode;
        self
    }
    /// Smallest change that counts as an improvement.
    pub fn min_delta(mut self, min_delta: f32) -> Self {
        self.monitor.min_delta = min_delta.abs();
        self
    }
    /// Epochs after a reduction before counting again.
    pub fn cooldown(mut self, cooldown: usize) -> Self {
        self.cooldown = cooldown;
        self
    }
    /// Lower bound of the learning rate.
    pub fn min_lr(mut self, min_lr: f32) -> Self {
        self.min_lr = min_lr;
        self
    }
    /// The best monitored value of this `fit` so far (None before the first finite one).
    pub fn best(&self) -> Option<f32> {
        self.monitor.best
    }
}

impl Callback for ReduceLROnPlateau {
    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        if self.factor.is_nan() || self.factor >= 1.0 {
            return Err(crate::Error::invalid(
                "ReduceLROnPlateau factor",
                format!("{} (must be < 1)", self.factor),
            ));
        }
        self.wait = 0;
        self.cooldown_counter = 0;
        self.monitor.best = None;
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, model: &mut Model) -> Result<()> {
        let Some(current) = self.monitor.read(logs, "ReduceLROnPlateau") else {
            return Ok(());
        };
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        if self.monitor.improved(current) {
            self.monitor.best = Some(current);
            self.wait = 0;
        } else if self.cooldown_counter == 0 {
            self.wait += 1;
            if self.wait >= self.patience {
                let old = model.learning_rate()?;
                if old > self.min_lr {
                    let new = (old * self.factor).max(self.min_lr);
                    model.set_learning_rate(new)?;
                    self.reductions.push((epoch, new));
                    self.cooldown_counter = self.cooldown;
                    self.wait = 0;
                }
            }
        }
        Ok(())
    }
}

/// Keras ModelCheckpoint: after every epoch, save a checkpoint (weights, model description,
/// optimizer and training state; see [`crate::checkpoint`]) to `path` — or, with
/// `save_best_only`, only when `monitor` improved. `{epoch}` in the path is replaced by the
/// epoch number from 1, as Keras formats it.
#[derive(Debug, Clone)]
pub struct ModelCheckpoint {
    path: PathBuf,
    monitor: Monitor,
    save_best_only: bool,
    input: Option<InputPipeline>,
    /// Epochs (from 0) that were saved, in order.
    pub saved: Vec<usize>,
}

impl ModelCheckpoint {
    /// Save to `path` after every epoch, monitoring `val_loss` for `save_best_only`.
    pub fn new(path: impl AsRef<Path>) -> ModelCheckpoint {
        ModelCheckpoint {
            path: path.as_ref().to_path_buf(),
            monitor: Monitor::new("val_loss"),
            save_best_only: false,
            input: None,
            saved: Vec::new(),
        }
    }
    /// The value `save_best_only` compares.
    pub fn monitor(mut self, monitor: &str) -> Self {
        self.monitor.key = monitor.to_string();
        self
    }
    /// Whether lower or higher is better.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor.mode = mode;
        self
    }
    /// Save only when the monitored value improves.
    pub fn save_best_only(mut self, best_only: bool) -> Self {
        self.save_best_only = best_only;
        self
    }
    /// Store the input pipeline (scaling, input shape, class names) in every checkpoint.
    pub fn input_pipeline(mut self, input: InputPipeline) -> Self {
        self.input = Some(input);
        self
    }
    /// Start from a best value already reached (a resumed run; NaN: none).
    pub fn initial_best(mut self, best: f32) -> Self {
        self.monitor.best = (!best.is_nan()).then_some(best);
        self
    }
    /// The best monitored value saved so far (None before the first save under
    /// `save_best_only`).
    pub fn best(&self) -> Option<f32> {
        self.monitor.best
    }

    /// The path for epoch `epoch` (from 0).
    fn path_for(&self, epoch: usize) -> PathBuf {
        PathBuf::from(self.path.to_string_lossy().replace("{epoch}", &(epoch + 1).to_string()))
    }
}

impl Callback for ModelCheckpoint {
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, model: &mut Model) -> Result<()> {
        if self.save_best_only {
            let Some(current) = self.monitor.read(logs, "ModelCheckpoint") else {
                return Ok(());
            };
            if !self.monitor.improved(current) {
                return Ok(());
            }
            self.monitor.best = Some(current);
        }
        let mut checkpoint = Checkpoint::capture(model)?;
        checkpoint.input = self.input.clone();
        checkpoint.save(self.path_for(epoch))?;
        self.saved.push(epoch);
        Ok(())
    }
}
