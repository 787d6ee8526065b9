//! Metrics computed on the device during fit/evaluate and read back once per epoch.
use crate::error::{Error, Result};

/// A metric reported next to the loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Fraction of samples whose predicted class (argmax, or 0.5 threshold for one sigmoid
    /// unit) equals the label.
    Accuracy,
}

impl Metric {
    /// Keras name, used as the History key.
    pub fn name(&self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
        }
    }

    /// Parse a Keras metric name.
    pub fn parse(s: &str) -> Result<Metric> {
        match s {
            "accuracy" | "acc" => Ok(Metric::Accuracy),
            other => Err(Error::invalid("metric", format!("unknown metric '{other}' (known: accuracy)"))),
        }
    }
}
