//! `kiln generate`: text sampled from a character-level language model's checkpoint, one
//! character at a time, each from the model's next-character distribution at a temperature.
use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::text::{TextCorpus, encode_with};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Options of `kiln generate`.
#[derive(Args, Debug, Clone)]
pub struct GenerateArgs {
    /// A checkpoint of a character-level model (`kiln train --data FILE.txt` or shakespeare).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Characters to generate.
    #[arg(long, default_value_t = 500)]
    pub length: usize,
    /// Sampling temperature: below 1 sharper (more likely characters), above 1 flatter.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Text the sample continues (every character must be in the model's vocabulary).
    #[arg(long, default_value = "")]
    pub prompt: String,
    /// Seed of the sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// auto, cpu, gpu or gpu:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Print nothing but return the text (for tests).
    #[arg(long)]
    pub quiet: bool,
}

/// `kiln generate`: the prompt and `length` sampled characters after it. The model reads the
/// last `window` characters (its input length); a shorter context is padded in front with
/// newlines (the start of a paragraph), or the first character of the vocabulary.
pub fn generate(args: &GenerateArgs) -> Result<String> {
    if !(args.temperature > 0.0 && args.temperature.is_finite()) {
        return Err(Error::invalid("--temperature", format!("{} must be above 0", args.temperature)));
    }
    let (checkpoint, mut model) = super::infer::open(&args.checkpoint, &args.device, None)?;
    let input = checkpoint.input.as_ref().filter(|i| i.text).ok_or_else(|| {
        Error::invalid(
            format!("checkpoint {}", args.checkpoint.display()),
            "is not a character-level language model (train one with --data FILE.txt)",
        )
    })?;
    let vocabulary = TextCorpus::vocabulary_from_names(&input.class_names)?;
    let window = match *model.input_shape() {
        [w] => w,
        ref other => {
            return Err(Error::invalid("model", format!("takes inputs {other:?}, not a window of ids")));
        }
    };
    let pad = vocabulary.binary_search(&'\n').unwrap_or(0) as u32;
    let mut ids: Vec<u32> = vec![pad; window];
    ids.extend(
        encode_with(&vocabulary, &args.prompt).map_err(|e| Error::invalid("--prompt", e.to_string()))?,
    );
    let mut text = args.prompt.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut out = std::io::stdout().lock();
    if !args.quiet {
        write!(out, "{text}").map_err(write_error)?;
    }
    let loss = model.loss();
    for _ in 0..args.length {
        let context: Vec<f32> = ids[ids.len() - window..].iter().map(|&id| id as f32).collect();
        let p = super::infer::probabilities(model.predict(&Tensor::new(&[1, window], context)?, 1)?, loss);
        // The distribution after the last position (per-step models give one per position).
        let next = &p.data[p.data.len() - vocabulary.len()..];
        let id = sample(next, args.temperature, &mut rng);
        ids.push(id as u32);
        let c = vocabulary[id];
        text.push(c);
        if !args.quiet {
            write!(out, "{c}").map_err(write_error)?;
            out.flush().map_err(write_error)?;
        }
    }
    if !args.quiet {
        writeln!(out).map_err(write_error)?;
    }
    Ok(text)
}

fn write_error(e: std::io::Error) -> Error {
    Error::invalid("stdout", format!("cannot write: {e}"))
}

/// An index drawn from probabilities `p` sharpened or flattened by `temperature`
/// (`p_i^(1/T)`, renormalised, as Keras's text-generation example).
pub fn sample(p: &[f32], temperature: f32, rng: &mut impl Rng) -> usize {
    let logs: Vec<f64> = p.iter().map(|&q| (q.max(1e-30) as f64).ln() / temperature as f64).collect();
    let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = logs.iter().map(|l| (l - top).exp()).collect();
    let mut u = rng.random::<f64>() * weights.iter().sum::<f64>();
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.len() - 1
}
