//! Text and series data: character windows with per-step labels, Dense on sequences, per-step
//! losses and metrics, `kiln generate`, and forecasting a series against persistence.
use std::cell::RefCell;
use std::path::Path;

use kiln::cli::{EvalArgs, GenerateArgs, TrainArgs, eval, generate, sample, train};
use kiln::data::series::{Series, parse_series_csv};
use kiln::data::text::TextCorpus;
use kiln::graph::Op;
use kiln::nn::{BuildContext, Layer};
use kiln::{Activation, CompileOptions, Dense, Device, Embedding, Loss, Lstm, Optimizer, Sequential, Tensor};
use rand::SeedableRng;

use crate::common::{self, TempDir, rng};
use crate::gradcheck::{Fill, check_graph, op, rand_in};

#[test]
fn text_windows_label_every_next_character_and_hold_out_the_tail() {
    let c = TextCorpus::from_text("abcabd", "test").unwrap();
    assert_eq!(c.vocabulary, vec!['a', 'b', 'c', 'd']);
    assert_eq!(c.ids, vec![0, 1, 2, 0, 1, 3]);
    let w = c.windows(0..6, 3, 2).unwrap();
    // Starts 0 and 2: "abc" → "bca", "cab" → "abd".
    assert_eq!(w.x.shape, vec![2, 3]);
    assert_eq!(w.x.data, vec![0.0, 1.0, 2.0, 2.0, 0.0, 1.0]);
    assert_eq!((w.label_steps, w.y.clone()), (3, vec![1.0, 2.0, 0.0, 0.0, 1.0, 3.0]));
    assert_eq!(w.class_names, vec!["a", "b", "c", "d"]);
    assert_eq!(w.clone().last_labels().y, vec![0.0, 3.0]);
    // The tail's windows read only the tail: a text whose last 10% is all 'z'.
    let text: String = "xy".repeat(45) + &"z".repeat(10);
    let (train, test) = TextCorpus::from_text(&text, "t").unwrap().split(4, 1, 0.1).unwrap();
    let z = 2.0;
    assert!(test.x.data.iter().chain(&test.y).all(|&id| id == z), "the tail reads only the tail");
    assert!(train.x.data.iter().chain(&train.y).all(|&id| id != z), "no tail character is trained on");
    assert_eq!((train.len(), test.len()), (86, 6));
    let e = TextCorpus::from_text("aaaa", "one.txt").unwrap_err().to_string();
    assert!(e.contains("one.txt") && e.contains("at least 2"), "{e}");
    let e = TextCorpus::from_text("abab", "t").unwrap().split(10, 1, 0.1).unwrap_err().to_string();
    assert!(e.contains("no window of 10"), "{e}");
    let e = kiln::data::text::encode_with(&c.vocabulary, "abq").unwrap_err().to_string();
    assert!(e.contains("'q'") && e.contains("position 2"), "{e}");
}

#[test]
fn series_windows_are_changes_from_their_last_value_split_in_time() {
    let csv = b"Date,Passengers\n1949-01,1\n1949-02,3\n1949-03,2\n1949-04,6\n1949-05,5\n1949-06,9\n";
    let s = parse_series_csv(csv, Path::new("s.csv")).unwrap();
    assert_eq!(s.values, vec![1.0, 3.0, 2.0, 6.0, 5.0, 9.0]);
    let f = s.forecast(2, 0.25).unwrap();
    // 4 windows, the last one the test split; the scale is the deviation of the changes the
    // training windows see (values 1..6: changes 2, -1, 4, -1 → σ = 2.1213).
    let scale = ((1.0f64 + 4.0 + 9.0 + 4.0) / 4.0).sqrt();
    assert!((f.scale as f64 - scale).abs() < 1e-6, "{} vs {scale}", f.scale);
    assert_eq!((f.train.len(), f.test.len()), (3, 1));
    let z = |v: f64| (v / scale) as f32;
    assert_eq!(f.train.x.shape, vec![3, 2, 1]);
    assert_eq!(f.train.x.data[..2], [z(-2.0), 0.0]);
    assert_eq!(f.train.y, vec![z(-1.0), z(4.0), z(-1.0)]);
    assert_eq!((f.test.x.data.clone(), f.test.y.clone()), (vec![z(1.0), 0.0], vec![z(4.0)]));
    let e = parse_series_csv(b"v\n1\nnan\n", Path::new("bad.csv")).unwrap_err().to_string();
    assert!(e.contains("bad.csv") && e.contains("line 3"), "{e}");
    let e = Series { values: vec![1.0, 2.0, 3.0] }.forecast(2, 0.2).unwrap_err().to_string();
    assert!(e.contains("too few"), "{e}");
}

/// Dense on `[batch, steps, features]` as `kiln` builds it (rows through one product), under a
/// per-step softmax cross-entropy: the gradient in f64.
#[test]
fn dense_on_sequences_with_a_per_step_loss_has_the_right_gradient() {
    let (batch, steps, features, units) = (2, 3, 4, 5);
    let labels: Vec<f64> = (0..batch * steps).map(|i| ((i * 3) % units) as f64).collect();
    let inputs = [
        rand_in(&[batch, steps, features]),
        rand_in(&[features, units]),
        rand_in(&[units]),
        (vec![batch, steps], Fill::Fixed(labels), false),
    ];
    check_graph("dense on sequences", &inputs, &|g, x| {
        let updates = RefCell::new(Vec::new());
        let ctx = BuildContext {
            name: "dense",
            params: &x[1..3],
            activation: false,
            training: true,
            seed: 0,
            updates: &updates,
            mask: None,
        };
        let y = Dense::new(units, Activation::Softmax).build(g, x[0], &ctx).unwrap();
        assert_eq!(g.shape(y), &[batch, steps, units]);
        let rows = op(g, Op::Reshape { shape: vec![batch * steps, units] }, &[y]);
        let labels = op(g, Op::Reshape { shape: vec![batch * steps] }, &[x[3]]);
        op(g, Op::SoftmaxCrossEntropy { sparse: true, weighted: false }, &[rows, labels])
    });
}

fn per_step_model(vocab: usize, steps: usize, device: Device, optimizer: Optimizer) -> Sequential {
    let mut m = Sequential::new(&[steps])
        .with_seed(5)
        .add(Embedding::new(vocab, 3))
        .add(Lstm::new(4).return_sequences(true))
        .add(Dense::new(vocab, Activation::Softmax));
    m.compile(CompileOptions::new(optimizer, Loss::SparseCategoricalCrossentropy, device)).unwrap();
    m
}

/// The loss and accuracy of per-step outputs are means over every step of every sample, as
/// Keras reduces a `[batch, steps]` loss.
#[test]
fn per_step_outputs_report_means_over_every_step() {
    let (n, steps, vocab) = (7, 5, 6);
    let mut r = rng(3);
    let ids = |r: &mut rand_chacha::ChaCha8Rng| -> Vec<f32> {
        (0..n * steps).map(|_| rand::Rng::random_range(r, 0..vocab) as f32).collect()
    };
    let x = Tensor::new(&[n, steps], ids(&mut r)).unwrap();
    let y = Tensor::new(&[n, steps], ids(&mut r)).unwrap();
    let mut m = per_step_model(vocab, steps, Device::Cpu, Optimizer::adam(1e-2));
    let opts = kiln::FitOptions { batch_size: 4, epochs: 3, verbose: 0, ..Default::default() };
    m.fit(&x, &y, &opts).unwrap();
    let p = m.predict(&x, 3).unwrap();
    assert_eq!(p.shape, vec![n, steps, vocab]);
    let (mut loss, mut correct) = (0.0f64, 0);
    for (row, &label) in p.data.chunks(vocab).zip(&y.data) {
        loss -= (row[label as usize] as f64).ln();
        let best = (0..vocab).fold(0, |b, i| if row[i] > row[b] { i } else { b });
        correct += usize::from(best == label as usize);
    }
    let (l, acc) = m.evaluate(&x, &y, 3).unwrap();
    let rows = (n * steps) as f64;
    assert!((l as f64 - loss / rows).abs() < 1e-5, "loss {l} vs {}", loss / rows);
    assert!((acc as f64 - correct as f64 / rows).abs() < 1e-6, "accuracy {acc} vs {correct}/{rows}");
    // Labels of another shape are refused, naming the loss.
    let e = m.evaluate(&x, &Tensor::new(&[n], vec![0.0; n]).unwrap(), 3).unwrap_err().to_string();
    assert!(e.contains("sparse_categorical_crossentropy"), "{e}");
}

#[test]
fn a_per_step_training_step_matches_between_gpu_and_cpu() {
    if common::gpu().is_none() {
        return;
    }
    let (n, steps, vocab) = (6, 7, 5);
    let x = Tensor::new(&[n, steps], (0..n * steps).map(|i| (i * 7 % vocab) as f32).collect()).unwrap();
    let y = Tensor::new(&[n, steps], (0..n * steps).map(|i| ((i + 1) * 7 % vocab) as f32).collect()).unwrap();
    let sgd = || Optimizer::sgd(0.5);
    let (mut cpu, mut gpu) = (
        per_step_model(vocab, steps, Device::Cpu, sgd()),
        per_step_model(vocab, steps, Device::Gpu(None), sgd()),
    );
    common::fit_both_and_compare(&mut cpu, &mut gpu, &x, &y, 2, "per-step LSTM: ");
}

#[test]
fn sampling_follows_the_probabilities_and_the_temperature() {
    let p = [0.1, 0.6, 0.3];
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    assert!((0..200).all(|_| sample(&p, 0.01, &mut r) == 1), "a cold sample takes the likeliest");
    let mut counts = [0usize; 3];
    for _ in 0..20_000 {
        counts[sample(&p, 1.0, &mut r)] += 1;
    }
    for (c, q) in counts.iter().zip(p) {
        assert!((*c as f64 / 20_000.0 - q as f64).abs() < 0.015, "{counts:?} vs {p:?}");
    }
}

/// `kiln train --data FILE.txt --model char-lstm`, then `generate` and `eval` from its
/// checkpoint alone: a repetitive text is learned (bits per character far below the
/// vocabulary's log2), samples are reproducible and in the vocabulary.
#[test]
fn a_text_file_trains_a_char_model_that_generates_and_evaluates() {
    let dir = TempDir::new("char-lstm");
    let file = dir.join("tiny.txt");
    std::fs::write(&file, "the cat sat on the mat. ".repeat(120)).unwrap();
    let out = dir.join("run");
    let args = TrainArgs {
        data: Some(file.display().to_string()),
        model: "char-lstm".into(),
        device: "cpu".into(),
        epochs: 25,
        batch_size: 8,
        lr: Some(0.01),
        window: Some(24),
        json: true,
        out: Some(out.clone()),
        ..TrainArgs::default()
    };
    let r = train(&args).unwrap();
    let bits = r.bits_per_char.unwrap();
    // 11 distinct characters: a uniform guess costs log2(11) = 3.46 bits.
    assert!(bits < 0.5, "bits per character {bits} on a repeated sentence");
    let g = |seed| GenerateArgs {
        checkpoint: out.join("model.safetensors"),
        length: 40,
        temperature: 0.5,
        prompt: "the ".into(),
        seed,
        device: "cpu".into(),
        quiet: true,
    };
    let a = generate(&g(1)).unwrap();
    assert_eq!(a, generate(&g(1)).unwrap(), "the same seed samples the same text");
    assert_eq!(a.chars().count(), 44);
    assert!(a.starts_with("the ") && a.chars().all(|c| "the casonm.".contains(c)), "{a:?}");
    assert!(a.contains("cat") || a.contains("mat") || a.contains("sat"), "{a:?}");
    let e = generate(&GenerateArgs { prompt: "dog".into(), ..g(1) }).unwrap_err().to_string();
    assert!(e.contains("--prompt") && e.contains("'d'"), "{e}");
    let e = generate(&GenerateArgs { temperature: 0.0, ..g(1) }).unwrap_err().to_string();
    assert!(e.contains("--temperature"), "{e}");
    let ev = EvalArgs {
        checkpoint: out.join("model.safetensors"),
        data: None,
        split: "test".into(),
        seed: None,
        device: "cpu".into(),
        batch_size: 16,
        json: true,
        metrics: None,
    };
    let report = eval(&ev).unwrap();
    assert_eq!(report.loss.to_bits(), r.test_loss.to_bits(), "eval reads the same held-out windows");
}

/// The airline series: an LSTM forecasting the next month's change beats persistence (the
/// last month's value) on the last 20% of the months, in passengers (seed 0: RMSE 19.9
/// against 50.9).
#[test]
fn the_airline_lstm_beats_persistence_on_the_test_years() {
    let args = TrainArgs {
        data: Some("airline".into()),
        model: "lstm".into(),
        device: "cpu".into(),
        epochs: 100,
        batch_size: 16,
        json: true,
        ..TrainArgs::default()
    };
    let r = train(&args).unwrap();
    let f = r.forecast.unwrap();
    assert!(f.rmse < 0.6 * f.persistence_rmse, "RMSE {} vs persistence {}", f.rmse, f.persistence_rmse);
    assert!(f.mae < f.persistence_mae, "MAE {} vs persistence {}", f.mae, f.persistence_mae);
}

/// `kiln predict` with a forecaster's checkpoint forecasts after the end of a series file:
/// over truncated copies of the airline file ending at each test window, its forecasts give
/// the test RMSE that training reported; `--horizon 2`'s second value is the forecast of the
/// file with the first appended.
#[test]
fn predict_forecasts_the_values_after_a_series_file() {
    let dir = TempDir::new("forecast-predict");
    let run = dir.join("run");
    let args = TrainArgs {
        data: Some("airline".into()),
        model: "lstm".into(),
        device: "cpu".into(),
        epochs: 20,
        batch_size: 16,
        json: true,
        out: Some(run.clone()),
        ..TrainArgs::default()
    };
    let reported = train(&args).unwrap().forecast.unwrap();
    let values = kiln::data::builtin::airline().unwrap().values;
    let window = 12; // the default series window
    let samples = values.len() - window;
    let test = (samples as f64 * 0.2).round() as usize;
    let file = dir.join("series.csv");
    let forecast = |upto: &[f32], horizon: usize| -> Vec<f32> {
        let lines: Vec<String> = upto.iter().map(|v| format!("{v:?}")).collect();
        std::fs::write(&file, lines.join("\n")).unwrap();
        let p = kiln::cli::PredictArgs {
            checkpoint: run.join("model.safetensors"),
            inputs: vec![file.clone()],
            top: 1,
            device: "cpu".into(),
            json: true,
            horizon,
        };
        kiln::cli::predict(&p).unwrap().iter().map(|p| p.top[0].2).collect()
    };
    let mut se = 0.0;
    for s in samples - test..samples {
        let next = forecast(&values[..s + window], 1)[0] as f64;
        se += (next - values[s + window] as f64).powi(2);
    }
    let rmse = (se / test as f64).sqrt();
    assert!((rmse - reported.rmse).abs() <= 1e-3 * reported.rmse, "{rmse} vs reported {}", reported.rmse);
    let two = forecast(&values, 2);
    let mut longer = values.clone();
    longer.push(two[0]);
    let one = forecast(&longer, 1)[0];
    assert!((one - two[1]).abs() <= 1e-4 * two[1].abs(), "{one} vs {}", two[1]);
}

/// A masked LSTM large enough for the parallel path (the per-step products split over the
/// pool, the cells in their epilogues) trains to the same bits under 1, 2 and 3 threads.
#[test]
fn lstm_training_gives_the_same_bits_under_1_2_and_3_threads() {
    use kiln::backend::cpu::pool::{Pool, with_pool};
    use kiln::{Masking, Optimizer};
    use std::sync::Arc;
    let (n, steps, features) = (96, 9, 5);
    let mut r = rng(11);
    let mut data = crate::common::uniform(&mut r, n * steps * features, -1.0, 1.0);
    for b in 0..n {
        data[(b * steps + steps - 1 - b % 4) * features..][..(b % 4 + 1) * features].fill(0.0);
    }
    let x = Tensor::new(&[n, steps, features], data).unwrap();
    let y = Tensor::new(&[n], (0..n).map(|i| (i % 3) as f32).collect()).unwrap();
    let weights: Vec<_> = [1, 2, 3]
        .iter()
        .map(|&threads| {
            with_pool(&Arc::new(Pool::new(threads)), || {
                let mut m = Sequential::new(&[steps, features])
                    .with_seed(2)
                    .add(Masking { mask_value: 0.0 })
                    .add(Lstm::new(80).return_sequences(true))
                    .add(Lstm::new(70))
                    .add(Dense::new(3, Activation::Softmax));
                let opts = CompileOptions::new(
                    Optimizer::adam(1e-3),
                    Loss::SparseCategoricalCrossentropy,
                    Device::Cpu,
                );
                m.compile(opts).unwrap();
                m.fit(
                    &x,
                    &y,
                    &kiln::FitOptions { batch_size: 48, epochs: 2, verbose: 0, ..Default::default() },
                )
                .unwrap();
                m.get_weights().unwrap()
            })
        })
        .collect();
    assert_eq!(weights[0], weights[1], "1 vs 2 threads");
    assert_eq!(weights[0], weights[2], "1 vs 3 threads");
}

/// With masked sequences (here `Embedding(mask_zero)`, ids 0 are padding) the per-step loss is
/// the mean over the valid steps only, as Keras weighs a masked loss (Σ l·m / Σ m).
#[test]
fn a_masked_per_step_loss_is_the_mean_over_valid_steps() {
    let (n, steps, vocab) = (5, 6, 7);
    // Sample i has 6 − i valid steps (ids 1..6), then padding.
    let ids: Vec<f32> = (0..n * steps)
        .map(|k| if k % steps < steps - k / steps { (k % 6 + 1) as f32 } else { 0.0 })
        .collect();
    let labels: Vec<f32> = (0..n * steps).map(|k| ((k * 5) % vocab) as f32).collect();
    let (x, y) =
        (Tensor::new(&[n, steps], ids.clone()).unwrap(), Tensor::new(&[n, steps], labels.clone()).unwrap());
    let mut m = Sequential::new(&[steps])
        .with_seed(2)
        .add(Embedding::new(vocab, 3).mask_zero(true))
        .add(Lstm::new(4).return_sequences(true))
        .add(Dense::new(vocab, Activation::Softmax));
    m.compile(CompileOptions::new(Optimizer::adam(1e-2), Loss::SparseCategoricalCrossentropy, Device::Cpu))
        .unwrap();
    let p = m.predict(&x, n).unwrap();
    let (mut total, mut valid) = (0.0f64, 0);
    for ((row, &label), &id) in p.data.chunks(vocab).zip(&labels).zip(&ids) {
        if id != 0.0 {
            total -= (row[label as usize] as f64).ln();
            valid += 1;
        }
    }
    let (loss, _) = m.evaluate(&x, &y, n).unwrap();
    assert!(
        (loss as f64 - total / valid as f64).abs() < 1e-5,
        "loss {loss} vs {} over {valid} valid steps",
        total / valid as f64
    );
    // Accuracy counts the valid steps only, over the whole pass: Σ correct·m / Σ m (Keras
    // weighs metrics by the mask), also across batches of different valid counts.
    let argmax = |r: &[f32]| (0..r.len()).fold(0, |b, j| if r[j] > r[b] { j } else { b });
    let correct = p
        .data
        .chunks(vocab)
        .zip(&labels)
        .zip(&ids)
        .filter(|((row, label), id)| **id != 0.0 && argmax(row) == **label as usize)
        .count();
    let expected = correct as f32 / valid as f32;
    for batch in [n, 2] {
        let logs = m.evaluate_metrics(&x, &y, batch).unwrap();
        assert!((logs["accuracy"] - expected).abs() < 1e-6, "batch {batch}: {logs:?} vs {expected}");
    }
    // Top-2 accuracy over the valid steps, on every device.
    let top2 = p
        .data
        .chunks(vocab)
        .zip(&labels)
        .zip(&ids)
        .filter(|((row, label), id)| {
            **id != 0.0 && row.iter().filter(|&&v| v > row[**label as usize]).count() < 2
        })
        .count() as f32
        / valid as f32;
    for device in common::devices() {
        let mut k = Sequential::new(&[steps])
            .with_seed(2)
            .add(Embedding::new(vocab, 3).mask_zero(true))
            .add(Lstm::new(4).return_sequences(true))
            .add(Dense::new(vocab, Activation::Softmax));
        let mut opts =
            CompileOptions::new(Optimizer::adam(1e-2), Loss::SparseCategoricalCrossentropy, device);
        opts.metrics = vec![kiln::Metric::TopKAccuracy { k: 2 }];
        k.compile(opts).unwrap();
        let logs = k.evaluate_metrics(&x, &y, 2).unwrap();
        let got = logs["top_k_categorical_accuracy"];
        assert!((got - top2).abs() < 1e-6, "{device:?}: {logs:?} vs {top2}");
    }
    if common::gpu().is_some() {
        let mut g = Sequential::new(&[steps])
            .with_seed(2)
            .add(Embedding::new(vocab, 3).mask_zero(true))
            .add(Lstm::new(4).return_sequences(true))
            .add(Dense::new(vocab, Activation::Softmax));
        let device = Device::Gpu(None);
        g.compile(CompileOptions::new(Optimizer::adam(1e-2), Loss::SparseCategoricalCrossentropy, device))
            .unwrap();
        let logs = g.evaluate_metrics(&x, &y, 2).unwrap();
        assert!((logs["accuracy"] - expected).abs() < 1e-6, "gpu: {logs:?} vs {expected}");
    }
    // Training moves only what the valid steps see: padded labels do not matter.
    let other: Vec<f32> = labels
        .iter()
        .zip(&ids)
        .map(|(&l, &id)| if id == 0.0 { (l + 1.0) % vocab as f32 } else { l })
        .collect();
    let opts =
        kiln::FitOptions { batch_size: n, epochs: 2, verbose: 0, shuffle: false, ..Default::default() };
    let mut twin = Sequential::new(&[steps])
        .with_seed(2)
        .add(Embedding::new(vocab, 3).mask_zero(true))
        .add(Lstm::new(4).return_sequences(true))
        .add(Dense::new(vocab, Activation::Softmax));
    twin.compile(CompileOptions::new(
        Optimizer::adam(1e-2),
        Loss::SparseCategoricalCrossentropy,
        Device::Cpu,
    ))
    .unwrap();
    m.fit(&x, &y, &opts).unwrap();
    twin.fit(&x, &Tensor::new(&[n, steps], other).unwrap(), &opts).unwrap();
    assert_eq!(
        m.get_weights().unwrap(),
        twin.get_weights().unwrap(),
        "the padded steps' labels change nothing"
    );
}

/// Embedding(5, 3, mask_zero) → LSTM(4) per step → Dense(1, `act`), compiled with `loss` and
/// `metrics`.
fn masked_step_model(
    steps: usize,
    seed: u64,
    act: Activation,
    loss: Loss,
    metrics: &[kiln::Metric],
    device: Device,
) -> Sequential {
    let mut m = Sequential::new(&[steps])
        .with_seed(seed)
        .add(Embedding::new(5, 3).mask_zero(true))
        .add(Lstm::new(4).return_sequences(true))
        .add(Dense::new(1, act));
    let mut c = CompileOptions::new(Optimizer::adam(1e-2), loss, device);
    c.metrics = metrics.to_vec();
    m.compile(c).unwrap();
    m
}

#[test]
fn masked_per_step_regression_metrics_are_means_over_valid_steps() {
    let (n, steps) = (4, 5);
    // Sample i has 5 − i valid steps (ids 1..4), then padding; a target per step.
    let ids: Vec<f32> = (0..n * steps)
        .map(|k| if k % steps < steps - k / steps { (k % 4 + 1) as f32 } else { 0.0 })
        .collect();
    let targets: Vec<f32> = (0..n * steps).map(|k| (k % 3) as f32 - 1.0).collect();
    let (x, y) = (
        Tensor::new(&[n, steps], ids.clone()).unwrap(),
        Tensor::new(&[n, steps, 1], targets.clone()).unwrap(),
    );
    for device in common::devices() {
        let metrics = [kiln::Metric::MeanAbsoluteError, kiln::Metric::MeanSquaredError];
        let mut m = masked_step_model(steps, 3, Activation::Linear, Loss::MeanSquaredError, &metrics, device);
        let p = m.predict(&x, n).unwrap();
        let valid: Vec<(f32, f32)> = p
            .data
            .iter()
            .zip(&targets)
            .zip(&ids)
            .filter(|(_, id)| **id != 0.0)
            .map(|((a, b), _)| (*a, *b))
            .collect();
        let mae = valid.iter().map(|(a, b)| (a - b).abs()).sum::<f32>() / valid.len() as f32;
        let mse = valid.iter().map(|(a, b)| (a - b) * (a - b)).sum::<f32>() / valid.len() as f32;
        let logs = m.evaluate_metrics(&x, &y, n).unwrap();
        assert!((logs["mae"] - mae).abs() < 1e-5, "{device:?}: {logs:?} vs mae {mae}");
        assert!(
            (logs["mse"] - mse).abs() < 1e-5 && (logs["loss"] - mse).abs() < 1e-5,
            "{device:?}: {logs:?} vs {mse}"
        );
    }
}

#[test]
fn masked_per_step_precision_and_recall_count_valid_steps_only() {
    let (n, steps) = (6, 5);
    let ids: Vec<f32> = (0..n * steps)
        .map(|k| if k % steps < steps - k / steps % 4 { (k % 4 + 1) as f32 } else { 0.0 })
        .collect();
    // Labels 1 at padded steps too: counted, they would be false negatives.
    let labels: Vec<f32> =
        (0..n * steps).map(|k| if ids[k] == 0.0 { 1.0 } else { ((k * 7) % 3 == 0) as u8 as f32 }).collect();
    let (x, y) = (
        Tensor::new(&[n, steps], ids.clone()).unwrap(),
        Tensor::new(&[n, steps, 1], labels.clone()).unwrap(),
    );
    for device in common::devices() {
        let metrics = [kiln::Metric::Precision, kiln::Metric::Recall];
        let mut m =
            masked_step_model(steps, 4, Activation::Sigmoid, Loss::BinaryCrossentropy, &metrics, device);
        let p = m.predict(&x, n).unwrap();
        let (mut tp, mut fp, mut fn_) = (0, 0, 0);
        for ((&q, &t), &id) in p.data.iter().zip(&labels).zip(&ids) {
            match (id != 0.0, q > 0.5, t > 0.5) {
                (true, true, true) => tp += 1,
                (true, true, false) => fp += 1,
                (true, false, true) => fn_ += 1,
                _ => {}
            }
        }
        assert!(tp + fp > 0 && tp + fn_ > 0, "a case with positives: {tp} {fp} {fn_}");
        let (precision, recall) = (tp as f32 / (tp + fp) as f32, tp as f32 / (tp + fn_) as f32);
        for batch in [n, 4] {
            let logs = m.evaluate_metrics(&x, &y, batch).unwrap();
            assert!(
                (logs["precision"] - precision).abs() < 1e-6,
                "{device:?} batch {batch}: {logs:?} vs {precision}"
            );
            assert!((logs["recall"] - recall).abs() < 1e-6, "{device:?} batch {batch}: {logs:?} vs {recall}");
        }
    }
}
