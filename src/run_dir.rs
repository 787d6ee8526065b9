//! A run directory (`kiln train --out DIR`), written by the [`RunDirectory`] callback:
//!
//! - `last.safetensors` after every epoch, and after the batch an interrupt stopped (with the
//!   partial epoch): the full training state plus the History so far (what `--resume` reads);
//! - `model.safetensors`: the final model, or under `save_best_only` the best epoch's;
//! - `history.csv` (Keras CSVLogger layout), `history.json`, `history.png` (curves), rewritten
//!   from the whole History every epoch, so they always agree with `last.safetensors`.
//!
//! Every file is written atomically, `last.safetensors` first.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};

use crate::callbacks::{Callback, Logs, Mode, Monitor};
use crate::checkpoint::{Checkpoint, InputPipeline, write_atomic};
use crate::error::{Error, Result};
use crate::model::{History, Model};

/// The checkpoint written after every epoch.
pub const LAST: &str = "last.safetensors";
/// The final (or best) model.
pub const MODEL: &str = "model.safetensors";
/// Metadata key (under `extra.`) of the History in a run's checkpoints.
pub const HISTORY_KEY: &str = "history";

/// Writes a run directory as training goes (see the module docs).
#[derive(Debug, Clone)]
pub struct RunDirectory {
    dir: PathBuf,
    /// Every epoch so far, including those before a resume.
    pub history: History,
    input: Option<InputPipeline>,
    extra: BTreeMap<String, String>,
    /// Under `save_best_only`: the monitored value and the best so far.
    best_only: Option<Monitor>,
    epoch_start: Option<Instant>,
}

impl RunDirectory {
    /// A run directory at `dir`, continuing `history` (empty for a new run).
    pub fn new(dir: impl AsRef<Path>, history: History) -> RunDirectory {
        RunDirectory {
            dir: dir.as_ref().to_path_buf(),
            history,
            input: None,
            extra: BTreeMap::new(),
            best_only: None,
            epoch_start: None,
        }
    }

    /// Store the input pipeline in every checkpoint.
    pub fn input_pipeline(mut self, input: InputPipeline) -> Self {
        self.input = Some(input);
        self
    }

    /// Store `value` as `extra.<key>` in every checkpoint.
    pub fn extra(mut self, key: &str, value: String) -> Self {
        self.extra.insert(key.to_string(), value);
        self
    }

    /// Keep in `model.safetensors` the epoch with the best `monitor` (Keras
    /// `save_best_only`), instead of the final model. The best of the epochs already in the
    /// History counts.
    pub fn save_best_only(mut self, monitor: &str, mode: Mode) -> Self {
        let mut best = Monitor::new(monitor).with_mode(mode);
        for &v in self.history.history.get(monitor).into_iter().flatten() {
            if best.improved(v) {
                best.best = Some(v);
            }
        }
        self.best_only = Some(best);
        self
    }

    /// Path of a file in the run directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn checkpoint(&self, model: &mut Model) -> Result<Checkpoint> {
        let mut c = Checkpoint::capture(model)?;
        c.input = self.input.clone();
        c.extra = self.extra.clone();
        c.extra.insert(HISTORY_KEY.into(), history_to_json(&self.history).to_string());
        Ok(c)
    }

    /// Whether `logs` improve on the best monitored value so far (and record it).
    fn improved(&mut self, logs: &Logs) -> bool {
        let Some(monitor) = self.best_only.as_mut() else { return false };
        let Some(current) = monitor.read(logs, "--save-best-only") else { return false };
        let better = monitor.improved(current);
        if better {
            monitor.best = Some(current);
        }
        better
    }

    fn write_history(&self) -> Result<()> {
        write_atomic(&self.path("history.csv"), history_csv(&self.history).as_bytes())?;
        let json = serde_json::to_string_pretty(&history_to_json(&self.history)).unwrap_or_default();
        write_atomic(&self.path("history.json"), json.as_bytes())?;
        write_atomic(&self.path("history.png"), &crate::plot::history_png(&self.history)?)
    }
}

impl Callback for RunDirectory {
    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|source| Error::Write { path: self.dir.clone(), source })
    }

    fn on_epoch_begin(&mut self, _epoch: usize, _model: &mut Model) -> Result<()> {
        self.epoch_start = Some(Instant::now());
        Ok(())
    }

    fn on_epoch_end(&mut self, _epoch: usize, logs: &Logs, model: &mut Model) -> Result<()> {
        let secs = self.epoch_start.map_or(0.0, |t| t.elapsed().as_secs_f64());
        self.history.push(logs, secs);
        let bytes = self.checkpoint(model)?.to_bytes()?;
        write_atomic(&self.path(LAST), &bytes)?;
        if self.improved(logs) {
            write_atomic(&self.path(MODEL), &bytes)?;
        }
        self.write_history()
    }

    /// `last.safetensors` with the state at the interrupt (the partial epoch included, so
    /// `--resume` continues at the next batch); between epochs it is already written.
    fn on_interrupt(&mut self, _epoch: usize, model: &mut Model) -> Result<Option<PathBuf>> {
        if model.partial_epoch().is_some() {
            write_atomic(&self.path(LAST), &self.checkpoint(model)?.to_bytes()?)?;
        }
        Ok(Some(self.path(LAST)))
    }

    fn on_train_end(&mut self, _logs: &Logs, model: &mut Model) -> Result<()> {
        if self.best_only.is_none() {
            self.checkpoint(model)?.save(self.path(MODEL))?;
        }
        Ok(())
    }
}

/// `{"epochs": n, "history": {"loss": [...], ...}, "epoch_seconds": [...]}`.
pub fn history_to_json(h: &History) -> Value {
    json!({"epochs": h.epochs(), "history": h.history, "epoch_seconds": h.epoch_seconds})
}

/// The History [`history_to_json`] wrote (missing parts are empty).
pub fn history_from_json(v: &Value) -> History {
    let floats = |v: &Value| -> Vec<f64> {
        v.as_array().map(|a| a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect()).unwrap_or_default()
    };
    let history = v
        .get("history")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), floats(v).iter().map(|&x| x as f32).collect())).collect())
        .unwrap_or_default();
    History { history, epoch_seconds: v.get("epoch_seconds").map(floats).unwrap_or_default() }
}

/// Keras CSVLogger's layout: `epoch` (from 0), then the keys in name order.
pub fn history_csv(h: &History) -> String {
    let keys: Vec<&String> = h.history.keys().collect();
    let mut s = format!("epoch,{}\n", keys.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(","));
    for epoch in 0..h.epochs() {
        let row: Vec<String> =
            keys.iter().map(|k| h.history[*k].get(epoch).map_or(String::new(), |v| v.to_string())).collect();
        s += &format!("{epoch},{}\n", row.join(","));
    }
    s
}
