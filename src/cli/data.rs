//! `--data`: the bundled sets, the MNIST packages, CSV files, IDX directories, image
//! folders, `.ts` sequences, text and series, with the source's own test split where it has
//! one.
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
    /// What the samples are, beyond their shape: windows of a text or of a series.
    pub kind: DataKind,
}

/// What `--data` loaded, where it changes training or its report.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum DataKind {
    /// Tables, images, sequences.
    #[default]
    Samples,
    /// Windows of character ids of a text; the classes are its characters (the vocabulary).
    Text,
    /// Windows of a univariate series relative to their last value, the next value's change
    /// as target; `scale` converts errors back to the series' units
    /// ([`data::series::Forecast`]).
    Series { scale: f32 },
}

/// How `--data` is read, beyond its name.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DataOptions {
    /// Image folders: resize to (height, width) instead of the images' most common size.
    pub image_size: Option<(usize, usize)>,
    /// Text and series: the window length (default 100 characters, 12 values).
    pub window: Option<usize>,
    /// Text: the step between window starts (default: the window, so that every character
    /// is a target once per epoch for a per-step model).
    pub stride: Option<usize>,
}

/// Default window of a text (characters), as char-rnn's (Karpathy 2015).
pub const TEXT_WINDOW: usize = 100;
/// Default window of a series (values: a year of months).
pub const SERIES_WINDOW: usize = 12;
/// The held-out tail of a text and the test part of a series.
pub const TEXT_HELD_OUT: f64 = 0.1;
pub const SERIES_TEST: f64 = 0.2;

impl LoadedData {
    /// `(train, test)`: the source's own test split, else a stratified split of `train` with
    /// `test_fraction` of the samples (seeded). Validates the labels of both.
    pub fn into_split(self, test_fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        self.train.validate_labels()?;
        let Some(test) = self.test else {
            return self.train.stratified_split(test_fraction, seed);
        };
        test.validate_labels()?;
        let dims = |s: &[usize]| s.iter().map(usize::to_string).collect::<Vec<_>>().join("×");
        if test.sample_shape() != self.train.sample_shape() {
            return Err(Error::invalid(
                "data",
                format!(
                    "{}: the test samples are {} but the training samples {}: both splits need one shape",
                    self.source,
                    dims(test.sample_shape()),
                    dims(self.train.sample_shape())
                ),
            ));
        }
        if test.classes != self.train.classes {
            return Err(Error::invalid(
                "data",
                format!(
                    "{}: the test split has {} classes, the training split {}: both need the same classes",
                    self.source, test.classes, self.train.classes
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
/// the images' most common size; other sources ignore it.
pub fn load_data_sized(name: &str, image_size: Option<(usize, usize)>) -> Result<LoadedData> {
    load_data_with(name, &DataOptions { image_size, ..DataOptions::default() })
}

/// [`load_data`] with options: also text (`shakespeare`, `FILE.txt`: windows of characters,
/// the last 10% of the text held out) and series (`airline`, or a CSV with `--window`: the
/// next value from a window, the last 20% of the windows in time as the test split).
pub fn load_data_with(name: &str, opts: &DataOptions) -> Result<LoadedData> {
    let image_size = opts.image_size;
    let whole = |train, source: String| LoadedData {
        train,
        test: None,
        source,
        image_folder: false,
        scaler: None,
        kind: DataKind::Samples,
    };
    let split = |(train, test), source: String| LoadedData {
        train,
        test: Some(test),
        source,
        image_folder: false,
        scaler: None,
        kind: DataKind::Samples,
    };
    let text = |corpus: data::text::TextCorpus, source: String| -> Result<LoadedData> {
        let window = opts.window.unwrap_or(TEXT_WINDOW);
        let (train, test) = corpus.split(window, opts.stride.unwrap_or(window), TEXT_HELD_OUT)?;
        let scaler = Some(Scaler::fit(&train.x, Scaling::None));
        Ok(LoadedData { scaler, kind: DataKind::Text, ..split((train, test), source) })
    };
    let series = |s: data::series::Series, source: String| -> Result<LoadedData> {
        let f = s.forecast(opts.window.unwrap_or(SERIES_WINDOW), SERIES_TEST)?;
        let scaler = Some(Scaler::fit(&f.train.x, Scaling::None));
        Ok(LoadedData {
            scaler,
            kind: DataKind::Series { scale: f.scale },
            ..split((f.train, f.test), source)
        })
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
        "shakespeare" => return text(data::builtin::shakespeare()?, "shakespeare (bundled text)".into()),
        "airline" => return series(data::builtin::airline()?, "airline (bundled series)".into()),
        _ => {}
    }
    let path = std::path::Path::new(name);
    if path.is_dir() {
        if data::idx::is_mnist_dir(path) {
            return Ok(split(data::idx::load_mnist_dir(path)?, format!("{name} (IDX files)")));
        }
        let opts = data::ImageOptions { size: image_size, ..Default::default() };
        let images = data::load_image_folder_with_progress(path, &opts, &loading_bar(name))?;
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
    if name.ends_with(".txt") || name.ends_with(".txt.gz") {
        return text(data::text::load_text(path)?, format!("{name} (text)"));
    }
    let csv = name.ends_with(".csv") || name.ends_with(".csv.gz");
    if csv && opts.window.is_some() {
        return series(data::series::load_series_csv(path)?, format!("{name} (series)"));
    }
    if csv || path.exists() {
        return Ok(whole(data::csv::load_csv(path, &Default::default())?, name.to_string()));
    }
    Err(Error::invalid(
        "data",
        format!(
            "'{name}' is neither a known data set (digits, iris, breast-cancer, fashion-mnist, mnist, \
             japanese-vowels, shakespeare, airline) nor a file or directory"
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
        kind: DataKind::Samples,
    })
}

/// A progress bar on standard error (drawn only on a terminal) for loading the images of
/// `name`, once there are enough of them to take a moment.
fn loading_bar(name: &str) -> impl Fn(usize, usize) + Sync + use<> {
    let bar = std::sync::OnceLock::<indicatif::ProgressBar>::new();
    let name = name.to_string();
    move |_done, total| {
        if total < 500 {
            return;
        }
        let bar = bar.get_or_init(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("loading {msg} {pos}/{len} {bar:20} {elapsed}")
            {
                bar.set_style(style.progress_chars("━━ "));
            }
            bar.set_message(name.clone());
            bar
        });
        // One call per image, from several threads: inc keeps the count monotonic.
        bar.inc(1);
        if bar.position() == total as u64 {
            bar.finish_and_clear();
        }
    }
}
