//! Character-level text: a corpus, its vocabulary, and windows of it as a data set for
//! next-character prediction, as Keras's character-level text generation example trains
//! (a window of `w` characters in, the character after it out).
//!
//! A sample's features are the window's character ids (as f32, for an `Embedding`), its labels
//! the id of the character after each of them; the classes are the vocabulary, one class name
//! per character.
use super::Dataset;
use super::file::read_maybe_gzip;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::path::Path;

/// The most distinct characters a corpus may have (one output unit each).
pub const MAX_VOCABULARY: usize = 65_536;

/// A text as character ids, with its vocabulary (the distinct characters, sorted).
#[derive(Debug, Clone, PartialEq)]
pub struct TextCorpus {
    /// One id per character of the text: its index in `vocabulary`.
    pub ids: Vec<u32>,
    /// The distinct characters, in code-point order; id `i` is `vocabulary[i]`.
    pub vocabulary: Vec<char>,
}

impl TextCorpus {
    /// The corpus of `text`; `source` names it in errors. Needs two distinct characters.
    pub fn from_text(text: &str, source: &str) -> Result<TextCorpus> {
        let mut vocabulary: Vec<char> = text.chars().collect();
        vocabulary.sort_unstable();
        vocabulary.dedup();
        if vocabulary.len() < 2 {
            return Err(Error::invalid(
                format!("text {source}"),
                format!("{} distinct characters: a language model needs at least 2", vocabulary.len()),
            ));
        }
        if vocabulary.len() > MAX_VOCABULARY {
            return Err(Error::invalid(
                format!("text {source}"),
                format!("{} distinct characters (at most {MAX_VOCABULARY})", vocabulary.len()),
            ));
        }
        let corpus = TextCorpus { ids: Vec::new(), vocabulary };
        let ids = corpus.encode(text)?;
        Ok(TextCorpus { ids, ..corpus })
    }

    /// A vocabulary from class names of one character each (a checkpoint's).
    pub fn vocabulary_from_names(names: &[String]) -> Result<Vec<char>> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut chars = n.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Ok(c),
                    _ => Err(Error::invalid(
                        "vocabulary",
                        format!("class {i} is {n:?}, not one character: not a character model"),
                    )),
                }
            })
            .collect()
    }

    /// Number of distinct characters.
    pub fn vocabulary_size(&self) -> usize {
        self.vocabulary.len()
    }

    /// One class name per character (the character itself).
    pub fn class_names(&self) -> Vec<String> {
        self.vocabulary.iter().map(|c| c.to_string()).collect()
    }

    /// The ids of `text`; errors on a character outside the vocabulary, naming it and where.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        encode_with(&self.vocabulary, text)
    }

    /// Samples from the windows of `ids[range]`: for every `stride`-th start `s` with
    /// `s + window < range.end`, the `window` ids from `s` in, and as labels the id after
    /// each of them (per step: the window shifted by one; [`Dataset::last_labels`] keeps the
    /// next character of the whole window only).
    pub fn windows(&self, range: std::ops::Range<usize>, window: usize, stride: usize) -> Result<Dataset> {
        if window == 0 || stride == 0 {
            return Err(Error::invalid("text windows", "--window and --stride must be at least 1"));
        }
        let end = range.end.min(self.ids.len());
        let starts: Vec<usize> = (range.start..end.saturating_sub(window)).step_by(stride).collect();
        let mut x = Vec::new();
        x.try_reserve_exact(starts.len() * window).map_err(|_| {
            Error::invalid(
                "text windows",
                format!("{} windows of {window} do not fit in memory", starts.len()),
            )
        })?;
        let mut y = Vec::with_capacity(starts.len() * window);
        for &s in &starts {
            x.extend(self.ids[s..s + window].iter().map(|&id| id as f32));
            y.extend(self.ids[s + 1..s + window + 1].iter().map(|&id| id as f32));
        }
        let x = Tensor::new(&[starts.len(), window], x)?;
        Dataset::with_label_steps(x, y, window, self.vocabulary_size(), self.class_names())
    }

    /// `(train, held_out)`: the windows of the text's first `1 - held_out` and of its tail
    /// (the tail's windows lie wholly inside it, so no held-out character is trained on).
    /// Errors when either part has no window.
    pub fn split(&self, window: usize, stride: usize, held_out: f64) -> Result<(Dataset, Dataset)> {
        let cut = ((self.ids.len() as f64) * (1.0 - held_out)).round() as usize;
        let train = self.windows(0..cut, window, stride)?;
        let test = self.windows(cut..self.ids.len(), window, stride)?;
        for (part, d) in [("training part", &train), ("held-out tail", &test)] {
            if d.is_empty() {
                return Err(Error::invalid(
                    "text",
                    format!(
                        "the {part} has no window of {window} characters ({} characters in the text, \
                         {:.0}% held out)",
                        self.ids.len(),
                        held_out * 100.0
                    ),
                ));
            }
        }
        Ok((train, test))
    }
}

/// The ids of `text` in `vocabulary` (sorted); errors on a character outside it.
pub fn encode_with(vocabulary: &[char], text: &str) -> Result<Vec<u32>> {
    text.chars()
        .enumerate()
        .map(|(i, c)| {
            vocabulary.binary_search(&c).map(|id| id as u32).map_err(|_| {
                Error::invalid("text", format!("character {c:?} (position {i}) is not in the vocabulary"))
            })
        })
        .collect()
}

/// Reads a UTF-8 text file (gzip detected by content) as a corpus.
pub fn load_text(path: &Path) -> Result<TextCorpus> {
    let bytes = read_maybe_gzip(path)?;
    parse_text_bytes(&bytes, path)
}

/// A corpus from a file's bytes (gzip detected by content); `path` names it in errors.
pub fn parse_text_bytes(bytes: &[u8], path: &Path) -> Result<TextCorpus> {
    let bytes = super::file::gunzip_if_needed(bytes, path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        location: format!("byte {}", e.valid_up_to()),
        message: "not UTF-8 text".into(),
    })?;
    TextCorpus::from_text(text, &path.display().to_string())
}
