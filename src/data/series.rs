//! Univariate time series for forecasting: the next value from a window of the values before
//! it. The series is split in time (the last part is the test split: no future value is
//! trained on). Each window is taken relative to its last value, and the target is the change
//! from it, both divided by the deviation of the training part's one-step changes: a
//! trending series (airline passengers) leaves the training range in the test years, and a
//! network on raw levels extrapolates badly, but its changes stay in range. Predicting 0 is
//! the persistence forecast (the next value is the last), the baseline to beat.
use super::Dataset;
use super::file::{gunzip_if_needed, read_maybe_gzip};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::path::Path;

/// A series of observations in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub values: Vec<f32>,
}

/// Forecasting samples of a series: windows `[N, window, 1]` relative to their last value
/// and the next value's change from it, in units of `scale`.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    pub train: Dataset,
    pub test: Dataset,
    /// The training part's one-step changes' (population) standard deviation: a window value
    /// `v` is stored as `(v - last) / scale`.
    pub scale: f32,
}

impl Series {
    /// Forecasting windows (see the module): the scale comes from the changes the first
    /// `1 - test_fraction` of the windows read and predict; the last `test_fraction` of the
    /// windows (in time) are the test split.
    pub fn forecast(&self, window: usize, test_fraction: f64) -> Result<Forecast> {
        if window == 0 {
            return Err(Error::invalid("series", "--window must be at least 1"));
        }
        let samples = self.values.len().saturating_sub(window);
        let test = ((samples as f64) * test_fraction).round() as usize;
        let train = samples - test;
        if train < 2 || test < 1 {
            return Err(Error::invalid(
                "series",
                format!(
                    "{} values give {samples} windows of {window}: too few for a training and a test split",
                    self.values.len()
                ),
            ));
        }
        // The training windows read values 0..train + window (their last target included).
        let v = &self.values;
        let changes: Vec<f64> = v[..train + window].windows(2).map(|p| p[1] as f64 - p[0] as f64).collect();
        let mean = changes.iter().sum::<f64>() / changes.len() as f64;
        let var = changes.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / changes.len() as f64;
        let scale = if var > 0.0 { var.sqrt() } else { 1.0 };
        let part = |starts: std::ops::Range<usize>| -> Result<Dataset> {
            let n = starts.len();
            let rel = |s: usize, i: usize| ((v[i] as f64 - v[s + window - 1] as f64) / scale) as f32;
            let x = starts.clone().flat_map(|s| (s..s + window).map(move |i| rel(s, i))).collect();
            let y = starts.map(|s| rel(s, s + window)).collect();
            Dataset::new(Tensor::new(&[n, window, 1], x)?, y, 0, Vec::new())
        };
        Ok(Forecast { train: part(0..train)?, test: part(train..samples)?, scale: scale as f32 })
    }
}

/// Reads a series from a CSV file: one value per line in the last column (other columns, such
/// as dates, are ignored), an optional header line. Gzip is detected by content.
pub fn load_series_csv(path: &Path) -> Result<Series> {
    parse_series_csv(&read_maybe_gzip(path)?, path)
}

/// [`load_series_csv`] from the file's bytes; `path` names it in errors.
pub fn parse_series_csv(bytes: &[u8], path: &Path) -> Result<Series> {
    let bytes = gunzip_if_needed(bytes, path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        location: format!("byte {}", e.valid_up_to()),
        message: "not UTF-8 text".into(),
    })?;
    let mut values = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let cell = line.rsplit(',').next().unwrap_or_default().trim();
        match cell.parse::<f32>() {
            Ok(v) if v.is_finite() => values.push(v),
            // A header: the first line, naming its columns.
            Err(_) if values.is_empty() && i == 0 && cell.chars().any(|c| c.is_alphabetic()) => {}
            _ => {
                return Err(Error::Parse {
                    path: path.to_path_buf(),
                    location: format!("line {}", i + 1),
                    message: format!("the last column holds {cell:?}, not a finite number"),
                });
            }
        }
    }
    Ok(Series { values })
}
