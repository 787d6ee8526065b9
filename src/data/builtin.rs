//! The data sets bundled into the binary (from `assets/`), so kiln runs anywhere: digits
//! (default), iris, breast cancer, the JapaneseVowels series, the airline
//! passenger series and nine Shakespeare plays. See `assets/*.rst` for their
//! sources.
use super::Dataset;
use super::csv::{CsvLayout, CsvOptions, parse_csv_bytes};
use super::series::{Series, parse_series_csv};
use super::text::{TextCorpus, parse_text_bytes};
use super::ts::{SequenceSet, parse_ts_bytes};
use crate::error::Result;
use std::path::Path;

const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../assets/digits.csv.gz");
const IRIS_CSV: &[u8] = include_bytes!("../../assets/iris.csv");
const BREAST_CANCER_CSV: &[u8] = include_bytes!("../../assets/breast_cancer.csv");
const JAPANESE_VOWELS_TRAIN: &[u8] = include_bytes!("../../assets/JapaneseVowels_TRAIN.ts.gz");
const JAPANESE_VOWELS_TEST: &[u8] = include_bytes!("../../assets/JapaneseVowels_TEST.ts.gz");
const AIRLINE_CSV: &[u8] = include_bytes!("../../assets/airline.csv");
const SHAKESPEARE_TXT_GZ: &[u8] = include_bytes!("../../assets/shakespeare.txt.gz");

/// Names accepted by [`by_name`].
pub const NAMES: [&str; 3] = ["digits", "iris", "breast-cancer"];

/// UCI optical digits (test part): 1,797 samples × 64 pixels (8×8, values 0..16), 10 classes.
pub fn digits() -> Result<Dataset> {
    let opts = CsvOptions { layout: CsvLayout::Plain, header: Some(false), ..CsvOptions::default() };
    parse_csv_bytes(DIGITS_CSV_GZ, Path::new("<builtin>/digits.csv.gz"), &opts)
}

/// Iris: 150 samples × 4 features, 3 classes (setosa, versicolor, virginica).
pub fn iris() -> Result<Dataset> {
    let opts = CsvOptions { layout: CsvLayout::Sklearn, ..CsvOptions::default() };
    parse_csv_bytes(IRIS_CSV, Path::new("<builtin>/iris.csv"), &opts)
}

/// Wisconsin breast cancer: 569 samples × 30 features, 2 classes (malignant, benign).
pub fn breast_cancer() -> Result<Dataset> {
    let opts = CsvOptions { layout: CsvLayout::Sklearn, ..CsvOptions::default() };
    parse_csv_bytes(BREAST_CANCER_CSV, Path::new("<builtin>/breast_cancer.csv"), &opts)
}

/// A bundled data set by name (`digits`, `iris`, `breast-cancer`); `None` for other names.
pub fn by_name(name: &str) -> Option<Result<Dataset>> {
    match name.to_ascii_lowercase().as_str() {
        "digits" => Some(digits()),
        "iris" => Some(iris()),
        "breast-cancer" | "breast_cancer" => Some(breast_cancer()),
        _ => None,
    }
}

/// UCI Japanese Vowels (sktime/UEA `.ts`): 9 speakers, 12 LPC cepstrum coefficients per frame,
/// 7–29 frames per utterance; the published split, 270 training and 370 test series.
pub fn japanese_vowels() -> Result<(SequenceSet, SequenceSet)> {
    Ok((
        parse_ts_bytes(JAPANESE_VOWELS_TRAIN, Path::new("<builtin>/JapaneseVowels_TRAIN.ts.gz"))?,
        parse_ts_bytes(JAPANESE_VOWELS_TEST, Path::new("<builtin>/JapaneseVowels_TEST.ts.gz"))?,
    ))
}

/// Nine Shakespeare plays as one text (1,151,343 characters), for character-level language
/// models.
pub fn shakespeare() -> Result<TextCorpus> {
    parse_text_bytes(SHAKESPEARE_TXT_GZ, Path::new("<builtin>/shakespeare.txt.gz"))
}

/// Monthly airline passengers 1949–1960 in thousands (Box & Jenkins): 144 values.
pub fn airline() -> Result<Series> {
    parse_series_csv(AIRLINE_CSV, Path::new("<builtin>/airline.csv"))
}
