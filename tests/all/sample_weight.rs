//! Keras `sample_weight` and `class_weight` in `fit`: the training loss (1/N) Σ_i w_i · l_i
//! (l_i a sample's loss, its mean over the outputs for the elementwise losses). Hand-computed
//! values on both devices, bitwise identities on the CPU, f64 gradient checks of the weighted
//! loss ops, GPU = CPU for every weighted kernel, the effect on real data, and the errors.
use kiln::data::{Scaler, Scaling, builtin};
use kiln::graph::Op;
use kiln::program::{Kernel, PointwiseLoss};
use kiln::{
    Activation, CompileOptions, Dense, Device, Error, FitOptions, Loss, Model, Optimizer, Sequential, Tensor,
};

use crate::common::{devices, rng, uniform};
use crate::gpu_parity::{Builder, check};
use crate::gradcheck::{Fill, check_graph, op, rand_in};

/// Dense(units, act) on 4 inputs with a zero kernel and `bias`: every prediction is act(bias).
fn constant_model(units: usize, act: Activation, loss: Loss, bias: &[f32], device: Device) -> Sequential {
    let mut m = Sequential::new(&[4]).with_seed(1).add(Dense::new(units, act));
    let mut c = CompileOptions::new(Optimizer::sgd(0.1), loss, device);
    c.metrics.clear();
    m.compile(c).expect("compile");
    let weights = vec![
        ("dense.kernel".to_string(), Tensor::zeros(&[4, units])),
        ("dense.bias".to_string(), Tensor::new(&[units], bias.to_vec()).expect("bias")),
    ];
    m.set_weights(&weights).expect("set_weights");
    m
}

/// The loss the first (and only) training step reports: one batch of all n samples.
fn first_step_loss(
    m: &mut Model,
    y: &Tensor,
    sample_weight: Option<Vec<f32>>,
    class_weight: Option<Vec<f32>>,
) -> f64 {
    let n = y.rows();
    let x = Tensor::new(&[n, 4], uniform(&mut rng(3), n * 4, -1.0, 1.0)).expect("x");
    let opts = FitOptions {
        batch_size: n,
        epochs: 1,
        verbose: 0,
        shuffle: false,
        sample_weight: sample_weight.map(|w| Tensor::new(&[n], w).expect("w")),
        class_weight,
        ..FitOptions::default()
    };
    f64::from(m.fit(&x, y, &opts).expect("fit").history["loss"][0])
}

fn close(what: &str, got: f64, want: f64) {
    assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()), "{what}: got {got}, want {want}");
}

#[test]
fn weighted_losses_have_the_hand_computed_values_on_every_device() {
    let ln2 = 2f64.ln();
    // -ln of 3/4 and of 1/4: a sigmoid unit at 0.75 for labels 1 and 0.
    let (l1, l0) = (-(0.75f64.ln()), -(0.25f64.ln()));
    for device in devices() {
        let d = format!("{device:?}");
        // Sparse CE, softmax at [1/4, 1/2, 1/4]: l = ln 4, ln 2, ln 4, ln 2.
        let y = Tensor::new(&[4], vec![0.0, 1.0, 2.0, 1.0]).expect("y");
        let sparse = Loss::SparseCategoricalCrossentropy;
        let mut m = constant_model(3, Activation::Softmax, sparse, &[0.0, ln2 as f32, 0.0], device);
        let got = first_step_loss(&mut m, &y, Some(vec![1.0, 2.0, 0.5, 0.0]), None);
        close(&format!("sparse CE, sample_weight, {d}"), got, (2.0 * ln2 + 2.0 * ln2 + ln2) / 4.0);
        let mut m = constant_model(3, Activation::Softmax, sparse, &[0.0, ln2 as f32, 0.0], device);
        let got = first_step_loss(&mut m, &y, None, Some(vec![2.0, 1.0, 3.0]));
        close(&format!("sparse CE, class_weight, {d}"), got, (4.0 * ln2 + ln2 + 6.0 * ln2 + ln2) / 4.0);

        // Binary CE, one unit at 0.75: fused on the sigmoid's logits, and on probabilities.
        let y = Tensor::new(&[4, 1], vec![1.0, 0.0, 1.0, 0.0]).expect("y");
        let w = vec![1.0, 2.0, 0.5, 0.0];
        let want = (1.5 * l1 + 2.0 * l0) / 4.0;
        let bce = Loss::BinaryCrossentropy;
        let mut m = constant_model(1, Activation::Sigmoid, bce, &[3f32.ln()], device);
        close(&format!("fused BCE, {d}"), first_step_loss(&mut m, &y, Some(w.clone()), None), want);
        let mut m = constant_model(1, Activation::Linear, bce, &[0.75], device);
        close(&format!("BCE on probabilities, {d}"), first_step_loss(&mut m, &y, Some(w), None), want);
        // class_weight {0: 3, 1: 0.5}: w = 0.5, 3, 0.5, 3.
        let mut m = constant_model(1, Activation::Sigmoid, bce, &[3f32.ln()], device);
        let got = first_step_loss(&mut m, &y, None, Some(vec![3.0, 0.5]));
        close(&format!("fused BCE, class_weight, {d}"), got, (l1 + 6.0 * l0) / 4.0);

        // Binary CE over two sigmoid units at [0.75, 0.5]: l_i is the mean over the units.
        let y = Tensor::new(&[2, 2], vec![1.0, 0.0, 0.0, 1.0]).expect("y");
        let half = 2f64.ln();
        let rows = [(l1 + half) / 2.0, (l0 + half) / 2.0];
        let mut m = constant_model(2, Activation::Sigmoid, bce, &[3f32.ln(), 0.0], device);
        let got = first_step_loss(&mut m, &y, Some(vec![2.0, 1.0]), None);
        close(&format!("BCE, two units, {d}"), got, (2.0 * rows[0] + rows[1]) / 2.0);

        // MSE, outputs [1, 2]: row means 2.5, 0.5, 6.5 weighted 1, 3, 0.5.
        let y = Tensor::new(&[3, 2], vec![0.0, 0.0, 1.0, 1.0, 3.0, 5.0]).expect("y");
        let mut m = constant_model(2, Activation::Linear, Loss::MeanSquaredError, &[1.0, 2.0], device);
        let got = first_step_loss(&mut m, &y, Some(vec![1.0, 3.0, 0.5]), None);
        close(&format!("MSE, {d}"), got, (2.5 + 1.5 + 3.25) / 3.0);
    }
}

/// Three separable-ish classes of 4 features, 50 samples.
fn three_classes() -> (Tensor, Tensor) {
    let mut r = rng(41);
    let x = uniform(&mut r, 200, -1.0, 1.0);
    let y: Vec<f32> = x
        .chunks(4)
        .map(|s| {
            if s[0] + s[1] > 0.5 {
                2.0
            } else if s[2] > 0.0 {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    (Tensor::new(&[50, 4], x).expect("x"), Tensor::new(&[50], y).expect("y"))
}

/// Train a fresh 4-16-3 model (Adam, shuffled batches of 16 with a partial last batch, 3
/// epochs, 10% validation) with `opts`'s weights; its weights and history.
fn train_three_classes(
    device: Device,
    sample_weight: Option<Tensor>,
    class_weight: Option<Vec<f32>>,
) -> (Vec<(String, Tensor)>, kiln::History) {
    let (x, y) = three_classes();
    let mut m = Sequential::new(&[4])
        .with_seed(7)
        .add(Dense::new(16, Activation::Relu))
        .add(Dense::new(3, Activation::Softmax));
    m.compile(CompileOptions::new(Optimizer::adam(1e-2), Loss::SparseCategoricalCrossentropy, device))
        .expect("compile");
    let opts = FitOptions {
        batch_size: 16,
        epochs: 3,
        verbose: 0,
        validation: kiln::Validation::Split(0.1),
        sample_weight,
        class_weight,
        ..FitOptions::default()
    };
    let h = m.fit(&x, &y, &opts).expect("fit");
    (m.get_weights().expect("weights"), h)
}

#[test]
fn unit_weights_train_bitwise_as_no_weights_on_cpu() {
    let plain = train_three_classes(Device::Cpu, None, None);
    let ones = train_three_classes(Device::Cpu, Some(Tensor::new(&[50], vec![1.0; 50]).expect("w")), None);
    assert_eq!(plain.0, ones.0, "weights after training");
    assert_eq!(plain.1.history, ones.1.history);
    let ones = train_three_classes(Device::Cpu, None, Some(vec![1.0; 3]));
    assert_eq!(plain.0, ones.0, "weights after training with class_weight all 1");
}

#[test]
fn class_weight_trains_bitwise_as_the_same_sample_weights_on_cpu() {
    let class_weight = vec![0.5, 3.0, 1.25];
    let (_, y) = three_classes();
    let per_sample: Vec<f32> = y.data.iter().map(|&c| class_weight[c as usize]).collect();
    let by_class = train_three_classes(Device::Cpu, None, Some(class_weight));
    let by_sample =
        train_three_classes(Device::Cpu, Some(Tensor::new(&[50, 1], per_sample).expect("w")), None);
    assert_eq!(by_class.0, by_sample.0);
    assert_eq!(by_class.1.history, by_sample.1.history);
    // And the weights matter: an unweighted run ends elsewhere.
    let plain = train_three_classes(Device::Cpu, None, None);
    assert_ne!(plain.0, by_class.0);
}

#[test]
fn validation_loss_is_unweighted() {
    // Learning rate 0: the model stays at softmax [1/4, 1/2, 1/4], so val_loss is the plain
    // mean of ln 4, ln 2, ln 4, ln 2 while the training loss is weighted.
    let ln2 = 2f64.ln();
    let y = Tensor::new(&[4], vec![0.0, 1.0, 2.0, 1.0]).expect("y");
    let x = Tensor::zeros(&[4, 4]);
    let mut m = Sequential::new(&[4]).add(Dense::new(3, Activation::Softmax));
    m.compile(CompileOptions::new(Optimizer::sgd(0.0), Loss::SparseCategoricalCrossentropy, Device::Cpu))
        .expect("compile");
    let bias = Tensor::new(&[3], vec![0.0, ln2 as f32, 0.0]).expect("bias");
    m.set_weights(&[("dense.kernel".into(), Tensor::zeros(&[4, 3])), ("dense.bias".into(), bias)])
        .expect("set");
    let opts = FitOptions {
        batch_size: 4,
        verbose: 0,
        validation: kiln::Validation::Data(x.clone(), y.clone()),
        class_weight: Some(vec![2.0, 1.0, 3.0]),
        ..FitOptions::default()
    };
    let h = m.fit(&x, &y, &opts).expect("fit");
    close("weighted training loss", f64::from(h.history["loss"][0]), 3.0 * ln2);
    close("unweighted val_loss", f64::from(h.history["val_loss"][0]), 1.5 * ln2);
}

#[test]
fn weighted_training_matches_between_gpu_and_cpu() {
    let Some(gpu) = devices().into_iter().find(|d| *d != Device::Cpu) else { return };
    let class_weight = Some(vec![0.5, 3.0, 1.25]);
    let (cpu_w, cpu_h) = train_three_classes(Device::Cpu, None, class_weight.clone());
    let (gpu_w, gpu_h) = train_three_classes(gpu, None, class_weight);
    for ((name, c), (_, g)) in cpu_w.iter().zip(&gpu_w) {
        crate::gpu_parity::assert_close(name, &g.data, &c.data, 1e-4);
    }
    crate::gpu_parity::assert_close("loss", &gpu_h.history["loss"], &cpu_h.history["loss"], 1e-4);
}

// ---- the weighted loss ops: f64 gradient checks and GPU = CPU ----

/// Fixed per-sample weights for `rows` samples, zeros and non-integers among them.
fn weights(rows: usize) -> (Vec<usize>, Fill, bool) {
    let w: Vec<f64> = (0..rows).map(|i| [1.0, 2.5, 0.0, 0.3][i % 4]).collect();
    (vec![rows], Fill::Fixed(w), false)
}

#[test]
fn weighted_loss_gradients_match_finite_differences() {
    let (rows, cols) = (4, 3);
    let sparse = (vec![rows], Fill::Fixed(vec![2.0, 0.0, 1.0, 2.0]), false);
    let one_hot: Vec<f64> = (0..rows * cols).map(|e| f64::from(u8::from(e % 4 == 1))).collect();
    let dense = (vec![rows, cols], Fill::Fixed(one_hot), false);
    let targets = (vec![rows, cols], Fill::Fixed((0..12).map(|i| (i as f64 * 0.37).sin()).collect()), false);
    let soft = (vec![rows, cols], Fill::Fixed((0..12).map(|i| (i % 5) as f64 / 4.0).collect()), false);
    let w = weights(rows);
    let sce = |sparse| {
        move |g: &mut kiln::graph::Graph, x: &[usize]| {
            op(g, Op::SoftmaxCrossEntropy { sparse, weighted: true }, x)
        }
    };
    check_graph("weighted sparse CE", &[rand_in(&[rows, cols]), sparse, w.clone()], &sce(true));
    check_graph("weighted CE", &[rand_in(&[rows, cols]), dense, w.clone()], &sce(false));
    check_graph("weighted MSE", &[rand_in(&[rows, cols]), targets.clone(), w.clone()], &|g, x| {
        op(g, Op::MeanSquaredError { weighted: true }, x)
    });
    check_graph("weighted sigmoid BCE", &[rand_in(&[rows, cols]), soft, w.clone()], &|g, x| {
        op(g, Op::SigmoidBinaryCrossEntropy { weighted: true }, x)
    });
    for loss in [PointwiseLoss::AbsoluteError, PointwiseLoss::Huber { delta: 1.0 }] {
        check_graph(
            &format!("weighted {loss:?}"),
            &[rand_in(&[rows, cols]), targets.clone(), w.clone()],
            &|g, x| op(g, Op::Pointwise { loss, weighted: true }, x),
        );
    }
    // BCE on probabilities inside the clip.
    let p = (vec![rows, 1], Fill::Fixed(vec![0.1, 0.7, 0.35, 0.9]), true);
    let t = (vec![rows, 1], Fill::Fixed(vec![1.0, 0.0, 0.3, 1.0]), false);
    let bce = PointwiseLoss::BinaryCrossEntropy { eps: kiln::loss::EPSILON };
    check_graph("weighted BCE on probabilities", &[p, t, w], &|g, x| {
        op(g, Op::Pointwise { loss: bce, weighted: true }, x)
    });
}

#[test]
fn weighted_loss_kernels_match_cpu_on_gpu() {
    let mut r = rng(17);
    let mut b = Builder::default();
    for (rows, cols) in [(1, 1), (33, 3), (600, 7)] {
        let len = rows * cols;
        let z = b.input(uniform(&mut r, len, -4.0, 4.0));
        let classes: Vec<f32> = (0..rows).map(|i| (i % cols) as f32).collect();
        let labels = b.input(classes);
        let one_hot: Vec<f32> =
            (0..len).map(|e| f32::from(u8::from(e % cols == (e / cols) % cols))).collect();
        let one_hot = b.input(one_hot);
        let t = b.input(uniform(&mut r, len, 0.0, 1.0));
        let q = b.input(uniform(&mut r, len, -0.2, 1.2));
        let w = b.input(uniform(&mut r, rows, 0.0, 3.0));
        let dloss = b.input(vec![1.3]);
        for (sparse, l) in [(true, labels), (false, one_hot)] {
            let weighted = true;
            b.op(Kernel::SoftmaxCrossEntropy { rows, cols, sparse, weighted }, &[z, l, w], 1);
            b.op(Kernel::SoftmaxCrossEntropyGrad { rows, cols, sparse, weighted }, &[z, l, w, dloss], len);
        }
        b.op(Kernel::MeanSquaredError { len, rows, weighted: true }, &[z, t, w], 1);
        b.op(Kernel::MeanSquaredErrorGrad { len, rows, weighted: true }, &[z, t, w, dloss], len);
        b.op(Kernel::SigmoidBinaryCrossEntropy { len, rows, weighted: true }, &[z, t, w], 1);
        b.op(Kernel::SigmoidBinaryCrossEntropyGrad { len, rows, weighted: true }, &[z, t, w, dloss], len);
        let bce = PointwiseLoss::BinaryCrossEntropy { eps: kiln::loss::EPSILON };
        for (loss, p) in
            [(PointwiseLoss::AbsoluteError, z), (PointwiseLoss::Huber { delta: 1.0 }, z), (bce, q)]
        {
            b.op(Kernel::Pointwise { loss, len, rows, weighted: true }, &[p, t, w], 1);
            b.op(Kernel::PointwiseGrad { loss, len, rows, weighted: true }, &[p, t, w, dloss], len);
        }
    }
    check(&b, 1e-4);
}

// ---- the effect on real data ----

/// Recall of the malignant class (label 0) on the test split after training a logistic
/// regression on a training split where malignant samples were made rare (1 in 8 kept).
fn malignant_recall(class_weight: Option<Vec<f32>>) -> f32 {
    let cancer = builtin::breast_cancer().expect("breast cancer");
    let (train, test) = cancer.stratified_split(0.3, 0).expect("split");
    let keep: Vec<usize> = (0..train.len()).filter(|&i| train.y[i] != 0.0 || i % 8 == 0).collect();
    let mut train = train.subset(&keep);
    let mut test = test;
    let scaler = Scaler::fit(&train.x, Scaling::Standardize);
    scaler.apply(&mut train.x).expect("scale");
    scaler.apply(&mut test.x).expect("scale");
    let labels = |d: &kiln::data::Dataset| Tensor::new(&[d.len(), 1], d.y.clone()).expect("y");
    let mut m = Sequential::new(&[30]).with_seed(0).add(Dense::new(1, Activation::Sigmoid));
    m.compile(CompileOptions::new(Optimizer::sgd(0.01), Loss::BinaryCrossentropy, Device::Cpu))
        .expect("compile");
    let opts = FitOptions { batch_size: 32, epochs: 5, verbose: 0, class_weight, ..FitOptions::default() };
    m.fit(&train.x, &labels(&train), &opts).expect("fit");
    let p = m.predict(&test.x, 256).expect("predict");
    let malignant: Vec<usize> = (0..test.len()).filter(|&i| test.y[i] == 0.0).collect();
    let found = malignant.iter().filter(|&&i| p.data[i] <= 0.5).count();
    found as f32 / malignant.len() as f32
}

#[test]
fn class_weight_raises_the_recall_of_a_rare_class_on_breast_cancer() {
    let plain = malignant_recall(None);
    let weighted = malignant_recall(Some(vec![8.0, 1.0]));
    assert!(weighted >= plain + 0.2, "malignant recall: {plain} unweighted, {weighted} with class_weight");
}

// ---- errors ----

fn fit_error(
    loss: Loss,
    units: usize,
    y: Tensor,
    sample_weight: Option<Tensor>,
    class_weight: Option<Vec<f32>>,
) -> Error {
    let act = match loss {
        Loss::SparseCategoricalCrossentropy => Activation::Softmax,
        Loss::BinaryCrossentropy => Activation::Sigmoid,
        _ => Activation::Linear,
    };
    let mut m = constant_model(units, act, loss, &vec![0.0; units], Device::Cpu);
    let x = Tensor::zeros(&[y.rows(), 4]);
    let opts = FitOptions { verbose: 0, sample_weight, class_weight, ..FitOptions::default() };
    m.fit(&x, &y, &opts).expect_err("fit must refuse these weights")
}

#[test]
fn bad_weights_are_errors_that_say_what_is_wrong() {
    let sparse = Loss::SparseCategoricalCrossentropy;
    let y = || Tensor::new(&[4], vec![0.0, 1.0, 2.0, 1.0]).expect("y");
    let w = |v: Vec<f32>| Some(Tensor::new(&[v.len()], v).expect("w"));
    let msg = |e: Error| e.to_string();

    let e = msg(fit_error(sparse, 3, y(), w(vec![1.0; 3]), None));
    assert!(e.contains("sample_weight") && e.contains("[4]") && e.contains("[3]"), "{e}");
    let e = msg(fit_error(sparse, 3, y(), w(vec![1.0, -0.5, 1.0, 1.0]), None));
    assert!(e.contains("sample_weight") && e.contains("sample 1") && e.contains("-0.5"), "{e}");
    let e = msg(fit_error(sparse, 3, y(), w(vec![1.0, 1.0, f32::NAN, 1.0]), None));
    assert!(e.contains("sample 2") && e.contains("NaN"), "{e}");
    let e = msg(fit_error(sparse, 3, y(), w(vec![1.0; 4]), Some(vec![1.0; 3])));
    assert!(e.contains("not both"), "{e}");
    let e = msg(fit_error(sparse, 3, y(), None, Some(vec![1.0, 2.0])));
    assert!(e.contains("class_weight") && e.contains("class 2"), "{e}");
    let e = msg(fit_error(sparse, 3, y(), None, Some(vec![1.0, f32::INFINITY, 1.0])));
    assert!(e.contains("class_weight") && e.contains("class 1") && e.contains("inf"), "{e}");
    let y2 = Tensor::new(&[4, 2], vec![0.0; 8]).expect("y");
    let e = msg(fit_error(Loss::MeanSquaredError, 2, y2, None, Some(vec![1.0, 1.0])));
    assert!(e.contains("class_weight") && e.contains("regression") && e.contains("mse"), "{e}");
    // Binary cross-entropy: classes 0 and 1 of one sigmoid unit.
    let yb = Tensor::new(&[4, 2], vec![0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0]).expect("y");
    let e = msg(fit_error(Loss::BinaryCrossentropy, 2, yb, None, Some(vec![1.0, 1.0])));
    assert!(e.contains("one sigmoid output unit"), "{e}");
    // A class only in the validation split needs no weight (validation is unweighted).
    let y4 = Tensor::new(&[4], vec![0.0, 1.0, 1.0, 2.0]).expect("y");
    let mut m = constant_model(3, Activation::Softmax, sparse, &[0.0; 3], Device::Cpu);
    let opts = FitOptions {
        verbose: 0,
        validation: kiln::Validation::Split(0.25),
        class_weight: Some(vec![1.0, 2.0]),
        ..FitOptions::default()
    };
    m.fit(&Tensor::zeros(&[4, 4]), &y4, &opts).expect("class 2 only in the validation split");
    // Regression losses take sample weights.
    let y3 = Tensor::new(&[4, 2], vec![0.0; 8]).expect("y");
    let mut m = constant_model(2, Activation::Linear, Loss::MeanSquaredError, &[0.0, 0.0], Device::Cpu);
    let opts = FitOptions { verbose: 0, sample_weight: w(vec![1.0, 2.0, 0.0, 1.0]), ..FitOptions::default() };
    m.fit(&Tensor::zeros(&[4, 4]), &y3, &opts).expect("sample_weight with mse");
}

// ---- kiln train --class-weight ----

fn cli_args(class_weight: Option<&str>, epochs: usize) -> kiln::cli::TrainArgs {
    kiln::cli::TrainArgs {
        data: Some("breast-cancer".into()),
        device: "cpu".into(),
        epochs,
        lr: Some(0.01),
        json: true,
        class_weight: class_weight.map(str::to_string),
        ..kiln::cli::TrainArgs::default()
    }
}

#[test]
fn cli_class_weight_trains_with_the_weights_and_resume_keeps_them() {
    use kiln::cli::train;
    let plain = train(&cli_args(None, 3)).expect("train");
    let ones = train(&cli_args(Some("0:1,1:1"), 3)).expect("train with unit weights");
    assert_eq!(plain.test_loss, ones.test_loss, "unit class weights change nothing");
    let heavy = train(&cli_args(Some("0:5"), 3)).expect("train with class 0 ×5");
    assert_ne!(plain.test_loss, heavy.test_loss);
    let balanced = train(&cli_args(Some("balanced"), 3)).expect("train balanced");
    assert!(balanced.test_accuracy > 0.9, "{}", balanced.test_accuracy);

    // Two epochs, then --resume to four: the same as four epochs in one go, class weights kept.
    let dir = crate::common::TempDir::new("sample-weight-resume");
    let whole = train(&kiln::cli::TrainArgs { out: Some(dir.0.join("whole")), ..cli_args(Some("0:5"), 4) })
        .expect("whole run");
    let part = dir.0.join("part");
    train(&kiln::cli::TrainArgs { out: Some(part.clone()), ..cli_args(Some("0:5"), 2) }).expect("first half");
    let resumed =
        kiln::cli::TrainArgs { resume: Some(part), epochs: 4, epochs_given: true, ..cli_args(None, 4) };
    let resumed = train(&resumed).expect("resumed run");
    assert_eq!(resumed.test_loss, whole.test_loss, "a resumed run keeps --class-weight");
}

#[test]
fn cli_class_weight_errors_name_the_flag() {
    let err = |spec: &str, loss: Option<&str>| {
        let args = kiln::cli::TrainArgs { loss: loss.map(str::to_string), ..cli_args(Some(spec), 1) };
        kiln::cli::train(&args).expect_err("bad --class-weight").to_string()
    };
    for (spec, says) in [
        ("2:1", "class 2 is outside 0..2"),
        ("0:x", "not a number"),
        ("0:1,0:2", "twice"),
        ("1:-1", "at least 0"),
        ("1", "no ':'"),
    ] {
        let e = err(spec, None);
        assert!(e.contains("--class-weight") && e.contains(says), "{spec}: {e}");
    }
    let e = err("balanced", Some("mse"));
    assert!(e.contains("--class-weight") && e.contains("mse"), "{e}");
}

/// `evaluate_weighted`: the loss is (1/N) Σ w_i · l_i with l_i each sample's own loss
/// (evaluated one sample at a time), the metrics unweighted; weights of 1 give the bits of
/// `evaluate_metrics` (CPU); on both devices, with a partial last batch.
#[test]
fn evaluate_weighted_weighs_the_loss_and_not_the_metrics() {
    let (x, y) = three_classes();
    let n = x.rows();
    let w: Vec<f32> = (0..n).map(|i| (i % 4) as f32 * 0.5).collect();
    for device in devices() {
        let mut m = Sequential::new(&[4]).with_seed(2).add(Dense::new(3, Activation::Softmax));
        m.compile(CompileOptions::new(Optimizer::sgd(0.1), Loss::SparseCategoricalCrossentropy, device))
            .expect("compile");
        let per_sample: Vec<f64> = (0..n)
            .map(|i| {
                let xi = Tensor::new(&[1, 4], x.row(i).to_vec()).expect("x_i");
                let yi = Tensor::new(&[1], vec![y.data[i]]).expect("y_i");
                f64::from(m.evaluate(&xi, &yi, 1).expect("one sample").0)
            })
            .collect();
        let want = per_sample.iter().zip(&w).map(|(l, &wi)| l * f64::from(wi)).sum::<f64>() / n as f64;
        let wt = Tensor::new(&[n], w.clone()).expect("w");
        let logs = m.evaluate_weighted(&x, &y, &wt, 16).expect("weighted");
        close(&format!("weighted evaluate loss on {device:?}"), f64::from(logs["loss"]), want);
        let plain = m.evaluate_metrics(&x, &y, 16).expect("plain");
        assert_eq!(logs["accuracy"], plain["accuracy"], "metrics are unweighted");
        assert_ne!(logs["loss"], plain["loss"]);
        if device == Device::Cpu {
            let ones = Tensor::new(&[n, 1], vec![1.0; n]).expect("ones");
            assert_eq!(m.evaluate_weighted(&x, &y, &ones, 16).expect("ones"), plain, "weights of 1");
        }
        let bad = Tensor::new(&[n - 1], vec![1.0; n - 1]).expect("short");
        assert!(matches!(m.evaluate_weighted(&x, &y, &bad, 16), Err(Error::Shape { .. })));
    }
}

/// `Validation::WeightedData` weighs the validation loss (Keras's 3-tuple validation_data):
/// the epoch's val_loss is `evaluate_weighted` on the validation set after that epoch (the
/// same bits on the CPU), val_accuracy the unweighted accuracy.
#[test]
fn weighted_validation_data_weighs_the_validation_loss() {
    let (x, y) = three_classes();
    let (n, v) = (40, 10);
    let rows = |t: &Tensor, r: std::ops::Range<usize>| {
        let w = t.row_len();
        let shape: Vec<usize> = std::iter::once(r.len()).chain(t.shape[1..].iter().copied()).collect();
        Tensor::new(&shape, t.data[r.start * w..r.end * w].to_vec()).expect("rows")
    };
    let (tx, ty, vx, vy) = (rows(&x, 0..n), rows(&y, 0..n), rows(&x, n..n + v), rows(&y, n..n + v));
    let vw = Tensor::new(&[v], (0..v).map(|i| 0.25 + i as f32 * 0.5).collect()).expect("vw");
    let mut m = Sequential::new(&[4]).with_seed(4).add(Dense::new(3, Activation::Softmax));
    m.compile(CompileOptions::new(Optimizer::adam(0.01), Loss::SparseCategoricalCrossentropy, Device::Cpu))
        .expect("compile");
    let opts = FitOptions {
        batch_size: 16,
        epochs: 1,
        verbose: 0,
        validation: kiln::Validation::WeightedData(vx.clone(), vy.clone(), vw.clone()),
        ..FitOptions::default()
    };
    let h = m.fit(&tx, &ty, &opts).expect("fit");
    let weighted = m.evaluate_weighted(&vx, &vy, &vw, 16).expect("weighted");
    let plain = m.evaluate_metrics(&vx, &vy, 16).expect("plain");
    assert_eq!(h.history["val_loss"][0], weighted["loss"]);
    assert_ne!(h.history["val_loss"][0], plain["loss"]);
    assert_eq!(h.history["val_accuracy"][0], plain["accuracy"]);
    let short = kiln::Validation::WeightedData(vx, vy, Tensor::new(&[3], vec![1.0; 3]).expect("w"));
    assert!(m.fit(&tx, &ty, &FitOptions { validation: short, ..opts }).is_err());
}
