//! Every op of the binary table (src/program/binary.rs): its CPU kernel against its
//! definition, both gradients against finite differences, its WGSL against the CPU, and a
//! gated update (the core of a GRU cell) built from them.
use kiln::backend::cpu::kernels::binary;
use kiln::graph::Op;
use kiln::program::{BinaryOp, Kernel, Operand, UnaryOp};

use crate::common::{rng, uniform};
use crate::gpu_parity::{Builder, check};
use crate::gradcheck::{Fill, check_graph, op, rand_in};

fn definition(op: BinaryOp, a: f64, b: f64) -> f64 {
    match op {
        BinaryOp::Subtract => a - b,
        BinaryOp::Multiply => a * b,
        BinaryOp::Divide => a / b,
        BinaryOp::Maximum => a.max(b),
        BinaryOp::Minimum => a.min(b),
    }
}

#[test]
fn every_binary_op_matches_its_definition_on_the_cpu() {
    let mut r = rng(40);
    let a = uniform(&mut r, 50, -3.0, 3.0);
    let b: Vec<f32> = uniform(&mut r, 50, 0.2, 3.0)
        .iter()
        .enumerate()
        .map(|(i, v)| if i % 2 == 0 { *v } else { -v })
        .collect();
    for &op in BinaryOp::ALL {
        let mut y = vec![0.0f32; a.len()];
        binary(op, &a, &b, &mut y);
        for i in 0..a.len() {
            let want = definition(op, f64::from(a[i]), f64::from(b[i]));
            let err = (f64::from(y[i]) - want).abs() / (1.0 + want.abs());
            assert!(err < 1e-6, "{}({}, {}) = {}, want {want}", op.name(), a[i], b[i], y[i]);
        }
        assert_eq!(BinaryOp::from_name(op.name()), Some(op));
    }
    assert_eq!(BinaryOp::from_name("add"), None, "Add is its own op");
}

#[test]
fn every_binary_op_gradient_matches_finite_differences() {
    for &op in BinaryOp::ALL {
        // b away from zero (divide); random pairs never tie (maximum, minimum).
        let inputs = [rand_in(&[3, 4]), (vec![3, 4], Fill::AwayFromZero(0.3), true)];
        check_graph(op.name(), &inputs, &|g, x| self::op(g, Op::Binary(op), x));
        // The same tensor on both sides: each gradient flows, and they are summed.
        check_graph(op.name(), &[rand_in(&[5])], &|g, x| self::op(g, Op::Binary(op), &[x[0], x[0]]));
    }
}

#[test]
fn a_gated_update_has_the_right_gradient() {
    // h' = z·h + (1 − z)·n = n + z·(h − n), z = sigmoid(u), n = tanh(v): a GRU's output.
    let inputs = [rand_in(&[2, 3]), rand_in(&[2, 3]), rand_in(&[2, 3])];
    check_graph("gated update", &inputs, &|g, x| {
        let z = op(g, Op::Unary(UnaryOp::Sigmoid), &[x[0]]);
        let n = op(g, Op::Unary(UnaryOp::Tanh), &[x[1]]);
        let diff = op(g, Op::Binary(BinaryOp::Subtract), &[x[2], n]);
        let gated = op(g, Op::Binary(BinaryOp::Multiply), &[z, diff]);
        op(g, Op::Add, &[n, gated])
    });
}

#[test]
fn every_binary_op_matches_between_gpu_and_cpu() {
    let mut r = rng(41);
    let mut b = Builder::default();
    let len = 1000;
    let x = b.input(uniform(&mut r, len, -5.0, 5.0));
    let y = b.input(uniform(&mut r, len, 0.1, 5.0));
    let dy = b.input(uniform(&mut r, len, -2.0, 2.0));
    for &op in BinaryOp::ALL {
        b.op(Kernel::Binary { op, len }, &[x, y], len);
        b.op(Kernel::Binary { op, len }, &[y, x], len);
        for wrt in [Operand::A, Operand::B] {
            b.op(Kernel::BinaryGrad { op, wrt, len }, &[x, y, dy], len);
        }
    }
    check(&b, 1e-5);
}
