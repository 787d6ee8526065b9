//! `kiln predict` with a forecaster's checkpoint (trained on `--data airline` or a CSV with
//! `--window`): the next values after the end of each series file.
use std::path::Path;

use crate::data::series::load_series_csv;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::tensor::Tensor;

/// The `horizon` values after the end of the series in `path` (its last column, as training
/// reads it). Each comes from the window of the `window` values before it, taken relative to
/// its last value in units of `scale` as in training (`data::series`); the values forecast
/// so far feed the later windows (a recursive forecast).
pub(super) fn forecast_series(
    model: &mut Model,
    path: &Path,
    window: usize,
    scale: f32,
    horizon: usize,
) -> Result<Vec<f32>> {
    let mut values: Vec<f64> = load_series_csv(path)?.values.iter().map(|&v| v as f64).collect();
    if values.len() < window {
        return Err(Error::invalid(
            format!("series {}", path.display()),
            format!("holds {} values, but the model forecasts from windows of {window}", values.len()),
        ));
    }
    let scale = scale as f64;
    let mut next_values = Vec::with_capacity(horizon);
    for step in 1..=horizon {
        let last = values[values.len() - 1];
        let x: Vec<f32> =
            values[values.len() - window..].iter().map(|&v| ((v - last) / scale) as f32).collect();
        let change = model.predict(&Tensor::new(&[1, window, 1], x)?, 1)?;
        let next = last + change.data.first().copied().unwrap_or(f32::NAN) as f64 * scale;
        if !next.is_finite() {
            return Err(Error::invalid(
                format!("series {}", path.display()),
                format!("the forecast {step} after its end is {next}"),
            ));
        }
        values.push(next);
        next_values.push(next as f32);
    }
    Ok(next_values)
}
