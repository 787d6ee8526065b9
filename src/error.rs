//! One error type for everything a user can get wrong, naming what and where.
use std::path::PathBuf;

/// The result type used throughout kiln.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure kiln reports. Messages carry the layer, file, shape or limit involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two shapes that must agree do not (layer or op name, both shapes).
    #[error("shape mismatch in {context}: expected {expected:?}, got {got:?}")]
    Shape { context: String, expected: Vec<usize>, got: Vec<usize> },
    /// A label outside `0..classes` (`file`: the labels' file, when they come from one).
    #[error(
        "label {label} at sample {index}{} is outside the class range 0..{classes}",
        match .file { Some(p) => format!(" of {}", p.display()), None => String::new() }
    )]
    LabelOutOfRange { label: f64, index: usize, classes: usize, file: Option<PathBuf> },
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file or directory could not be created or written (the disk is full, a file stands
    /// where a directory should be, no permission), with the OS error.
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file was read but its content is malformed (path, line or offset, what).
    #[error("{path}:{location}: {message}")]
    Parse { path: PathBuf, location: String, message: String },
    /// An argument or configuration value is invalid.
    #[error("invalid {what}: {message}")]
    Invalid { what: String, message: String },
    /// No GPU adapter (of the requested backend) is available.
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// A planned buffer is larger than the device allows.
    #[error(
        "out of device memory: {buffer}: {} needed, more than this adapter's {limit_name} of {}; \
         use a smaller batch size (--batch-size) or the CPU (--device cpu)",
        bytes_in_words(*.needed),
        bytes_in_words(*.limit)
    )]
    OutOfDeviceMemory { buffer: String, needed: u64, limit_name: &'static str, limit: u64 },
    /// The CPU backend's planned memory is more than the machine has (or can allocate).
    #[error(
        "out of memory: {what}: {} needed, {}; use a smaller model or batch size (--batch-size)",
        bytes_in_words(*.needed),
        match .available { Some(a) => format!("{} available on this machine", bytes_in_words(*a)), None => "which could not be allocated".into() }
    )]
    OutOfMemory { what: String, needed: u64, available: Option<u64> },
    /// An error reported by wgpu (validation, out of memory, device lost).
    #[error("GPU error during {context}: {message}")]
    Gpu { context: String, message: String },
    /// The loss became NaN or infinite (epoch and step within it, both from 1).
    #[error(
        "the loss became NaN or infinite at epoch {epoch}, step {step} (epoch mean loss: {value}); try a lower learning rate or check the data for NaN/inf"
    )]
    NonFiniteLoss { value: f32, epoch: usize, step: usize },
    /// A checkpoint file is damaged: truncated, corrupted (CRC mismatch), not safetensors, or
    /// without kiln's metadata.
    #[error("checkpoint {}is unusable: {message}", named(path))]
    CorruptCheckpoint { path: PathBuf, message: String },
    /// A checkpoint does not fit the model: a missing tensor, a wrong shape (tensor and both
    /// shapes), another architecture or optimizer.
    #[error("checkpoint {}does not fit the model: {message}", named(path))]
    CheckpointMismatch { path: PathBuf, message: String },
    /// `fit` was interrupted ([`crate::FitOptions::interrupt`]) in epoch `epoch` (from 1)
    /// after `batches` of its `of` batches, or between epochs when they are equal; `saved`
    /// is the checkpoint that holds the state, if one was written.
    #[error(
        "interrupted {}{}",
        if .batches == .of { format!("after epoch {epoch}") } else { format!("in epoch {epoch} after batch {batches} of {of}") },
        match .saved { Some(p) => format!("; the training state is saved in {}", p.display()), None => "; nothing was saved".into() }
    )]
    Interrupted { epoch: usize, batches: usize, of: usize, saved: Option<PathBuf> },
    /// The model was used before `compile`, or in a way its state does not allow.
    #[error("model not ready: {0}")]
    NotReady(String),
}

impl Error {
    /// A [`Error::LabelOutOfRange`] of the labels read from `path` names it; others pass.
    pub fn in_label_file(self, path: &std::path::Path) -> Error {
        match self {
            Error::LabelOutOfRange { label, index, classes, file: None } => {
                Error::LabelOutOfRange { label, index, classes, file: Some(path.to_path_buf()) }
            }
            e => e,
        }
    }

    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(what: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Invalid { what: what.into(), message: message.into() }
    }

    /// Shorthand for [`Error::Shape`].
    pub fn shape(context: impl Into<String>, expected: &[usize], got: &[usize]) -> Error {
        Error::Shape { context: context.into(), expected: expected.to_vec(), got: got.to_vec() }
    }
}

/// `message` with every line longer than [`LONG_LINE`] characters cut in the middle: a file's
/// 200,000-character line echoed in an error would bury it.
pub fn shorten_lines(message: &str) -> String {
    message
        .split('\n')
        .map(|line| {
            let n = line.chars().count();
            if n <= LONG_LINE {
                return line.to_string();
            }
            let head: String = line.chars().take(LONG_LINE * 2 / 3).collect();
            let tail: String = line.chars().skip(n - LONG_LINE / 4).collect();
            format!(
                "{head} … ({} characters left out) … {tail}",
                n - head.chars().count() - tail.chars().count()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The longest line [`shorten_lines`] keeps whole.
pub const LONG_LINE: usize = 160;

/// `"PATH "`, or nothing for a checkpoint not read from a file (an empty path).
fn named(path: &std::path::Path) -> String {
    match path.as_os_str().is_empty() {
        true => String::new(),
        false => format!("{} ", path.display()),
    }
}

/// A byte count for people: "196.0 MB (196000000 bytes)" (decimal units, as the limits of
/// adapters are usually quoted in MiB: "128.0 MiB (134217728 bytes)" for powers of two).
fn bytes_in_words(bytes: u64) -> String {
    let mib = 1u64 << 20;
    if bytes >= mib && bytes.is_multiple_of(mib) {
        format!("{:.1} MiB ({bytes} bytes)", bytes as f64 / mib as f64)
    } else if bytes >= 1_000_000 {
        format!("{:.1} MB ({bytes} bytes)", bytes as f64 / 1e6)
    } else {
        format!("{bytes} bytes")
    }
}
