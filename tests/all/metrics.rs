//! Device metrics: top-k accuracy, MAE/MSE, binary precision/recall/F1 from accumulated
//! TP/FP/FN counts. Hand-computed counters, GPU = CPU, whole models whose evaluate and fit
//! report what the host computes from `predict`, and Keras's edge cases.
use kiln::backend::cpu::metrics::{binary_counts, count_top_k};
use kiln::program::Kernel;
use kiln::{
    Activation, CompileOptions, Dense, Device, FitOptions, Loss, Metric, Optimizer, Sequential, Tensor,
    Validation,
};

use crate::common::{dense_model, devices, rng, uniform};
use crate::gpu_parity::{Builder, check};

#[test]
fn counters_have_the_hand_computed_values() {
    // Rows: label 1 is the largest (in top 1); label 0 is 3rd (in top 3 only); label 2 ties
    // with label 1 at the top-2 boundary, below 0.6 (ties count as in).
    let p = [0.1f64, 0.7, 0.2, 0.1, 0.5, 0.4, 0.6, 0.5, 0.5];
    let labels = [1.0, 0.0, 2.0];
    assert_eq!(count_top_k(3, 3, true, 1, &p, &labels, None), 1.0);
    assert_eq!(count_top_k(3, 3, true, 2, &p, &labels, None), 2.0);
    assert_eq!(count_top_k(3, 3, true, 3, &p, &labels, None), 3.0);
    let one_hot = [0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0];
    assert_eq!(count_top_k(3, 3, false, 2, &p, &one_hot, None), 2.0);
    // A label out of range is never in the top k.
    assert_eq!(count_top_k(1, 3, true, 3, &p[..3], &[7.0], None), 0.0);
    // Weighted: the hits' weights (rows 0 and 2 are in the top 2).
    assert_eq!(count_top_k(3, 3, true, 2, &p, &labels, Some(&[0.5, 4.0, 0.25])), 0.75);
    let mut c = [0.0f64; 3];
    binary_counts(0.5, &[0.9, 0.6, 0.2, 0.4, 0.7], &[1.0, 0.0, 1.0, 0.0, 1.0], &mut c);
    assert_eq!(c, [2.0, 1.0, 1.0]);
}

#[test]
fn classification_report_scores_follow_the_confusion_matrix() {
    // True 0 predicted [3, 1, 0]; true 1 predicted [0, 2, 2]; class 2 never present, once
    // predicted (never right).
    let m = vec![vec![3, 1, 0], vec![0, 2, 2], vec![0, 0, 0]];
    let s = kiln::cli::class_scores(&m);
    assert_eq!((s[0].precision, s[0].recall, s[0].support), (1.0, 0.75, 4));
    assert!((s[0].f1 - 6.0 / 7.0).abs() < 1e-12);
    assert_eq!((s[1].precision, s[1].recall), (2.0 / 3.0, 0.5));
    assert!((s[1].f1 - 4.0 / 7.0).abs() < 1e-12);
    assert_eq!((s[2].precision, s[2].recall, s[2].f1, s[2].support), (0.0, 0.0, 0.0, 0));
    let names: Vec<String> = ["cat", "dog", "bird"].map(String::from).to_vec();
    let text = kiln::cli::classification_report(&s, &names);
    assert!(text.contains("macro avg") && text.contains("weighted avg") && text.contains("bird"), "{text}");
    assert!(text.lines().nth(1).is_some_and(|l| l.contains("1.0000") && l.contains("0.7500")), "{text}");
}

#[test]
fn metric_values_follow_keras_edge_cases() {
    // TP 2, FP 1, FN 1: precision 2/3, recall 2/3, F1 2/3.
    let acc = [2.0, 1.0, 1.0];
    assert!((Metric::Precision.value(&acc, 10) - 2.0 / 3.0).abs() < 1e-6);
    assert!((Metric::Recall.value(&acc, 10) - 2.0 / 3.0).abs() < 1e-6);
    assert!((Metric::F1.value(&acc, 10) - 2.0 / 3.0).abs() < 1e-6);
    // No predicted positives: precision 0 (Keras), recall 0, F1 0.
    let none = [0.0, 0.0, 4.0];
    assert_eq!(Metric::Precision.value(&none, 10), 0.0);
    assert_eq!(Metric::Recall.value(&none, 10), 0.0);
    assert_eq!(Metric::F1.value(&none, 10), 0.0);
    // No positives at all: every ratio 0, no NaN.
    assert_eq!(Metric::Recall.value(&[0.0, 0.0, 0.0], 10), 0.0);
    assert_eq!(Metric::MeanAbsoluteError.value(&[5.0], 4), 1.25);
    for m in [
        Metric::Accuracy,
        Metric::TopKAccuracy { k: 5 },
        Metric::TopKAccuracy { k: 3 },
        Metric::MeanAbsoluteError,
        Metric::MeanSquaredError,
        Metric::Precision,
        Metric::Recall,
        Metric::F1,
        Metric::Auc { num_thresholds: 200 },
        Metric::Auc { num_thresholds: 50 },
        Metric::MacroPrecision,
        Metric::MacroRecall,
        Metric::MacroF1,
    ] {
        assert_eq!(Metric::parse(&m.id()).expect("parse"), m);
    }
    assert_eq!(
        Metric::parse("sparse_top_k_categorical_accuracy").expect("alias"),
        Metric::TopKAccuracy { k: 5 }
    );
    assert_eq!(Metric::parse("AUC").expect("Keras class name"), Metric::Auc { num_thresholds: 200 });
    assert!(Metric::parse("roc").is_err());
    assert!(Metric::parse("top_0_categorical_accuracy").is_err());
}

#[test]
fn counters_match_cpu_on_gpu() {
    let mut r = rng(31);
    let mut b = Builder::default();
    for (rows, cols) in [(1, 3), (33, 10), (600, 7)] {
        // Coarse values so that ties occur.
        let z = b.input(uniform(&mut r, rows * cols, 0.0, 4.0).into_iter().map(f32::floor).collect());
        let labels: Vec<f32> = uniform(&mut r, rows, 0.0, cols as f32).into_iter().map(f32::floor).collect();
        let l = b.input(labels);
        for k in [1, 2, 5] {
            b.op(Kernel::CountTopK { rows, cols, sparse: true, k, weighted: false }, &[z, l], 1);
        }
        b.op(Kernel::CountTopK { rows, cols, sparse: false, k: 2, weighted: false }, &[z, z], 1);
        // Weighted by a 0/1 step mask: the valid hits, exactly (fractional weights sum in
        // another order on the GPU: `gpu_parity::losses_and_metrics_match_cpu` has a tolerance).
        let mask: Vec<f32> = uniform(&mut r, rows, 0.0, 2.0).into_iter().map(f32::floor).collect();
        let w = b.input(mask);
        b.op(Kernel::CountTopK { rows, cols, sparse: true, k: 2, weighted: true }, &[z, l, w], 1);
    }
    for len in [1, 100, 3001] {
        let p = b.input(uniform(&mut r, len, 0.0, 1.0));
        let t = b.input(uniform(&mut r, len, 0.0, 1.0).into_iter().map(f32::round).collect());
        b.op(Kernel::BinaryCounts { len, threshold: 0.5 }, &[p, t], 3);
        b.op(Kernel::BinaryCounts { len, threshold: 0.0 }, &[p, t], 3);
    }
    check(&b, 0.0);
}

fn close(what: &str, got: f32, want: f64) {
    assert!((f64::from(got) - want).abs() < 1e-5, "{what}: got {got}, want {want}");
}

#[test]
fn categorical_metrics_match_the_host() {
    let mut r = rng(32);
    let (rows, cols) = (37, 6);
    let x = Tensor::new(&[rows, 4], uniform(&mut r, rows * 4, -2.0, 2.0)).expect("x");
    let labels: Vec<f32> = uniform(&mut r, rows, 0.0, cols as f32).into_iter().map(f32::floor).collect();
    let y = Tensor::new(&[rows], labels.clone()).expect("y");
    let metrics = [Metric::Accuracy, Metric::TopKAccuracy { k: 3 }];
    for device in devices() {
        let mut m =
            dense_model(cols, Activation::Softmax, Loss::SparseCategoricalCrossentropy, &metrics, device);
        let p = m.predict(&x, 10).expect("predict");
        let top = |k: usize| {
            (0..rows)
                .filter(|&i| {
                    let row = p.row(i);
                    let t = row[labels[i] as usize];
                    row.iter().filter(|&&v| v > t).count() < k
                })
                .count() as f64
                / rows as f64
        };
        let logs = m.evaluate_metrics(&x, &y, 10).expect("evaluate");
        close(&format!("accuracy on {device:?}"), logs["accuracy"], top(1));
        close(&format!("top-3 on {device:?}"), logs["top_k_categorical_accuracy"], top(3));
        assert!(logs["top_k_categorical_accuracy"] >= logs["accuracy"]);
    }
}

#[test]
fn binary_and_regression_metrics_match_the_host() {
    let mut r = rng(33);
    let rows = 41;
    let x = Tensor::new(&[rows, 4], uniform(&mut r, rows * 4, -2.0, 2.0)).expect("x");
    let t: Vec<f32> = uniform(&mut r, rows, 0.0, 1.0).into_iter().map(f32::round).collect();
    let y = Tensor::new(&[rows, 1], t.clone()).expect("y");
    let metrics =
        [Metric::Precision, Metric::Recall, Metric::F1, Metric::MeanAbsoluteError, Metric::MeanSquaredError];
    for device in devices() {
        let mut m = dense_model(1, Activation::Sigmoid, Loss::BinaryCrossentropy, &metrics, device);
        let p = m.predict(&x, 8).expect("predict");
        let (mut tp, mut fp, mut fneg) = (0.0, 0.0, 0.0);
        for (&v, &l) in p.data.iter().zip(&t) {
            match (v > 0.5, l > 0.5) {
                (true, true) => tp += 1.0,
                (true, false) => fp += 1.0,
                (false, true) => fneg += 1.0,
                _ => {}
            }
        }
        let (prec, rec) = (tp / (tp + fp), tp / (tp + fneg));
        assert!(tp > 0.0 && fp + fneg > 0.0, "a non-trivial case: {tp} {fp} {fneg}");
        let mae = p.data.iter().zip(&t).map(|(&a, &b)| f64::from((a - b).abs())).sum::<f64>() / rows as f64;
        let mse =
            p.data.iter().zip(&t).map(|(&a, &b)| f64::from((a - b) * (a - b))).sum::<f64>() / rows as f64;
        let logs = m.evaluate_metrics(&x, &y, 8).expect("evaluate");
        close(&format!("precision on {device:?}"), logs["precision"], prec);
        close(&format!("recall on {device:?}"), logs["recall"], rec);
        close(&format!("f1 on {device:?}"), logs["f1_score"], 2.0 * prec * rec / (prec + rec));
        close(&format!("mae on {device:?}"), logs["mae"], mae);
        close(&format!("mse on {device:?}"), logs["mse"], mse);
        // fit reports every metric, and its val_ form, per epoch.
        let opts = FitOptions {
            batch_size: 8,
            epochs: 2,
            verbose: 0,
            validation: Validation::Split(0.25),
            ..FitOptions::default()
        };
        let h = m.fit(&x, &y, &opts).expect("fit");
        for k in ["precision", "recall", "f1_score", "mae", "mse"] {
            assert_eq!(h.history[k].len(), 2, "{k}");
            assert_eq!(h.history[&format!("val_{k}")].len(), 2, "val_{k}");
        }
    }
}

/// A model that predicts no positives: precision 0 (Keras), not NaN.
#[test]
fn no_predicted_positives_give_precision_zero() {
    for device in devices() {
        let metrics = [Metric::Precision, Metric::Recall, Metric::F1];
        let mut m = dense_model(1, Activation::Sigmoid, Loss::BinaryCrossentropy, &metrics, device);
        let mut w = m.get_weights().expect("weights");
        w[0].1.data.iter_mut().for_each(|v| *v = 0.0);
        w[1].1.data.iter_mut().for_each(|v| *v = -10.0);
        m.set_weights(&w).expect("set");
        let x = Tensor::new(&[4, 4], vec![1.0; 16]).expect("x");
        let y = Tensor::new(&[4, 1], vec![1.0, 0.0, 1.0, 0.0]).expect("y");
        let logs = m.evaluate_metrics(&x, &y, 4).expect("evaluate");
        assert_eq!((logs["precision"], logs["recall"], logs["f1_score"]), (0.0, 0.0, 0.0), "{device:?}");
    }
}

#[test]
fn metrics_that_do_not_fit_the_labels_are_errors() {
    let mut m = Sequential::new(&[4]).add(Dense::new(1, Activation::Sigmoid));
    let mut c = CompileOptions::new(Optimizer::sgd(0.1), Loss::BinaryCrossentropy, Device::Cpu);
    c.metrics = vec![Metric::TopKAccuracy { k: 2 }];
    assert!(m.compile(c).is_err(), "top-k on a binary head");
    let mut m = Sequential::new(&[4]).add(Dense::new(3, Activation::Softmax));
    let mut c = CompileOptions::new(Optimizer::sgd(0.1), Loss::SparseCategoricalCrossentropy, Device::Cpu);
    c.metrics = vec![Metric::MeanAbsoluteError];
    assert!(m.compile(c.clone()).is_err(), "mae on sparse labels");
    c.metrics = vec![Metric::Auc { num_thresholds: 1 }];
    assert!(m.compile(c.clone()).is_err(), "one AUC threshold");
    // Any number of metrics: each has its own accumulator slot.
    c.metrics = [Metric::Accuracy; 9]
        .into_iter()
        .chain([Metric::MacroF1, Metric::Auc { num_thresholds: 1024 }])
        .collect();
    m.compile(c.clone()).expect("eleven metrics");
    let mut reg = Sequential::new(&[4]).add(Dense::new(1, Activation::Linear));
    let mut c = CompileOptions::new(Optimizer::sgd(0.1), Loss::MeanSquaredError, Device::Cpu);
    for metric in [Metric::Auc { num_thresholds: 200 }, Metric::MacroF1] {
        c.metrics = vec![metric];
        assert!(reg.compile(c.clone()).is_err(), "{metric:?} on a regression target");
    }
}
