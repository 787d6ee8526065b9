//! Feature scaling fitted on the training set and applied to every split: `y = (x - mean) / std`
//! per feature, with statistics per feature or, for images, per channel.
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::str::FromStr;

/// How to scale features before training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scaling {
    /// Leave the features as they are.
    #[default]
    None,
    /// Into `[0, 1]`: non-negative data (pixels) is divided by its largest value over all
    /// features (16 for digits, 255 for images); data with negative values gets per-feature
    /// min-max scaling.
    UnitRange,
    /// Per feature: subtract the mean, divide by the (population) standard deviation.
    Standardize,
    /// Per channel (the last dimension, C of NHWC images): subtract the channel's mean over
    /// all samples and positions, divide by its standard deviation. For `[N, F]` tables this
    /// is the same as `Standardize`.
    StandardizePerChannel,
}

impl Scaling {
    /// The name [`FromStr`] parses back: `none`, `unit-range`, `standardize`, `per-channel`.
    pub fn name(&self) -> &'static str {
        match self {
            Scaling::None => "none",
            Scaling::UnitRange => "unit-range",
            Scaling::Standardize => "standardize",
            Scaling::StandardizePerChannel => "per-channel",
        }
    }
}

impl FromStr for Scaling {
    type Err = Error;

    /// Parses `none`, `unit` / `unit-range` / `minmax`, `standardize` / `standard` / `std`,
    /// `per-channel` / `standardize-per-channel` / `channel-std`.
    fn from_str(s: &str) -> Result<Scaling> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Scaling::None),
            "unit" | "unit-range" | "unitrange" | "minmax" => Ok(Scaling::UnitRange),
            "standardize" | "standardise" | "standard" | "std" => Ok(Scaling::Standardize),
            "per-channel" | "standardize-per-channel" | "standardise-per-channel" | "channel-std" => {
                Ok(Scaling::StandardizePerChannel)
            }
            _ => Err(Error::invalid(
                "scaling",
                format!("{s:?} (expected none, unit-range, standardize or per-channel)"),
            )),
        }
    }
}

/// A fitted scaling: per feature, `y = (x - mean[j]) / std[j]` (per-channel statistics are
/// stored repeated for every position, so applying is the same for every mode).
#[derive(Debug, Clone, PartialEq)]
pub struct Scaler {
    /// The scaling this was fitted for.
    pub mode: Scaling,
    /// Offset per feature (the mean for `Standardize`, the minimum or 0 for `UnitRange`).
    pub mean: Vec<f32>,
    /// Divisor per feature; never below 1e-7, and 1 for constant features.
    pub std: Vec<f32>,
}

/// Smallest divisor a scaler uses.
const MIN_STD: f64 = 1e-7;

/// A divisor from a spread: 1 for a constant feature, otherwise at least [`MIN_STD`].
fn divisor(spread: f64) -> f32 {
    if spread == 0.0 || !spread.is_finite() { 1.0 } else { spread.max(MIN_STD) as f32 }
}

/// Mean and divisor ([`divisor`] of the population standard deviation) of each of the `width`
/// columns of `data` viewed as `[rows, width]`.
fn mean_std(data: &[f32], width: usize) -> (Vec<f32>, Vec<f32>) {
    let rows = (data.len() / width).max(1) as f64;
    let mut sum = vec![0f64; width];
    for row in data.chunks_exact(width) {
        for (s, &v) in sum.iter_mut().zip(row) {
            *s += v as f64;
        }
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / rows).collect();
    let mut sq = vec![0f64; width];
    for row in data.chunks_exact(width) {
        for ((s, &v), m) in sq.iter_mut().zip(row).zip(&mean) {
            let d = v as f64 - m;
            *s += d * d;
        }
    }
    (mean.iter().map(|&m| m as f32).collect(), sq.iter().map(|s| divisor((s / rows).sqrt())).collect())
}

impl Scaler {
    /// Fits a scaler on `x: [N, features...]` (statistics per element of a sample).
    pub fn fit(x: &Tensor, mode: Scaling) -> Scaler {
        let f = x.row_len();
        let n = x.rows();
        let identity = Scaler { mode, mean: vec![0.0; f], std: vec![1.0; f] };
        if n == 0 || f == 0 || x.data.is_empty() {
            return identity;
        }
        match mode {
            Scaling::None => identity,
            Scaling::Standardize => {
                let (mean, std) = mean_std(&x.data, f);
                Scaler { mode, mean, std }
            }
            Scaling::StandardizePerChannel => {
                // x: [N, ..., C]: statistics over every value of a channel, repeated per position.
                let c = if x.shape.len() >= 2 { x.shape.last().copied().unwrap_or(f) } else { f };
                if c == 0 || !f.is_multiple_of(c) {
                    return identity;
                }
                let (mean, std) = mean_std(&x.data, c);
                Scaler { mode, mean: mean.repeat(f / c), std: std.repeat(f / c) }
            }
            Scaling::UnitRange => {
                let mut lo = vec![f32::INFINITY; f];
                let mut hi = vec![f32::NEG_INFINITY; f];
                for row in x.data.chunks_exact(f) {
                    for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
                        *l = l.min(v);
                        *h = h.max(v);
                    }
                }
                let global_min = lo.iter().copied().fold(f32::INFINITY, f32::min);
                if global_min >= 0.0 {
                    let global_max = hi.iter().copied().fold(0.0, f32::max);
                    Scaler { mode, mean: vec![0.0; f], std: vec![divisor(global_max as f64); f] }
                } else {
                    Scaler {
                        mode,
                        std: lo.iter().zip(&hi).map(|(&l, &h)| divisor(h as f64 - l as f64)).collect(),
                        mean: lo,
                    }
                }
            }
        }
    }

    /// Scales `x` in place; errors when its per-sample size differs from the fitted one.
    pub fn apply(&self, x: &mut Tensor) -> Result<()> {
        let f = self.mean.len();
        if x.row_len() != f {
            return Err(Error::shape("scaler (elements per sample)", &[f], &[x.row_len()]));
        }
        if self.mode == Scaling::None || f == 0 {
            return Ok(());
        }
        for row in x.data.chunks_exact_mut(f) {
            for ((v, &m), &s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
        Ok(())
    }
}
