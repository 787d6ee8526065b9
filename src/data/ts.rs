//! The sktime / UEA `.ts` time-series format (plain or gzip), as sktime's
//! `load_from_tsfile` reads it:
//!
//! ```text
//! # comments
//! @problemName JapaneseVowels
//! @timeStamps false
//! @univariate false
//! @dimensions 12
//! @equalLength false
//! @classLabel true 1 2 3 4 5 6 7 8 9      (or: @classLabel false / @targetLabel true)
//! @data
//! 1.86,1.89,…:-0.21,-0.19,…:…:1            (one series per line: each dimension's values
//!                                           comma-separated, dimensions separated by ':',
//!                                           the label last)
//! ```
//!
//! - Header keys are case-insensitive; unknown keys are ignored, as sktime does.
//! - Series may have different lengths (`@equalLength false`); within one series every
//!   dimension has the same length.
//! - Missing values (`?`, `NaN`): trailing ones — the same number in every dimension — shorten
//!   the series (they are padding, and padding is masked); any other missing value is an
//!   error naming the line and dimension, since a recurrent net has no value to feed there.
//! - `@timeStamps true` (values written as `(time, value)` pairs) is not supported: an error.
use super::file::{gunzip_if_needed, read_maybe_gzip};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::path::Path;

/// Multivariate series and one label (or regression target) per series.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceSet {
    /// Series i, time-major: step t's `dims` values at `[t·dims, (t+1)·dims)`.
    pub series: Vec<Vec<f32>>,
    /// Values per time step.
    pub dims: usize,
    /// Class index per series (as f32), or the regression target.
    pub y: Vec<f32>,
    /// Number of classes; 0 for regression or unlabelled data.
    pub classes: usize,
    /// The `@classLabel` names, in the file's order (class i is `class_names[i]`).
    pub class_names: Vec<String>,
}

impl SequenceSet {
    /// Number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True when there is no series.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The number of time steps of every series.
    pub fn lengths(&self) -> Vec<usize> {
        self.series.iter().map(|s| s.len() / self.dims.max(1)).collect()
    }

    /// The longest series' length (0 for an empty set).
    pub fn max_len(&self) -> usize {
        self.lengths().into_iter().max().unwrap_or(0)
    }

    /// Per-dimension mean and standard deviation over every time step of every series
    /// (population std; 1 where a dimension is constant, so standardising leaves it at 0).
    pub fn dimension_moments(&self) -> (Vec<f32>, Vec<f32>) {
        let d = self.dims;
        let (mut sum, mut sq, mut n) = (vec![0.0f64; d], vec![0.0f64; d], 0usize);
        for s in &self.series {
            for step in s.chunks_exact(d.max(1)) {
                for (j, &v) in step.iter().enumerate() {
                    sum[j] += f64::from(v);
                    sq[j] += f64::from(v) * f64::from(v);
                }
                n += 1;
            }
        }
        let n = n.max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| {
                let sd = (q / n - m * m).max(0.0).sqrt();
                if sd > 1e-12 { sd as f32 } else { 1.0 }
            })
            .collect();
        (mean.into_iter().map(|m| m as f32).collect(), std)
    }

    /// (v − mean) / std per dimension, in place: pass the training set's
    /// [`dimension_moments`](Self::dimension_moments) to standardise a test set alike.
    pub fn standardize(&mut self, mean: &[f32], std: &[f32]) -> Result<()> {
        if mean.len() != self.dims || std.len() != self.dims {
            return Err(Error::shape("sequence standardisation (dimensions)", &[self.dims], &[mean.len()]));
        }
        for s in &mut self.series {
            for step in s.chunks_exact_mut(self.dims.max(1)) {
                for ((v, m), sd) in step.iter_mut().zip(mean).zip(std) {
                    *v = (*v - m) / sd;
                }
            }
        }
        Ok(())
    }

    /// The series as one `[N, steps, dims]` tensor, zero-padded at the end, and each
    /// series' length; `steps` defaults to the longest series. A longer series is an error.
    pub fn padded(&self, steps: Option<usize>) -> Result<(Tensor, Vec<usize>)> {
        self.padded_with(steps, &vec![0.0; self.dims], false)
    }

    /// As [`padded`](Self::padded), padding with `pad` (one value per dimension), at the
    /// front (`at_front`: Keras `pad_sequences`' default, so that the last steps are the
    /// data) or at the end.
    pub fn padded_with(
        &self,
        steps: Option<usize>,
        pad: &[f32],
        at_front: bool,
    ) -> Result<(Tensor, Vec<usize>)> {
        let lengths = self.lengths();
        let t = steps.unwrap_or_else(|| self.max_len());
        if let Some((i, &len)) = lengths.iter().enumerate().find(|(_, l)| **l > t) {
            return Err(Error::invalid(
                "sequence padding",
                format!("series {i} has {len} steps, more than the {t} to pad to"),
            ));
        }
        if pad.len() != self.dims {
            return Err(Error::shape("sequence padding (values per step)", &[self.dims], &[pad.len()]));
        }
        let d = self.dims;
        let mut data = Vec::with_capacity(self.len() * t * d);
        for s in &self.series {
            let missing = t - s.len() / d.max(1);
            let padding = (0..missing).flat_map(|_| pad.iter().copied());
            if at_front {
                data.extend(padding);
                data.extend_from_slice(s);
            } else {
                data.extend_from_slice(s);
                data.extend(padding);
            }
        }
        Ok((Tensor::new(&[self.len(), t, d], data)?, lengths))
    }
}

/// Loads a `.ts` file (plain or gzip); errors name the file and line.
pub fn load_ts(path: impl AsRef<Path>) -> Result<SequenceSet> {
    let path = path.as_ref();
    let bytes = read_maybe_gzip(path)?;
    parse_ts_bytes(&bytes, path)
}

/// Parses `.ts` bytes (plain or gzip); `source` names them in errors.
pub fn parse_ts_bytes(bytes: &[u8], source: &Path) -> Result<SequenceSet> {
    let bytes = gunzip_if_needed(bytes, source)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| Error::Parse {
        path: source.to_path_buf(),
        location: format!("offset {}", e.valid_up_to()),
        message: "not valid UTF-8 text".into(),
    })?;
    parse_ts(text, source)
}

/// What the header says.
#[derive(Default)]
struct Header {
    dimensions: Option<usize>,
    equal_length: Option<bool>,
    series_length: Option<usize>,
    /// `@classLabel true …`: the class names.
    class_labels: Option<Vec<String>>,
    /// `@targetLabel true`: a regression target ends each line.
    target: bool,
}

/// Parses `.ts` text; `source` names it in errors.
pub fn parse_ts(text: &str, source: &Path) -> Result<SequenceSet> {
    let err = |line: usize, message: String| Error::Parse {
        path: source.to_path_buf(),
        location: format!("line {line}"),
        message,
    };
    let mut header = Header::default();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    let mut saw_data = false;
    for (no, line) in lines.by_ref() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix('@') else {
            return Err(err(
                no,
                format!("expected a '@' header line or '@data' before the data, found '{line}'"),
            ));
        };
        let mut words = rest.split_whitespace();
        let key = words.next().unwrap_or_default().to_ascii_lowercase();
        let words: Vec<&str> = words.collect();
        let flag = |what: &str| match words.first().map(|w| w.to_ascii_lowercase()).as_deref() {
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            _ => Err(err(no, format!("@{what} must be followed by true or false"))),
        };
        let count = |what: &str| {
            words
                .first()
                .and_then(|w| w.parse::<usize>().ok())
                .ok_or_else(|| err(no, format!("@{what} must be followed by a count")))
        };
        match key.as_str() {
            "data" => {
                saw_data = true;
                break;
            }
            "timestamps" if flag("timeStamps")? => {
                return Err(err(no, "time-stamped series ((time, value) pairs) are not supported".into()));
            }
            "dimensions" => header.dimensions = Some(count("dimensions")?),
            "equallength" => header.equal_length = Some(flag("equalLength")?),
            "serieslength" => header.series_length = Some(count("seriesLength")?),
            "classlabel" if flag("classLabel")? => {
                let names: Vec<String> = words[1..].iter().map(|w| w.to_string()).collect();
                if names.is_empty() {
                    return Err(err(no, "@classLabel true must list the class labels".into()));
                }
                header.class_labels = Some(names);
            }
            "targetlabel" => header.target = flag("targetLabel")?,
            _ => {}
        }
    }
    if !saw_data {
        return Err(err(text.lines().count(), "no @data line".into()));
    }
    let labelled = header.class_labels.is_some() || header.target;
    let mut set = SequenceSet {
        series: Vec::new(),
        dims: header.dimensions.unwrap_or(0),
        y: Vec::new(),
        classes: header.class_labels.as_ref().map_or(0, Vec::len),
        class_names: header.class_labels.clone().unwrap_or_default(),
    };
    for (no, line) in lines {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields: Vec<&str> = line.split(':').collect();
        if labelled {
            let label = fields.pop().unwrap_or_default().trim();
            set.y.push(match &header.class_labels {
                Some(names) => names.iter().position(|n| n == label).ok_or_else(|| {
                    err(no, format!("label '{label}' is not one of @classLabel {}", names.join(" ")))
                })? as f32,
                None => {
                    label.parse::<f32>().map_err(|_| err(no, format!("target '{label}' is not a number")))?
                }
            });
        }
        if set.dims == 0 {
            set.dims = fields.len();
        }
        if fields.len() != set.dims {
            return Err(err(no, format!("{} dimensions, but the file has {}", fields.len(), set.dims)));
        }
        set.series.push(parse_series(&fields).map_err(|m| err(no, m))?);
    }
    if set.is_empty() {
        return Err(err(text.lines().count(), "no series after @data".into()));
    }
    let lengths = set.lengths();
    if header.equal_length == Some(true) || header.series_length.is_some() {
        let want = header.series_length.unwrap_or(lengths[0]);
        if let Some((i, l)) = lengths.iter().enumerate().find(|(_, l)| **l != want) {
            return Err(Error::Parse {
                path: source.to_path_buf(),
                location: format!("series {}", i + 1),
                message: format!("{l} steps, but the header says every series has {want}"),
            });
        }
    }
    Ok(set)
}

/// One series' dimensions (each comma-separated values) → time-major values.
fn parse_series(fields: &[&str]) -> std::result::Result<Vec<f32>, String> {
    let mut dims: Vec<Vec<Option<f32>>> = Vec::with_capacity(fields.len());
    for (j, field) in fields.iter().enumerate() {
        let values = field
            .split(',')
            .map(|v| match v.trim() {
                "?" | "NaN" | "nan" => Ok(None),
                v => v
                    .parse::<f32>()
                    .map(Some)
                    .map_err(|_| format!("dimension {}: '{v}' is not a number", j + 1)),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        dims.push(values);
    }
    // Trailing missing values are padding: the length is the last step with any value.
    let valid = |d: &Vec<Option<f32>>| d.iter().rposition(Option::is_some).map_or(0, |p| p + 1);
    let len = dims.iter().map(valid).max().unwrap_or(0);
    if len == 0 {
        return Err("the series has no values".into());
    }
    let mut out = Vec::with_capacity(len * dims.len());
    for t in 0..len {
        for (j, d) in dims.iter().enumerate() {
            match d.get(t) {
                Some(Some(v)) => out.push(*v),
                Some(None) => return Err(format!("dimension {}: missing value at step {}", j + 1, t + 1)),
                None => {
                    return Err(format!(
                        "dimension {} has {} steps, another dimension {len}",
                        j + 1,
                        d.len()
                    ));
                }
            }
        }
    }
    Ok(out)
}
