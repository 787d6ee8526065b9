//! ROC AUC (Keras `AUC()`, 200 thresholds) and the macro-averaged precision / recall / F1:
//! device histograms and per-class counts against Keras's formulas written out here, the
//! exact rank AUC, hand-computed cases and edge cases, GPU = CPU, whole models, real data.
use kiln::backend::cpu::metrics::{class_counts, roc_histogram};
use kiln::program::{CLASS_COUNT_CHUNK, Kernel, ROC_CHUNK};
use kiln::{
    Activation, CompileOptions, Dense, Device, FitOptions, Loss, Metric, Optimizer, Sequential, Tensor,
    Validation,
};

use crate::common::{dense_model, devices, rng, uniform};
use crate::gpu_parity::{Builder, check};

const AUC: Metric = Metric::Auc { num_thresholds: 200 };

/// AUC through the kernel and the metric: one chunk-summed histogram, then the value.
fn kernel_auc(p: &[f32], labels: &[f32], cols: usize, sparse: bool, thresholds: usize) -> f32 {
    let chunks = p.len().div_ceil(ROC_CHUNK).max(1);
    let mut partial = vec![0.0f32; chunks * 2 * thresholds];
    roc_histogram(cols, sparse, thresholds, p, labels, &mut partial);
    let mut hist = vec![0.0f32; 2 * thresholds];
    for c in partial.chunks(2 * thresholds) {
        hist.iter_mut().zip(c).for_each(|(h, &v)| *h += v);
    }
    Metric::Auc { num_thresholds: thresholds }.value(&hist, p.len())
}

/// Keras's AUC as its reference code computes it (not the bucketed fast path): thresholds
/// [−ε, 1/(T−1), …, (T−2)/(T−1), 1 + ε], TP/FP/TN/FN of `p > threshold`, weighted by the
/// (soft) label, rates with divide_no_nan, trapezoids.
fn keras_auc(p: &[f32], labels: &[f32], t: usize) -> f64 {
    let eps = 1e-7;
    let thresholds: Vec<f64> = (0..t)
        .map(|i| match i {
            0 => -eps,
            _ if i == t - 1 => 1.0 + eps,
            _ => i as f64 / (t - 1) as f64,
        })
        .collect();
    let rates: Vec<(f64, f64)> = thresholds
        .iter()
        .map(|&th| {
            let (mut tp, mut fp, mut fneg, mut tn) = (0.0, 0.0, 0.0, 0.0);
            for (&v, &w) in p.iter().zip(labels) {
                let w = f64::from(w);
                if f64::from(v) > th {
                    tp += w;
                    fp += 1.0 - w;
                } else {
                    fneg += w;
                    tn += 1.0 - w;
                }
            }
            let rate = |a: f64, b: f64| if a + b > 0.0 { a / (a + b) } else { 0.0 };
            (rate(fp, tn), rate(tp, fneg))
        })
        .collect();
    rates.windows(2).map(|w| (w[0].0 - w[1].0) * (w[0].1 + w[1].1) / 2.0).sum()
}

/// The exact ROC AUC: the probability that a random positive scores above a random
/// negative, ties counting one half.
fn rank_auc(p: &[f32], labels: &[f32]) -> f64 {
    let (mut wins, mut pairs) = (0.0, 0.0);
    for (&a, &la) in p.iter().zip(labels) {
        for (&b, &lb) in p.iter().zip(labels) {
            if la == 1.0 && lb == 0.0 {
                pairs += 1.0;
                wins += if a > b {
                    1.0
                } else if a == b {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    wins / pairs
}

#[test]
fn auc_has_the_hand_computed_values() {
    // The classic example: positives at 0.35 and 0.8, negatives at 0.1 and 0.4; 3 of the 4
    // (positive, negative) pairs are ordered right.
    let p = [0.1, 0.4, 0.35, 0.8];
    let y = [0.0, 0.0, 1.0, 1.0];
    assert!((kernel_auc(&p, &y, 1, false, 200) - 0.75).abs() < 1e-6);
    // Perfect, inverted, and a tie (both in one bucket: half credit).
    assert!((kernel_auc(&[0.2, 0.9], &[0.0, 1.0], 1, false, 200) - 1.0).abs() < 1e-6);
    assert_eq!(kernel_auc(&[0.9, 0.2], &[0.0, 1.0], 1, false, 200), 0.0);
    assert!((kernel_auc(&[0.5, 0.5], &[0.0, 1.0], 1, false, 200) - 0.5).abs() < 1e-6);
    // All one class: no negatives (or no positives), so one rate is 0/0 → 0, and so is the
    // area (Keras returns 0 too).
    assert_eq!(kernel_auc(&[0.2, 0.7, 0.9], &[1.0, 1.0, 1.0], 1, false, 200), 0.0);
    assert_eq!(kernel_auc(&[0.2, 0.7, 0.9], &[0.0, 0.0, 0.0], 1, false, 200), 0.0);
    assert_eq!(AUC.value(&[0.0; 400], 0), 0.0);
    // The bucket edges: p exactly on a threshold is not above it (0.5 = 99.5/199 is not on
    // one; 1/199 is), p = 0, p < 0, p > 1 and NaN stay in range.
    let edge = [0.0, 1.0 / 199.0, -3.0, 7.0, f32::NAN, 1.0];
    let labels = [0.0, 1.0, 0.0, 1.0, 0.0, 1.0];
    let got = kernel_auc(&edge, &labels, 1, false, 200);
    assert!(got.is_finite() && (0.0..=1.0).contains(&got), "{got}");
}

#[test]
fn auc_follows_keras_and_approximates_the_exact_auc() {
    let mut r = rng(40);
    for (n, thresholds) in [(50, 200), (1000, 200), (9000, 200), (700, 13), (300, 1024)] {
        let p = uniform(&mut r, n, 0.0, 1.0);
        // Labels correlated with p, so the AUC is neither 0.5 nor 1.
        let noise = uniform(&mut r, n, -0.4, 0.4);
        let y: Vec<f32> = p.iter().zip(&noise).map(|(&v, &e)| f32::from(v + e > 0.5)).collect();
        let got = f64::from(kernel_auc(&p, &y, 1, false, thresholds));
        let keras = keras_auc(&p, &y, thresholds);
        assert!((got - keras).abs() < 1e-5, "n {n} T {thresholds}: {got} vs Keras {keras}");
        if thresholds >= 200 {
            let exact = rank_auc(&p, &y);
            assert!((got - exact).abs() < 5e-3, "n {n}: {got} vs exact {exact}");
        }
    }
    // Soft labels weight each sample as positive by w and negative by 1 − w (Keras).
    let p = uniform(&mut r, 500, 0.0, 1.0);
    let w = uniform(&mut r, 500, 0.0, 1.0);
    let got = f64::from(kernel_auc(&p, &w, 1, false, 200));
    assert!((got - keras_auc(&p, &w, 200)).abs() < 1e-5);
}

#[test]
fn multiclass_auc_is_the_auc_of_every_sample_class_pair() {
    // Sparse labels count as one-hot: the same value as the one-hot labels, and as a binary
    // AUC over the flattened (sample, class) pairs.
    let mut r = rng(41);
    let (rows, cols) = (301, 7);
    let p = uniform(&mut r, rows * cols, 0.0, 1.0);
    let labels: Vec<f32> = uniform(&mut r, rows, 0.0, cols as f32).into_iter().map(f32::floor).collect();
    let one_hot: Vec<f32> =
        (0..rows * cols).map(|e| f32::from(labels[e / cols] as usize == e % cols)).collect();
    let sparse = kernel_auc(&p, &labels, cols, true, 200);
    assert_eq!(sparse, kernel_auc(&p, &one_hot, cols, false, 200));
    assert!((f64::from(sparse) - keras_auc(&p, &one_hot, 200)).abs() < 1e-5);
}

#[test]
fn macro_metrics_have_the_hand_computed_values() {
    // Argmax predictions [0, 1, 1, 2, 0] against labels [0, 1, 2, 2, 1]:
    // class 0: TP 1 FP 1 FN 0 (P 1/2, R 1, F1 2/3); class 1: TP 1 FP 1 FN 1 (1/2, 1/2, 1/2);
    // class 2: TP 1 FP 0 FN 1 (1, 1/2, 2/3).
    let p = [0.8, 0.1, 0.1, 0.2, 0.7, 0.1, 0.3, 0.4, 0.3, 0.1, 0.2, 0.7, 0.5, 0.5, 0.0];
    let labels = [0.0, 1.0, 2.0, 2.0, 1.0];
    let mut counts = [0.0f32; 9];
    class_counts(5, 3, true, None, &p, &labels, &mut counts);
    assert_eq!(counts, [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]);
    let one_hot: Vec<f32> = (0..15).map(|e| f32::from(labels[e / 3] as usize == e % 3)).collect();
    let mut dense = [0.0f32; 9];
    class_counts(5, 3, false, None, &p, &one_hot, &mut dense);
    assert_eq!(dense, counts);
    assert!((Metric::MacroPrecision.value(&counts, 5) - 2.0 / 3.0).abs() < 1e-6);
    assert!((Metric::MacroRecall.value(&counts, 5) - 2.0 / 3.0).abs() < 1e-6);
    assert!((Metric::MacroF1.value(&counts, 5) - 11.0 / 18.0).abs() < 1e-6);
    // Thresholded columns (multi-label): column 0 TP 1 FP 1, column 1 FN 2.
    let mut t = [0.0f32; 6];
    class_counts(2, 2, false, Some(0.5), &[0.9, 0.2, 0.6, 0.4], &[1.0, 1.0, 0.0, 1.0], &mut t);
    assert_eq!(t, [1.0, 0.0, 1.0, 0.0, 0.0, 2.0]);
    // A class never predicted nor present counts as 0 (Keras averages over all classes);
    // an invalid sparse label is a false positive of the predicted class only.
    let mut c = [0.0f32; 9];
    class_counts(2, 3, true, None, &[0.9, 0.1, 0.0, 0.9, 0.1, 0.0], &[0.0, 9.0], &mut c);
    assert_eq!(c, [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert!((Metric::MacroPrecision.value(&c, 2) - 0.5 / 3.0).abs() < 1e-6);
}

#[test]
fn auc_and_class_counts_match_cpu_on_gpu() {
    let mut r = rng(42);
    let mut b = Builder::default();
    // One element, one chunk, several chunks (2·4096 + 1), sparse multi-class, soft labels,
    // coarse values on bucket edges.
    for (rows, cols, sparse) in [(1, 1, false), (37, 6, true), (2 * ROC_CHUNK + 1, 1, false), (900, 10, true)]
    {
        let p = b.input(uniform(&mut r, rows * cols, -0.1, 1.1));
        let labels: Vec<f32> = match sparse {
            true => uniform(&mut r, rows, 0.0, cols as f32).into_iter().map(f32::floor).collect(),
            false => uniform(&mut r, rows * cols, 0.0, 1.0).into_iter().map(f32::round).collect(),
        };
        let l = b.input(labels);
        for thresholds in [200, 3, 1024] {
            let out = (rows * cols).div_ceil(ROC_CHUNK) * 2 * thresholds;
            b.op(Kernel::RocHistogram { rows, cols, sparse, thresholds }, &[p, l], out);
        }
    }
    let p = b.input((0..400).map(|i| (i % 21) as f32 / 20.0).collect());
    let soft = b.input(uniform(&mut r, 400, 0.0, 1.0));
    b.op(Kernel::RocHistogram { rows: 400, cols: 1, sparse: false, thresholds: 200 }, &[p, soft], 400);
    // Class counts: several row chunks, two class blocks (300 classes), thresholded columns.
    for (rows, cols) in [(1, 1), (5, 3), (2 * CLASS_COUNT_CHUNK + 7, 4), (300, 300)] {
        let p = b.input(uniform(&mut r, rows * cols, 0.0, 1.0));
        let sparse: Vec<f32> = uniform(&mut r, rows, 0.0, cols as f32).into_iter().map(f32::floor).collect();
        let s = b.input(sparse);
        let dense = b.input(uniform(&mut r, rows * cols, 0.0, 1.0));
        let out = rows.div_ceil(CLASS_COUNT_CHUNK) * 3 * cols;
        b.op(Kernel::ClassCounts { rows, cols, sparse: true, threshold: None }, &[p, s], out);
        b.op(Kernel::ClassCounts { rows, cols, sparse: false, threshold: None }, &[p, dense], out);
        b.op(Kernel::ClassCounts { rows, cols, sparse: false, threshold: Some(0.5) }, &[p, dense], out);
    }
    check(&b, 0.0);
}

/// Host macro precision, recall, F1 of argmax predictions (`cols` > 1) or p > 0.5.
fn host_macro(p: &Tensor, labels: &[f32], cols: usize) -> [f64; 3] {
    let mut counts = vec![[0.0f64; 3]; cols];
    for (i, &label) in labels.iter().enumerate() {
        let row = p.row(i);
        let predicted = (0..cols).fold(0, |b, j| if row[j] > row[b] { j } else { b });
        let real = label as usize;
        if predicted == real {
            counts[real][0] += 1.0;
        } else {
            counts[predicted][1] += 1.0;
            counts[real][2] += 1.0;
        }
    }
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let mut sums = [0.0; 3];
    for [tp, fp, fneg] in counts {
        let (pr, rc) = (ratio(tp, tp + fp), ratio(tp, tp + fneg));
        sums[0] += pr;
        sums[1] += rc;
        sums[2] += ratio(2.0 * pr * rc, pr + rc);
    }
    sums.map(|s| s / cols as f64)
}

#[test]
fn models_report_auc_and_macro_metrics_as_the_host_computes() {
    let mut r = rng(43);
    let (rows, cols) = (53, 5);
    let x = Tensor::new(&[rows, 4], uniform(&mut r, rows * 4, -2.0, 2.0)).expect("x");
    let labels: Vec<f32> = uniform(&mut r, rows, 0.0, cols as f32).into_iter().map(f32::floor).collect();
    let y = Tensor::new(&[rows], labels.clone()).expect("y");
    let metrics = [Metric::MacroPrecision, AUC, Metric::MacroRecall, Metric::MacroF1, Metric::Accuracy];
    for device in devices() {
        for loss in [Loss::SparseCategoricalCrossentropy, Loss::SparseCategoricalCrossentropyFromLogits] {
            let act = if loss == Loss::SparseCategoricalCrossentropy {
                Activation::Softmax
            } else {
                Activation::Linear
            };
            let mut m = dense_model(cols, act, loss, &metrics, device);
            let mut p = m.predict(&x, 16).expect("predict");
            if act == Activation::Linear {
                for i in 0..rows {
                    let row = &mut p.data[i * cols..(i + 1) * cols];
                    let max = row.iter().fold(f32::MIN, |a, &b| a.max(b));
                    let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
                    row.iter_mut().for_each(|v| *v = (*v - max).exp() / sum);
                }
            }
            let one_hot: Vec<f32> =
                (0..rows * cols).map(|e| f32::from(labels[e / cols] as usize == e % cols)).collect();
            let [pr, rc, f1] = host_macro(&p, &labels, cols);
            let logs = m.evaluate_metrics(&x, &y, 16).expect("evaluate");
            let at = format!("{device:?} {}", loss.name());
            let close = |k: &str, want: f64, tol: f64| {
                let got = f64::from(logs[k]);
                assert!((got - want).abs() < tol, "{k} on {at}: got {got}, want {want}");
            };
            close("macro_precision", pr, 1e-6);
            close("macro_recall", rc, 1e-6);
            close("macro_f1", f1, 1e-6);
            // Probabilities near a bucket edge may land on either side between the predict
            // and evaluate programs (last-bit differences): a loose bound against Keras.
            close("auc", keras_auc(&p.data, &one_hot, 200), 2e-3);
            assert!(pr > 0.0 && f1 < 1.0, "a non-trivial case on {at}");
        }
    }
}

#[test]
fn binary_models_report_auc_on_probabilities() {
    let mut r = rng(44);
    let rows = 61;
    let x = Tensor::new(&[rows, 4], uniform(&mut r, rows * 4, -2.0, 2.0)).expect("x");
    let t: Vec<f32> = uniform(&mut r, rows, 0.0, 1.0).into_iter().map(f32::round).collect();
    let y = Tensor::new(&[rows, 1], t.clone()).expect("y");
    let metrics = [AUC, Metric::MacroF1, Metric::F1];
    for device in devices() {
        for (act, loss) in [
            (Activation::Sigmoid, Loss::BinaryCrossentropy),
            (Activation::Linear, Loss::BinaryCrossentropyFromLogits),
        ] {
            let mut m = dense_model(1, act, loss, &metrics, device);
            let mut p = m.predict(&x, 16).expect("predict");
            if act == Activation::Linear {
                p.data.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp()));
            }
            let logs = m.evaluate_metrics(&x, &y, 16).expect("evaluate");
            let want = keras_auc(&p.data, &t, 200);
            let got = f64::from(logs["auc"]);
            assert!((got - want).abs() < 2e-3, "{device:?} {}: auc {got} vs {want}", loss.name());
            // One unit: the macro F1 is the binary F1 (Keras F1Score(average="macro")).
            assert!((logs["macro_f1"] - logs["f1_score"]).abs() < 1e-6);
        }
    }
}

/// Real data: an MLP on the breast-cancer set separates the classes well; AUC and macro F1
/// are reported per epoch for training and validation, and training improves them.
#[test]
fn breast_cancer_mlp_reaches_a_high_auc() {
    let d = kiln::data::builtin::breast_cancer().expect("data");
    let mut xs = d.x.clone();
    kiln::data::Scaler::fit(&xs, kiln::data::Scaling::Standardize).apply(&mut xs).expect("scale");
    let x = Tensor::new(&[d.len(), 30], xs.data).expect("x");
    let y = Tensor::new(&[d.len(), 1], d.y.clone()).expect("y");
    let mut m = Sequential::new(&[30])
        .with_seed(3)
        .add(Dense::new(16, Activation::Relu))
        .add(Dense::new(1, Activation::Sigmoid));
    let mut c = CompileOptions::new(Optimizer::adam(0.001), Loss::BinaryCrossentropy, Device::Cpu);
    c.metrics = vec![AUC, Metric::MacroF1];
    m.compile(c).expect("compile");
    let opts = FitOptions {
        batch_size: 32,
        epochs: 10,
        verbose: 0,
        validation: Validation::Split(0.2),
        ..FitOptions::default()
    };
    let h = m.fit(&x, &y, &opts).expect("fit");
    let val_auc = &h.history["val_auc"];
    assert_eq!(val_auc.len(), 10);
    let last = *val_auc.last().expect("epochs");
    assert!(last > 0.97, "validation AUC {last}");
    assert!(h.history["auc"][9] > h.history["auc"][0] - 1e-6);
    assert!(h.history["val_macro_f1"][9] > 0.9, "{:?}", h.history["val_macro_f1"]);
}
