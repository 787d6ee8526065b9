//! Mutation fuzzing of every parser a user's file reaches (issue: hostile input): CSV, IDX,
//! `.ts`, series CSV, text, image files, checkpoints (safetensors + metadata) and model files
//! (TOML and JSON). Each property starts from a valid file, applies 1–8 random mutations (numbers
//! replaced by edge values, bit flips, byte edits, insertions, deletions, truncation, tokens such as `nan`, `?` or
//! `99999999999`), and requires the parser — and what a user would do next with its result —
//! to return, Ok or a typed error, without a panic, an abort or an allocation past the
//! machine. proptest shrinks a failure to its smallest mutation list.
//!
//! `KILN_FUZZ_CASES` sets the cases per parser (default 256, so CI stays fast; the issue note
//! gives the counts of a long run).
use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};

use kiln::data::csv::{CsvOptions, parse_csv_bytes};
use kiln::data::idx::{parse_idx_images, parse_idx_labels};
use kiln::data::series::parse_series_csv;
use kiln::data::text::parse_text_bytes;
use kiln::data::ts::parse_ts_bytes;
use kiln::model::spec::parse_model_text;
use kiln::{Activation, Checkpoint, CompileOptions, Dense, Device, Loss, Optimizer, Sequential};

use crate::common::TempDir;

/// Tokens a mutation may splice in: separators, numbers at the edges, what files get wrong.
const TOKENS: &[&str] = &[
    ",",
    "\n",
    ":",
    "?",
    "nan",
    "inf",
    "-1",
    "0",
    "1e39",
    "99999999999",
    "4294967296",
    "\"",
    "[",
    "]",
    "{",
    "}",
    "=",
    "@data",
    "@dimensions",
    "units",
    "filters",
    "strides",
    "-",
    ".",
    " ",
    "\u{fffd}",
    "\0",
];

/// Values a number in the file may become: zero, negative, huge, past u32, not finite.
const NUMBERS: &[&str] =
    &["0", "1", "-1", "2", "65536", "99999999999", "4294967297", "1e39", "-0.5", "nan", "1000000000"];

#[derive(Debug, Clone)]
enum Mutation {
    /// The k-th number of the text becomes one of [`NUMBERS`] (keeps the syntax valid).
    Number(Index, Index),
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
    Token(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), any::<Index>()).prop_map(|(i, v)| Mutation::Number(i, v)),
        2 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Insert(i, v)),
        1 => any::<Index>().prop_map(Mutation::Delete),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(i, t)| Mutation::Token(i, t)),
    ]
}

fn apply(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in mutations {
        if b.is_empty() {
            b.push(b'0');
        }
        let n = b.len();
        match m {
            Mutation::Number(k, v) => {
                let numbers = number_spans(&b);
                if !numbers.is_empty() {
                    let (start, end) = numbers[k.index(numbers.len())];
                    b.splice(start..end, NUMBERS[v.index(NUMBERS.len())].bytes());
                }
            }
            Mutation::FlipBit(i, bit) => b[i.index(n)] ^= 1 << bit,
            Mutation::SetByte(i, v) => b[i.index(n)] = *v,
            Mutation::Insert(i, v) => b.insert(i.index(n + 1), *v),
            Mutation::Delete(i) => {
                b.remove(i.index(n));
            }
            Mutation::Truncate(i) => b.truncate(i.index(n + 1)),
            Mutation::Token(i, t) => {
                let at = i.index(n + 1);
                b.splice(at..at, TOKENS[t.index(TOKENS.len())].bytes());
            }
        }
    }
    b
}

/// The byte ranges of the runs of ASCII digits (with a '.' inside) in `b`.
fn number_spans(b: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            spans.push((start, i));
        } else {
            i += 1;
        }
    }
    spans
}

fn cases() -> u32 {
    std::env::var("KILN_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

/// Runs `target(seed index, bytes)` on `cases()` mutations of the seeds; a panic fails with
/// the shrunk input.
fn fuzz(name: &str, seeds: &[Vec<u8>], target: impl Fn(usize, &[u8])) {
    let config = Config { cases: cases(), failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(
        config,
        proptest::test_runner::TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let strategy = (0..seeds.len(), prop::collection::vec(mutation(), 1..5));
    let result = runner.run(&strategy, |(seed, mutations)| {
        target(seed, &apply(&seeds[seed], &mutations));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

#[test]
fn csv_files() {
    let plain = b"a,b,label\n1.5,2,0\n3,4e-1,1\n-5,6,2\n7,8,1\n".to_vec();
    let sklearn = b"4,2,no,yes\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n".to_vec();
    let iris = std::fs::read("assets/iris.csv").unwrap()[..600].to_vec();
    fuzz("csv", &[plain, sklearn, iris], |_, bytes| {
        if let Ok(d) = parse_csv_bytes(bytes, Path::new("fuzz.csv"), &CsvOptions::default()) {
            let _ = d.validate_labels();
            let _ = d.stratified_split(0.2, 0);
        }
    });
}

/// IDX images (magic 0x803, count, rows, cols, pixels) and labels (0x801, count, labels).
#[test]
fn idx_files() {
    let mut images = 0x0000_0803u32.to_be_bytes().to_vec();
    for v in [3u32, 2, 2] {
        images.extend(v.to_be_bytes());
    }
    images.extend(0..12u8);
    let mut labels = 0x0000_0801u32.to_be_bytes().to_vec();
    labels.extend(3u32.to_be_bytes());
    labels.extend([0u8, 9, 4]);
    fuzz("idx", &[images, labels], |_, bytes| {
        let _ = parse_idx_images(bytes, Path::new("fuzz-images"));
        let _ = parse_idx_labels(bytes, Path::new("fuzz-labels"));
    });
}

#[test]
fn ts_files() {
    let unequal = b"@problemName fuzz\n@timeStamps false\n@missing false\n@univariate false\n@dimensions 2\n\
@equalLength false\n@classLabel true a b\n@data\n1,2,3:4,5,6:a\n0.5,?:1,?:b\n7:8:a\n"
        .to_vec();
    let equal = b"@problemName f\n@univariate true\n@equalLength true\n@seriesLength 3\n@targetLabel true\n\
@data\n1,2,3:0.5\n4,5,6:1.5\n"
        .to_vec();
    fuzz("ts", &[unequal, equal], |_, bytes| {
        if let Ok(mut s) = parse_ts_bytes(bytes, Path::new("fuzz.ts")) {
            let (mean, std) = s.dimension_moments();
            let _ = s.standardize(&mean, &std);
            let _ = s.padded(None);
        }
    });
}

#[test]
fn series_and_text_files() {
    let series =
        b"Month,Passengers\n1949-01,112\n1949-02,118\n1949-03,132\n1949-04,129\n1949-05,121\n".to_vec();
    let text = "To be, or not to be: that is the question.\nWhether 'tis nobler…\n".as_bytes().to_vec();
    fuzz("series", &[series], |_, bytes| {
        if let Ok(s) = parse_series_csv(bytes, Path::new("fuzz.csv")) {
            let _ = s.forecast(2, 0.2);
        }
    });
    fuzz("text", &[text], |_, bytes| {
        if let Ok(t) = parse_text_bytes(bytes, Path::new("fuzz.txt")) {
            let _ = t.split(4, 1, 0.1);
        }
    });
}

/// Image files, through the folder loader (header, decode limits, resize).
#[test]
fn image_files() {
    let dir = TempDir::new("fuzz-images");
    let mut png = Vec::new();
    image::GrayImage::from_fn(5, 3, |x, y| image::Luma([(x * 40 + y) as u8]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let mut jpeg = Vec::new();
    image::RgbImage::from_pixel(6, 4, image::Rgb([200, 10, 30]))
        .write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .unwrap();
    let root = dir.join("folder");
    for class in ["a", "b"] {
        std::fs::create_dir_all(root.join(class)).unwrap();
    }
    std::fs::write(root.join("b").join("ok.png"), &png).unwrap();
    fuzz("image", &[png, jpeg], |_, bytes| {
        std::fs::write(root.join("a").join("x.png"), bytes).unwrap();
        let _ = kiln::data::load_image_folder(&root, &Default::default());
    });
}

/// Checkpoints: the bytes as `Checkpoint::from_bytes` reads them, then the model they
/// describe built and checked against the weights (as `kiln eval` does before compiling).
#[test]
fn checkpoint_files() {
    let mut m =
        Sequential::new(&[4]).add(Dense::new(3, Activation::Relu)).add(Dense::new(2, Activation::Softmax));
    m.compile(CompileOptions::new(Optimizer::adam(1e-3), Loss::SparseCategoricalCrossentropy, Device::Cpu))
        .unwrap();
    let bytes = Checkpoint::capture(&mut m).unwrap().to_bytes().unwrap();
    let read = |bytes: &[u8]| {
        if let Ok(c) = Checkpoint::from_bytes(bytes, Path::new("fuzz.safetensors"))
            && let Ok(model) = c.build_model()
        {
            let _ = c.check_fits(&model, Path::new("fuzz.safetensors"));
            let _ = c.compile_options(Device::Cpu);
        }
    };
    fuzz("checkpoint", std::slice::from_ref(&bytes), |_, b| read(b));
    // The metadata values mutated and the file re-encoded, so that the safetensors header
    // and the data CRC stay valid and the mutation reaches kiln's metadata readers.
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let metadata = metadata.metadata().clone().unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let keys: Vec<String> = metadata.keys().cloned().collect();
    let seeds: Vec<Vec<u8>> = keys.iter().map(|k| metadata[k].clone().into_bytes()).collect();
    fuzz("checkpoint metadata", &seeds, |seed, value| {
        let mut meta = metadata.clone();
        meta.insert(keys[seed].clone(), String::from_utf8_lossy(value).into_owned());
        let views: Vec<(String, safetensors::tensor::TensorView)> =
            tensors.tensors().into_iter().map(|(n, v)| (n.to_string(), v)).collect();
        let bytes = safetensors::serialize(views, Some(meta)).unwrap();
        read(&bytes);
    });
}

/// Model files: parsed, built on their input shape, summarised and round-tripped.
#[test]
fn model_files() {
    let toml = b"input_shape = [8, 8, 1]\n[[layers]]\ntype = \"Conv2D\"\nfilters = 4\nkernel_size = 3\n\
padding = \"same\"\nstrides = 1\n[[layers]]\ntype = \"MaxPooling2D\"\npool_size = 2\n[[layers]]\ntype = \"Flatten\"\n\
[[layers]]\ntype = \"Dense\"\nunits = 10\nactivation = \"softmax\"\n"
        .to_vec();
    let lstm = b"input_shape = [5, 3]\n[[layers]]\ntype = \"LSTM\"\nunits = 4\nreturn_sequences = true\n\
[[layers]]\ntype = \"GRU\"\nunits = 2\n[[layers]]\ntype = \"Dense\"\nunits = 1\n"
        .to_vec();
    let json = br#"{"input_shape": [6], "layers": [{"type": "Dense", "units": 3, "activation": "relu"},
{"type": "Dropout", "rate": 0.5}, {"type": "Dense", "units": 2, "activation": "softmax"}]}"#
        .to_vec();
    let check = |bytes: &[u8], path: &str| {
        let Ok(text) = std::str::from_utf8(bytes) else { return };
        if let Ok(spec) = parse_model_text(text, Path::new(path)) {
            let shape = spec.input_shape.clone().unwrap_or_else(|| vec![8, 8, 1]);
            let model = spec.into_model(&shape, 0);
            if model.summary().is_ok() {
                let _ = kiln::model::spec::parse_model(&model.config());
            }
        }
    };
    fuzz("model.toml", &[toml, lstm], |_, b| check(b, "fuzz.toml"));
    fuzz("model.json", &[json], |_, b| check(b, "fuzz.json"));
}
