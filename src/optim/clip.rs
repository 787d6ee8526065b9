//! Gradient clipping (Keras's `clipnorm`, `global_clipnorm`, `clipvalue`) and its part of the
//! optimizer's configuration.
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::json::read_f32;

/// Gradient clipping before the update (Keras allows one of `clipnorm`, `global_clipnorm` and
/// `clipvalue`). Norm clipping scales gradients by c / max(‖g‖₂, c): unchanged while the norm
/// is at most c, else rescaled to norm c.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum GradientClip {
    #[default]
    None,
    /// Keras `clipnorm`: each parameter's gradient separately.
    Norm(f32),
    /// Keras `global_clipnorm`: all gradients together, by the norm of their concatenation.
    GlobalNorm(f32),
    /// Keras `clipvalue`: every element into [−c, c].
    Value(f32),
}

impl GradientClip {
    /// Keras key of the clipping and its threshold (None: no clipping).
    pub fn key(&self) -> Option<(&'static str, f32)> {
        match *self {
            GradientClip::None => None,
            GradientClip::Norm(c) => Some(("clipnorm", c)),
            GradientClip::GlobalNorm(c) => Some(("global_clipnorm", c)),
            GradientClip::Value(c) => Some(("clipvalue", c)),
        }
    }

    /// Adds the clipping's key (`clipnorm`, `global_clipnorm` or `clipvalue`) to an optimizer
    /// configuration; nothing without clipping.
    pub fn write_config(&self, config: &mut Value) {
        if let Some((key, c)) = self.key() {
            config[key] = json!(c);
        }
    }

    /// The clipping an optimizer configuration names: its one key among `clipnorm`,
    /// `global_clipnorm` and `clipvalue` (a number, or null as Keras writes "none"), else none.
    pub fn from_config(config: &Value) -> Result<GradientClip> {
        let read = |key: &str| match config.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => read_f32(v).map(Some).ok_or_else(|| {
                Error::invalid("optimizer config", format!("'{key}' must be a number, got {v}"))
            }),
        };
        match (read("clipnorm")?, read("global_clipnorm")?, read("clipvalue")?) {
            (None, None, None) => Ok(GradientClip::None),
            (Some(c), None, None) => Ok(GradientClip::Norm(c)),
            (None, Some(c), None) => Ok(GradientClip::GlobalNorm(c)),
            (None, None, Some(c)) => Ok(GradientClip::Value(c)),
            _ => Err(Error::invalid(
                "optimizer config",
                "gives more than one of clipnorm, global_clipnorm and clipvalue (as Keras: one at most)",
            )),
        }
    }
}
