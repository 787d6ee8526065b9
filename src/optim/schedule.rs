//! Learning-rate schedules (Keras `keras.optimizers.schedules`): a function of the number of
//! updates already made, evaluated on the host before every step. The learning rate reaches
//! the device as a per-run scalar, so a schedule never recompiles a program.
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::json::read_f32;

/// The learning rate as a function of the step (updates already made, from 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LearningRateSchedule {
    /// The same rate at every step.
    Constant(f32),
    /// Keras `ExponentialDecay`: initial · decay_rate^(step / decay_steps); with `staircase`
    /// the exponent is floored, so the rate drops by `decay_rate` every `decay_steps` steps
    /// (step decay).
    ExponentialDecay { initial: f32, decay_steps: u64, decay_rate: f32, staircase: bool },
    /// Keras `CosineDecay`. Without a warm-up target: initial · ((1 − α)·½(1 + cos(π·s/D)) + α)
    /// with s = min(step, D), D = `decay_steps`. With `warmup_target` = W: the rate rises
    /// linearly from `initial` to W over `warmup_steps` steps, then decays from W as above
    /// over the next `decay_steps` steps, and stays at α·W after that.
    CosineDecay { initial: f32, decay_steps: u64, alpha: f32, warmup_target: Option<f32>, warmup_steps: u64 },
}

impl LearningRateSchedule {
    /// Step decay: `initial`, multiplied by `factor` every `every` steps (Keras
    /// `ExponentialDecay(initial, every, factor, staircase=True)`).
    pub fn step_decay(initial: f32, every: u64, factor: f32) -> LearningRateSchedule {
        LearningRateSchedule::ExponentialDecay {
            initial,
            decay_steps: every,
            decay_rate: factor,
            staircase: true,
        }
    }

    /// Smooth exponential decay: `initial` · `rate`^(step / `decay_steps`).
    pub fn exponential_decay(initial: f32, decay_steps: u64, rate: f32) -> LearningRateSchedule {
        LearningRateSchedule::ExponentialDecay { initial, decay_steps, decay_rate: rate, staircase: false }
    }

    /// Cosine decay from `initial` to 0 over `decay_steps` steps (Keras `CosineDecay`, α = 0).
    pub fn cosine_decay(initial: f32, decay_steps: u64) -> LearningRateSchedule {
        LearningRateSchedule::CosineDecay {
            initial,
            decay_steps,
            alpha: 0.0,
            warmup_target: None,
            warmup_steps: 0,
        }
    }

    /// Linear warm-up from 0 to `peak` over `warmup_steps` steps, then cosine decay to 0 over
    /// `decay_steps` steps (Keras `CosineDecay(0.0, decay_steps, warmup_target=peak,
    /// warmup_steps=warmup_steps)`).
    pub fn warmup_cosine_decay(peak: f32, warmup_steps: u64, decay_steps: u64) -> LearningRateSchedule {
        LearningRateSchedule::CosineDecay {
            initial: 0.0,
            decay_steps,
            alpha: 0.0,
            warmup_target: Some(peak),
            warmup_steps,
        }
    }

    /// The learning rate after `step` updates (computed in f64, rounded once to f32).
    pub fn at(&self, step: u64) -> f32 {
        let s = step as f64;
        match *self {
            LearningRateSchedule::Constant(lr) => lr,
            LearningRateSchedule::ExponentialDecay { initial, decay_steps, decay_rate, staircase } => {
                let p = s / decay_steps.max(1) as f64;
                let p = if staircase { p.floor() } else { p };
                (f64::from(initial) * f64::from(decay_rate).powf(p)) as f32
            }
            LearningRateSchedule::CosineDecay {
                initial,
                decay_steps,
                alpha,
                warmup_target,
                warmup_steps,
            } => {
                let d = decay_steps.max(1) as f64;
                let cosine = |s: f64, from: f64| {
                    let decayed = 0.5 * (1.0 + (std::f64::consts::PI * s / d).cos());
                    from * ((1.0 - f64::from(alpha)) * decayed + f64::from(alpha))
                };
                let initial = f64::from(initial);
                let lr = match warmup_target {
                    None => cosine(s.min(d), initial),
                    Some(target) => {
                        let (w, target) = (warmup_steps as f64, f64::from(target));
                        let s = s.min(d + w);
                        if s < w { (target - initial) * (s / w) + initial } else { cosine(s - w, target) }
                    }
                };
                lr as f32
            }
        }
    }

    /// The schedule a `--lr-schedule` spec names, in epochs, for peak rate `lr` and a run of
    /// `epochs` epochs of `steps_per_epoch` updates: `constant`, `cosine` (to 0 over the run),
    /// `cosine:W` (linear warm-up from 0 over W epochs, then cosine to 0), `exponential:R`
    /// (× R per epoch, smoothly), `step:E:F` (× F every E epochs).
    pub fn from_epochs_spec(
        spec: &str,
        lr: f32,
        epochs: usize,
        steps_per_epoch: usize,
    ) -> Result<LearningRateSchedule> {
        let bad = |why: &str| {
            Error::invalid(
                "--lr-schedule",
                format!(
                    "'{spec}': {why} (known: constant, cosine, cosine:WARMUP_EPOCHS, exponential:RATE, \
                     step:EPOCHS:FACTOR)"
                ),
            )
        };
        let steps = |e: f64| (e * steps_per_epoch as f64).round().max(1.0) as u64;
        let parts: Vec<&str> = spec.split(':').collect();
        // Field i, a finite number above 0 (or at least 0 where `zero` is allowed).
        let number = |i: usize, what: &str, zero: bool| -> Result<f64> {
            let text = parts.get(i).copied().unwrap_or_default();
            let v = text.parse::<f64>().ok().filter(|v| v.is_finite());
            match v {
                None => Err(bad(&format!("the {what} '{text}' is not a number"))),
                Some(v) if v < 0.0 || (!zero && v == 0.0) => {
                    let bound = if zero { "at least 0" } else { "above 0" };
                    Err(bad(&format!("the {what} must be {bound}, got {v}")))
                }
                Some(v) => Ok(v),
            }
        };
        let total = epochs as f64;
        let schedule = match (parts[0], parts.len()) {
            ("constant", 1) => LearningRateSchedule::Constant(lr),
            ("cosine", 1) => LearningRateSchedule::cosine_decay(lr, steps(total)),
            ("cosine", 2) => {
                let warmup = number(1, "warm-up (epochs)", true)?;
                if warmup >= total {
                    return Err(bad("the warm-up must be shorter than the run"));
                }
                LearningRateSchedule::warmup_cosine_decay(lr, steps(warmup), steps(total - warmup))
            }
            ("exponential", 2) => {
                LearningRateSchedule::exponential_decay(lr, steps(1.0), number(1, "rate", false)? as f32)
            }
            ("step", 3) => {
                let every = number(1, "interval (epochs)", false)?;
                LearningRateSchedule::step_decay(lr, steps(every), number(2, "factor", false)? as f32)
            }
            _ => return Err(bad("unknown schedule")),
        };
        schedule.validate().map_err(|m| bad(&m))?;
        Ok(schedule)
    }

    /// Check the parameters; the message names the bad one.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let rate = |name: &str, v: f32| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("{name} must be at least 0, got {v}"))
            }
        };
        let steps = |v: u64| if v > 0 { Ok(()) } else { Err("decay_steps must be at least 1".to_string()) };
        match *self {
            LearningRateSchedule::Constant(lr) => rate("learning_rate", lr),
            LearningRateSchedule::ExponentialDecay { initial, decay_steps, decay_rate, .. } => {
                rate("initial_learning_rate", initial)?;
                rate("decay_rate", decay_rate)?;
                steps(decay_steps)
            }
            LearningRateSchedule::CosineDecay { initial, decay_steps, alpha, warmup_target, .. } => {
                rate("initial_learning_rate", initial)?;
                rate("warmup_target", warmup_target.unwrap_or(0.0))?;
                if !(0.0..=1.0).contains(&alpha) {
                    return Err(format!("alpha must be in [0, 1], got {alpha}"));
                }
                steps(decay_steps)
            }
        }
    }

    /// Keras-style configuration: the rate itself for a constant, else the class name and
    /// its settings.
    pub fn config(&self) -> Value {
        match *self {
            LearningRateSchedule::Constant(lr) => json!(lr),
            LearningRateSchedule::ExponentialDecay { initial, decay_steps, decay_rate, staircase } => json!({
                "class_name": "ExponentialDecay",
                "config": {
                    "initial_learning_rate": initial, "decay_steps": decay_steps,
                    "decay_rate": decay_rate, "staircase": staircase,
                },
            }),
            LearningRateSchedule::CosineDecay {
                initial,
                decay_steps,
                alpha,
                warmup_target,
                warmup_steps,
            } => {
                json!({
                    "class_name": "CosineDecay",
                    "config": {
                        "initial_learning_rate": initial, "decay_steps": decay_steps, "alpha": alpha,
                        "warmup_target": warmup_target, "warmup_steps": warmup_steps,
                    },
                })
            }
        }
    }

    /// The schedule [`LearningRateSchedule::config`] describes: a number (a constant rate) or
    /// `{"class_name": ..., "config": {...}}` with Keras's keys (`staircase` defaults to false,
    /// `alpha` to 0, `warmup_target` to none and `warmup_steps` to 0, as in Keras).
    pub fn from_config(v: &Value) -> Result<LearningRateSchedule> {
        if let Some(rate) = read_f32(v) {
            return Ok(LearningRateSchedule::Constant(rate));
        }
        let bad = |what: String| Error::invalid("learning-rate schedule config", format!("{what} in {v}"));
        let (Some(class), Some(c)) = (v.get("class_name").and_then(Value::as_str), v.get("config")) else {
            return Err(bad("expected a number or a schedule with 'class_name' and 'config'".into()));
        };
        let num =
            |key: &str| c.get(key).and_then(read_f32).ok_or_else(|| bad(format!("needs a number '{key}'")));
        let num_or = |key: &str, default: f32| match c.get(key) {
            None => Ok(default),
            Some(_) => num(key),
        };
        let steps = |key: &str| {
            c.get(key).and_then(Value::as_u64).ok_or_else(|| bad(format!("needs an integer '{key}'")))
        };
        let flag = |key: &str| match c.get(key) {
            None => Ok(false),
            Some(f) => f.as_bool().ok_or_else(|| bad(format!("'{key}' must be true or false"))),
        };
        match class {
            "ExponentialDecay" => Ok(LearningRateSchedule::ExponentialDecay {
                initial: num("initial_learning_rate")?,
                decay_steps: steps("decay_steps")?,
                decay_rate: num("decay_rate")?,
                staircase: flag("staircase")?,
            }),
            "CosineDecay" => Ok(LearningRateSchedule::CosineDecay {
                initial: num("initial_learning_rate")?,
                decay_steps: steps("decay_steps")?,
                alpha: num_or("alpha", 0.0)?,
                warmup_target: match c.get("warmup_target") {
                    None | Some(Value::Null) => None,
                    Some(_) => Some(num("warmup_target")?),
                },
                warmup_steps: match c.get("warmup_steps") {
                    None => 0,
                    Some(_) => steps("warmup_steps")?,
                },
            }),
            other => Err(bad(format!(
                "unknown learning-rate schedule '{other}' (known: ExponentialDecay, CosineDecay)"
            ))),
        }
    }
}
