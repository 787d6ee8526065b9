//! Recurrent layers: the time-loop ops checked by f64 finite differences through time (both
//! directions, every gather), their WGSL kernels against the CPU at odd sizes, and the
//! SimpleRNN and LSTM layers against Keras's formulas on hand-computed examples.
use kiln::graph::{Graph, NodeId, Op};
use kiln::program::{Kernel, Recurrence, RecurrentCell, SequencePart, UnaryOp};

use crate::common::{rng, uniform};
use crate::gpu_parity::{Builder, check};
use crate::gradcheck::{check_graph, op, rand_in};

fn simple(activation: Option<UnaryOp>, batch: usize, steps: usize, units: usize, back: bool) -> Recurrence {
    looped(RecurrentCell::Simple { activation }, batch, steps, units, back)
}

fn looped(cell: RecurrentCell, batch: usize, steps: usize, units: usize, go_backwards: bool) -> Recurrence {
    Recurrence { cell, batch, steps, units, go_backwards }
}

/// The inputs of a loop's gradient check: z and the recurrent kernel.
fn loop_inputs(rec: &Recurrence) -> [crate::gradcheck::TestInput; 2] {
    let g = rec.gates() * rec.units;
    [rand_in(&[rec.batch, rec.steps, g]), rand_in(&[rec.units, g])]
}

/// z and the recurrent kernel in, the loop, then `parts` gathered (several are summed after
/// flattening, so every gradient path is exercised).
fn loop_graph(rec: Recurrence, parts: &'static [SequencePart]) -> impl Fn(&mut Graph, &[NodeId]) -> NodeId {
    move |g, x| {
        let s = op(g, Op::Recurrent(rec), &[x[0], x[1]]);
        let mut out: Option<NodeId> = None;
        for &part in parts {
            let y = op(g, Op::RecurrentGather { rec, part }, &[s]);
            // Last is [B, u]: compare it against the first step of a sequence via a sum of all.
            let n = g.node(y).len();
            let flat = op(g, Op::Reshape { shape: vec![n] }, &[y]);
            let total = op(g, Op::SumAll { scale: 1.0 }, &[flat]);
            let total = op(g, Op::Unary(UnaryOp::Tanh), &[total]);
            out = Some(match out {
                None => total,
                Some(prev) => op(g, Op::Add, &[prev, total]),
            });
        }
        let y = op(g, Op::RecurrentGather { rec, part: parts[0] }, &[s]);
        match out {
            // Keep the elementwise result too, so each element's gradient is checked.
            Some(sum) => {
                let n = g.node(y).len();
                let flat = op(g, Op::Reshape { shape: vec![n] }, &[y]);
                let b = op(g, Op::BroadcastScalar { shape: vec![n], scale: 0.5 }, &[sum]);
                op(g, Op::Add, &[flat, b])
            }
            None => y,
        }
    }
}

#[test]
fn simple_rnn_loops_have_the_right_gradient_through_time() {
    use SequencePart::*;
    for (activation, backwards) in [
        (Some(UnaryOp::Tanh), false),
        (Some(UnaryOp::Tanh), true),
        (None, false),
        (Some(UnaryOp::Silu), true),
        (Some(UnaryOp::Sigmoid), false),
    ] {
        for (batch, steps, units) in [(2, 3, 3), (1, 1, 2), (3, 4, 1)] {
            let rec = simple(activation, batch, steps, units, backwards);
            let inputs = loop_inputs(&rec);
            let name = format!("{activation:?} backwards {backwards} {batch}×{steps}×{units}");
            for parts in [&[Last][..], &[Sequence][..], &[Sequence, Last][..]] {
                let build = loop_graph(rec, parts);
                check_graph(&name, &inputs, &build);
            }
        }
    }
}

#[test]
fn lstm_loops_have_the_right_gradient_through_time() {
    use SequencePart::*;
    for backwards in [false, true] {
        for (batch, steps, units) in [(2, 3, 2), (1, 1, 3), (1, 4, 1)] {
            let rec = looped(RecurrentCell::Lstm, batch, steps, units, backwards);
            let name = format!("lstm backwards {backwards} {batch}×{steps}×{units}");
            for parts in [&[Last][..], &[Sequence, Last][..]] {
                check_graph(&name, &loop_inputs(&rec), &loop_graph(rec, parts));
            }
        }
    }
}

#[test]
fn recurrent_kernels_match_between_gpu_and_cpu_at_odd_sizes() {
    let mut r = rng(51);
    let mut b = Builder::default();
    let cells = [
        (RecurrentCell::Simple { activation: Some(UnaryOp::Tanh) }, false),
        (RecurrentCell::Simple { activation: None }, true),
        (RecurrentCell::Simple { activation: Some(UnaryOp::Gelu) }, false),
        (RecurrentCell::Lstm, false),
        (RecurrentCell::Lstm, true),
    ];
    for &(batch, steps, units) in &[(1, 1, 1), (5, 7, 3), (2, 29, 17), (3, 7, 65), (1, 29, 1)] {
        for (cell, backwards) in cells {
            let rec = looped(cell, batch, steps, units, backwards);
            let z = b.input(uniform(&mut r, rec.z_len(), -1.0, 1.0));
            let scale = 1.0 / (units as f32).sqrt();
            let u = b.input(uniform(&mut r, rec.kernel_len(), -scale, scale));
            b.op(Kernel::RecurrentForward { rec }, &[z, u], rec.state_len());
            // A forward state computed on the CPU feeds the backward on both.
            let mut s = vec![0.0f32; rec.state_len()];
            let (zv, uv) = (&b.data[b.data.len() - 2].clone(), &b.data[b.data.len() - 1].clone());
            kiln::backend::cpu::recurrent::forward(&rec, zv, uv, &mut s);
            let s = b.input(s);
            let ds = b.input(uniform(&mut r, rec.state_len(), -1.0, 1.0));
            b.op(Kernel::RecurrentBackward { rec }, &[s, u, ds], rec.z_len());
            for part in [SequencePart::Sequence, SequencePart::Last, SequencePart::Previous] {
                b.op(Kernel::RecurrentGather { rec, part }, &[s], rec.part_len(part));
                let dy = b.input(uniform(&mut r, rec.part_len(part), -1.0, 1.0));
                b.op(Kernel::RecurrentScatter { rec, part }, &[dy], rec.state_len());
            }
        }
    }
    check(&b, 1e-4);
}
