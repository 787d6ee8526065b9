//! L1/L2 kernel regularisers (Keras `kernel_regularizer`): gradient checks of the penalty op,
//! the loss including the penalty (computed by hand from the weights), its gradient in a
//! training step, GPU = CPU, and model files.
use kiln::graph::Op;
use kiln::model::spec::parse_model;
use kiln::program::Kernel;
use kiln::{
    Activation, CompileOptions, Conv2D, Dense, Device, FitOptions, Flatten, Loss, Optimizer, Regularizer,
    Sequential, Tensor,
};

use crate::common::{gpu, rng, uniform};
use crate::gpu_parity::{Builder, check};
use crate::gradcheck::{Fill, check_graph, op, rand_in};

#[test]
fn weight_penalty_gradients_match_finite_differences() {
    for (l1, l2) in [(0.0, 0.01), (0.03, 0.0), (0.02, 0.5)] {
        // Weights away from 0, where |w| has its kink.
        let w = (vec![3, 4], Fill::AwayFromZero(0.05), true);
        check_graph(&format!("penalty l1={l1} l2={l2}"), &[w], &|g, x| {
            op(g, Op::WeightPenalty { l1, l2 }, x)
        });
        // Mid-graph: the penalty of a product, so the rule must use its incoming gradient.
        let build = |g: &mut kiln::graph::Graph, x: &[usize]| {
            let y = op(g, Op::MatMul { trans_a: false, trans_b: false }, x);
            op(g, Op::WeightPenalty { l1: 0.0, l2 }, &[y])
        };
        check_graph("penalty of a matmul", &[rand_in(&[2, 3]), rand_in(&[3, 2])], &build);
    }
}

/// Dense(3) with l1 = 0.02, l2 = 0.01 on its kernel and MSE: the loss is the MSE plus
/// 0.02·Σ|w| + 0.01·Σw², both in evaluate and in the training loss (Keras reports the total).
#[test]
fn the_loss_includes_the_penalty_computed_from_the_weights() {
    let r = Regularizer::l1_l2(0.02, 0.01);
    let mut m =
        Sequential::new(&[4]).with_seed(1).add(Dense::new(3, Activation::Linear).kernel_regularizer(r));
    let mut c = CompileOptions::new(Optimizer::sgd(0.0), Loss::MeanSquaredError, Device::Cpu);
    c.metrics.clear();
    m.compile(c).unwrap();
    let mut rg = rng(4);
    let x = Tensor::new(&[5, 4], uniform(&mut rg, 20, -1.0, 1.0)).unwrap();
    let y = Tensor::new(&[5, 3], uniform(&mut rg, 15, -1.0, 1.0)).unwrap();
    let w = m.get_weights().unwrap();
    let (kernel, bias) = (&w[0].1.data, &w[1].1.data);
    let mut mse = 0.0f64;
    for i in 0..5 {
        for j in 0..3 {
            let z: f64 =
                (0..4).map(|k| f64::from(x.data[i * 4 + k]) * f64::from(kernel[k * 3 + j])).sum::<f64>()
                    + f64::from(bias[j]);
            mse += (z - f64::from(y.data[i * 3 + j])).powi(2);
        }
    }
    mse /= 15.0;
    let penalty: f64 = kernel.iter().map(|&v| 0.02 * f64::from(v).abs() + 0.01 * f64::from(v).powi(2)).sum();
    assert!(penalty > 1e-3);
    let (loss, _) = m.evaluate(&x, &y, 5).unwrap();
    assert!((f64::from(loss) - (mse + penalty)).abs() < 1e-5, "evaluate: {loss} vs {mse} + {penalty}");
    let h = m.fit(&x, &y, &FitOptions { batch_size: 5, verbose: 0, ..FitOptions::default() }).unwrap();
    let trained = h.last("loss").unwrap();
    assert!((f64::from(trained) - (mse + penalty)).abs() < 1e-5, "fit: {trained} vs {mse} + {penalty}");
}

/// The penalty's gradient reaches the update: one weight, x = 1, y = 0, MSE, l2 = 0.5, l1 =
/// 0.1: the gradient is 2w + 0.1·sign(w) + 2·0.5·w.
#[test]
fn the_penalty_gradient_is_part_of_the_update() {
    let r = Regularizer::l1_l2(0.1, 0.5);
    let mut devices = vec![Device::Cpu];
    if gpu().is_some() {
        devices.push(Device::Gpu(None));
    }
    for device in devices {
        let layer = Dense { use_bias: false, ..Dense::new(1, Activation::Linear) }.kernel_regularizer(r);
        let mut m = Sequential::new(&[1]).add(layer);
        let mut c = CompileOptions::new(Optimizer::sgd(0.1), Loss::MeanSquaredError, device);
        c.metrics.clear();
        m.compile(c).unwrap();
        m.set_weights(&[("dense.kernel".into(), Tensor::new(&[1, 1], vec![0.8]).unwrap())]).unwrap();
        let (x, y) = (Tensor::new(&[1, 1], vec![1.0]).unwrap(), Tensor::new(&[1, 1], vec![0.0]).unwrap());
        let h = m.fit(&x, &y, &FitOptions { batch_size: 1, verbose: 0, ..FitOptions::default() }).unwrap();
        let loss_want = 0.64 + 0.1 * 0.8 + 0.5 * 0.64;
        assert!((h.last("loss").unwrap() - loss_want).abs() < 1e-6, "{device:?}: {h:?}");
        let w = m.get_weights().unwrap()[0].1.data[0];
        let want = 0.8 - 0.1 * (1.6 + 0.1 + 0.8);
        assert!((w - want).abs() < 1e-6, "{device:?}: {w} vs {want}");
    }
}

#[test]
fn penalty_kernels_match_between_gpu_and_cpu() {
    let mut r = rng(12);
    let mut b = Builder::default();
    // 300 001 elements: several four-element loop iterations per lane plus a remainder.
    for len in [1, 7, 1000, 300_001] {
        let w = b.input(uniform(&mut r, len, -2.0, 2.0));
        b.op(Kernel::WeightPenalty { len, l1: 0.01, l2: 0.003 }, &[w], 1);
        let dy = b.input(vec![0.7]);
        b.op(Kernel::WeightPenaltyGrad { len, l1: 0.01, l2: 0.003 }, &[w, dy], len);
    }
    check(&b, 1e-5);
}

/// A regularised CNN's training step gives the same weights and loss on lavapipe as on the CPU.
#[test]
fn regularised_conv_and_dense_train_the_same_on_gpu_and_cpu() {
    if gpu().is_none() {
        return;
    }
    let mut r = rng(2);
    let x = Tensor::new(&[12, 6, 6, 2], uniform(&mut r, 12 * 72, 0.0, 1.0)).unwrap();
    let y = Tensor::new(&[12], (0..12).map(|i| (i % 3) as f32).collect()).unwrap();
    let train = |device| {
        let mut m = Sequential::new(&[6, 6, 2])
            .with_seed(5)
            .add(Conv2D::new(4, 3, Activation::Relu).kernel_regularizer(Regularizer::l2(0.05)))
            .add(Flatten)
            .add(Dense::new(3, Activation::Softmax).kernel_regularizer(Regularizer::l1(0.01)));
        m.compile(CompileOptions::new(Optimizer::adamw(0.01), Loss::SparseCategoricalCrossentropy, device))
            .unwrap();
        let h = m
            .fit(&x, &y, &FitOptions { batch_size: 5, epochs: 2, verbose: 0, ..FitOptions::default() })
            .unwrap();
        (h.history["loss"].clone(), m.get_weights().unwrap())
    };
    let ((lc, wc), (lg, wg)) = (train(Device::Cpu), train(Device::Gpu(None)));
    for (a, b) in lc.iter().zip(&lg) {
        assert!((a - b).abs() < 1e-4 * a.abs().max(1.0), "loss cpu {a} gpu {b}");
    }
    for ((name, tc), (_, tg)) in wc.iter().zip(&wg) {
        crate::gpu_parity::assert_close(name, &tg.data, &tc.data, 1e-4);
    }
}

#[test]
fn model_files_take_kernel_regularizers_and_round_trip_them() {
    let toml = r#"
        [[layers]]
        type = "Conv2D"
        filters = 2
        kernel_size = 3
        kernel_regularizer = "l2"
        [[layers]]
        type = "Flatten"
        [[layers]]
        type = "Dense"
        units = 3
        kernel_regularizer = { l1 = 0.001, l2 = 0.002 }
    "#;
    let value = serde_json::to_value(toml::from_str::<toml::Value>(toml).unwrap()).unwrap();
    let m = parse_model(&value).unwrap().into_model(&[5, 5, 1], 0);
    let config = m.config();
    assert_eq!(config["layers"][0]["kernel_regularizer"], serde_json::json!({ "l1": 0.0, "l2": 0.01f32 }));
    assert_eq!(
        config["layers"][2]["kernel_regularizer"],
        serde_json::json!({ "l1": 0.001f32, "l2": 0.002f32 })
    );
    assert!(config["layers"][1].get("kernel_regularizer").is_none());
    let back = parse_model(&config).unwrap().into_model(&[5, 5, 1], 0);
    assert_eq!(back.config(), config);
    // Errors name the layer and the key.
    for bad in [r#""l3""#, "{ l2 = -1.0 }", "{ l4 = 0.1 }", "3"] {
        let toml = format!("[[layers]]\ntype = \"Dense\"\nunits = 2\nkernel_regularizer = {bad}\n");
        let value = serde_json::to_value(toml::from_str::<toml::Value>(&toml).unwrap()).unwrap();
        let e = parse_model(&value).unwrap_err().to_string();
        assert!(e.contains("layer 1 (Dense)") && e.contains("kernel_regularizer"), "{bad}: {e}");
    }
}
