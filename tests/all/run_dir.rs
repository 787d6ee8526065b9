//! Run directories and the commands that use checkpoints: `kiln train --out` writes
//! last/model.safetensors and the history files (history.png is a real plot), `--save-best-only`
//! keeps the best epoch, `kiln eval` reproduces the test accuracy with a consistent confusion
//! matrix, `kiln predict` classifies CSV rows and image files, `kiln summary --checkpoint`.
use std::path::Path;
use std::process::Command;

use image::GrayImage;
use kiln::Checkpoint;
use kiln::cli::{EvalArgs, PredictArgs, TrainArgs, eval, predict, summary_of_checkpoint, train};
use rand::Rng;

use crate::common::{self, TempDir};

fn train_into(dir: &Path, data: &str, epochs: usize) -> kiln::cli::TrainReport {
    let args = TrainArgs {
        data: Some(data.into()),
        device: "cpu".into(),
        epochs,
        json: true,
        out: Some(dir.to_path_buf()),
        ..TrainArgs::default()
    };
    train(&args).unwrap_or_else(|e| panic!("train {data}: {e}"))
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn train_out_writes_checkpoints_history_files_and_a_real_plot() {
    let dir = TempDir::new("run-dir");
    let report = train_into(&dir, "digits", 6);
    assert_eq!(report.epochs_run, 6);
    let keys: Vec<&str> = report.history.history.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["accuracy", "loss", "val_accuracy", "val_loss"],
        "validation split by default with --out"
    );
    let csv = std::fs::read_to_string(dir.join("history.csv")).unwrap();
    assert_eq!(csv.lines().next(), Some("epoch,accuracy,loss,val_accuracy,val_loss"));
    assert_eq!(csv.lines().count(), 7);
    let h = json(&dir.join("history.json"));
    assert_eq!(h["epochs"], 6);
    assert_eq!(h["history"]["val_loss"].as_array().unwrap().len(), 6);
    let last = Checkpoint::load(dir.join("last.safetensors")).unwrap();
    assert_eq!(last.training.as_ref().unwrap().epoch, 6);
    let input = last.input.as_ref().unwrap();
    assert_eq!((input.sample_shape.as_slice(), input.class_names.len()), (&[64usize][..], 10));
    assert_eq!(input.scaler.mean.len(), 64);
    let model = Checkpoint::load(dir.join("model.safetensors")).unwrap();
    assert_eq!(model.weights, last.weights, "without --save-best-only the final model");

    // history.png: decodes, 1200×450, mostly white with both curves' colours and dark text.
    let png = image::open(dir.join("history.png")).unwrap().to_rgb8();
    assert_eq!(png.dimensions(), (1200, 450));
    let count = |f: &dyn Fn(&image::Rgb<u8>) -> bool| png.pixels().filter(|p| f(p)).count();
    let total = (1200 * 450) as f64;
    let drawn = count(&|p| p.0 != [255, 255, 255]) as f64 / total;
    assert!((0.02..0.6).contains(&drawn), "{:.1}% of the pixels drawn", drawn * 100.0);
    let near = |c: [u8; 3]| move |p: &image::Rgb<u8>| p.0.iter().zip(c).all(|(a, b)| a.abs_diff(b) < 12);
    assert!(count(&near([31, 119, 180])) > 300, "training curves (blue)");
    assert!(count(&near([255, 127, 14])) > 300, "validation curves (orange)");
    assert!(count(&|p| p.0.iter().all(|&v| v < 80)) > 1500, "axes and text (dark pixels)");
}

#[test]
fn save_best_only_keeps_the_epoch_with_the_lowest_val_loss() {
    let dir = TempDir::new("best-only");
    let args = TrainArgs {
        data: Some("iris".into()),
        device: "cpu".into(),
        epochs: 40,
        lr: Some(0.05),
        json: true,
        out: Some(dir.to_path_buf()),
        save_best_only: true,
        validation_split: Some(0.3),
        ..TrainArgs::default()
    };
    let report = train(&args).unwrap();
    let val = &report.history.history["val_loss"];
    let best = (0..val.len()).fold(0, |b, e| if val[e] < val[b] { e } else { b });
    let model = Checkpoint::load(dir.join("model.safetensors")).unwrap();
    assert_eq!(model.training.unwrap().epoch, best + 1, "val_loss per epoch: {val:?}");
}

#[test]
fn eval_reproduces_the_test_accuracy_with_a_consistent_confusion_matrix() {
    let dir = TempDir::new("eval");
    let report = train(&TrainArgs {
        data: Some("digits".into()),
        device: "cpu".into(),
        epochs: 8,
        json: true,
        out: Some(dir.to_path_buf()),
        metrics: Some("macro_precision,macro_recall,macro_f1".into()),
        ..TrainArgs::default()
    })
    .unwrap();
    let args = EvalArgs {
        checkpoint: dir.join("model.safetensors"),
        data: None,
        split: "test".into(),
        seed: None,
        device: "cpu".into(),
        batch_size: 64,
        json: true,
        metrics: None,
    };
    let r = eval(&args).unwrap();
    assert_eq!(r.samples, 359);
    assert_eq!(r.accuracy, report.test_accuracy);
    assert!((r.loss - report.test_loss).abs() < 1e-5, "{} vs {}", r.loss, report.test_loss);
    let total: usize = r.confusion.iter().flatten().sum();
    let trace: usize = (0..10).map(|i| r.confusion[i][i]).sum();
    assert_eq!(total, 359);
    assert!((trace as f32 / 359.0 - r.accuracy).abs() < 1e-6);
    assert_eq!(
        r.confusion.iter().map(|row| row.iter().sum::<usize>()).collect::<Vec<_>>()[0],
        36,
        "36 zeros"
    );
    // The per-class report comes from the confusion matrix on the host; its macro averages
    // equal the device-computed macro metrics the model was compiled with.
    assert_eq!(r.per_class.len(), 10);
    let macro_avg = |f: fn(&kiln::cli::ClassScores) -> f64| r.per_class.iter().map(f).sum::<f64>() / 10.0;
    for (key, host) in [
        ("macro_precision", macro_avg(|c| c.precision)),
        ("macro_recall", macro_avg(|c| c.recall)),
        ("macro_f1", macro_avg(|c| c.f1)),
    ] {
        assert!((f64::from(r.metrics[key]) - host).abs() < 1e-5, "{key}: {} vs {host}", r.metrics[key]);
    }
    assert!(r.per_class.iter().all(|c| c.support == 35 || c.support == 36 || c.support == 37));
    // --metrics evaluates the checkpoint with other metrics (accuracy always for classes).
    let other =
        eval(&EvalArgs { metrics: Some("auc,top_3_categorical_accuracy".into()), ..args.clone() }).unwrap();
    let keys: Vec<&str> = other.metrics.keys().map(String::as_str).collect();
    assert_eq!(keys, ["accuracy", "auc", "top_k_categorical_accuracy"]);
    assert_eq!((other.loss, other.accuracy), (r.loss, r.accuracy));
    assert!(other.metrics["auc"] > 0.95 && other.metrics["top_k_categorical_accuracy"] >= r.accuracy);
    assert!(eval(&EvalArgs { metrics: Some("mae,roc".into()), ..args.clone() }).is_err());
    if common::gpu().is_some() {
        let g = eval(&EvalArgs { device: "gpu".into(), ..args }).unwrap();
        assert!((g.loss - r.loss).abs() < 1e-4 && g.confusion == r.confusion, "the GPU agrees");
    }
}

#[test]
fn predict_gives_the_top_classes_of_csv_rows() {
    let dir = TempDir::new("predict-csv");
    train_into(&dir, "digits", 10);
    let digits = kiln::data::builtin::digits().unwrap();
    let mut csv = String::new();
    for i in 0..10 {
        let row: Vec<String> = digits.x.row(i).iter().map(|v| v.to_string()).collect();
        csv += &format!("{},{}\n", row.join(","), digits.y[i]);
    }
    std::fs::write(dir.join("rows.csv"), csv).unwrap();
    let args = PredictArgs {
        checkpoint: dir.join("model.safetensors"),
        inputs: vec![dir.join("rows.csv")],
        top: 3,
        device: "cpu".into(),
        json: false,
        horizon: 1,
    };
    let p = predict(&args).unwrap();
    assert_eq!(p.len(), 10);
    assert!(p[0].input.ends_with("rows.csv:1"));
    let correct = p.iter().zip(&digits.y).filter(|(p, y)| p.top[0].1 == (**y as usize).to_string()).count();
    assert!(correct >= 8, "{correct}/10 rows classified as labelled");
    for q in &p {
        assert_eq!(q.top.len(), 3);
        assert!(
            q.top.windows(2).all(|w| w[0].2 >= w[1].2)
                && q.top.iter().map(|t| t.2).sum::<f32>() <= 1.0 + 1e-5
        );
    }
    // The binary's --json output carries the same top class.
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["predict", "--device", "cpu", "--json", "--top", "2", "--checkpoint"])
        .arg(dir.join("model.safetensors"))
        .arg(dir.join("rows.csv"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &j["predictions"][0]["top"];
    assert_eq!(first.as_array().unwrap().len(), 2);
    assert_eq!(first[0]["class"], p[0].top[0].1.as_str());
}

/// An 8×8 grey image: dark (0..90) or light (165..255) noise.
fn noisy(light: bool, rng: &mut impl Rng) -> GrayImage {
    GrayImage::from_fn(8, 8, |_, _| {
        image::Luma([if light { rng.random_range(165..=255) } else { rng.random_range(0..90) }])
    })
}

#[test]
fn predict_classifies_image_files_with_the_checkpoint_pipeline() {
    let dir = TempDir::new("predict-images");
    let mut rng = common::rng(7);
    for class in ["dark", "light"] {
        std::fs::create_dir_all(dir.join("data").join(class)).unwrap();
        for i in 0..30 {
            noisy(class == "light", &mut rng)
                .save(dir.join("data").join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let run = dir.join("run");
    let report = train_into(&run, dir.join("data").to_str().unwrap(), 15);
    assert!(report.test_accuracy >= 0.9, "{}", report.test_accuracy);
    noisy(false, &mut rng).save(dir.join("new-dark.png")).unwrap();
    noisy(true, &mut rng).save(dir.join("new-light.png")).unwrap();
    let args = PredictArgs {
        checkpoint: run.join("model.safetensors"),
        inputs: vec![dir.join("new-dark.png"), dir.join("new-light.png")],
        top: 5,
        device: "cpu".into(),
        json: false,
        horizon: 1,
    };
    let p = predict(&args).unwrap();
    assert_eq!((p[0].top[0].1.as_str(), p[1].top[0].1.as_str()), ("dark", "light"), "{p:?}");
    assert_eq!(p[0].top.len(), 2, "two classes (one sigmoid unit)");
    assert!((p[0].top[0].2 + p[0].top[1].2 - 1.0).abs() < 1e-6 && p[0].top[0].2 > 0.5);
    let summary = summary_of_checkpoint(&run.join("model.safetensors")).unwrap();
    assert!(summary.contains("Total params: 4,225") && summary.contains("training: 15 epochs"), "{summary}");
    assert!(summary.contains("samples [8, 8, 1], scaling standardize, classes dark, light"), "{summary}");
}

#[test]
fn damaged_checkpoints_and_missing_runs_fail_with_one_error_line() {
    let dir = TempDir::new("cli-errors");
    std::fs::write(dir.join("bad.safetensors"), b"\x10\0\0\0\0\0\0\0{\"a\":").unwrap();
    let kiln = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_kiln")).args(args).output().unwrap();
    let bad = dir.join("bad.safetensors");
    let out = kiln(&["eval", "--device", "cpu", "--checkpoint", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.starts_with("error: checkpoint ") && err.contains("bad.safetensors"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let out = kiln(&["train", "--device", "cpu", "--resume", dir.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("last.safetensors"), "{err}");
}

/// `--metrics` reports each metric per epoch and on the test split; `--resume DIR --epochs N`
/// extends a finished run to N epochs (and keeps its metrics); without `--epochs` a finished
/// run has nothing left to train.
#[test]
fn metrics_flag_and_resume_extending_a_finished_run() {
    let dir = TempDir::new("cli-resume-epochs");
    let run = dir.join("run");
    let kiln = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_kiln")).args(args).output().unwrap();
        assert!(out.status.success(), "kiln {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let last = stdout.trim().lines().last().unwrap_or_default().to_string();
        serde_json::from_str::<serde_json::Value>(&last).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    };
    let run_s = run.to_str().unwrap();
    let first = kiln(&[
        "train",
        "--device",
        "cpu",
        "--epochs",
        "2",
        "--json",
        "--out",
        run_s,
        "--metrics",
        "auc, macro_f1",
    ]);
    assert_eq!(first["epochs_run"], 2);
    let metrics = first["test_metrics"].as_object().unwrap();
    let names: Vec<&str> = metrics.keys().map(String::as_str).collect();
    assert_eq!(names, ["accuracy", "auc", "macro_f1"], "accuracy is always reported");
    assert!(metrics["auc"].as_f64().unwrap() > 0.9 && metrics["macro_f1"].as_f64().unwrap() > 0.5);
    let more = kiln(&["train", "--device", "cpu", "--resume", run_s, "--epochs", "4", "--json"]);
    assert_eq!(more["epochs_run"], 2, "epochs 3 and 4");
    assert!(more["test_metrics"].get("auc").is_some(), "the run's metrics are kept: {more}");
    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    assert_eq!(history.lines().count(), 5, "header and 4 epochs:\n{history}");
    assert!(history.lines().next().unwrap().contains("val_auc"), "{history}");
    // history.png: a panel for the loss and each metric, three to a row.
    let png = image::open(run.join("history.png")).unwrap().to_rgb8();
    assert_eq!(png.dimensions(), (1200, 900), "loss, accuracy, auc, macro_f1: two rows");
    let blue = png.pixels().filter(|p| p.0.iter().zip([31u8, 119, 180]).all(|(a, b)| a.abs_diff(b) < 12));
    assert!(blue.count() > 4 * 300, "four training curves");
    let again = kiln(&["train", "--device", "cpu", "--resume", run_s, "--json"]);
    assert_eq!(again["epochs_run"], 0, "the run already has its 4 epochs");
    let bad = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["train", "--device", "cpu", "--epochs", "1", "--metrics", "accuracy,roc"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("--metrics") && err.contains("roc"), "{err}");
}

/// history.png's panels: the loss first, then each metric once (training and val_ curves
/// share a panel), by name; "lr" is not a panel.
#[test]
fn history_plot_has_a_panel_per_metric() {
    let mut h = kiln::History::default();
    for k in ["val_auc", "loss", "accuracy", "val_loss", "lr", "mae", "val_accuracy"] {
        h.history.insert(k.to_string(), vec![0.5, 0.25]);
    }
    assert_eq!(kiln::plot::panels(&h), ["loss", "accuracy", "auc", "mae"]);
    let png = image::load_from_memory(&kiln::plot::history_png(&h).unwrap()).unwrap();
    assert_eq!((png.width(), png.height()), (1200, 900));
    h.history.retain(|k, _| k.ends_with("loss"));
    assert_eq!(kiln::plot::panels(&h), ["loss"]);
    let png = image::load_from_memory(&kiln::plot::history_png(&h).unwrap()).unwrap();
    assert_eq!((png.width(), png.height()), (1200, 450));
}
