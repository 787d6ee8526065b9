//! Convolutional models end to end: the presets, training on real images (digits 8×8 on the
//! CPU and the GPU adapter, Fashion-MNIST on the CPU), GPU-vs-CPU parity of whole CNN training
//! steps, and dropout's training/inference behaviour.
use kiln::cli::{TrainArgs, preset, train};
use kiln::program::Kernel;
use kiln::{
    Activation, AveragePooling2D, BatchNormalization, CompileOptions, Conv2D, Dense, Device, Dropout,
    FitOptions, Flatten, GlobalAveragePooling2D, Loss, MaxPooling2D, Model, Optimizer, Padding, ProgramKind,
    Sequential, Tensor,
};

use crate::common;

#[test]
fn mnist_cnn_preset_matches_the_keras_model() {
    let m = preset("mnist-cnn", &[28, 28, 1], 10, 0).unwrap();
    assert_eq!(m.param_count().unwrap(), 93_322);
    let s = m.summary().unwrap();
    for line in ["(None, 26, 26, 32)", "(None, 13, 13, 32)", "(None, 11, 11, 64)", "(None, 5, 5, 64)"] {
        assert!(s.contains(line), "{line} missing from\n{s}");
    }
    assert!(
        s.contains("(None, 3, 3, 64)") && s.contains("(None, 576)") && s.contains("Total params: 93,322")
    );
    // Digits' flat 64 pixels are 8×8 images to the small CNN; tables are not.
    assert_eq!(preset("cnn", &[64], 10, 0).unwrap().input_shape(), &[8, 8, 1]);
    let e = preset("cnn", &[30], 2, 0).err().expect("a table is not an image").to_string();
    assert!(e.contains("needs image samples"), "{e}");
}

fn digits_cnn(device: &str) -> kiln::cli::TrainReport {
    let args = TrainArgs {
        model: "cnn".into(),
        device: device.into(),
        epochs: 20,
        json: true,
        ..TrainArgs::default()
    };
    train(&args).unwrap_or_else(|e| panic!("digits cnn on {device}: {e}"))
}

#[test]
fn digits_cnn_reaches_0975_on_cpu() {
    let r = digits_cnn("cpu");
    assert!(r.test_accuracy >= 0.975, "digits CNN test accuracy {}", r.test_accuracy);
}

#[test]
fn digits_cnn_reaches_0975_on_gpu() {
    if common::gpu().is_none() {
        return;
    }
    let r = digits_cnn("gpu");
    assert_eq!(r.device, "gpu");
    assert!(r.test_accuracy >= 0.975, "digits CNN on {}: {}", r.adapter, r.test_accuracy);
}

/// Fashion-MNIST with the MNIST CNN, two epochs on the CPU (the Debian package
/// dataset-fashion-mnist must be installed; `.ci/run` installs it).
#[test]
fn fashion_mnist_cnn_reaches_085_in_two_epochs() {
    let args = TrainArgs {
        model: "mnist-cnn".into(),
        device: "cpu".into(),
        epochs: 2,
        batch_size: 128,
        json: true,
        ..TrainArgs::default()
    };
    assert_eq!(args.data_name(), "fashion-mnist");
    let r = train(&args).unwrap_or_else(|e| panic!("fashion-mnist: {e}"));
    assert!(r.test_accuracy >= 0.85, "Fashion-MNIST test accuracy after 2 epochs: {}", r.test_accuracy);
}

/// Every image layer in one model: strided same convolution, dilation, max and average
/// pooling, dropout, global pooling.
fn every_layer(device: Device) -> Sequential {
    let mut m = Sequential::new(&[9, 9, 2])
        .with_seed(4)
        .add(Conv2D::new(5, 3, Activation::Relu).strides(2, 2).padding(Padding::Same))
        .add(BatchNormalization::new())
        .add(Conv2D::new(6, 2, Activation::Tanh).dilation(2, 1).padding(Padding::Same))
        .add(MaxPooling2D::new(2).strides(1, 1))
        .add(Dropout::new(0.3))
        .add(Conv2D::new(4, 1, Activation::Sigmoid))
        .add(AveragePooling2D::new(2).padding(Padding::Same))
        .add(GlobalAveragePooling2D)
        .add(Dense::new(3, Activation::Softmax));
    m.compile(CompileOptions::new(Optimizer::adam(1e-2), Loss::SparseCategoricalCrossentropy, device))
        .unwrap();
    m
}

fn images(n: usize, shape: [usize; 3], seed: u64) -> (Tensor, Tensor) {
    let mut r = common::rng(seed);
    let len = n * shape.iter().product::<usize>();
    let x = Tensor::new(&[n, shape[0], shape[1], shape[2]], common::uniform(&mut r, len, 0.0, 1.0)).unwrap();
    let y = Tensor::new(&[n], (0..n).map(|i| (i % 3) as f32).collect()).unwrap();
    (x, y)
}

#[test]
fn cnn_training_steps_match_between_gpu_and_cpu() {
    if common::gpu().is_none() {
        return;
    }
    let (x, y) = images(21, [9, 9, 2], 5);
    let opts = FitOptions { batch_size: 8, epochs: 2, verbose: 0, shuffle: true, ..Default::default() };
    let (mut cpu, mut gpu) = (every_layer(Device::Cpu), every_layer(Device::Gpu(None)));
    assert_eq!(cpu.get_weights().unwrap(), gpu.get_weights().unwrap());
    let w0 = cpu.get_weights().unwrap();
    let (hc, hg) = (cpu.fit(&x, &y, &opts).unwrap(), gpu.fit(&x, &y, &opts).unwrap());
    let (wc, wg) = (cpu.get_weights().unwrap(), gpu.get_weights().unwrap());
    let moved = wc.iter().zip(&w0).any(|((_, a), (_, b))| a.data != b.data);
    assert!(moved, "training changed the weights");
    for ((name, a), (_, b)) in wc.iter().zip(&wg) {
        for (i, (p, q)) in a.data.iter().zip(&b.data).enumerate() {
            assert!((p - q).abs() <= 1e-4 * (p.abs() + 1e-2), "{name}[{i}]: cpu {p} vs gpu {q}");
        }
    }
    for key in ["loss", "accuracy"] {
        let (a, b) = (&hc.history[key], &hg.history[key]);
        assert!(a.iter().zip(b).all(|(p, q)| (p - q).abs() < 1e-5), "{key}: cpu {a:?} vs gpu {b:?}");
    }
    let (pc, pg) = (cpu.predict(&x, 16).unwrap(), gpu.predict(&x, 16).unwrap());
    assert!(pc.data.iter().zip(&pg.data).all(|(p, q)| (p - q).abs() < 1e-5), "predictions differ");
}

#[test]
fn dropout_is_active_in_training_and_the_identity_in_inference() {
    let (x, y) = images(32, [9, 9, 2], 8);
    let mut m = every_layer(Device::Cpu);
    let has_dropout = |k: ProgramKind| {
        m.planned_program(k, 32).unwrap().steps.iter().any(|s| matches!(s.kernel, Kernel::Dropout { .. }))
    };
    assert!(has_dropout(ProgramKind::Train), "the training step drops");
    assert!(!has_dropout(ProgramKind::Eval) && !has_dropout(ProgramKind::Predict), "inference does not");
    // Inference is deterministic; the same weights without the Dropout layer predict the same.
    let p1 = m.predict(&x, 32).unwrap();
    assert_eq!(p1, m.predict(&x, 32).unwrap());
    let mut plain = Sequential::new(&[9, 9, 2])
        .with_seed(4)
        .add(Conv2D::new(5, 3, Activation::Relu).strides(2, 2).padding(Padding::Same))
        .add(BatchNormalization::new())
        .add(Conv2D::new(6, 2, Activation::Tanh).dilation(2, 1).padding(Padding::Same))
        .add(MaxPooling2D::new(2).strides(1, 1))
        .add(Conv2D::new(4, 1, Activation::Sigmoid))
        .add(AveragePooling2D::new(2).padding(Padding::Same))
        .add(GlobalAveragePooling2D)
        .add(Dense::new(3, Activation::Softmax));
    plain
        .compile(CompileOptions::new(Optimizer::adam(1e-2), Loss::SparseCategoricalCrossentropy, Device::Cpu))
        .unwrap();
    plain.set_weights(&m.get_weights().unwrap()).unwrap();
    assert_eq!(p1, plain.predict(&x, 32).unwrap());
    // In training the masks change the loss: a step at learning rate 0 leaves the weights but
    // reports the dropped-out loss, unlike evaluate.
    let (eval_loss, _) = m.evaluate(&x, &y, 32).unwrap();
    let mut frozen = every_layer(Device::Cpu);
    frozen.set_weights(&m.get_weights().unwrap()).unwrap();
    let h = frozen
        .fit(
            &x,
            &y,
            &FitOptions { batch_size: 32, epochs: 1, verbose: 0, shuffle: false, ..Default::default() },
        )
        .unwrap();
    let train_loss = h.last("loss").unwrap();
    assert!((train_loss - eval_loss).abs() > 1e-4, "train {train_loss} vs eval {eval_loss}");
}

#[test]
fn a_cnn_with_batch_norm_and_dropout_learns() {
    // Vertical vs horizontal bars: trivially separable, so any working CNN learns it.
    let n = 96;
    let mut data = Vec::with_capacity(n * 64);
    for i in 0..n {
        let pos = i / 2 % 8;
        for r in 0..8 {
            for c in 0..8 {
                let on = if i % 2 == 0 { c == pos } else { r == pos };
                data.push(if on { 1.0 } else { 0.0 });
            }
        }
    }
    let x = Tensor::new(&[n, 8, 8, 1], data).unwrap();
    let y = Tensor::new(&[n], (0..n).map(|i| (i % 2) as f32).collect()).unwrap();
    let mut m = Sequential::new(&[8, 8, 1])
        .with_seed(2)
        .add(Conv2D::new(8, 3, Activation::Relu).padding(Padding::Same))
        .add(BatchNormalization::new())
        .add(MaxPooling2D::new(2))
        .add(Dropout::new(0.25))
        .add(Flatten)
        .add(Dense::new(2, Activation::Softmax));
    m.compile(CompileOptions::new(Optimizer::adam(1e-2), Loss::SparseCategoricalCrossentropy, Device::Cpu))
        .unwrap();
    m.fit(&x, &y, &FitOptions { batch_size: 16, epochs: 15, verbose: 0, ..Default::default() }).unwrap();
    let (_, acc) = m.evaluate(&x, &y, 32).unwrap();
    assert!(acc >= 0.99, "bars accuracy {acc}");
}

#[test]
fn image_layers_report_shape_errors_with_the_layer_name() {
    let flat = Sequential::new(&[64]).add(Conv2D::new(4, 3, Activation::Relu));
    let e = flat.output_shapes().unwrap_err().to_string();
    assert!(e.contains("conv2d") && e.contains("expects images"), "{e}");
    let small = Sequential::new(&[2, 2, 1]).add(Conv2D::new(4, 3, Activation::Relu));
    let e = small.output_shapes().unwrap_err().to_string();
    assert!(e.contains("conv2d") && e.contains("does not fit"), "{e}");
    let pool = Sequential::new(&[1, 5, 3]).add(MaxPooling2D::new(2));
    let e = pool.output_shapes().unwrap_err().to_string();
    assert!(e.contains("max_pooling2d") && e.contains("does not fit"), "{e}");
    let dense = Sequential::new(&[4, 4, 1]).add(Dense::new(3, Activation::Relu));
    let e = dense.output_shapes().unwrap_err().to_string();
    assert!(e.contains("Flatten"), "{e}");
    let drop = Sequential::new(&[4]).add(Dropout::new(1.0));
    assert!(drop.output_shapes().unwrap_err().to_string().contains("rate"));
}

#[test]
fn batch_norm_uses_batch_statistics_in_training_and_moving_ones_in_inference() {
    let (x, y) = images(32, [4, 4, 3], 9);
    let build = || {
        let mut m = Sequential::new(&[4, 4, 3])
            .add(BatchNormalization::new())
            .add(Flatten)
            .add(Dense::new(3, Activation::Softmax));
        m.compile(CompileOptions::new(Optimizer::sgd(0.0), Loss::SparseCategoricalCrossentropy, Device::Cpu))
            .unwrap();
        m
    };
    let mut m = build();
    let s = m.summary().unwrap();
    assert!(s.contains("Total params: 159") && s.contains("Non-trainable params: 6"), "{s}");
    // Fresh moving statistics (0, 1) make inference the identity on γ = 1, β = 0.
    let before = m.predict(&x, 32).unwrap();
    m.fit(
        &x,
        &y,
        &FitOptions { batch_size: 32, epochs: 1, verbose: 0, shuffle: false, ..Default::default() },
    )
    .unwrap();
    let w = m.get_weights().unwrap();
    let get = |name: &str| &w.iter().find(|(n, _)| n == name).unwrap().1.data;
    // After one step at learning rate 0: moving = 0.99·init + 0.01·batch statistic.
    for ch in 0..3 {
        let vals: Vec<f64> = x.data.iter().skip(ch).step_by(3).map(|&v| f64::from(v)).collect();
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let var = vals.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / vals.len() as f64;
        let (mm, mv) =
            (get("batch_normalization.moving_mean")[ch], get("batch_normalization.moving_variance")[ch]);
        assert!((f64::from(mm) - 0.01 * mean).abs() < 1e-6, "moving mean {mm} vs {}", 0.01 * mean);
        assert!((f64::from(mv) - (0.99 + 0.01 * var)).abs() < 1e-6, "moving var {mv}");
    }
    assert_eq!(get("batch_normalization.gamma"), &vec![1.0; 3], "lr 0 leaves the trainable weights");
    let after = m.predict(&x, 32).unwrap();
    assert_ne!(before, after, "inference follows the moving statistics");
    // Training normalises with the batch's own statistics: the training loss differs from
    // the evaluation loss on the same batch and weights.
    let (eval_loss, _) = m.evaluate(&x, &y, 32).unwrap();
    let mut twin = build();
    twin.set_weights(&w).unwrap();
    let h = twin
        .fit(
            &x,
            &y,
            &FitOptions { batch_size: 32, epochs: 1, verbose: 0, shuffle: false, ..Default::default() },
        )
        .unwrap();
    assert!((h.last("loss").unwrap() - eval_loss).abs() > 1e-4);
}

/// CPU results do not depend on the thread count for CNNs either: mnist-cnn (every parallel
/// image kernel at real sizes: im2col per output row, col2im per image, pooling per row,
/// split GEMMs), with a BatchNormalization after its first convolution (column sums over
/// fixed parts of rows), trains to the same bits under 1, 2 and 3 threads.
#[test]
fn cnn_training_gives_the_same_bits_under_1_2_and_3_threads() {
    use kiln::backend::cpu::pool::{Pool, with_pool};
    use std::sync::Arc;
    let (x, y) = images(40, [28, 28, 1], 12);
    let weights: Vec<_> = [1, 2, 3]
        .iter()
        .map(|&threads| {
            with_pool(&Arc::new(Pool::new(threads)), || {
                // mnist-cnn with a BatchNormalization after its first convolution.
                let conv = |filters| Conv2D::new(filters, 3, Activation::Relu);
                let mut m = Sequential::new(&[28, 28, 1])
                    .add(conv(32))
                    .add(BatchNormalization::new())
                    .add(MaxPooling2D::new(2))
                    .add(conv(64))
                    .add(MaxPooling2D::new(2))
                    .add(conv(64))
                    .add(Flatten)
                    .add(Dense::new(64, Activation::Relu))
                    .add(Dense::new(3, Activation::Softmax));
                let opts = CompileOptions::new(
                    Optimizer::adam(1e-3),
                    Loss::SparseCategoricalCrossentropy,
                    Device::Cpu,
                );
                m.compile(opts).unwrap();
                m.fit(&x, &y, &FitOptions { batch_size: 32, epochs: 1, verbose: 0, ..Default::default() })
                    .unwrap();
                m.get_weights().unwrap()
            })
        })
        .collect();
    assert!(weights[0] == weights[1] && weights[1] == weights[2], "weights differ between thread counts");
}

#[test]
fn random_flip_augments_training_only_and_trains_through_the_cli() {
    let mut m = preset("cnn", &[8, 8, 1], 10, 0).unwrap().prepend(kiln::RandomFlip);
    assert_eq!(m.layer_names()[0], "random_flip");
    m.compile(CompileOptions::new(Optimizer::adam(1e-3), Loss::SparseCategoricalCrossentropy, Device::Cpu))
        .unwrap();
    let has_flip = |m: &Model, k: ProgramKind| {
        m.planned_program(k, 16).unwrap().steps.iter().any(|s| matches!(s.kernel, Kernel::RandomFlip { .. }))
    };
    assert!(has_flip(&m, ProgramKind::Train) && !has_flip(&m, ProgramKind::Predict));
    let args = TrainArgs {
        model: "cnn".into(),
        device: "cpu".into(),
        epochs: 15,
        flip: true,
        json: true,
        ..TrainArgs::default()
    };
    let r = train(&args).unwrap();
    assert!(r.test_accuracy > 0.9, "digits CNN trained on flipped images: {}", r.test_accuracy);
    let e = train(&TrainArgs { flip: true, epochs: 1, json: true, ..TrainArgs::default() }).err().unwrap();
    assert!(e.to_string().contains("needs an image model"), "{e}");
}
