//! Optimizers with Keras's defaults and update formulas, learning-rate schedules and gradient
//! clipping.
//!
//! An [`Optimizer`] is an update rule ([`Sgd`], [`Adam`], [`AdamW`], [`Adagrad`],
//! [`Rmsprop`]), a learning rate (a constant or a [`LearningRateSchedule`], evaluated by the
//! training loop every step and passed to the device as a per-run scalar, so changing it never
//! recompiles anything) and an optional [`GradientClip`]. In the training program it becomes
//! tail steps after the backward pass (see [`Optimizer::steps`]): the clipping kernels over the
//! gradients, then one fused update launch per chunk of every contiguous run of trainable
//! parameters. Non-trainable parameters (batch-norm moving statistics) are never touched.
mod clip;
mod schedule;
mod steps;

pub use clip::GradientClip;
pub use schedule::LearningRateSchedule;
pub use steps::{UPDATE_CHUNK, trainable_runs};

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::json::read_f32;

/// Keras `SGD`: momentum 0, no Nesterov.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sgd {
    pub momentum: f32,
    pub nesterov: bool,
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd { momentum: 0.0, nesterov: false }
    }
}

/// Keras `Adam`: β1 0.9, β2 0.999, ε 1e-7, no AMSGrad.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adam {
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
    /// Divide by the running maximum of the second moment (Reddi et al., 2018).
    pub amsgrad: bool,
}

impl Default for Adam {
    fn default() -> Self {
        Adam { beta1: 0.9, beta2: 0.999, epsilon: 1e-7, amsgrad: false }
    }
}

/// Keras `AdamW`: Adam plus decoupled weight decay 0.004 (p −= lr·weight_decay·p before the
/// Adam step; PyTorch's default decay is 0.01).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamW {
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
    pub weight_decay: f32,
    pub amsgrad: bool,
}

impl Default for AdamW {
    fn default() -> Self {
        AdamW { beta1: 0.9, beta2: 0.999, epsilon: 1e-7, weight_decay: 0.004, amsgrad: false }
    }
}

/// Keras `Adagrad`: initial accumulator 0.1, ε 1e-7.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adagrad {
    pub initial_accumulator: f32,
    pub epsilon: f32,
}

impl Default for Adagrad {
    fn default() -> Self {
        Adagrad { initial_accumulator: 0.1, epsilon: 1e-7 }
    }
}

/// Keras `RMSprop`: ρ 0.9, momentum 0, ε 1e-7, not centered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rmsprop {
    pub rho: f32,
    pub momentum: f32,
    pub epsilon: f32,
    /// Normalise by the variance of the gradient instead of its second moment.
    pub centered: bool,
}

impl Default for Rmsprop {
    fn default() -> Self {
        Rmsprop { rho: 0.9, momentum: 0.0, epsilon: 1e-7, centered: false }
    }
}

/// The update rule of an optimizer and its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UpdateRule {
    Sgd(Sgd),
    Adam(Adam),
    AdamW(AdamW),
    Adagrad(Adagrad),
    Rmsprop(Rmsprop),
}

macro_rules! rule_from {
    ($($t:ident),*) => {$(
        impl From<$t> for UpdateRule {
            fn from(r: $t) -> UpdateRule {
                UpdateRule::$t(r)
            }
        }
    )*};
}
rule_from!(Sgd, Adam, AdamW, Adagrad, Rmsprop);

impl UpdateRule {
    /// Keras name of the rule (`sgd`, `adam`, `adamw`, `adagrad`, `rmsprop`).
    pub fn name(&self) -> &'static str {
        match self {
            UpdateRule::Sgd(_) => "sgd",
            UpdateRule::Adam(_) => "adam",
            UpdateRule::AdamW(_) => "adamw",
            UpdateRule::Adagrad(_) => "adagrad",
            UpdateRule::Rmsprop(_) => "rmsprop",
        }
    }

    /// The hyper-parameters under Keras's keys, with the rule's name under `name`.
    pub fn config(&self) -> Value {
        let mut c = match *self {
            UpdateRule::Sgd(s) => json!({ "momentum": s.momentum, "nesterov": s.nesterov }),
            UpdateRule::Adam(a) => {
                json!({ "beta_1": a.beta1, "beta_2": a.beta2, "epsilon": a.epsilon, "amsgrad": a.amsgrad })
            }
            UpdateRule::AdamW(a) => json!({
                "beta_1": a.beta1, "beta_2": a.beta2, "epsilon": a.epsilon,
                "weight_decay": a.weight_decay, "amsgrad": a.amsgrad,
            }),
            UpdateRule::Adagrad(a) => {
                json!({ "initial_accumulator_value": a.initial_accumulator, "epsilon": a.epsilon })
            }
            UpdateRule::Rmsprop(r) => json!({
                "rho": r.rho, "momentum": r.momentum, "epsilon": r.epsilon, "centered": r.centered,
            }),
        };
        c["name"] = json!(self.name());
        c
    }

    /// The rule [`UpdateRule::config`] describes: `name` and every hyper-parameter as a
    /// number; the flags (`nesterov`, `amsgrad`, `centered`) are false when absent.
    pub fn from_config(v: &Value) -> Result<UpdateRule> {
        let bad = |what: String| Error::invalid("optimizer config", format!("{what} in {v}"));
        let num =
            |key: &str| v.get(key).and_then(read_f32).ok_or_else(|| bad(format!("needs a number '{key}'")));
        let flag = |key: &str| match v.get(key) {
            None => Ok(false),
            Some(f) => f.as_bool().ok_or_else(|| bad(format!("'{key}' must be true or false"))),
        };
        Ok(match v.get("name").and_then(Value::as_str) {
            Some("sgd") => Sgd { momentum: num("momentum")?, nesterov: flag("nesterov")? }.into(),
            Some("adam") => Adam {
                beta1: num("beta_1")?,
                beta2: num("beta_2")?,
                epsilon: num("epsilon")?,
                amsgrad: flag("amsgrad")?,
            }
            .into(),
            Some("adamw") => AdamW {
                beta1: num("beta_1")?,
                beta2: num("beta_2")?,
                epsilon: num("epsilon")?,
                weight_decay: num("weight_decay")?,
                amsgrad: flag("amsgrad")?,
            }
            .into(),
            Some("adagrad") => {
                Adagrad { initial_accumulator: num("initial_accumulator_value")?, epsilon: num("epsilon")? }
                    .into()
            }
            Some("rmsprop") => Rmsprop {
                rho: num("rho")?,
                momentum: num("momentum")?,
                epsilon: num("epsilon")?,
                centered: flag("centered")?,
            }
            .into(),
            Some(other) => {
                return Err(bad(format!(
                    "unknown optimizer '{other}' (known: sgd, adam, adamw, adagrad, rmsprop)"
                )));
            }
            None => return Err(bad("needs a string 'name'".into())),
        })
    }
}

/// An optimizer: update rule, learning rate and gradient clipping.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Optimizer {
    pub rule: UpdateRule,
    /// The learning rate of each step (a constant unless a schedule is set).
    pub schedule: LearningRateSchedule,
    pub clip: GradientClip,
}

impl Optimizer {
    /// An optimizer with update rule `rule` (e.g. `Adam { amsgrad: true, ..Adam::default() }`)
    /// and a constant learning rate.
    pub fn new(rule: impl Into<UpdateRule>, lr: f32) -> Optimizer {
        Optimizer {
            rule: rule.into(),
            schedule: LearningRateSchedule::Constant(lr),
            clip: GradientClip::None,
        }
    }

    /// SGD with Keras defaults and learning rate `lr` (Keras's default lr: 0.01).
    pub fn sgd(lr: f32) -> Optimizer {
        Optimizer::new(Sgd::default(), lr)
    }

    /// SGD with momentum (optionally Nesterov).
    pub fn momentum(lr: f32, momentum: f32, nesterov: bool) -> Optimizer {
        Optimizer::new(Sgd { momentum, nesterov }, lr)
    }

    /// Adam with Keras defaults and learning rate `lr` (Keras's default lr: 0.001).
    pub fn adam(lr: f32) -> Optimizer {
        Optimizer::new(Adam::default(), lr)
    }

    /// AdamW with Keras defaults (weight decay 0.004) and learning rate `lr`.
    pub fn adamw(lr: f32) -> Optimizer {
        Optimizer::new(AdamW::default(), lr)
    }

    /// Adagrad with Keras defaults and learning rate `lr` (Keras's default lr: 0.001).
    pub fn adagrad(lr: f32) -> Optimizer {
        Optimizer::new(Adagrad::default(), lr)
    }

    /// RMSprop with Keras defaults and learning rate `lr` (Keras's default lr: 0.001).
    pub fn rmsprop(lr: f32) -> Optimizer {
        Optimizer::new(Rmsprop::default(), lr)
    }

    /// The same optimizer following a learning-rate schedule.
    pub fn with_schedule(mut self, schedule: LearningRateSchedule) -> Optimizer {
        self.schedule = schedule;
        self
    }

    /// The same optimizer with gradient clipping.
    pub fn with_clip(mut self, clip: GradientClip) -> Optimizer {
        self.clip = clip;
        self
    }

    /// The learning rate of the first step (the schedule's initial value).
    pub fn learning_rate(&self) -> f32 {
        self.schedule.at(0)
    }

    /// The learning rate of update number `t` (from 1, as `StepScalars::t`): the schedule
    /// at step t − 1, the number of updates already made (Keras's `optimizer.iterations`).
    pub fn learning_rate_at(&self, t: u32) -> f32 {
        self.schedule.at(u64::from(t.saturating_sub(1)))
    }

    /// Keras name of the update rule.
    pub fn name(&self) -> &'static str {
        self.rule.name()
    }

    /// Number of state slots (each the size of the parameters), in slot order: SGD its
    /// velocity (with momentum); Adam/AdamW m, v and v̂ (AMSGrad); Adagrad the accumulator;
    /// RMSprop the mean square, then the momentum buffer and the mean gradient when used.
    pub fn slots(&self) -> usize {
        match self.rule {
            UpdateRule::Sgd(s) => usize::from(s.momentum != 0.0),
            UpdateRule::Adam(Adam { amsgrad, .. }) | UpdateRule::AdamW(AdamW { amsgrad, .. }) => {
                2 + usize::from(amsgrad)
            }
            UpdateRule::Adagrad(_) => 1,
            UpdateRule::Rmsprop(r) => 1 + usize::from(r.momentum != 0.0) + usize::from(r.centered),
        }
    }

    /// The value every element of slot `k` starts from (Adagrad's accumulator starts at
    /// `initial_accumulator`, everything else at 0).
    pub fn slot_init(&self, k: usize) -> f32 {
        match self.rule {
            UpdateRule::Adagrad(a) if k == 0 => a.initial_accumulator,
            _ => 0.0,
        }
    }

    /// Check the hyper-parameters (errors name the optimizer and the value).
    pub fn validate(&self) -> Result<()> {
        let what = format!("optimizer {}", self.name());
        let check = |name: &str, v: f32, ok: bool, range: &str| {
            if ok && v.is_finite() {
                Ok(())
            } else {
                Err(Error::invalid(&what, format!("{name} must be {range}, got {v}")))
            }
        };
        let unit = |name: &str, v: f32| check(name, v, (0.0..1.0).contains(&v), "in [0, 1)");
        let positive = |name: &str, v: f32| check(name, v, v > 0.0, "positive");
        let non_negative = |name: &str, v: f32| check(name, v, v >= 0.0, "at least 0");
        match self.rule {
            UpdateRule::Sgd(s) => {
                check("momentum", s.momentum, (0.0..=1.0).contains(&s.momentum), "in [0, 1]")?
            }
            UpdateRule::Adam(a) => {
                unit("beta_1", a.beta1)?;
                unit("beta_2", a.beta2)?;
                positive("epsilon", a.epsilon)?;
            }
            UpdateRule::AdamW(a) => {
                unit("beta_1", a.beta1)?;
                unit("beta_2", a.beta2)?;
                positive("epsilon", a.epsilon)?;
                non_negative("weight_decay", a.weight_decay)?;
            }
            UpdateRule::Adagrad(a) => {
                non_negative("initial_accumulator_value", a.initial_accumulator)?;
                positive("epsilon", a.epsilon)?;
            }
            UpdateRule::Rmsprop(r) => {
                unit("rho", r.rho)?;
                check("momentum", r.momentum, (0.0..=1.0).contains(&r.momentum), "in [0, 1]")?;
                positive("epsilon", r.epsilon)?;
            }
        }
        if let Some((key, c)) = self.clip.key() {
            positive(key, c)?;
        }
        self.schedule.validate().map_err(|m| Error::invalid(&what, m))
    }

    /// Keras-style configuration (`get_config`): name, hyper-parameters, learning rate or
    /// schedule, clipping. [`Optimizer::from_config`] reads it back.
    pub fn config(&self) -> Value {
        let mut c = self.rule.config();
        c["learning_rate"] = self.schedule.config();
        self.clip.write_config(&mut c);
        c
    }

    /// The optimizer [`Optimizer::config`] describes (a checkpoint's `optimizer` metadata):
    /// the update rule ([`UpdateRule::from_config`]), the learning rate or schedule under
    /// `learning_rate` ([`LearningRateSchedule::from_config`]) and the clipping
    /// ([`GradientClip::from_config`]). Errors name the key that is missing or malformed.
    pub fn from_config(v: &Value) -> Result<Optimizer> {
        let rule = UpdateRule::from_config(v)?;
        let lr = v
            .get("learning_rate")
            .ok_or_else(|| Error::invalid("optimizer config", format!("needs 'learning_rate' in {v}")))?;
        let schedule = LearningRateSchedule::from_config(lr)?;
        Ok(Optimizer { rule, schedule, clip: GradientClip::from_config(v)? })
    }
}
