//! Callbacks: code that `fit` runs at the start and end of training, of every epoch and (if
//! a callback implements the batch hooks) of every training batch, with the epoch's logs (`loss`, `accuracy`, `val_loss`, ...) and the model, so it can stop
//! training, change the learning rate, save or restore weights. Keras's callbacks with
//! Keras's defaults and semantics:
//!
//! - [`EarlyStopping`], [`ReduceLROnPlateau`], [`ModelCheckpoint`] watch a monitored value
//!   through a [`Monitor`] (`monitor.rs`);
//! - [`CsvLogger`], [`TerminateOnNaN`], [`LearningRateScheduler`] (here);
//! - [`ProgbarLogger`] (`progbar.rs`): the progress output, which `fit` adds first when
//!   `verbose` is 1 or 2 (Keras's default callback); `verbose: 0` prints nothing.
//!
//! Callbacks are shared (`Arc<Mutex<…>>`) so the caller keeps a handle and can read a
//! callback's state after `fit` (e.g. `EarlyStopping::stopped_epoch`):
//!
//! ```
//! use kiln::callbacks::{shared, EarlyStopping};
//! let early = shared(EarlyStopping::new("val_loss").patience(3).restore_best_weights(true));
//! let opts = kiln::FitOptions { callbacks: vec![early.clone()], ..Default::default() };
//! # let _ = opts;
//! ```
//! Epochs are counted from 0 in the hooks, as in Keras.
mod monitor;
mod progbar;

pub use monitor::{EarlyStopping, Mode, ModelCheckpoint, Monitor, ReduceLROnPlateau};
pub use progbar::ProgbarLogger;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::model::Model;

/// One epoch's results: `loss`, each metric, and `val_` versions.
pub type Logs = BTreeMap<String, f32>;

/// Hooks `fit` calls; every method has an empty default. Errors end `fit` with that error.
pub trait Callback: Send {
    /// Before the first epoch of a `fit` call.
    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        Ok(())
    }
    /// Before epoch `epoch` (from 0) trains.
    fn on_epoch_begin(&mut self, _epoch: usize, _model: &mut Model) -> Result<()> {
        Ok(())
    }
    /// Whether [`Callback::on_train_batch_end`] wants the running logs. Reading them costs a
    /// readback (a device sync on a GPU) after every batch, so it is asked for, not default.
    fn wants_batch_logs(&self) -> bool {
        false
    }
    /// Whether the running logs are wanted after batch `batch` in particular (asked before
    /// each `on_train_batch_end`; default: [`Callback::wants_batch_logs`]). A progress bar
    /// asks a few times a second.
    fn wants_logs_after(&mut self, _batch: usize) -> bool {
        self.wants_batch_logs()
    }
    /// Before training batch `batch` (from 0 within each epoch) runs.
    fn on_train_batch_begin(&mut self, _batch: usize, _model: &mut Model) -> Result<()> {
        Ok(())
    }
    /// After training batch `batch`. `logs` holds the epoch's running `loss` and metrics (over
    /// the batches so far, as Keras reports them) when [`Callback::wants_batch_logs`], else
    /// nothing. A callback that calls `model.stop_training()` here ends the epoch after this
    /// batch (validation and `on_epoch_end` still run), and training after that epoch.
    fn on_train_batch_end(&mut self, _batch: usize, _logs: &Logs, _model: &mut Model) -> Result<()> {
        Ok(())
    }
    /// After epoch `epoch` (training and validation), with its logs.
    fn on_epoch_end(&mut self, _epoch: usize, _logs: &Logs, _model: &mut Model) -> Result<()> {
        Ok(())
    }
    /// After the last epoch (also after an early stop), with the last epoch's logs.
    fn on_train_end(&mut self, _logs: &Logs, _model: &mut Model) -> Result<()> {
        Ok(())
    }
    /// Training was interrupted ([`crate::FitOptions::interrupt`]) in epoch `epoch` after a
    /// batch, or after the epoch (`model.partial_epoch()` tells which). A callback that saves
    /// the training state returns the file it wrote.
    fn on_interrupt(&mut self, _epoch: usize, _model: &mut Model) -> Result<Option<std::path::PathBuf>> {
        Ok(None)
    }
    /// The training loss of epoch `epoch` became NaN or infinite at `step` (from 1). `fit`
    /// returns [`Error::NonFiniteLoss`] unless a callback calls `model.stop_training()` here
    /// (as [`TerminateOnNaN`] does); then it stops without calling `on_epoch_end`, so no
    /// checkpoint of the broken weights is written.
    fn on_non_finite_loss(&mut self, _epoch: usize, _step: usize, _model: &mut Model) -> Result<()> {
        Ok(())
    }
}

/// A callback as `FitOptions::callbacks` holds it.
pub type SharedCallback = Arc<Mutex<dyn Callback>>;

/// Wrap a callback for `FitOptions::callbacks`, keeping a typed handle for the caller.
pub fn shared<C: Callback + 'static>(callback: C) -> Arc<Mutex<C>> {
    Arc::new(Mutex::new(callback))
}

/// Lock a callback; a callback that panicked in another thread is still usable.
pub(crate) fn lock(cb: &SharedCallback) -> MutexGuard<'_, dyn Callback + 'static> {
    cb.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Keras CSVLogger: one row per epoch, `epoch` (from 0) then the logs in name order.
#[derive(Debug)]
pub struct CsvLogger {
    path: PathBuf,
    separator: char,
    append: bool,
    file: Option<BufWriter<File>>,
    keys: Vec<String>,
}

impl CsvLogger {
    /// Writes to `path`, replacing it (see [`CsvLogger::append`]).
    pub fn new(path: impl AsRef<Path>) -> CsvLogger {
        CsvLogger {
            path: path.as_ref().to_path_buf(),
            separator: ',',
            append: false,
            file: None,
            keys: vec![],
        }
    }

    /// Field separator (default `,`).
    pub fn separator(mut self, separator: char) -> CsvLogger {
        self.separator = separator;
        self
    }

    /// Append to an existing file (its header is kept) instead of replacing it.
    pub fn append(mut self, append: bool) -> CsvLogger {
        self.append = append;
        self
    }

    fn io_error(&self, source: std::io::Error) -> Error {
        Error::Write { path: self.path.clone(), source }
    }
}

impl Callback for CsvLogger {
    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        let existing = if self.append { std::fs::read_to_string(&self.path).ok() } else { None };
        // Appending to a file with a header: keep its columns.
        self.keys = existing
            .as_deref()
            .and_then(|text| text.lines().next())
            .map(|header| header.split(self.separator).skip(1).map(str::to_string).collect())
            .unwrap_or_default();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(self.append)
            .truncate(!self.append)
            .open(&self.path)
            .map_err(|e| self.io_error(e))?;
        self.file = Some(BufWriter::new(file));
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, _model: &mut Model) -> Result<()> {
        let sep = self.separator.to_string();
        let mut text = String::new();
        if self.keys.is_empty() {
            self.keys = logs.keys().cloned().collect();
            text += &format!("epoch{sep}{}\n", self.keys.join(&sep));
        }
        let values: Vec<String> =
            self.keys.iter().map(|k| logs.get(k).map_or(String::new(), |v| v.to_string())).collect();
        text += &format!("{epoch}{sep}{}\n", values.join(&sep));
        let Some(file) = self.file.as_mut() else { return Ok(()) };
        let written = file.write_all(text.as_bytes()).and_then(|_| file.flush());
        written.map_err(|e| self.io_error(e))
    }

    fn on_train_end(&mut self, _logs: &Logs, _model: &mut Model) -> Result<()> {
        self.file = None;
        Ok(())
    }
}

/// Keras TerminateOnNaN: a NaN or infinite training loss stops training instead of failing
/// `fit` with an error (the epoch's logs, with the non-finite loss, end the History).
#[derive(Debug, Default, Clone)]
pub struct TerminateOnNaN {
    /// The epoch (from 0) and step (from 1) where the loss became non-finite, if it did.
    pub stopped_at: Option<(usize, usize)>,
}

impl TerminateOnNaN {
    /// A new TerminateOnNaN.
    pub fn new() -> TerminateOnNaN {
        TerminateOnNaN::default()
    }
}

impl Callback for TerminateOnNaN {
    fn on_non_finite_loss(&mut self, epoch: usize, step: usize, model: &mut Model) -> Result<()> {
        self.stopped_at = Some((epoch, step));
        model.stop_training();
        Ok(())
    }
}

/// A schedule: `(epoch from 0, current learning rate) -> learning rate`.
pub type Schedule = Box<dyn FnMut(usize, f32) -> f32 + Send>;

/// Keras LearningRateScheduler: before every epoch, sets the learning rate to
/// `schedule(epoch, current_lr)`.
pub struct LearningRateScheduler {
    schedule: Schedule,
    /// The learning rate each epoch ran with, in order.
    pub rates: Vec<f32>,
}

impl LearningRateScheduler {
    /// A scheduler calling `schedule(epoch, lr)` before each epoch.
    pub fn new(schedule: impl FnMut(usize, f32) -> f32 + Send + 'static) -> LearningRateScheduler {
        LearningRateScheduler { schedule: Box::new(schedule), rates: Vec::new() }
    }
}

impl std::fmt::Debug for LearningRateScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LearningRateScheduler").field("rates", &self.rates).finish_non_exhaustive()
    }
}

impl Callback for LearningRateScheduler {
    fn on_epoch_begin(&mut self, epoch: usize, model: &mut Model) -> Result<()> {
        let lr = (self.schedule)(epoch, model.learning_rate()?);
        model.set_learning_rate(lr)?;
        self.rates.push(lr);
        Ok(())
    }
}
