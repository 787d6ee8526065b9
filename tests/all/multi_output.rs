//! Models of several outputs (Keras's `loss=[…]`, `loss_weights`, per-output metrics): the
//! training loss is Σ weight · loss over the outputs (checked by hand and by f64 finite
//! differences), History keys as Keras writes them, GPU = CPU for a two-output training step,
//! checkpoints, and the errors a user meets.
use kiln::graph::{Graph, NodeId};
use kiln::model::{CallLayer, Input, Model, OutputOptions};
use kiln::{
    Activation, CompileOptions, Dense, Device, FitOptions, Loss, Metric, Optimizer, Tensor, Validation,
};

use crate::common;
use crate::gradcheck::{Fill, TestInput, check_graph};

fn dense(units: usize, act: Activation) -> Dense {
    Dense::new(units, act)
}

/// x → Dense(32, relu), then two heads on it: the digit class (`dense_1`, softmax) and the
/// image's mean ink (`dense_2`, linear).
fn two_heads(units: usize) -> Model {
    let x = Input::new(&[64]);
    let h = dense(units, Activation::Relu).call(&x).unwrap();
    let class = dense(10, Activation::Softmax).call(&h).unwrap();
    let ink = dense(1, Activation::Linear).call(&h).unwrap();
    Model::new(&[x], &[class, ink]).unwrap().with_seed(5)
}

/// The class (sparse cross-entropy, accuracy) and ink (MSE with weight 0.5, MAE) heads.
fn head_options() -> Vec<OutputOptions> {
    vec![
        OutputOptions::new(Loss::SparseCategoricalCrossentropy).metrics(&[Metric::Accuracy]),
        OutputOptions::new(Loss::MeanSquaredError).weight(0.5).metrics(&[Metric::MeanAbsoluteError]),
    ]
}

fn compiled(device: Device, optimizer: Optimizer) -> Model {
    let mut m = two_heads(32);
    // `loss` is unused when every output has its own.
    let opts = CompileOptions::new(optimizer, Loss::MeanSquaredError, device).with_outputs(head_options());
    m.compile(opts).unwrap();
    m
}

/// Digits (standardised pixels), their classes, and each image's mean ink standardised over
/// the data set: a second, real target of the same images.
fn digits_and_ink() -> (Tensor, Tensor, Tensor) {
    let (x, y) = common::digits();
    let raw = kiln::data::builtin::digits().unwrap().x;
    let ink: Vec<f32> = raw.data.chunks(64).map(|p| p.iter().sum::<f32>() / 64.0).collect();
    let n = ink.len() as f32;
    let mean = ink.iter().sum::<f32>() / n;
    let sd = (ink.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n).sqrt();
    let ink = Tensor::new(&[ink.len(), 1], ink.iter().map(|v| (v - mean) / sd).collect()).unwrap();
    (x, y, ink)
}

#[test]
fn two_weighted_losses_have_the_gradient_of_finite_differences() {
    let model = two_heads(4);
    // Categorical cross-entropy on one-hot labels (fused with the softmax: logits) and MSE.
    let opts =
        CompileOptions::new(Optimizer::sgd(0.1), Loss::MeanSquaredError, Device::Cpu).with_outputs(vec![
            OutputOptions::new(Loss::CategoricalCrossentropy).weight(0.7),
            OutputOptions::new(Loss::MeanSquaredError).weight(1.9),
        ]);
    let batch = 3;
    let one_hot: Vec<f64> = (0..batch * 10).map(|i| f64::from(i % 10 == (i / 10) * 3 % 10)).collect();
    let mut inputs: Vec<TestInput> = vec![
        (vec![batch, 64], Fill::AwayFromZero(0.05), true),
        (vec![batch, 10], Fill::Fixed(one_hot), false),
        (vec![batch, 1], Fill::Random, false),
    ];
    for (_, shape) in model.parameter_shapes().unwrap() {
        inputs.push((shape, Fill::AwayFromZero(0.05), true));
    }
    check_graph("two outputs, weighted", &inputs, &|g: &mut Graph, n: &[NodeId]| {
        model.training_loss_on(g, &n[..1], &n[1..3], &n[3..], &opts).unwrap()
    });
}

/// Mean sparse cross-entropy of probabilities `p` [n, k] and mean squared error of `q` [n, 1].
fn losses_by_hand(p: &Tensor, y: &Tensor, q: &Tensor, t: &Tensor) -> (f64, f64) {
    let k = p.row_len();
    let n = y.len() as f64;
    let ce = p
        .data
        .chunks(k)
        .zip(&y.data)
        .map(|(row, &c)| -f64::from(row[c as usize].max(1e-7)).ln())
        .sum::<f64>();
    let se = q.data.iter().zip(&t.data).map(|(a, b)| f64::from(a - b).powi(2)).sum::<f64>();
    (ce / n, se / n)
}

#[test]
fn a_two_output_model_learns_both_targets_and_reports_keras_keys() {
    let (x, y, ink) = digits_and_ink();
    let mut m = compiled(Device::Cpu, Optimizer::adam(3e-3));
    assert_eq!(m.output_names(), ["dense_1", "dense_2"]);
    let opts = FitOptions {
        batch_size: 32,
        epochs: 10,
        verbose: 0,
        validation: Validation::Split(0.2),
        ..Default::default()
    };
    let h = m.fit(&x, [&y, &ink], &opts).unwrap();
    let mut keys: Vec<&str> = h.history.keys().map(String::as_str).collect();
    keys.sort();
    let want = [
        "dense_1_accuracy",
        "dense_1_loss",
        "dense_2_loss",
        "dense_2_mae",
        "loss",
        "val_dense_1_accuracy",
        "val_dense_1_loss",
        "val_dense_2_loss",
        "val_dense_2_mae",
        "val_loss",
    ];
    assert_eq!(keys, want);
    // Both heads learned: a digit classifier and an ink regressor far below the variance (1).
    let acc = h.last("val_dense_1_accuracy").unwrap();
    let mse = h.last("val_dense_2_loss").unwrap();
    assert!(acc > 0.85, "validation accuracy {acc}");
    assert!(mse < 0.1, "validation ink MSE {mse}");
    // Every epoch's loss is the weighted sum of the outputs' (no regularization here).
    for (e, total) in h.history["loss"].iter().enumerate() {
        let sum = h.history["dense_1_loss"][e] + 0.5 * h.history["dense_2_loss"][e];
        assert!((total - sum).abs() <= 1e-5 * total.abs().max(1.0), "epoch {e}: {total} vs {sum}");
    }
    // evaluate's per-output losses and metrics are the formulas on predict_outputs' values.
    let logs = m.evaluate_metrics(&x, [&y, &ink], 97).unwrap();
    let outputs = m.predict_outputs(&x, 128).unwrap();
    assert_eq!(outputs.len(), 2);
    assert_eq!(outputs[0].shape, [x.rows(), 10]);
    assert_eq!(outputs[1].shape, [x.rows(), 1]);
    let (ce, mse) = losses_by_hand(&outputs[0], &y, &outputs[1], &ink);
    let close = |got: f32, want: f64| (f64::from(got) - want).abs() < 1e-4 * want.max(1.0);
    assert!(close(logs["dense_1_loss"], ce), "{} vs {ce}", logs["dense_1_loss"]);
    assert!(close(logs["dense_2_loss"], mse), "{} vs {mse}", logs["dense_2_loss"]);
    assert!(close(logs["loss"], ce + 0.5 * mse), "{} vs {}", logs["loss"], ce + 0.5 * mse);
    let mae = outputs[1].data.iter().zip(&ink.data).map(|(a, b)| f64::from((a - b).abs())).sum::<f64>()
        / x.rows() as f64;
    assert!(close(logs["dense_2_mae"], mae), "{} vs {mae}", logs["dense_2_mae"]);
    // Sample weights weigh every output's loss (here: all 2, so every loss doubles).
    let twos = Tensor::new(&[x.rows()], vec![2.0; x.rows()]).unwrap();
    let weighted = m.evaluate_weighted(&x, [&y, &ink], &twos, 97).unwrap();
    for key in ["loss", "dense_1_loss", "dense_2_loss"] {
        assert!((weighted[key] - 2.0 * logs[key]).abs() < 1e-5 * logs[key].max(1.0), "{key}");
    }
    assert_eq!(weighted["dense_1_accuracy"], logs["dense_1_accuracy"], "metrics are unweighted");
}

#[test]
fn one_output_given_as_a_list_trains_to_the_same_bits() {
    let (x, y) = common::digits();
    let make = |with_list: bool| {
        let input = Input::new(&[64]);
        let h = dense(16, Activation::Tanh).call(&input).unwrap();
        let out = dense(10, Activation::Softmax).call(&h).unwrap();
        let mut m = Model::new(&[input], &[out]).unwrap().with_seed(3);
        let loss = Loss::SparseCategoricalCrossentropy;
        let mut opts = CompileOptions::new(Optimizer::adam(1e-2), loss, Device::Cpu);
        if with_list {
            opts = CompileOptions::new(Optimizer::adam(1e-2), Loss::MeanSquaredError, Device::Cpu)
                .with_outputs(vec![OutputOptions::new(loss).metrics(&[Metric::Accuracy])]);
        }
        m.compile(opts).unwrap();
        m
    };
    let opts = FitOptions { batch_size: 64, epochs: 2, verbose: 0, ..Default::default() };
    let (mut a, mut b) = (make(false), make(true));
    let (ha, hb) = (a.fit(&x, &y, &opts).unwrap(), b.fit(&x, &y, &opts).unwrap());
    assert_eq!(ha.history, hb.history);
    assert_eq!(a.get_weights().unwrap(), b.get_weights().unwrap());
}

#[test]
fn two_output_training_steps_match_between_gpu_and_cpu() {
    if common::gpu().is_none() {
        return;
    }
    let (x, y, ink) = digits_and_ink();
    let first = |t: &Tensor| {
        let shape: Vec<usize> = std::iter::once(61).chain(t.shape[1..].iter().copied()).collect();
        Tensor::new(&shape, t.data[..61 * t.row_len()].to_vec()).unwrap()
    };
    let (x, y, ink) = (first(&x), first(&y), first(&ink));
    let opts = FitOptions { batch_size: 61, epochs: 3, verbose: 0, shuffle: false, ..Default::default() };
    let sgd = Optimizer::momentum(0.05, 0.9, false);
    let (mut cpu, mut gpu) = (compiled(Device::Cpu, sgd), compiled(Device::Gpu(None), sgd));
    let hc = cpu.fit(&x, [&y, &ink], &opts).unwrap();
    let hg = gpu.fit(&x, [&y, &ink], &opts).unwrap();
    for ((name, c), (_, g)) in cpu.get_weights().unwrap().iter().zip(&gpu.get_weights().unwrap()) {
        let worst =
            c.data.iter().zip(&g.data).map(|(a, b)| (a - b).abs() / (a.abs() + 1e-3)).fold(0.0, f32::max);
        assert!(worst < 1e-4, "two outputs: {name} differs by {worst:e} (relative)");
    }
    for (key, c) in &hc.history {
        let g = &hg.history[key];
        for (a, b) in c.iter().zip(g) {
            assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{key}: cpu {a} gpu {b}");
        }
    }
    // predict_outputs splits the one readback of the GPU forward pass the same way.
    let (pc, pg) = (cpu.predict_outputs(&x, 32).unwrap(), gpu.predict_outputs(&x, 32).unwrap());
    for (c, g) in pc.iter().zip(&pg) {
        assert_eq!(c.shape, g.shape);
        let worst = c.data.iter().zip(&g.data).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-4, "predict_outputs differ by {worst:e}");
    }
}

#[test]
fn a_two_output_checkpoint_restores_its_losses_and_weights() {
    let (x, y, ink) = digits_and_ink();
    let mut m = compiled(Device::Cpu, Optimizer::adam(3e-3));
    let opts = FitOptions { batch_size: 64, epochs: 1, verbose: 0, ..Default::default() };
    m.fit(&x, [&y, &ink], &opts).unwrap();
    let dir = common::TempDir::new("two-outputs");
    let path = dir.join("m.safetensors");
    m.save(&path).unwrap();
    let checkpoint = kiln::Checkpoint::load(&path).unwrap();
    assert_eq!(checkpoint.compile_options(Device::Cpu).unwrap().outputs, head_options());
    let mut back = checkpoint.into_model(Device::Cpu).unwrap();
    assert_eq!(back.output_options(), head_options());
    assert_eq!(
        back.evaluate_metrics(&x, [&y, &ink], 128).unwrap(),
        m.evaluate_metrics(&x, [&y, &ink], 128).unwrap()
    );
    // Training on from the checkpoint takes the same steps as the model that never stopped.
    m.fit(&x, [&y, &ink], &opts).unwrap();
    back.fit(&x, [&y, &ink], &opts).unwrap();
    assert_eq!(back.get_weights().unwrap(), m.get_weights().unwrap());
}

#[test]
fn several_output_errors_name_the_output() {
    let (x, y, ink) = digits_and_ink();
    let mut m = compiled(Device::Cpu, Optimizer::sgd(0.1));
    let opts = FitOptions { epochs: 1, verbose: 0, ..Default::default() };
    let e = m.fit(&x, &y, &opts).unwrap_err().to_string();
    assert!(e.contains("2 outputs (dense_1, dense_2), got 1 label tensors"), "{e}");
    let e = m.fit(&x, [&ink, &y], &opts).unwrap_err().to_string();
    assert!(e.contains("labels of output 'dense_1'"), "{e}");
    let e = m.predict(&x, 32).unwrap_err().to_string();
    assert!(e.contains("predict_outputs"), "{e}");
    let classes = FitOptions { class_weight: Some(vec![1.0; 10]), ..opts.clone() };
    let e = m.fit(&x, [&y, &ink], &classes).unwrap_err().to_string();
    assert!(e.contains("class_weight") && e.contains("one output"), "{e}");
    let too_big = Tensor::new(&[x.rows()], vec![10.0; x.rows()]).unwrap();
    let e = m.fit(&x, [&too_big, &ink], &opts).unwrap_err().to_string();
    assert!(e.contains("'dense_1'") && e.contains("label 10"), "{e}");
    // compile: one loss per output, and each must fit its output.
    let mut fresh = two_heads(8);
    let three = vec![OutputOptions::new(Loss::MeanSquaredError); 3];
    let o = CompileOptions::new(Optimizer::sgd(0.1), Loss::MeanSquaredError, Device::Cpu).with_outputs(three);
    let e = fresh.compile(o).unwrap_err().to_string();
    assert!(e.contains("give 3 outputs' losses, but the model has 2 outputs (dense_1, dense_2)"), "{e}");
    let bad = vec![
        OutputOptions::new(Loss::SparseCategoricalCrossentropy),
        OutputOptions::new(Loss::MeanSquaredError).metrics(&[Metric::Accuracy]).weight(f32::NAN),
    ];
    let o = CompileOptions::new(Optimizer::sgd(0.1), Loss::MeanSquaredError, Device::Cpu).with_outputs(bad);
    let e = fresh.compile(o).unwrap_err().to_string();
    assert!(e.contains("output 'dense_2'"), "{e}");
}
