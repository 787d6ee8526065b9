//! Losses beyond the fused cross-entropies and MSE: mean absolute error, Huber, binary
//! cross-entropy on (clipped) probabilities, and the `from_logits` forms. Hand-computed
//! values, f64 gradient checks, GPU = CPU, and whole models whose evaluate/fit loss matches
//! the loss computed on the host from `predict`.
use kiln::backend::cpu::pointwise;
use kiln::backend::cpu::weights::RowWeights;
use kiln::graph::Op;
use kiln::program::{Kernel, PointwiseLoss};
use kiln::{
    Activation, CompileOptions, Dense, Device, FitOptions, Loss, Metric, Optimizer, Sequential, Tensor,
};

use crate::common::{devices, rng, uniform};
use crate::gpu_parity::{Builder, check};
use crate::gradcheck::{Fill, check_graph, op, rand_in};

const MAE: PointwiseLoss = PointwiseLoss::AbsoluteError;
const HUBER: PointwiseLoss = PointwiseLoss::Huber { delta: 1.0 };
const BCE: PointwiseLoss = PointwiseLoss::BinaryCrossEntropy { eps: kiln::loss::EPSILON };

/// No per-sample weights.
fn none() -> RowWeights<'static, f64> {
    RowWeights::none()
}

fn close(what: &str, got: f64, want: f64, tol: f64) {
    assert!((got - want).abs() <= tol * (1.0 + want.abs()), "{what}: got {got}, want {want}");
}

#[test]
fn pointwise_losses_have_the_keras_values() {
    // MAE: (1 + 0 + 3) / 3.
    close("mae", pointwise::loss(MAE, &[1.0f64, 2.0, 3.0], &[2.0, 2.0, 0.0], none()), 4.0 / 3.0, 1e-12);
    // Huber, delta 1: 0, ½·0.5², 3 − ½, 1 − ½ (|d| = 1 is the quadratic side: ½).
    let h = pointwise::loss(HUBER, &[0.0f64, 0.5, -3.0, 2.0], &[0.0, 0.0, 0.0, 1.0], none());
    close("huber", h, (0.0 + 0.125 + 2.5 + 0.5) / 4.0, 1e-12);
    // BCE on probabilities, the 0 clipped to 1e-7 (Keras epsilon) and 1 to 1 − 1e-7.
    let want = (-(0.9f64.ln()) - 0.8f64.ln() - (1e-7f64).ln() - (1e-7f64).ln()) / 4.0;
    let b = pointwise::loss(BCE, &[0.9f64, 0.2, 0.0, 1.0], &[1.0, 0.0, 1.0, 0.0], none());
    close("bce", b, want, 1e-6);
    // Gradients (dloss = 2, len 3 → scale 2/3).
    let mut d = [0.0f64; 3];
    pointwise::grad(MAE, &[1.0, 2.0, 3.0], &[2.0, 2.0, 0.0], none(), 2.0, &mut d);
    assert_eq!(d, [-2.0 / 3.0, 0.0, 2.0 / 3.0]);
    pointwise::grad(HUBER, &[0.5, -3.0, 2.0], &[0.0, 0.0, 0.0], none(), 3.0, &mut d);
    assert_eq!(d, [0.5, -1.0, 1.0]);
    // BCE: (p − t)/(p(1 − p)) inside the clip, 0 where the clip is active.
    pointwise::grad(BCE, &[0.25, 0.0, 1.0], &[1.0, 1.0, 0.0], none(), 3.0, &mut d);
    close("bce grad", d[0], -0.75 / 0.1875, 1e-12);
    assert_eq!(&d[1..], &[0.0, 0.0]);
}

#[test]
fn pointwise_loss_gradients_match_finite_differences() {
    for (name, loss) in [("mae", MAE), ("huber", HUBER)] {
        // Targets away from the predictions' kinks: p random in ±1.5, t fixed.
        let t = (vec![3, 2], Fill::Fixed(vec![0.3, -0.2, 1.1, -1.4, 0.05, 2.9]), false);
        check_graph(name, &[rand_in(&[3, 2]), t], &|g, x| op(g, Op::Pointwise { loss, weighted: false }, x));
    }
    let p = (vec![5, 1], Fill::Fixed(vec![0.1, 0.7, 0.35, 0.9, 0.55]), true);
    let t = (vec![5, 1], Fill::Fixed(vec![1.0, 0.0, 0.0, 1.0, 0.3]), false);
    check_graph("bce probabilities", &[p, t], &|g, x| op(g, Op::Pointwise { loss: BCE, weighted: false }, x));
}

#[test]
fn pointwise_losses_match_cpu_on_gpu() {
    let mut r = rng(11);
    let mut b = Builder::default();
    for len in [1, 100, 3001] {
        let p = b.input(uniform(&mut r, len, -3.0, 3.0));
        let t = b.input(uniform(&mut r, len, -3.0, 3.0));
        // Probabilities, some outside [ε, 1 − ε] (clipped), and soft targets.
        let q = b.input(uniform(&mut r, len, -0.2, 1.2));
        let s = b.input(uniform(&mut r, len, 0.0, 1.0));
        let dloss = b.input(vec![0.7]);
        for (loss, p, t) in [(MAE, p, t), (HUBER, p, t), (BCE, q, s)] {
            b.op(Kernel::Pointwise { loss, len, rows: len, weighted: false }, &[p, t], 1);
            b.op(Kernel::PointwiseGrad { loss, len, rows: len, weighted: false }, &[p, t, dloss], len);
        }
    }
    check(&b, 1e-4);
}

/// A Dense(units, act) model compiled with `loss` on `device`.
fn model(units: usize, act: Activation, loss: Loss, device: Device) -> Sequential {
    let mut m = Sequential::new(&[4]).with_seed(3).add(Dense::new(units, act));
    let mut c = CompileOptions::new(Optimizer::sgd(0.1), loss, device);
    c.metrics.clear();
    m.compile(c).expect("compile");
    m
}

/// For each device: evaluate's loss equals `host(predictions, labels)`, and a few epochs
/// of fit lower the loss.
fn check_model(units: usize, act: Activation, loss: Loss, y: &Tensor, host: &dyn Fn(&[f32], &[f32]) -> f64) {
    let mut r = rng(21);
    let x = Tensor::new(&[8, 4], uniform(&mut r, 32, -2.0, 2.0)).expect("x");
    for device in devices() {
        let mut m = model(units, act, loss, device);
        let p = m.predict(&x, 8).expect("predict");
        let (got, _) = m.evaluate(&x, y, 8).expect("evaluate");
        close(&format!("{} on {device:?}", loss.name()), f64::from(got), host(&p.data, &y.data), 1e-5);
        let opts = FitOptions { batch_size: 8, epochs: 20, verbose: 0, ..FitOptions::default() };
        let h = m.fit(&x, y, &opts).expect("fit");
        let losses = &h.history["loss"];
        assert!(losses[19] < losses[0], "{} on {device:?} does not train: {losses:?}", loss.name());
    }
}

fn mean(v: impl Iterator<Item = f64>, n: usize) -> f64 {
    v.sum::<f64>() / n as f64
}

#[test]
fn regression_losses_train_and_report_the_host_value() {
    let mut r = rng(22);
    let y = Tensor::new(&[8, 2], uniform(&mut r, 16, -3.0, 3.0)).expect("y");
    let d = |p: &[f32], t: &[f32]| {
        p.iter().zip(t).map(|(&p, &t)| f64::from(p) - f64::from(t)).collect::<Vec<_>>()
    };
    check_model(2, Activation::Linear, Loss::MeanAbsoluteError, &y, &|p, t| {
        mean(d(p, t).into_iter().map(f64::abs), 16)
    });
    check_model(2, Activation::Linear, Loss::Huber, &y, &|p, t| {
        mean(d(p, t).into_iter().map(|d| if d.abs() <= 1.0 { 0.5 * d * d } else { d.abs() - 0.5 }), 16)
    });
}

/// Host BCE of probabilities (clipped as Keras).
fn bce(p: &[f32], t: &[f32]) -> f64 {
    let eps = 1e-7;
    mean(
        p.iter().zip(t).map(|(&p, &t)| {
            let (p, t) = (f64::from(p).clamp(eps, 1.0 - eps), f64::from(t));
            -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
        }),
        p.len(),
    )
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

#[test]
fn binary_crossentropy_on_probabilities_and_from_logits() {
    let y = Tensor::new(&[8, 1], vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0]).expect("y");
    // A relu output read as probabilities: values above 1 are clipped, as are zeros.
    let mut r = rng(23);
    let x = Tensor::new(&[8, 4], uniform(&mut r, 32, -2.0, 2.0)).expect("x");
    let mut m = model(1, Activation::Relu, Loss::BinaryCrossentropy, Device::Cpu);
    let p = m.predict(&x, 8).expect("predict");
    let (got, _) = m.evaluate(&x, &y, 8).expect("evaluate");
    close("bce of relu outputs", f64::from(got), bce(&p.data, &y.data), 1e-5);
    // Sigmoid output (fused) and a linear output with from_logits agree with the host.
    check_model(1, Activation::Sigmoid, Loss::BinaryCrossentropy, &y, &bce);
    check_model(1, Activation::Linear, Loss::BinaryCrossentropyFromLogits, &y, &|z, t| {
        bce(&z.iter().map(|&z| sigmoid(z)).collect::<Vec<_>>(), t)
    });
}

/// Keras accepts soft binary labels in [0, 1]: the loss is the cross-entropy against them
/// (here hand-computed), on every device, with and without logits; values outside [0, 1] or
/// NaN are errors naming the sample and the value. The binary metrics count a label above 0.5
/// as a positive.
#[test]
fn binary_crossentropy_takes_soft_labels_in_0_1() {
    let x = Tensor::new(&[4, 4], (0..16).map(|i| i as f32 / 8.0 - 1.0).collect()).expect("x");
    let soft = Tensor::new(&[4, 1], vec![0.2, 0.9, 0.5, 1.0]).expect("y");
    for device in devices() {
        // Zero kernel, bias ln 3: every prediction is σ(ln 3) = 0.75.
        let mut m = Sequential::new(&[4]).add(Dense::new(1, Activation::Sigmoid));
        let mut c = CompileOptions::new(Optimizer::sgd(0.1), Loss::BinaryCrossentropy, device);
        c.metrics = vec![kiln::Metric::Accuracy, kiln::Metric::Precision, kiln::Metric::Recall];
        m.compile(c).expect("compile");
        let bias = Tensor::new(&[1], vec![3f32.ln()]).expect("bias");
        m.set_weights(&[("dense.kernel".into(), Tensor::zeros(&[4, 1])), ("dense.bias".into(), bias)])
            .expect("weights");
        // −(t·ln 0.75 + (1 − t)·ln 0.25) for t = 0.2, 0.9, 0.5, 1:
        // 1.1665719, 0.3975433, 0.8369882, 0.2876821; mean 0.6721964.
        let logs = m.evaluate_metrics(&x, &soft, 4).expect("evaluate");
        close(&format!("soft-label bce on {device:?}"), f64::from(logs["loss"]), 0.6721964, 1e-6);
        // Labels above 0.5 (0.9 and 1) are the positives; all four predicted positive.
        assert_eq!((logs["accuracy"], logs["precision"], logs["recall"]), (0.5, 0.5, 1.0), "{device:?}");
    }
    let y = Tensor::new(&[8, 1], vec![0.1, 0.7, 0.35, 1.0, 0.0, 0.55, 0.95, 0.25]).expect("y");
    check_model(1, Activation::Sigmoid, Loss::BinaryCrossentropy, &y, &bce);
    check_model(1, Activation::Linear, Loss::BinaryCrossentropyFromLogits, &y, &|z, t| {
        bce(&z.iter().map(|&z| sigmoid(z)).collect::<Vec<_>>(), t)
    });
    let mut m = model(1, Activation::Sigmoid, Loss::BinaryCrossentropy, Device::Cpu);
    for (bad, at) in [(1.5f32, 2usize), (-0.1, 0), (f32::NAN, 3)] {
        let mut labels = vec![0.5; 4];
        labels[at] = bad;
        let y = Tensor::new(&[4, 1], labels).expect("y");
        match m.evaluate(&x, &y, 4) {
            Err(kiln::Error::Invalid { what, message }) => {
                assert!(what.contains("binary_crossentropy"), "{what}");
                assert!(message.contains(&format!("label {bad} at sample {at}")), "{message}");
            }
            other => panic!("label {bad}: expected an error, got {other:?}"),
        }
    }
}

/// Host categorical cross-entropy of probability rows against one-hot rows.
fn cce(p: &[f32], t: &[f32], cols: usize) -> f64 {
    let rows = p.len() / cols;
    mean((0..p.len()).map(|i| -f64::from(t[i]) * f64::from(p[i]).max(1e-7).ln()), rows)
}

fn softmax_rows(z: &[f32], cols: usize) -> Vec<f32> {
    z.chunks(cols)
        .flat_map(|row| {
            let m = row.iter().copied().fold(f32::MIN, f32::max);
            let e: Vec<f32> = row.iter().map(|&v| (v - m).exp()).collect();
            let s: f32 = e.iter().sum();
            e.into_iter().map(move |v| v / s)
        })
        .collect()
}

#[test]
fn categorical_crossentropy_one_hot_and_from_logits() {
    let classes = [2usize, 0, 1, 2, 1, 0, 0, 2];
    let one_hot: Vec<f32> =
        classes.iter().flat_map(|&c| (0..3).map(move |j| if j == c { 1.0 } else { 0.0 })).collect();
    let y = Tensor::new(&[8, 3], one_hot).expect("y");
    check_model(3, Activation::Softmax, Loss::CategoricalCrossentropy, &y, &|p, t| cce(p, t, 3));
    check_model(3, Activation::Linear, Loss::CategoricalCrossentropyFromLogits, &y, &|z, t| {
        cce(&softmax_rows(z, 3), t, 3)
    });
    let sparse = Tensor::new(&[8], classes.iter().map(|&c| c as f32).collect()).expect("labels");
    let y1 = y.clone();
    check_model(
        3,
        Activation::Linear,
        Loss::SparseCategoricalCrossentropyFromLogits,
        &sparse,
        &move |z, _| cce(&softmax_rows(z, 3), &y1.data, 3),
    );
}

#[test]
fn loss_and_output_layer_mismatches_are_errors() {
    let mut m = Sequential::new(&[4]).add(Dense::new(3, Activation::Softmax));
    let c = CompileOptions::new(Optimizer::sgd(0.1), Loss::CategoricalCrossentropyFromLogits, Device::Cpu);
    assert!(m.compile(c).is_err(), "from_logits on a softmax output");
    let mut m = Sequential::new(&[4]).add(Dense::new(3, Activation::Relu));
    let c = CompileOptions::new(Optimizer::sgd(0.1), Loss::CategoricalCrossentropy, Device::Cpu);
    assert!(m.compile(c).is_err(), "categorical cross-entropy on a relu output");
    for l in Loss::ALL {
        assert_eq!(Loss::from_name(l.name()).expect("name"), l);
    }
    assert_eq!(Loss::from_name("mean_absolute_error").expect("alias"), Loss::MeanAbsoluteError);
    assert!(Loss::from_name("hinge").is_err());
}

/// Keras label smoothing: one-hot rows become y·(1 − s) + s/k, binary labels y·(1 − s) + s/2,
/// in evaluate and in training, on every device.
#[test]
fn label_smoothing_follows_keras() {
    let mut r = rng(24);
    let x = Tensor::new(&[8, 4], uniform(&mut r, 32, -2.0, 2.0)).expect("x");
    let classes = [2usize, 0, 1, 2, 1, 0, 0, 2];
    let one_hot: Vec<f32> =
        classes.iter().flat_map(|&c| (0..3).map(move |j| if j == c { 1.0 } else { 0.0 })).collect();
    let y = Tensor::new(&[8, 3], one_hot).expect("y");
    let yb = Tensor::new(&[8, 1], vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0]).expect("y");
    let cases: [(usize, Activation, Loss, &Tensor, f32); 3] = [
        (3, Activation::Softmax, Loss::CategoricalCrossentropy, &y, 0.1),
        (3, Activation::Linear, Loss::CategoricalCrossentropyFromLogits, &y, 0.3),
        (1, Activation::Sigmoid, Loss::BinaryCrossentropy, &yb, 0.2),
    ];
    for device in devices() {
        for &(units, act, loss, y, s) in &cases {
            let mut m = Sequential::new(&[4]).with_seed(3).add(Dense::new(units, act));
            let mut c = CompileOptions::new(Optimizer::sgd(0.1), loss, device).with_label_smoothing(s);
            c.metrics.clear();
            m.compile(c).expect("compile");
            let p = m.predict(&x, 8).expect("predict");
            let k = if units == 1 { 2.0 } else { units as f32 };
            let t: Vec<f32> = y.data.iter().map(|&v| v * (1.0 - s) + s / k).collect();
            let want = match loss {
                Loss::BinaryCrossentropy => bce(&p.data, &t),
                Loss::CategoricalCrossentropy => cce(&p.data, &t, 3),
                _ => cce(&softmax_rows(&p.data, 3), &t, 3),
            };
            let (got, _) = m.evaluate(&x, y, 8).expect("evaluate");
            close(&format!("{} smoothing {s} on {device:?}", loss.name()), f64::from(got), want, 1e-5);
            assert_eq!(m.label_smoothing(), s);
        }
    }
    // Metrics see the labels as given (Keras smooths inside the loss): the same accuracy and
    // AUC with and without smoothing, a different loss.
    for device in devices() {
        let metrics = vec![Metric::Accuracy, Metric::Auc { num_thresholds: 200 }];
        let eval = |s: f32| {
            let mut m = Sequential::new(&[4]).with_seed(3).add(Dense::new(1, Activation::Sigmoid));
            let mut c = CompileOptions::new(Optimizer::sgd(0.1), Loss::BinaryCrossentropy, device)
                .with_label_smoothing(s);
            c.metrics = metrics.clone();
            m.compile(c).expect("compile");
            let (loss, _) = m.evaluate(&x, &yb, 8).expect("evaluate");
            (loss, m.evaluate_metrics(&x, &yb, 8).expect("metrics"))
        };
        let ((plain_loss, plain), (smooth_loss, smooth)) = (eval(0.0), eval(0.4));
        assert_ne!(plain_loss, smooth_loss);
        for k in ["accuracy", "auc"] {
            assert_eq!(plain[k], smooth[k], "{k} on {device:?}");
        }
        assert!(plain["auc"] > 0.0 && plain["auc"] < 1.0);
    }
    // Only for categorical and binary cross-entropy, and in [0, 1].
    for (units, act, loss, s) in [
        (2, Activation::Linear, Loss::MeanSquaredError, 0.1),
        (3, Activation::Softmax, Loss::SparseCategoricalCrossentropy, 0.1),
        (3, Activation::Softmax, Loss::CategoricalCrossentropy, 1.5),
        (3, Activation::Softmax, Loss::CategoricalCrossentropy, -0.1),
    ] {
        let mut m = Sequential::new(&[4]).add(Dense::new(units, act));
        let c = CompileOptions::new(Optimizer::sgd(0.1), loss, Device::Cpu).with_label_smoothing(s);
        assert!(m.compile(c).is_err(), "{} with smoothing {s}", loss.name());
    }
}

/// A checkpoint keeps the loss, its label smoothing and the metrics (top-k's k included).
#[test]
fn checkpoints_keep_loss_smoothing_and_metrics() {
    let dir = crate::common::TempDir::new("loss-smoothing");
    let path = dir.join("m.safetensors");
    let mut m = Sequential::new(&[4]).with_seed(3).add(Dense::new(5, Activation::Linear));
    let mut c =
        CompileOptions::new(Optimizer::sgd(0.1), Loss::CategoricalCrossentropyFromLogits, Device::Cpu)
            .with_label_smoothing(0.2);
    c.metrics = vec![kiln::Metric::Accuracy, kiln::Metric::TopKAccuracy { k: 3 }];
    m.compile(c).expect("compile");
    let mut r = rng(25);
    let x = Tensor::new(&[6, 4], uniform(&mut r, 24, -2.0, 2.0)).expect("x");
    let y = Tensor::new(&[6, 5], (0..30).map(|i| if i % 6 == 0 { 1.0 } else { 0.0 }).collect()).expect("y");
    let before = m.evaluate_metrics(&x, &y, 4).expect("evaluate");
    m.save(&path).expect("save");
    let mut back = kiln::Checkpoint::load(&path).expect("load").into_model(Device::Cpu).expect("model");
    assert_eq!(back.loss(), Some(Loss::CategoricalCrossentropyFromLogits));
    assert_eq!(back.label_smoothing(), 0.2);
    assert_eq!(back.metrics(), m.metrics());
    assert_eq!(back.evaluate_metrics(&x, &y, 4).expect("evaluate"), before);
}
