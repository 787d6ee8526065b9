//! The Keras-style API behaves as Keras users expect: History keys, validation split,
//! evaluate leaves weights alone, predict returns probabilities, summary counts parameters.
use kiln::data::{Scaler, Scaling, builtin};
use kiln::{
    Activation, CompileOptions, Dense, Device, FitOptions, Loss, Optimizer, Sequential, Tensor, Validation,
};

fn digits() -> (Tensor, Tensor) {
    let d = builtin::digits().unwrap();
    let mut x = d.x.clone();
    Scaler::fit(&x, Scaling::Standardize).apply(&mut x).unwrap();
    (Tensor::new(&[d.len(), 64], x.data).unwrap(), Tensor::new(&[d.len()], d.y.clone()).unwrap())
}

fn mlp() -> Sequential {
    let mut m = Sequential::new(&[64])
        .with_seed(1)
        .add(Dense::new(32, Activation::Tanh))
        .add(Dense::new(10, Activation::Softmax));
    m.compile(CompileOptions::new(Optimizer::adam(1e-3), Loss::SparseCategoricalCrossentropy, Device::Cpu))
        .unwrap();
    m
}

#[test]
fn history_has_one_value_per_epoch_for_loss_metrics_and_validation() {
    let (x, y) = digits();
    let mut m = mlp();
    let opts =
        FitOptions { epochs: 3, verbose: 0, validation: Validation::Split(0.25), ..Default::default() };
    let h = m.fit(&x, &y, &opts).unwrap();
    let keys: Vec<&str> = h.history.keys().map(|k| k.as_str()).collect();
    assert_eq!(keys, ["accuracy", "loss", "val_accuracy", "val_loss"]);
    assert!(h.history.values().all(|v| v.len() == 3));
    assert_eq!(h.epoch_seconds.len(), 3);
    let loss = &h.history["loss"];
    assert!(loss[2] < loss[0], "training loss decreases: {loss:?}");
    // The validation split is the last 25% of the rows as given: evaluating on exactly those
    // rows reproduces val_loss.
    let n_val = (x.rows() as f64 * 0.25).round() as usize;
    let start = x.rows() - n_val;
    let vx = Tensor::new(&[n_val, 64], x.data[start * 64..].to_vec()).unwrap();
    let vy = Tensor::new(&[n_val], y.data[start..].to_vec()).unwrap();
    let (vl, va) = m.evaluate(&vx, &vy, 32).unwrap();
    assert!((vl - h.last("val_loss").unwrap()).abs() < 1e-6, "{vl} vs {:?}", h.last("val_loss"));
    assert!((va - h.last("val_accuracy").unwrap()).abs() < 1e-6);
}

#[test]
fn evaluate_and_predict_do_not_change_weights_and_predict_gives_probabilities() {
    let (x, y) = digits();
    let mut m = mlp();
    m.fit(&x, &y, &FitOptions { epochs: 2, verbose: 0, ..Default::default() }).unwrap();
    let before = m.get_weights().unwrap();
    let (loss, acc) = m.evaluate(&x, &y, 100).unwrap();
    let p = m.predict(&x, 77).unwrap(); // batch not dividing 1797: the last partial batch counts
    assert_eq!(before, m.get_weights().unwrap());
    assert_eq!(p.shape, vec![1797, 10]);
    for i in 0..p.rows() {
        let s: f32 = p.row(i).iter().sum();
        assert!((s - 1.0).abs() < 1e-5 && p.row(i).iter().all(|&v| (0.0..=1.0).contains(&v)));
    }
    // evaluate's accuracy is the argmax accuracy of predict's probabilities.
    let hits = p.argmax_rows().iter().zip(&y.data).filter(|(a, b)| **a == **b as usize).count();
    assert!((acc - hits as f32 / 1797.0).abs() < 1e-6);
    assert!(loss.is_finite() && loss > 0.0);
}

#[test]
fn same_seed_same_initial_weights_other_seed_other_weights() {
    let w = |seed| {
        let mut m = Sequential::new(&[4]).with_seed(seed).add(Dense::new(3, Activation::Softmax));
        m.compile(CompileOptions::new(Optimizer::sgd(0.1), Loss::SparseCategoricalCrossentropy, Device::Cpu))
            .unwrap();
        m.get_weights().unwrap()
    };
    assert_eq!(w(7), w(7));
    assert_ne!(w(7), w(8));
    // Glorot uniform: |w| ≤ sqrt(6 / (4 + 3)); biases start at zero.
    let weights = w(7);
    let limit = (6.0f32 / 7.0).sqrt();
    assert!(
        weights[0].1.data.iter().all(|v| v.abs() <= limit) && weights[1].1.data.iter().all(|&v| v == 0.0)
    );
    assert_eq!(weights[0].0, "dense.kernel");
}

#[test]
fn summary_counts_parameters_like_keras() {
    let m = Sequential::new(&[784])
        .add(Dense::new(128, Activation::Relu))
        .add(Dense::new(64, Activation::Relu))
        .add(Dense::new(10, Activation::Softmax));
    let s = m.summary().unwrap();
    assert!(s.contains("dense_2 (Dense)"), "{s}");
    assert!(s.contains("(None, 128)") && s.contains("100480"), "{s}");
    assert!(s.contains("Total params: 109,386"), "{s}");
    assert_eq!(m.param_count().unwrap(), 109_386);
}

#[test]
fn sgd_with_momentum_and_mse_regression_train() {
    // A linear target y = x·w* learned with MSE and Nesterov momentum.
    let n = 256;
    let x: Vec<f32> = (0..n * 3).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    let y: Vec<f32> = x.chunks(3).map(|r| 0.5 * r[0] - 1.5 * r[1] + 2.0 * r[2]).collect();
    let (x, y) = (Tensor::new(&[n, 3], x).unwrap(), Tensor::new(&[n, 1], y).unwrap());
    let mut m = Sequential::new(&[3]).add(Dense::new(1, Activation::Linear));
    let mut opts =
        CompileOptions::new(Optimizer::momentum(0.05, 0.9, true), Loss::MeanSquaredError, Device::Cpu);
    opts.metrics.clear();
    m.compile(opts).unwrap();
    let h = m.fit(&x, &y, &FitOptions { epochs: 40, verbose: 0, ..Default::default() }).unwrap();
    assert!(h.last("loss").unwrap() < 1e-4, "{:?}", h.history["loss"]);
    assert!(!h.history.contains_key("accuracy"));
    let w = m.get_weights().unwrap();
    assert!((w[0].1.data[2] - 2.0).abs() < 0.02, "{:?}", w[0].1.data);
}

#[test]
fn a_separate_activation_layer_works_like_a_fused_one() {
    use kiln::nn::ActivationLayer;
    let (x, y) = digits();
    let mut m = Sequential::new(&[64])
        .with_seed(1)
        .add(Dense::new(32, Activation::Linear))
        .add(ActivationLayer(Activation::Tanh))
        .add(Dense::new(10, Activation::Linear))
        .add(ActivationLayer(Activation::Softmax));
    assert!(m.summary().unwrap().contains("activation_1 (Activation)"));
    m.compile(CompileOptions::new(Optimizer::adam(1e-3), Loss::SparseCategoricalCrossentropy, Device::Cpu))
        .unwrap();
    let h = m.fit(&x, &y, &FitOptions { epochs: 3, verbose: 0, ..Default::default() }).unwrap();
    assert!(h.last("accuracy").unwrap() > 0.8, "{:?}", h.history);
    let p = m.predict(&x, 64).unwrap();
    assert!((p.row(0).iter().sum::<f32>() - 1.0).abs() < 1e-5, "softmax output");
}

/// A model's programs (train, eval, predict, each batch size) share one Work arena, as large
/// as the largest: the planned memory counts it once, and predictions interleaved with
/// training and evaluation equal those of a model that only predicts.
#[test]
fn programs_share_one_work_arena_and_interleave_correctly() {
    let (x, y) = digits();
    for device in crate::common::devices() {
        let build = || {
            let mut m = Sequential::new(&[64])
                .with_seed(3)
                .add(Dense::new(32, Activation::Relu))
                .add(Dense::new(10, Activation::Softmax));
            m.compile(CompileOptions::new(
                Optimizer::adam(0.01),
                Loss::SparseCategoricalCrossentropy,
                device,
            ))
            .unwrap();
            m
        };
        let mut m = build();
        let resident = m.planned_memory_bytes();
        let opts = FitOptions {
            batch_size: 100,
            epochs: 1,
            verbose: 0,
            validation: Validation::Split(0.1),
            ..Default::default()
        };
        m.fit(&x, &y, &opts).unwrap();
        let p1 = m.predict(&x, 256).unwrap();
        m.evaluate(&x, &y, 77).unwrap();
        let p2 = m.predict(&x, 256).unwrap();
        assert_eq!(p1.data, p2.data, "{device:?}: predictions after another program ran");
        let kinds = [
            (kiln::ProgramKind::Train, 100),
            (kiln::ProgramKind::Eval, 77),
            (kiln::ProgramKind::Predict, 256),
        ];
        let works: Vec<u64> =
            kinds.iter().map(|&(k, b)| m.planned_program(k, b).unwrap().work_bytes()).collect();
        let largest = *works.iter().max().unwrap();
        assert!(m.planned_memory_bytes() >= resident + largest, "{device:?}");
        assert!(
            m.planned_memory_bytes() < resident + works.iter().sum::<u64>(),
            "{device:?}: one arena, not one each"
        );
    }
}

/// The shared Work arena holds the results of the program run last: reading another
/// program's output is refused, not answered with someone else's numbers.
#[test]
fn reading_a_program_whose_work_was_overwritten_is_an_error() {
    use kiln::backend::Backend;
    use kiln::program::{Arena, BufRef, Kernel, Program, ResidentLayout, Step, StepScalars};
    let program = |value: f32| {
        let out = BufRef { arena: Arena::Work, offset: 0, len: 4 };
        Program {
            steps: vec![Step::new(Kernel::Fill { len: 4, value }, vec![out])],
            work_len: 64,
            outputs: vec![("y".into(), out)],
            ..Program::default()
        }
    };
    let mut backends: Vec<Box<dyn Backend>> = vec![Box::new(kiln::backend::cpu::CpuBackend::new())];
    if let Some(g) = crate::common::gpu() {
        backends.push(Box::new(g));
    }
    for mut b in backends {
        b.alloc_resident(&ResidentLayout::default()).unwrap();
        let (a, c) = (b.compile(&program(1.0)).unwrap(), b.compile(&program(2.0)).unwrap());
        let out = BufRef { arena: Arena::Work, offset: 0, len: 4 };
        b.run(a, &[], StepScalars::default()).unwrap();
        assert_eq!(b.read_work(a, out).unwrap(), [1.0; 4]);
        b.run(c, &[], StepScalars::default()).unwrap();
        assert_eq!(b.read_work(c, out).unwrap(), [2.0; 4]);
        let e = b.read_work(a, out).unwrap_err();
        assert!(e.to_string().contains("another program"), "{}: {e}", b.name());
    }
}

/// predict keeps each batch's output on the device and reads back at the end or when its
/// 16 MiB collection buffer fills: 4.6 M outputs (more than one buffer), batches of 512 and a
/// partial one, equal the CPU's and the same rows predicted in two calls.
#[test]
fn predict_collects_batches_on_the_device_across_full_buffers() {
    let Some(_) = crate::common::gpu() else { return };
    let rows = 4500;
    let mut r = crate::common::rng(8);
    let x = Tensor::new(&[rows, 8], crate::common::uniform(&mut r, rows * 8, -1.0, 1.0)).unwrap();
    let mut outs = Vec::new();
    for device in [Device::Cpu, Device::Gpu(None)] {
        let mut m = Sequential::new(&[8]).with_seed(4).add(Dense::new(1024, Activation::Tanh));
        m.compile(CompileOptions::new(Optimizer::sgd(0.1), Loss::MeanSquaredError, device)).unwrap();
        let all = m.predict(&x, 512).unwrap();
        assert_eq!(all.shape, [rows, 1024]);
        let head = Tensor::new(&[1000, 8], x.data[..8000].to_vec()).unwrap();
        let tail = Tensor::new(&[rows - 1000, 8], x.data[8000..].to_vec()).unwrap();
        let parts = [m.predict(&head, 512).unwrap().data, m.predict(&tail, 512).unwrap().data].concat();
        assert_eq!(all.data, parts, "{device:?}: one call and two calls");
        outs.push(all.data);
    }
    crate::gpu_parity::assert_close("predictions", &outs[1], &outs[0], 1e-5);
}
