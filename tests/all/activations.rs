//! Every activation of the table (src/program/unary.rs): its CPU kernel against an independent
//! f64 definition, its gradient against finite differences, its WGSL against the CPU (forward,
//! backward, fused into a matmul), a training step on both backends, its names, and the
//! planner's fusion rule (only gradients written from the output let the matmul absorb it).
use kiln::backend::cpu::kernels::unary;
use kiln::graph::Op;
use kiln::program::{GradSource, Kernel, UnaryOp};
use kiln::{Activation, CompileOptions, Dense, Device, Loss, Optimizer, Sequential, Tensor};

use crate::common::{self, rng, uniform};
use crate::gpu_parity::{Builder, check};
use crate::gradcheck::{Fill, check_graph, op};

/// Φ(x), the standard normal CDF, by Simpson's rule on the density (independent of erf).
fn normal_cdf(x: f64) -> f64 {
    let n = 2000;
    let h = x / n as f64;
    let pdf = |t: f64| (-0.5 * t * t).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let sum: f64 = (0..=n)
        .map(|i| {
            let w = if i == 0 || i == n {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            };
            w * pdf(i as f64 * h)
        })
        .sum();
    0.5 + sum * h / 3.0
}

/// The definition each activation implements (Keras 3 formulas and constants).
fn definition(op: UnaryOp, x: f64) -> f64 {
    let sigmoid = 1.0 / (1.0 + (-x).exp());
    let softplus = (1.0 + x.exp()).ln();
    let hard_sigmoid = ((x + 3.0) / 6.0).clamp(0.0, 1.0);
    match op {
        UnaryOp::Relu => x.max(0.0),
        UnaryOp::Sigmoid => sigmoid,
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Elu => {
            if x > 0.0 {
                x
            } else {
                x.exp() - 1.0
            }
        }
        UnaryOp::Selu => 1.0507009873554805 * if x > 0.0 { x } else { 1.6732632423543772 * (x.exp() - 1.0) },
        UnaryOp::Softplus => softplus,
        UnaryOp::Softsign => x / (1.0 + x.abs()),
        UnaryOp::Silu => x * sigmoid,
        UnaryOp::Gelu => x * normal_cdf(x),
        UnaryOp::LeakyRelu => {
            if x > 0.0 {
                x
            } else {
                0.2 * x
            }
        }
        UnaryOp::Relu6 => x.clamp(0.0, 6.0),
        UnaryOp::HardSigmoid => hard_sigmoid,
        UnaryOp::HardSilu => x * hard_sigmoid,
        UnaryOp::HardTanh => x.clamp(-1.0, 1.0),
        UnaryOp::Exponential => x.exp(),
        UnaryOp::LogSigmoid => sigmoid.ln(),
        UnaryOp::Mish => x * softplus.tanh(),
    }
}

/// Points on both sides of every kink (0, ±1, ±3, 6) and in the saturating tails.
const POINTS: [f64; 20] = [
    -7.5, -4.2, -3.3, -2.7, -1.3, -0.83, -0.61, -0.37, -0.13, -0.02, 0.02, 0.13, 0.37, 0.61, 0.83, 1.3, 2.7,
    3.3, 5.6, 6.4,
];

#[test]
fn every_activation_matches_its_definition_on_the_cpu() {
    let x: Vec<f32> = POINTS.iter().map(|&v| v as f32).collect();
    for &op in UnaryOp::ALL {
        let mut y = vec![0.0f32; x.len()];
        unary(op, &x, &mut y);
        for (&xi, &yi) in x.iter().zip(&y) {
            let want = definition(op, f64::from(xi));
            let err = (f64::from(yi) - want).abs() / (1.0 + want.abs());
            assert!(err < 1e-6, "{}({xi}) = {yi}, want {want}", op.name());
        }
    }
}

#[test]
fn every_activation_gradient_matches_finite_differences() {
    for &op in UnaryOp::ALL {
        let inputs = [(vec![4, 5], Fill::Fixed(POINTS.to_vec()), true)];
        check_graph(op.name(), &inputs, &|g, x| self::op(g, Op::Unary(op), x));
    }
}

#[test]
fn every_activation_matches_between_gpu_and_cpu() {
    let mut r = rng(21);
    let mut b = Builder::default();
    let len = 1000;
    let wide = b.input(uniform(&mut r, len, -12.0, 12.0));
    let small = b.input(uniform(&mut r, len, -0.01, 0.01));
    let dy = b.input(uniform(&mut r, len, -2.0, 2.0));
    for &op in UnaryOp::ALL {
        b.op(Kernel::Unary { op, len }, &[wide], len);
        b.op(Kernel::Unary { op, len }, &[small], len);
        // The backward pass reads the forward input or output: feed values from that range.
        let v = match op.grad_source() {
            GradSource::Input => uniform(&mut r, len, -6.0, 6.0),
            GradSource::Output => {
                let x = uniform(&mut r, len, -6.0, 6.0);
                let mut y = vec![0.0; len];
                unary(op, &x, &mut y);
                y
            }
        };
        let v = b.input(v);
        b.op(Kernel::UnaryGrad { op, len }, &[v, dy], len);
    }
    // Every activation as the epilogue of a fused matmul.
    let (m, k, n) = (9, 13, 7);
    let a = b.input(uniform(&mut r, m * k, -1.0, 1.0));
    let w = b.input(uniform(&mut r, k * n, -1.0, 1.0));
    let bias = b.input(uniform(&mut r, n, -1.0, 1.0));
    for &op in UnaryOp::ALL {
        let kernel = Kernel::MatMulBiasAct { m, k, n, trans_a: false, trans_b: false, act: Some(op) };
        b.op(kernel, &[a, w, bias], m * n);
    }
    check(&b, 1e-5);
}

#[test]
fn activation_names_round_trip_and_aliases_parse() {
    for &a in Activation::ALL {
        assert_eq!(Activation::parse(a.name()), Some(a), "{}", a.name());
    }
    assert_eq!(Activation::ALL.len(), UnaryOp::ALL.len() + 2);
    assert_eq!(Activation::parse("swish"), Some(Activation::Silu));
    assert_eq!(Activation::parse("hard_swish"), Some(Activation::HardSilu));
    assert_eq!(Activation::parse("none"), Some(Activation::Linear));
    assert_eq!(Activation::parse("gelux"), None);
    let names: std::collections::HashSet<_> = UnaryOp::ALL.iter().map(|o| o.name()).collect();
    assert_eq!(names.len(), UnaryOp::ALL.len(), "names are distinct");
    // A model file names them the Keras way.
    let v = serde_json::json!({"layers": [{"type": "Dense", "units": 4, "activation": "swish"}]});
    let spec = kiln::model::spec::parse_model(&v).unwrap();
    assert_eq!(spec.layers[0].activation(), Activation::Silu);
    let v = serde_json::json!({"layers": [{"type": "Dense", "units": 4, "activation": "gelux"}]});
    let e = kiln::model::spec::parse_model(&v).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("unknown activation") && e.contains("gelu") && e.contains("hard_silu"), "{e}");
}

/// Dense(12, act) → Dense(12, act2) → Dense(3, softmax) on both backends, one Adam step.
fn mlp(device: Device, acts: [Activation; 2]) -> Sequential {
    let mut m = Sequential::new(&[10])
        .with_seed(5)
        .add(Dense::new(12, acts[0]))
        .add(Dense::new(12, acts[1]))
        .add(Dense::new(3, Activation::Softmax));
    let opts = CompileOptions::new(Optimizer::adam(1e-2), Loss::SparseCategoricalCrossentropy, device);
    m.compile(opts).unwrap();
    m
}

#[test]
fn a_training_step_with_every_activation_matches_between_gpu_and_cpu() {
    if common::gpu().is_none() {
        return;
    }
    let mut r = rng(22);
    let rows = 40;
    let x = Tensor::new(&[rows, 10], uniform(&mut r, rows * 10, -1.0, 1.0)).unwrap();
    let y = Tensor::new(&[rows], (0..rows).map(|i| (i % 3) as f32).collect()).unwrap();
    let acts: Vec<Activation> = UnaryOp::ALL.iter().map(|&o| Activation::from_unary(o)).collect();
    for pair in acts.chunks(2) {
        let pair = [pair[0], *pair.last().unwrap_or(&pair[0])];
        let (mut cpu, mut gpu) = (mlp(Device::Cpu, pair), mlp(Device::Gpu(None), pair));
        common::fit_both_and_compare(&mut cpu, &mut gpu, &x, &y, 1, &format!("{pair:?}: "));
    }
}

#[test]
fn only_activations_with_output_gradients_fuse_into_the_training_matmul() {
    for &op in UnaryOp::ALL {
        let m = mlp(Device::Cpu, [Activation::from_unary(op), Activation::Linear]);
        let program = m.planned_program(kiln::ProgramKind::Train, 8).unwrap();
        let kernels: Vec<Kernel> = program.steps.iter().map(|s| s.kernel).collect();
        let fused =
            kernels.iter().any(|k| matches!(k, Kernel::MatMulBiasAct { act: Some(a), .. } if *a == op));
        let from_output = op.grad_source() == GradSource::Output;
        assert_eq!(fused, from_output, "{}: fused {fused}, gradient from output {from_output}", op.name());
        let unfused = kernels.iter().any(|k| matches!(k, Kernel::Unary { op: a, .. } if *a == op));
        assert_eq!(unfused, !from_output, "{}", op.name());
    }
}
