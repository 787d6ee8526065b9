//! `kiln train --out DIR` and `--resume DIR`: the run directory's callback, and the settings a
//! resumed run takes from its checkpoint.
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::TrainArgs;
use crate::callbacks::Mode;
use crate::checkpoint::{Checkpoint, InputPipeline};
use crate::error::{Error, Result};
use crate::run_dir::{self, RunDirectory};

/// Metadata key (under `extra.`) of the `kiln train` arguments in a run's checkpoints.
pub const ARGS_KEY: &str = "train_args";

/// A run to continue: its checkpoint, where it came from, and the arguments it was started
/// with (device, verbosity and output format from the resuming command).
pub struct Resume {
    pub checkpoint: Checkpoint,
    pub path: PathBuf,
    pub args: TrainArgs,
}

/// Reads `dir/last.safetensors` and the arguments stored in it.
pub fn load_resume(current: &TrainArgs, dir: &Path) -> Result<Resume> {
    let path = dir.join(run_dir::LAST);
    let checkpoint = Checkpoint::load(&path)?;
    let stored = checkpoint.extra.get(ARGS_KEY).ok_or_else(|| Error::CorruptCheckpoint {
        path: path.clone(),
        message: format!("no 'extra.{ARGS_KEY}' metadata: not written by kiln train --out"),
    })?;
    let stored: Value = serde_json::from_str(stored).map_err(|e| Error::CorruptCheckpoint {
        path: path.clone(),
        message: format!("'extra.{ARGS_KEY}' is not valid JSON: {e}"),
    })?;
    // Options typed now that the run defines otherwise would be ignored: refuse them.
    let now = args_to_json(current);
    let conflicts: Vec<String> = current
        .given
        .iter()
        // --epochs extends a run; the others are its definition.
        .filter(|id| id.as_str() != "epochs")
        .filter(|id| stored.get(id.as_str()).is_some_and(|was| now.get(id.as_str()) != Some(was)))
        .map(|id| {
            let was = match stored.get(id.as_str()) {
                Some(Value::Null) | None => "the default".to_string(),
                Some(v) => v.to_string(),
            };
            format!("--{} (the run has {was})", id.replace('_', "-"))
        })
        .collect();
    if !conflicts.is_empty() {
        return Err(Error::invalid(
            format!("--resume {}", dir.display()),
            format!(
                "a resumed run keeps its settings, and these differ: {}; only --device, --verbose, \
                 --json and --epochs (to extend it) apply",
                conflicts.join(", ")
            ),
        ));
    }
    let mut args = args_from_json(&stored, current);
    args.resume = Some(dir.to_path_buf());
    args.out = None;
    Ok(Resume { checkpoint, path, args })
}

/// A run directory's lock: `DIR/.lock` holding the process id, taken with create-new, removed
/// when dropped. A lock whose process is gone (a killed run) is taken over.
pub struct RunLock {
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock of `dir` (creating the directory), or says which process holds it.
    pub fn take(dir: &Path) -> Result<RunLock> {
        if dir.is_file() {
            return Err(Error::invalid(
                format!("run directory {}", dir.display()),
                "is a file, not a directory: give --out a directory (it is created if missing)",
            ));
        }
        std::fs::create_dir_all(dir).map_err(|source| Error::Write { path: dir.to_path_buf(), source })?;
        let path = dir.join(".lock");
        for _ in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    use std::io::Write;
                    let _ = write!(f, "{}", std::process::id());
                    return Ok(RunLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let pid = holder.trim().parse::<u32>().ok();
                    let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
                    if alive || !Path::new("/proc/self").exists() {
                        return Err(Error::invalid(
                            format!("run directory {}", dir.display()),
                            format!(
                                "in use by process {} ({}); wait for it, or remove the lock file if no \
                                 run is going on",
                                holder.trim(),
                                path.display()
                            ),
                        ));
                    }
                    // The holder is gone: the lock is stale.
                    let _ = std::fs::remove_file(&path);
                }
                Err(source) => return Err(Error::Write { path, source }),
            }
        }
        Err(Error::invalid(format!("run directory {}", dir.display()), "could not take its lock"))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The validation fraction: `--validation-split`, else 0.1 with a run directory, else 0.
pub fn validation_fraction(args: &TrainArgs) -> Result<f64> {
    let with_dir = args.out.is_some() || args.resume.is_some();
    let f = args.validation_split.unwrap_or(if with_dir { 0.1 } else { 0.0 });
    if !(0.0..1.0).contains(&f) {
        return Err(Error::invalid("--validation-split", format!("{f} is not in [0, 1)")));
    }
    Ok(f)
}

/// The run directory's callback for `--out` / `--resume` (None without either).
pub fn run_directory(
    args: &TrainArgs,
    resumed: Option<&Resume>,
    input: &InputPipeline,
    has_validation: bool,
) -> Result<Option<Arc<Mutex<RunDirectory>>>> {
    let Some(dir) = args.out.as_ref().or(args.resume.as_ref()) else { return Ok(None) };
    // A new run over an earlier one would overwrite its checkpoints and history.
    if args.out.is_some() && !args.overwrite && dir.join(run_dir::LAST).exists() {
        return Err(Error::invalid(
            format!("--out {}", dir.display()),
            format!(
                "holds a run already ({}): continue it with --resume {}, or give --overwrite to start over",
                run_dir::LAST,
                dir.display()
            ),
        ));
    }
    if args.save_best_only && args.monitor.starts_with("val_") && !has_validation {
        return Err(Error::invalid(
            "--save-best-only",
            format!("monitors {} but there is no validation data (--validation-split 0)", args.monitor),
        ));
    }
    let history = resumed
        .and_then(|r| r.checkpoint.extra.get(run_dir::HISTORY_KEY))
        .and_then(|h| serde_json::from_str(h).ok())
        .map(|h| run_dir::history_from_json(&h))
        .unwrap_or_default();
    let mut callback = RunDirectory::new(dir, history)
        .input_pipeline(input.clone())
        .extra(ARGS_KEY, args_to_json(args).to_string());
    if args.save_best_only {
        callback = callback.save_best_only(&args.monitor, Mode::Auto);
    }
    Ok(Some(Arc::new(Mutex::new(callback))))
}

/// The arguments that define a run (not the device or the output format).
pub fn args_to_json(a: &TrainArgs) -> Value {
    json!({
        "data": a.data_name(), "model": a.model, "epochs": a.epochs, "batch_size": a.batch_size,
        "optimizer": a.optimizer, "lr": a.lr, "momentum": a.momentum, "nesterov": a.nesterov,
        "seed": a.seed, "validation_split": validation_fraction(a).ok(),
        "save_best_only": a.save_best_only, "monitor": a.monitor, "scaling": a.scaling, "flip": a.flip,
        "image_size": a.image_size, "window": a.window, "stride": a.stride,
        "loss": a.loss, "from_logits": a.from_logits, "metrics": a.metrics, "class_weight": a.class_weight,
    })
}

/// [`args_to_json`]'s settings over `current` (which keeps the device and output options).
pub fn args_from_json(v: &Value, current: &TrainArgs) -> TrainArgs {
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let uint = |k: &str| v.get(k).and_then(Value::as_u64);
    let mut a = current.clone();
    a.data = text("data").or(a.data);
    a.model = text("model").unwrap_or(a.model);
    if !current.epochs_given {
        a.epochs = uint("epochs").map_or(a.epochs, |n| n as usize);
    }
    a.batch_size = uint("batch_size").map_or(a.batch_size, |n| n as usize);
    a.optimizer = text("optimizer").unwrap_or(a.optimizer);
    a.lr = v.get("lr").and_then(Value::as_f64).map(|f| f as f32);
    a.momentum = v.get("momentum").and_then(Value::as_f64).map_or(a.momentum, |f| f as f32);
    a.nesterov = v.get("nesterov").and_then(Value::as_bool).unwrap_or(a.nesterov);
    a.seed = uint("seed").unwrap_or(a.seed);
    a.validation_split = v.get("validation_split").and_then(Value::as_f64).or(a.validation_split);
    a.save_best_only = v.get("save_best_only").and_then(Value::as_bool).unwrap_or(a.save_best_only);
    a.monitor = text("monitor").unwrap_or(a.monitor);
    a.scaling = text("scaling").or(a.scaling);
    a.flip = v.get("flip").and_then(Value::as_bool).unwrap_or(a.flip);
    a.image_size = text("image_size").or(a.image_size);
    a.window = uint("window").map(|n| n as usize).or(a.window);
    a.stride = uint("stride").map(|n| n as usize).or(a.stride);
    a.loss = text("loss").or(a.loss);
    a.from_logits = v.get("from_logits").and_then(Value::as_bool).unwrap_or(a.from_logits);
    a.metrics = text("metrics").or(a.metrics);
    a.class_weight = text("class_weight").or(a.class_weight);
    a
}
