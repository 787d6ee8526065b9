//! [`ProgbarLogger`]: `fit`'s terminal output as a callback (Keras's default `ProgbarLogger`).
#[cfg(feature = "cli")]
use std::io::IsTerminal;
use std::io::Write;
use std::time::Instant;

use super::{Callback, Logs};
use crate::error::Result;
use crate::model::Model;

/// Prints training progress: `verbose` 1, a progress bar per epoch on a terminal (running loss
/// and metrics a few times a second) then Keras's epoch line; 2, one line per epoch
/// (`Epoch k/n: …`). `fit` adds one first in its callbacks when `FitOptions::verbose` is 1 or
/// 2; use `verbose: 0` and a callback of your own to replace it.
pub struct ProgbarLogger {
    verbose: u8,
    epochs: usize,
    steps: usize,
    #[cfg(feature = "cli")]
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    last_tick: Instant,
}

/// Seconds between two updates of the bar's running logs (each is a readback).
const TICK_MS: u128 = 250;

impl ProgbarLogger {
    /// A logger for `epochs` epochs of `steps` batches each.
    pub fn new(verbose: u8, epochs: usize, steps: usize) -> ProgbarLogger {
        let now = Instant::now();
        ProgbarLogger {
            verbose,
            epochs,
            steps,
            #[cfg(feature = "cli")]
            bar: None,
            started: now,
            last_tick: now,
        }
    }

    #[cfg(feature = "cli")]
    fn has_bar(&self) -> bool {
        self.bar.is_some()
    }

    #[cfg(not(feature = "cli"))]
    fn has_bar(&self) -> bool {
        false
    }
}

impl Callback for ProgbarLogger {
    fn on_epoch_begin(&mut self, epoch: usize, _model: &mut Model) -> Result<()> {
        if self.verbose == 1 {
            println!("Epoch {}/{}", epoch + 1, self.epochs);
            #[cfg(feature = "cli")]
            if std::io::stdout().is_terminal() {
                let bar = indicatif::ProgressBar::new(self.steps as u64);
                if let Ok(style) =
                    indicatif::ProgressStyle::with_template("{pos}/{len} {bar:20} {elapsed} - {msg}")
                {
                    bar.set_style(style.progress_chars("━━ "));
                }
                self.bar = Some(bar);
            }
        }
        self.started = Instant::now();
        self.last_tick = self.started;
        Ok(())
    }

    fn wants_logs_after(&mut self, _batch: usize) -> bool {
        self.has_bar() && self.last_tick.elapsed().as_millis() >= TICK_MS
    }

    fn on_train_batch_end(&mut self, batch: usize, logs: &Logs, _model: &mut Model) -> Result<()> {
        #[cfg(feature = "cli")]
        if let Some(bar) = &self.bar {
            // A continued (once interrupted) epoch starts past batch 0.
            bar.set_position(batch as u64 + 1);
            if !logs.is_empty() {
                let metrics: String = logs
                    .iter()
                    .filter(|(k, _)| *k != "loss")
                    .map(|(k, v)| format!("{k}: {v:.4} - "))
                    .collect();
                bar.set_message(format!(
                    "{metrics}loss: {:.4}",
                    logs.get("loss").copied().unwrap_or(f32::NAN)
                ));
                self.last_tick = Instant::now();
            }
        }
        #[cfg(not(feature = "cli"))]
        let _ = (batch, logs);
        Ok(())
    }

    fn on_interrupt(&mut self, _epoch: usize, _model: &mut Model) -> Result<Option<std::path::PathBuf>> {
        #[cfg(feature = "cli")]
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
        Ok(None)
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, _model: &mut Model) -> Result<()> {
        #[cfg(feature = "cli")]
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let secs = self.started.elapsed().as_secs_f64();
        let metrics: String = logs.iter().map(|(k, v)| format!(" - {k}: {v:.4}")).collect();
        let per_step = secs / self.steps.max(1) as f64;
        let prefix = if self.verbose == 1 {
            format!("{0}/{0} ━━━━━━━━━━━━━━━━━━━━ ", self.steps)
        } else {
            format!("Epoch {}/{}: ", epoch + 1, self.epochs)
        };
        println!("{prefix}{} {}/step{metrics}", human_time(secs), human_time(per_step));
        let _ = std::io::stdout().flush();
        Ok(())
    }
}

/// Keras-style durations: "3s", "12ms", "250us".
fn human_time(secs: f64) -> String {
    if secs >= 1.0 {
        format!("{secs:.0}s")
    } else if secs >= 1e-3 {
        format!("{:.0}ms", secs * 1e3)
    } else {
        format!("{:.0}us", secs * 1e6)
    }
}
