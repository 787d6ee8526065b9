//! `--data`: the bundled sets, the MNIST packages, CSV files, IDX directories and image
//! folders, with the source's own test split where it has one.
use crate::data::ts::{SequenceSet, load_ts};
use crate::data::{self, Dataset, Scaler, Scaling};
use crate::error::{Error, Result};
use std::path::Path;

/// A data set as `--data` names it: the training samples, the test samples when the source
/// comes with its own test split, and a description of where it came from.
#[derive(Debug, Clone)]
pub struct LoadedData {
    /// All samples (no test split of its own) or the training split.
    pub train: Dataset,
    /// The source's own test split (MNIST layout), or None: split `train` yourself.
    pub test: Option<Dataset>,
    /// Where the data came from, for messages (e.g. "fashion-mnist (/usr/share/...)").
    pub source: String,
    /// The data is an image folder (the only source an image size applies to).
    pub image_folder: bool,
    /// The scaling the source comes with (sequences: per-dimension standardisation from the
    /// training series' steps, not from their padding), used unless `--scaling` says otherwise.
    pub scaler: Option<Scaler>,
}

impl LoadedData {
    /// `(train, test)`: the source's own test split, else a stratified split of `train` with
    /// `test_fraction` of the samples (seeded). Validates the labels of both.
    pub fn into_split(self, test_fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        self.train.validate_labels()?;
        let Some(test) = self.test else {
            return self.train.stratified_split(test_fraction, seed);
        };
        test.validate_labels()?;
        if test.classes != self.train.classes || test.sample_shape() != self.train.sample_shape() {
            return Err(Error::invalid(
                "data",
                format!(
                    "{}: the test split has {} classes of {:?} samples, the training split {} of {:?}",
                    self.source,
                    test.classes,
                    test.sample_shape(),
                    self.train.classes,
                    self.train.sample_shape()
                ),
            ));
        }
        Ok((self.train, test))
    }
}

/// Loads `--data`: a bundled name (digits, iris, breast-cancer), `fashion-mnist` or `mnist`
/// (system packages, own test split), a CSV file, a directory of MNIST IDX files (own test
/// split) or an image folder (`dir/class_name/*.png|jpg|jpeg`, grey or RGB as its first image).
pub fn load_data(name: &str) -> Result<LoadedData> {
    load_data_sized(name, None)
}

/// [`load_data`], with image-folder images resized to `image_size` (height, width) instead of
/// the first image's size; other sources ignore it.
pub fn load_data_sized(name: &str, image_size: Option<(usize, usize)>) -> Result<LoadedData> {
    let whole =
        |train, source: String| LoadedData { train, test: None, source, image_folder: false, scaler: None };
    let split = |(train, test), source: String| LoadedData {
        train,
        test: Some(test),
        source,
        image_folder: false,
        scaler: None,
    };
    if let Some(d) = data::builtin::by_name(name) {
        return Ok(whole(d?, format!("{name} (bundled)")));
    }
    match name.to_ascii_lowercase().as_str() {
        "fashion-mnist" | "fashion_mnist" => {
            let source = format!("fashion-mnist ({})", data::mnist::FASHION_MNIST_DIR);
            return Ok(split(data::mnist::fashion_mnist()?, source));
        }
        "mnist" => return Ok(split(data::mnist::mnist()?, format!("mnist ({})", data::mnist::MNIST_DIR))),
        "japanese-vowels" | "japanese_vowels" | "japanesevowels" => {
            let (train, test) = data::builtin::japanese_vowels()?;
            return sequences(train, Some(test), "japanese-vowels (bundled, UEA .ts)".into());
        }
        _ => {}
    }
    let path = std::path::Path::new(name);
    if path.is_dir() {
        if data::idx::is_mnist_dir(path) {
            return Ok(split(data::idx::load_mnist_dir(path)?, format!("{name} (IDX files)")));
        }
        let opts = data::ImageOptions { size: image_size, ..Default::default() };
        let images = data::load_image_folder(path, &opts)?;
        return Ok(LoadedData { image_folder: true, ..whole(images, format!("{name} (image folder)")) });
    }
    if name.ends_with(".ts") || name.ends_with(".ts.gz") {
        let train = load_ts(path)?;
        // The UEA convention: NAME_TRAIN.ts beside NAME_TEST.ts.
        let test_path = name.rfind("_TRAIN").map(|i| format!("{}_TEST{}", &name[..i], &name[i + 6..]));
        let test = match test_path.filter(|p| Path::new(p).exists()) {
            Some(p) => Some(load_ts(Path::new(&p))?),
            None => None,
        };
        return sequences(train, test, format!("{name} (UEA .ts)"));
    }
    if name.ends_with(".csv") || name.ends_with(".csv.gz") || path.exists() {
        return Ok(whole(data::csv::load_csv(path, &Default::default())?, name.to_string()));
    }
    Err(Error::invalid(
        "data",
        format!(
            "'{name}' is neither a known data set (digits, iris, breast-cancer, fashion-mnist, mnist, \
             japanese-vowels) nor a file or directory"
        ),
    ))
}

/// Sequences as `[N, steps, dims]` data sets: padded at the end to the longest series of either
/// split, with the training mean, so that the returned standardisation (per dimension, from the
/// training series' real steps) turns the padding into zeros — what a `Masking(0.0)` layer
/// (the `lstm` preset's first) masks.
fn sequences(train: SequenceSet, test: Option<SequenceSet>, source: String) -> Result<LoadedData> {
    let (mean, std) = train.dimension_moments();
    let steps = train.max_len().max(test.as_ref().map_or(0, SequenceSet::max_len));
    let dataset = |s: &SequenceSet| -> Result<Dataset> {
        let (x, _) = s.padded_with(Some(steps), &mean, false)?;
        Dataset::new(x, s.y.clone(), s.classes, s.class_names.clone())
    };
    let repeat = |v: &[f32]| (0..steps).flat_map(|_| v.iter().copied()).collect();
    let scaler = Scaler { mode: Scaling::StandardizePerChannel, mean: repeat(&mean), std: repeat(&std) };
    Ok(LoadedData {
        train: dataset(&train)?,
        test: test.as_ref().map(dataset).transpose()?,
        source,
        image_folder: false,
        scaler: Some(scaler),
    })
}
