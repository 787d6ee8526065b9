//! Recurrent layers: the time-loop ops checked by f64 finite differences through time (both
//! directions, every gather), their WGSL kernels against the CPU at odd sizes, and the
//! SimpleRNN and LSTM layers against Keras's formulas on hand-computed examples.
use kiln::graph::{Graph, NodeId, Op};
use kiln::program::{Kernel, Recurrence, RecurrentCell, SequencePart, UnaryOp};

use crate::common::{rng, uniform};
use crate::gpu_parity::{Builder, check};
use crate::gradcheck::{Fill, check_graph, op, rand_in};

fn simple(activation: Option<UnaryOp>, batch: usize, steps: usize, units: usize, back: bool) -> Recurrence {
    looped(RecurrentCell::Simple { activation }, batch, steps, units, back)
}

fn looped(cell: RecurrentCell, batch: usize, steps: usize, units: usize, go_backwards: bool) -> Recurrence {
    Recurrence { cell, batch, steps, units, go_backwards, masked: false, recurrent_dropout: false }
}

/// A `[batch, steps]` mask of mixed lengths: sample b is padded at the end by b % steps steps,
/// and sample 1 also misses its second step (a gap inside the data).
fn mixed_mask(batch: usize, steps: usize) -> Vec<f32> {
    let mut m = vec![0.0; batch * steps];
    for b in 0..batch {
        for t in 0..steps - b % steps {
            m[b * steps + t] = if b == 1 && t == 1 && steps > 2 { 0.0 } else { 1.0 };
        }
    }
    m
}

/// A recurrent dropout mask `[batch, steps, units]`: per (b, k) 0 or 2 (rate ½), the same at
/// every step.
fn drop_mask(batch: usize, steps: usize, units: usize) -> Vec<f32> {
    (0..batch * steps * units)
        .map(|i| {
            let (b, k) = (i / (steps * units), i % units);
            if (b * 7 + k * 3) % 5 < 2 { 0.0 } else { 2.0 }
        })
        .collect()
}

/// The inputs of a loop's gradient check: z, the recurrent kernel, the recurrent bias, the
/// mask and the recurrent dropout mask (empty where the loop has none).
fn loop_inputs(rec: &Recurrence) -> Vec<crate::gradcheck::TestInput> {
    let g = rec.gates() * rec.units;
    let empty = || (vec![0], Fill::Fixed(Vec::new()), false);
    vec![
        rand_in(&[rec.batch, rec.steps, g]),
        rand_in(&[rec.units, g]),
        if rec.has_recurrent_bias() { rand_in(&[g]) } else { empty() },
        match rec.masked {
            true => {
                let mask = mixed_mask(rec.batch, rec.steps).into_iter().map(f64::from).collect();
                (vec![rec.batch, rec.steps], Fill::Fixed(mask), false)
            }
            false => empty(),
        },
        match rec.recurrent_dropout {
            true => {
                let drop = drop_mask(rec.batch, rec.steps, rec.units).into_iter().map(f64::from).collect();
                (vec![rec.batch, rec.steps, rec.units], Fill::Fixed(drop), false)
            }
            false => empty(),
        },
    ]
}

/// z and the recurrent kernel in, the loop, then `parts` gathered (several are summed after
/// flattening, so every gradient path is exercised).
fn loop_graph(rec: Recurrence, parts: &'static [SequencePart]) -> impl Fn(&mut Graph, &[NodeId]) -> NodeId {
    move |g, x| {
        let s = op(g, Op::Recurrent(rec), &x[..5]);
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
            for parts in [&[Last][..], &[Sequence][..], &[Sequence, Last][..], &[InputOrder][..]] {
                let build = loop_graph(rec, parts);
                check_graph(&name, &inputs, &build);
            }
        }
    }
}

#[test]
fn lstm_and_gru_loops_have_the_right_gradient_through_time() {
    use SequencePart::*;
    for (cell, backwards) in [
        (RecurrentCell::Lstm, false),
        (RecurrentCell::Lstm, true),
        (RecurrentCell::Gru, false),
        (RecurrentCell::Gru, true),
    ] {
        for (batch, steps, units) in [(2, 3, 2), (1, 1, 3), (1, 4, 1)] {
            let rec = looped(cell, batch, steps, units, backwards);
            let name = format!("{cell:?} backwards {backwards} {batch}×{steps}×{units}");
            for parts in [&[Last][..], &[Sequence, Last][..]] {
                check_graph(&name, &loop_inputs(&rec), &loop_graph(rec, parts));
            }
        }
    }
}

/// The LSTM's final state as Keras's `return_state` gives it: h (`Last`) and the cell state c
/// (`LastCell`, the c columns of the last processing step), with their gradients through time,
/// masked and backwards too; a cell without a cell state is an error.
#[test]
fn the_lstm_final_cell_state_has_the_right_gradient() {
    use SequencePart::*;
    for (backwards, masked) in [(false, false), (true, false), (false, true), (true, true)] {
        let rec = Recurrence { masked, ..looped(RecurrentCell::Lstm, 3, 4, 2, backwards) };
        let name = format!("LSTM final state, backwards {backwards} masked {masked}");
        for parts in [&[LastCell][..], &[Last, LastCell][..], &[LastCell, Sequence][..]] {
            check_graph(&name, &loop_inputs(&rec), &loop_graph(rec, parts));
        }
    }
    let mut g = Graph::new();
    let rec = looped(RecurrentCell::Gru, 2, 3, 2, false);
    let s = g.input("s", &[rec.steps, rec.batch, rec.width()]);
    let e = g.add(Op::RecurrentGather { rec, part: LastCell }, &[s], "gru").unwrap_err().to_string();
    assert!(e.contains("only an LSTM has a cell state"), "{e}");
}

/// Recurrent dropout (h_{t−1} times a per-sequence mask before the product), with and
/// without a mask: every cell, both directions.
#[test]
fn loops_with_recurrent_dropout_have_the_right_gradient() {
    use SequencePart::*;
    let cells =
        [RecurrentCell::Simple { activation: Some(UnaryOp::Tanh) }, RecurrentCell::Lstm, RecurrentCell::Gru];
    for cell in cells {
        for (backwards, masked) in [(false, false), (true, true)] {
            let rec = Recurrence { masked, recurrent_dropout: true, ..looped(cell, 3, 4, 3, backwards) };
            let name = format!("dropped {cell:?} backwards {backwards} masked {masked}");
            check_graph(&name, &loop_inputs(&rec), &loop_graph(rec, &[Sequence, Last]));
        }
    }
}

/// Masked batches of mixed lengths (and a gap): every cell, both directions, every gather.
#[test]
fn masked_loops_have_the_right_gradient_and_none_at_padding() {
    use SequencePart::*;
    let cells =
        [RecurrentCell::Simple { activation: Some(UnaryOp::Tanh) }, RecurrentCell::Lstm, RecurrentCell::Gru];
    for cell in cells {
        for backwards in [false, true] {
            let rec = Recurrence { masked: true, ..looped(cell, 3, 4, 2, backwards) };
            let name = format!("masked {cell:?} backwards {backwards}");
            for parts in [&[Last][..], &[Sequence, Last][..]] {
                check_graph(&name, &loop_inputs(&rec), &loop_graph(rec, parts));
            }
            // The projection's gradient is exactly zero at every padded step.
            let dz = projection_gradient(&rec);
            let mask = mixed_mask(rec.batch, rec.steps);
            let g = rec.gates() * rec.units;
            for (row, &m) in mask.iter().enumerate() {
                let grads = &dz[row * g..(row + 1) * g];
                if m == 0.0 {
                    assert!(grads.iter().all(|&v| v == 0.0), "{name}: row {row} is padding: {grads:?}");
                } else {
                    assert!(grads.iter().any(|&v| v != 0.0), "{name}: row {row} is data: {grads:?}");
                }
            }
        }
    }
}

/// d Σ(Sequence outputs)/dz for random z and u on the CPU, f32.
fn projection_gradient(rec: &Recurrence) -> Vec<f32> {
    use kiln::backend::cpu::{Arenas, execute};
    use kiln::graph::autodiff::gradients;
    use kiln::graph::plan::{PlanSpec, plan};
    let mut r = rng(53);
    let mut g = Graph::new();
    let shapes = rec.input_shapes();
    let inputs: Vec<NodeId> = shapes.iter().enumerate().map(|(i, s)| g.input(&format!("in{i}"), s)).collect();
    let s = op(&mut g, Op::Recurrent(*rec), &inputs);
    let y = op(&mut g, Op::RecurrentGather { rec: *rec, part: SequencePart::Sequence }, &[s]);
    let seed = g.input("seed", g.shape(y).to_vec().as_slice());
    let dz = gradients(&mut g, y, seed, &[inputs[0]]).unwrap()[0];
    let mut spec = PlanSpec { inputs: inputs.clone(), ..Default::default() };
    spec.inputs.push(seed);
    spec.outputs.push(("dz".into(), dz));
    let program = plan(&g, &spec).unwrap();
    let mut arenas = Arenas::<f32>::new(&kiln::program::ResidentLayout::default(), program.work_len);
    let values = [
        uniform(&mut r, rec.z_len(), -1.0, 1.0),
        uniform(&mut r, rec.kernel_len(), -1.0, 1.0),
        uniform(&mut r, shapes[2].iter().product(), -1.0, 1.0),
        mixed_mask(rec.batch, rec.steps),
        Vec::new(),
        vec![1.0; rec.part_len(SequencePart::Sequence)],
    ];
    for ((_, b), v) in program.inputs.iter().zip(&values) {
        arenas.set(*b, v);
    }
    execute(&program.steps, &mut arenas, kiln::program::StepScalars::default());
    arenas.get(program.output("dz").unwrap())
}

/// Row (a GRU's two biases are rows of one parameter) and its gradient, PlaceRow.
#[test]
fn rows_and_placed_rows_have_the_right_gradient() {
    check_graph("row", &[rand_in(&[3, 4])], &|g, x| {
        let r = op(g, Op::Row { index: 1 }, &[x[0]]);
        op(g, Op::Unary(UnaryOp::Tanh), &[r])
    });
    check_graph("place row", &[rand_in(&[4])], &|g, x| {
        let r = op(g, Op::PlaceRow { index: 2, rows: 3 }, &[x[0]]);
        op(g, Op::Unary(UnaryOp::Sigmoid), &[r])
    });
    let mut r = rng(52);
    let mut b = Builder::default();
    let x = b.input(uniform(&mut r, 5, -1.0, 1.0));
    b.op(Kernel::PlaceRow { rows: 3, cols: 5, index: 1 }, &[x], 15);
    check(&b, 0.0);
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
        (RecurrentCell::Gru, false),
        (RecurrentCell::Gru, true),
    ];
    for &(batch, steps, units) in &[(1, 1, 1), (5, 7, 3), (2, 29, 17), (3, 7, 65), (1, 29, 1)] {
        for ((cell, backwards), masked) in cells.into_iter().flat_map(|c| [(c, false), (c, true)]) {
            let recurrent_dropout = masked != backwards;
            let rec =
                Recurrence { masked, recurrent_dropout, ..looped(cell, batch, steps, units, backwards) };
            let z = b.input(uniform(&mut r, rec.z_len(), -1.0, 1.0));
            let scale = 1.0 / (units as f32).sqrt();
            let uv = uniform(&mut r, rec.kernel_len(), -scale, scale);
            let u = b.input(uv.clone());
            let g = rec.gates() * units;
            let bias = if rec.has_recurrent_bias() { uniform(&mut r, g, -0.5, 0.5) } else { Vec::new() };
            let mask = if rec.masked { mixed_mask(batch, steps) } else { Vec::new() };
            let zv = b.data[b.data.len() - 2].clone();
            let drop = if recurrent_dropout { drop_mask(batch, steps, units) } else { Vec::new() };
            let (bb, mm, dd) = (b.input(bias.clone()), b.input(mask.clone()), b.input(drop.clone()));
            b.op(Kernel::RecurrentForward { rec }, &[z, u, bb, mm, dd], rec.state_len());
            // A forward state computed on the CPU feeds the backward on both.
            let mut s = vec![0.0f32; rec.state_len()];
            kiln::backend::cpu::recurrent::forward(&rec, &zv, &uv, &bias, &mask, &drop, &mut s);
            let s = b.input(s);
            let ds = b.input(uniform(&mut r, rec.state_len(), -1.0, 1.0));
            b.op(Kernel::RecurrentBackward { rec }, &[s, u, ds, mm, dd], rec.z_len());
            let dz = b.input(uniform(&mut r, rec.z_len(), -1.0, 1.0));
            b.op(Kernel::RecurrentGateGrad { rec }, &[s, dz], rec.z_len());
            let cell_state = (rec.cell == RecurrentCell::Lstm).then_some(SequencePart::LastCell);
            for part in
                [SequencePart::Sequence, SequencePart::Last, SequencePart::Previous, SequencePart::InputOrder]
                    .into_iter()
                    .chain(cell_state)
            {
                b.op(Kernel::RecurrentGather { rec, part }, &[s], rec.part_len(part));
                let dy = b.input(uniform(&mut r, rec.part_len(part), -1.0, 1.0));
                b.op(Kernel::RecurrentScatter { rec, part }, &[dy], rec.state_len());
            }
        }
    }
    check(&b, 1e-4);
}

mod layers {
    use kiln::{
        Activation, CompileOptions, Dense, Device, Gru, Loss, Lstm, Masking, Model, Optimizer, Sequential,
        SimpleRnn, Tensor,
    };

    use crate::common::{self, rng, uniform};

    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// x·W for a row x and a [in, out] matrix W (row-major).
    fn row_times(x: &[f64], w: &[f32], out: usize) -> Vec<f64> {
        (0..out).map(|j| x.iter().enumerate().map(|(k, xk)| xk * f64::from(w[k * out + j])).sum()).collect()
    }

    fn compiled(layer: impl kiln::Layer + 'static, input: &[usize], device: Device) -> Sequential {
        let mut m = Sequential::new(input).with_seed(9).add(layer);
        m.compile(CompileOptions::new(Optimizer::sgd(0.1), Loss::MeanSquaredError, device)).unwrap();
        m
    }

    fn weights(m: &mut Model) -> Vec<Vec<f32>> {
        m.get_weights().unwrap().into_iter().map(|(_, t)| t.data).collect()
    }

    /// Two steps of SimpleRNN and LSTM by Keras's formulas, in f64, against `predict`.
    #[test]
    fn two_steps_follow_keras_formulas() {
        let x = [[0.5, -1.0, 0.25], [1.5, 0.5, -0.75]];
        let input = Tensor::new(&[1, 2, 3], x.iter().flatten().map(|&v| v as f32).collect()).unwrap();
        for backwards in [false, true] {
            let order: Vec<usize> = if backwards { vec![1, 0] } else { vec![0, 1] };
            // SimpleRNN(2): h_t = tanh(x_t·W + h_{t−1}·U + b).
            let mut m = compiled(SimpleRnn::new(2).go_backwards(backwards), &[2, 3], Device::Cpu);
            let mut w = m.get_weights().unwrap();
            w[2].1.data = vec![0.1, -0.2]; // a nonzero bias
            m.set_weights(&w).unwrap();
            let [kernel, recurrent, bias] = [&w[0].1.data, &w[1].1.data, &w[2].1.data];
            let mut h = vec![0.0f64; 2];
            for &t in &order {
                let a = row_times(&x[t], kernel, 2);
                let r = row_times(&h, recurrent, 2);
                h = (0..2).map(|j| (a[j] + r[j] + f64::from(bias[j])).tanh()).collect();
            }
            let y = m.predict(&input, 1).unwrap();
            for j in 0..2 {
                assert!(
                    (f64::from(y.data[j]) - h[j]).abs() < 1e-6,
                    "SimpleRNN {backwards}: {:?} vs {h:?}",
                    y.data
                );
            }
            // LSTM(2): gates i, f, c, o in the kernel's column blocks.
            let mut m = compiled(Lstm::new(2).go_backwards(backwards), &[2, 3], Device::Cpu);
            let w = weights(&mut m);
            assert_eq!(w[2], [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0], "unit_forget_bias");
            let (mut h, mut c) = (vec![0.0f64; 2], vec![0.0f64; 2]);
            for &t in &order {
                let a = row_times(&x[t], &w[0], 8);
                let r = row_times(&h, &w[1], 8);
                let gate = |q: usize, j: usize| a[q * 2 + j] + r[q * 2 + j] + f64::from(w[2][q * 2 + j]);
                for j in 0..2 {
                    let (i, f, g, o) =
                        (sigmoid(gate(0, j)), sigmoid(gate(1, j)), gate(2, j).tanh(), sigmoid(gate(3, j)));
                    c[j] = f * c[j] + i * g;
                    h[j] = o * c[j].tanh();
                }
            }
            let y = m.predict(&input, 1).unwrap();
            for j in 0..2 {
                assert!(
                    (f64::from(y.data[j]) - h[j]).abs() < 1e-6,
                    "LSTM {backwards}: {:?} vs {h:?}",
                    y.data
                );
            }
            // GRU(2), reset_after: gates z, r, h; bias [2, 6] = input bias, recurrent bias.
            let mut m = compiled(Gru::new(2).go_backwards(backwards), &[2, 3], Device::Cpu);
            let mut wt = m.get_weights().unwrap();
            assert_eq!(wt[2].1.shape, [2, 6]);
            wt[2].1.data = (0..12).map(|i| 0.05 * i as f32 - 0.3).collect();
            m.set_weights(&wt).unwrap();
            let w: Vec<Vec<f32>> = wt.into_iter().map(|(_, t)| t.data).collect();
            let mut h = vec![0.0f64; 2];
            for &t in &order {
                let a = row_times(&x[t], &w[0], 6);
                let q = row_times(&h, &w[1], 6);
                let (bi, br) = (|k: usize| f64::from(w[2][k]), |k: usize| f64::from(w[2][6 + k]));
                h = (0..2)
                    .map(|j| {
                        let z = sigmoid(a[j] + bi(j) + q[j] + br(j));
                        let r = sigmoid(a[2 + j] + bi(2 + j) + q[2 + j] + br(2 + j));
                        let hh = (a[4 + j] + bi(4 + j) + r * (q[4 + j] + br(4 + j))).tanh();
                        z * h[j] + (1.0 - z) * hh
                    })
                    .collect();
            }
            let y = m.predict(&input, 1).unwrap();
            for j in 0..2 {
                assert!((f64::from(y.data[j]) - h[j]).abs() < 1e-6, "GRU {backwards}: {:?} vs {h:?}", y.data);
            }
        }
    }

    #[test]
    fn parameter_counts_equal_keras_and_recurrent_kernels_are_orthogonal() {
        // Keras: SimpleRNN(u) on d features has d·u + u·u + u parameters; LSTM 4·(d·u + u·u + u).
        let mut m = Sequential::new(&[29, 12]).add(Lstm::new(64)).add(Dense::new(9, Activation::Softmax));
        m.compile(CompileOptions::new(
            Optimizer::adam(1e-3),
            Loss::SparseCategoricalCrossentropy,
            Device::Cpu,
        ))
        .unwrap();
        assert_eq!(m.param_count().unwrap(), 19_712 + 64 * 9 + 9);
        let summary = m.summary().unwrap();
        assert!(summary.contains("lstm (LSTM)") && summary.contains("19712"), "{summary}");
        let m = Sequential::new(&[7, 3]).add(SimpleRnn::new(5).return_sequences(true)).add(SimpleRnn::new(4));
        assert_eq!(m.param_count().unwrap(), (3 * 5 + 25 + 5) + (5 * 4 + 16 + 4));
        // GRU (reset_after): 3·(d·u + u·u + 2u).
        let m = Sequential::new(&[7, 12]).add(Gru::new(64));
        assert_eq!(m.param_count().unwrap(), 3 * (12 * 64 + 64 * 64 + 2 * 64));
        // U [u, 4u] has orthonormal rows: U·Uᵀ = I.
        let mut m = compiled(Lstm::new(6), &[4, 3], Device::Cpu);
        let u = &weights(&mut m)[1];
        for a in 0..6 {
            for b in 0..6 {
                let dot: f32 = (0..24).map(|k| u[a * 24 + k] * u[b * 24 + k]).sum();
                assert!((dot - if a == b { 1.0 } else { 0.0 }).abs() < 1e-5, "U·Uᵀ[{a},{b}] = {dot}");
            }
        }
    }

    /// Stacked recurrent layers (a returned sequence feeding the next) train the same on the
    /// GPU as on the CPU, one step.
    #[test]
    fn a_training_step_of_stacked_recurrent_layers_matches_between_gpu_and_cpu() {
        if common::gpu().is_none() {
            return;
        }
        let mut r = rng(61);
        let (rows, steps, features) = (6, 5, 3);
        let x = Tensor::new(&[rows, steps, features], uniform(&mut r, rows * steps * features, -1.0, 1.0))
            .unwrap();
        let y = Tensor::new(&[rows], (0..rows).map(|i| (i % 3) as f32).collect()).unwrap();
        let build = |device| {
            let mut m = Sequential::new(&[steps, features])
                .with_seed(4)
                .add(SimpleRnn::new(7).return_sequences(true).go_backwards(true))
                .add(Gru::new(6).return_sequences(true))
                .add(Lstm::new(5))
                .add(Dense::new(3, Activation::Softmax));
            let opts =
                CompileOptions::new(Optimizer::adam(1e-2), Loss::SparseCategoricalCrossentropy, device);
            m.compile(opts).unwrap();
            m
        };
        let (mut cpu, mut gpu) = (build(Device::Cpu), build(Device::Gpu(None)));
        common::fit_both_and_compare(&mut cpu, &mut gpu, &x, &y, 2, "");
    }

    /// Keras masking: padding at the end changes nothing — the last output is the last valid
    /// step's, a returned sequence repeats it over the padding — in both directions, for every
    /// cell, on every device.
    #[test]
    fn padded_steps_behind_a_masking_layer_change_nothing() {
        let mut r = rng(62);
        let (steps, pad, features) = (3, 2, 4);
        let data = uniform(&mut r, steps * features, -1.0, 1.0);
        let mut padded = data.clone();
        padded.extend(vec![0.0; pad * features]);
        let x = Tensor::new(&[1, steps, features], data).unwrap();
        let x_padded = Tensor::new(&[1, steps + pad, features], padded).unwrap();
        type Make = fn(bool, bool) -> Box<dyn kiln::Layer>;
        let layers: [(&str, Make); 3] = [
            ("SimpleRNN", |seq, back| Box::new(SimpleRnn::new(5).return_sequences(seq).go_backwards(back))),
            ("LSTM", |seq, back| Box::new(Lstm::new(5).return_sequences(seq).go_backwards(back))),
            ("GRU", |seq, back| Box::new(Gru::new(5).return_sequences(seq).go_backwards(back))),
        ];
        for device in common::devices() {
            for (name, make) in layers {
                for back in [false, true] {
                    let compile = |m: Sequential| {
                        let mut m = m;
                        m.compile(CompileOptions::new(Optimizer::sgd(0.1), Loss::MeanSquaredError, device))
                            .unwrap();
                        m
                    };
                    let mut plain = compile(
                        Sequential::new(&[steps, features]).with_seed(3).add_boxed(make(false, back)),
                    );
                    let mut masked = compile(
                        Sequential::new(&[steps + pad, features])
                            .with_seed(3)
                            .add(Masking { mask_value: 0.0 })
                            .add_boxed(make(false, back)),
                    );
                    masked.set_weights(&plain.get_weights().unwrap()).unwrap();
                    let (a, b) = (plain.predict(&x, 1).unwrap(), masked.predict(&x_padded, 1).unwrap());
                    let worst = a.data.iter().zip(&b.data).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
                    assert!(
                        worst < 1e-6,
                        "{name} backwards {back} on {device:?}: {:?} vs {:?}",
                        a.data,
                        b.data
                    );
                    if !back {
                        // The returned sequence repeats the last valid output over the padding.
                        let mut seq = compile(
                            Sequential::new(&[steps + pad, features])
                                .with_seed(3)
                                .add(Masking { mask_value: 0.0 })
                                .add_boxed(make(true, back)),
                        );
                        seq.set_weights(&plain.get_weights().unwrap()).unwrap();
                        let y = seq.predict(&x_padded, 1).unwrap();
                        for t in steps..steps + pad {
                            assert_eq!(
                                &y.data[t * 5..(t + 1) * 5],
                                &a.data[..5],
                                "{name}: step {t} repeats the last"
                            );
                        }
                    }
                }
            }
        }
    }
}
