//! `kiln train --loss` / `--from-logits`: the preset's output layer follows the loss, labels
//! take the loss's layout, incompatible choices are errors naming the flag, model files keep
//! their own output layer; `kiln eval` and `kiln predict` use the checkpoint's loss and turn
//! the outputs of a from-logits model into probabilities.
use std::path::Path;

use kiln::cli::{EvalArgs, PredictArgs, TrainArgs, eval, model_and_loss, predict, train};
use kiln::{Activation, Checkpoint, Device, Error, Loss, Tensor};

use crate::common::TempDir;

fn args(data: &str, loss: Option<&str>) -> TrainArgs {
    TrainArgs {
        data: Some(data.into()),
        loss: loss.map(str::to_string),
        device: "cpu".into(),
        epochs: 5,
        lr: Some(0.01),
        json: true,
        ..TrainArgs::default()
    }
}

/// The output layer (units, activation) and loss `kiln train` builds for `args`.
fn head(args: &TrainArgs, shape: &[usize], classes: usize) -> (usize, Activation, Loss) {
    let (m, loss) = model_and_loss(args, shape, classes).unwrap();
    let units = m.output_shapes().unwrap().pop().unwrap().iter().product();
    (units, m.output_activation(), loss)
}

#[test]
fn the_presets_output_layer_follows_the_loss() {
    use Activation::{Linear, Sigmoid, Softmax};
    let iris =
        |loss: &str, from_logits: bool| head(&TrainArgs { from_logits, ..args("iris", Some(loss)) }, &[4], 3);
    assert_eq!(
        iris("sparse_categorical_crossentropy", false),
        (3, Softmax, Loss::SparseCategoricalCrossentropy)
    );
    assert_eq!(iris("categorical_crossentropy", false), (3, Softmax, Loss::CategoricalCrossentropy));
    assert_eq!(
        iris("sparse_categorical_crossentropy", true),
        (3, Linear, Loss::SparseCategoricalCrossentropyFromLogits)
    );
    assert_eq!(
        iris("categorical_crossentropy_from_logits", false),
        (3, Linear, Loss::CategoricalCrossentropyFromLogits)
    );
    // A regression loss on classes regresses one-hot rows with a linear layer.
    assert_eq!(iris("mse", false), (3, Linear, Loss::MeanSquaredError));
    assert_eq!(iris("mean_absolute_error", false), (3, Linear, Loss::MeanAbsoluteError));
    let two = |loss: &str, from_logits: bool| {
        head(&TrainArgs { from_logits, ..args("breast-cancer", Some(loss)) }, &[30], 2)
    };
    assert_eq!(two("binary_crossentropy", false), (1, Sigmoid, Loss::BinaryCrossentropy));
    assert_eq!(two("binary_crossentropy", true), (1, Linear, Loss::BinaryCrossentropyFromLogits));
    assert_eq!(
        two("sparse_categorical_crossentropy", false),
        (2, Softmax, Loss::SparseCategoricalCrossentropy)
    );
    assert_eq!(two("huber", false), (1, Linear, Loss::Huber));
    // Without --loss: as before (softmax, one sigmoid unit, one linear unit for regression);
    // --from-logits alone takes the default cross-entropy on logits.
    assert_eq!(head(&args("iris", None), &[4], 3), (3, Softmax, Loss::SparseCategoricalCrossentropy));
    assert_eq!(head(&args("breast-cancer", None), &[30], 2), (1, Sigmoid, Loss::BinaryCrossentropy));
    assert_eq!(head(&args("x.csv", None), &[3], 0), (1, Linear, Loss::MeanSquaredError));
    let logits = TrainArgs { from_logits: true, ..args("iris", None) };
    assert_eq!(head(&logits, &[4], 3), (3, Linear, Loss::SparseCategoricalCrossentropyFromLogits));
}

/// The error `train` gives for `args`: (what, message) of an `Error::Invalid`.
fn invalid(args: TrainArgs) -> (String, String) {
    match train(&args) {
        Err(Error::Invalid { what, message }) => (what, message),
        other => panic!("expected an Invalid error, got {:?}", other.map(|r| r.test_loss)),
    }
}

/// A CSV regression set: y = x0 − 2·x1 + 0.5·x2 + 0.3 (non-integer targets).
fn regression_csv(dir: &Path) -> String {
    let path = dir.join("regression.csv");
    let mut text = String::new();
    for i in 0..200 {
        let x = [(i % 7) as f32 / 7.0, (i % 11) as f32 / 11.0, (i % 5) as f32 / 5.0];
        text += &format!("{},{},{},{}\n", x[0], x[1], x[2], x[0] - 2.0 * x[1] + 0.5 * x[2] + 0.3);
    }
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn losses_that_do_not_fit_the_data_are_errors_naming_the_flag() {
    let dir = TempDir::new("loss-errors");
    let csv = regression_csv(&dir);
    let (what, message) = invalid(args("iris", Some("binary_crossentropy")));
    assert_eq!(what, "--loss");
    assert!(message.contains("two classes") && message.contains("3 classes"), "{message}");
    let (what, message) = invalid(args(&csv, Some("sparse_categorical_crossentropy")));
    assert_eq!(what, "--loss");
    assert!(message.contains("regression target"), "{message}");
    let (what, _) = invalid(args(&csv, Some("categorical_crossentropy_from_logits")));
    assert_eq!(what, "--loss");
    let (what, message) = invalid(TrainArgs { from_logits: true, ..args("iris", Some("mse")) });
    assert_eq!(what, "--from-logits");
    assert!(message.contains("mse"), "{message}");
    let (what, message) = invalid(args("iris", Some("hinge")));
    assert_eq!(what, "--loss");
    assert!(message.contains("'hinge'") && message.contains("categorical_crossentropy"), "{message}");
    // A regression loss on a regression target trains (one linear output).
    for loss in ["mse", "mae", "huber"] {
        let r = train(&TrainArgs { epochs: 20, ..args(&csv, Some(loss)) }).unwrap();
        assert!(r.test_loss.is_finite() && r.test_accuracy.is_nan(), "{loss}: {}", r.test_loss);
    }
}

const SOFTMAX_MLP: &str = r#"
[[layers]]
type = "Dense"
units = 16
activation = "relu"

[[layers]]
type = "Dense"
units = 3
activation = "softmax"
"#;

#[test]
fn a_model_file_keeps_its_output_activation_and_the_loss_must_fit_it() {
    let dir = TempDir::new("loss-model-file");
    let softmax = dir.join("softmax.toml");
    std::fs::write(&softmax, SOFTMAX_MLP).unwrap();
    let file = |loss: Option<&str>| TrainArgs { model: softmax.display().to_string(), ..args("iris", loss) };
    let (units, act, loss) = head(&file(Some("categorical_crossentropy")), &[4], 3);
    assert_eq!((units, act, loss), (3, Activation::Softmax, Loss::CategoricalCrossentropy));
    assert!(train(&file(Some("categorical_crossentropy"))).is_ok());
    let (what, message) = invalid(file(Some("sparse_categorical_crossentropy_from_logits")));
    assert_eq!(what, "--loss");
    assert!(message.contains("softmax") && message.contains("linear"), "{message}");
    // A linear output without --loss: the cross-entropy on logits.
    let linear = dir.join("linear.toml");
    std::fs::write(&linear, SOFTMAX_MLP.replace("\"softmax\"", "\"linear\"")).unwrap();
    let args = TrainArgs { model: linear.display().to_string(), ..args("iris", None) };
    let (_, act, loss) = head(&args, &[4], 3);
    assert_eq!((act, loss), (Activation::Linear, Loss::SparseCategoricalCrossentropyFromLogits));
}

#[test]
fn one_hot_and_from_logits_losses_train_exactly_as_the_default_ones() {
    // Same seed, same initial weights, same batches: categorical cross-entropy on one-hot rows
    // is the sparse one, and the fused softmax (sigmoid) is the from-logits loss.
    let run = |data: &str, loss: Option<&str>, from_logits: bool| {
        let r = train(&TrainArgs { from_logits, ..args(data, loss) }).unwrap();
        (r.test_loss, r.test_accuracy, r.history.history["loss"].clone())
    };
    let sparse = run("iris", None, false);
    assert!(sparse.1 > 0.8, "iris accuracy {}", sparse.1);
    for (loss, from_logits) in
        [(Some("categorical_crossentropy"), false), (None, true), (Some("categorical_crossentropy"), true)]
    {
        let other = run("iris", loss, from_logits);
        assert_eq!(other.1, sparse.1, "{loss:?} from_logits {from_logits}");
        for (a, b) in other.2.iter().chain([&other.0]).zip(sparse.2.iter().chain([&sparse.0])) {
            assert!(
                (a - b).abs() < 1e-5,
                "{loss:?} from_logits {from_logits}: {:?} vs {:?}",
                other.2,
                sparse.2
            );
        }
    }
    let binary = run("breast-cancer", None, false);
    let logits = run("breast-cancer", Some("binary_crossentropy_from_logits"), false);
    assert!(binary.1 > 0.9 && logits.1 == binary.1 && (logits.0 - binary.0).abs() < 1e-5);
    // mse on one-hot rows learns iris too.
    assert!(run("iris", Some("mse"), false).1 > 0.7);
}

fn train_into(dir: &Path, data: &str, loss: &str, from_logits: bool) -> kiln::cli::TrainReport {
    let a = TrainArgs { epochs: 10, from_logits, out: Some(dir.to_path_buf()), ..args(data, Some(loss)) };
    train(&a).unwrap_or_else(|e| panic!("train {data} {loss}: {e}"))
}

fn eval_args(dir: &Path) -> EvalArgs {
    EvalArgs {
        checkpoint: dir.join("model.safetensors"),
        data: None,
        split: "test".into(),
        seed: None,
        device: "cpu".into(),
        batch_size: 16,
        json: true,
        metrics: None,
    }
}

#[test]
fn eval_uses_the_checkpoints_loss_and_its_label_layout() {
    for (loss, from_logits) in
        [("categorical_crossentropy", false), ("sparse_categorical_crossentropy", true), ("mse", false)]
    {
        let dir = TempDir::new(&format!("eval-{loss}-{from_logits}"));
        let report = train_into(&dir, "iris", loss, from_logits);
        let r = eval(&eval_args(&dir)).unwrap();
        assert!((r.loss - report.test_loss).abs() < 1e-5, "{loss}: {} vs {}", r.loss, report.test_loss);
        assert_eq!(r.accuracy, report.test_accuracy, "{loss}");
        let trace: usize = (0..3).map(|i| r.confusion[i][i]).sum();
        assert_eq!(r.confusion.iter().flatten().sum::<usize>(), r.samples);
        assert!((trace as f32 / r.samples as f32 - r.accuracy).abs() < 1e-6, "{loss}: {:?}", r.confusion);
        // --resume of the finished run takes the loss from the checkpoint: nothing left to
        // train, and the same test loss.
        let resume = TrainArgs {
            resume: Some(dir.to_path_buf()),
            device: "cpu".into(),
            json: true,
            ..TrainArgs::default()
        };
        let resumed = train(&resume).unwrap();
        assert_eq!((resumed.epochs_run, resumed.test_loss), (0, report.test_loss), "{loss}");
    }
}

/// The CSV rows 0, 10, 20, ... of a bundled set, with their labels.
fn rows_csv(dir: &Path, data: &str) -> (std::path::PathBuf, Tensor) {
    let d = kiln::data::builtin::by_name(data).unwrap().unwrap();
    let (mut text, mut x) = (String::new(), Vec::new());
    for i in (0..d.len()).step_by(10) {
        let row = d.x.row(i);
        x.extend_from_slice(row);
        text += &format!("{},{}\n", row.iter().map(f32::to_string).collect::<Vec<_>>().join(","), d.y[i]);
    }
    let path = dir.join("rows.csv");
    std::fs::write(&path, text).unwrap();
    let n = x.len() / d.features();
    (path, Tensor::new(&[n, d.features()], x).unwrap())
}

/// The checkpoint's raw model outputs for `x` (scaled by its input pipeline): the logits.
fn raw_outputs(checkpoint: &Path, x: &Tensor) -> Tensor {
    let c = Checkpoint::load(checkpoint).unwrap();
    let mut x = x.clone();
    c.input.as_ref().unwrap().scaler.apply(&mut x).unwrap();
    c.into_model(Device::Cpu).unwrap().predict(&x, 32).unwrap()
}

#[test]
fn predict_turns_the_logits_of_a_from_logits_model_into_probabilities() {
    let dir = TempDir::new("predict-logits");
    train_into(&dir, "iris", "sparse_categorical_crossentropy", true);
    let (csv, x) = rows_csv(&dir, "iris");
    let args = PredictArgs {
        checkpoint: dir.join("model.safetensors"),
        inputs: vec![csv],
        top: 3,
        device: "cpu".into(),
        json: true,
        horizon: 1,
    };
    let predictions = predict(&args).unwrap();
    let logits = raw_outputs(&args.checkpoint, &x);
    assert!(logits.data.iter().any(|z| !(0.0..=1.0).contains(z)), "the model's outputs are logits");
    assert_eq!(predictions.len(), x.rows());
    for (i, p) in predictions.iter().enumerate() {
        assert_eq!(p.top.len(), 3);
        assert!(p.top.iter().all(|t| (0.0..=1.0).contains(&t.2)), "{p:?}");
        let sum: f32 = p.top.iter().map(|t| t.2).sum();
        assert!((sum - 1.0).abs() < 1e-5, "{p:?} sums to {sum}");
        let row = logits.row(i);
        let argmax = (0..3).fold(0, |b, j| if row[j] > row[b] { j } else { b });
        assert_eq!(p.top[0].0, argmax, "the most probable class is the largest logit");
        // Softmax of the logits, checked for one pair of classes: p_a / p_b = exp(z_a − z_b).
        let (a, b) = (p.top[0].0, p.top[1].0);
        let ratio = f64::from(p.top[0].2) / f64::from(p.top[1].2);
        assert!((ratio.ln() - f64::from(row[a] - row[b])).abs() < 1e-3, "{p:?} vs {row:?}");
    }
}

#[test]
fn predict_applies_the_sigmoid_for_binary_cross_entropy_from_logits() {
    let dir = TempDir::new("predict-binary-logits");
    train_into(&dir, "breast-cancer", "binary_crossentropy", true);
    let (csv, x) = rows_csv(&dir, "breast-cancer");
    let args = PredictArgs {
        checkpoint: dir.join("model.safetensors"),
        inputs: vec![csv],
        top: 2,
        device: "cpu".into(),
        json: true,
        horizon: 1,
    };
    let predictions = predict(&args).unwrap();
    let logits = raw_outputs(&args.checkpoint, &x);
    assert!(logits.data.iter().any(|z| !(0.0..=1.0).contains(z)), "the model's outputs are logits");
    for (p, &z) in predictions.iter().zip(&logits.data) {
        let q = p.top.iter().find(|t| t.0 == 1).unwrap().2;
        assert!((q - 1.0 / (1.0 + (-z).exp())).abs() < 1e-6, "{p:?} for logit {z}");
        assert!((p.top.iter().map(|t| t.2).sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(p.top[0].0, usize::from(z > 0.0), "{p:?} for logit {z}");
    }
    let r = eval(&eval_args(&dir)).unwrap();
    let trace = r.confusion[0][0] + r.confusion[1][1];
    assert!((trace as f32 / r.samples as f32 - r.accuracy).abs() < 1e-6 && r.accuracy > 0.9, "{r:?}");
}
