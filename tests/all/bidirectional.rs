//! Bidirectional recurrent layers: each half is the wrapped layer over the sequence (forwards,
//! and backwards with its own weights), a returned backward sequence comes back in time order,
//! the merge modes follow Keras, and the column join they use has the right gradient on both
//! backends.
use kiln::graph::Op;
use kiln::program::Kernel;
use kiln::{
    Activation, Bidirectional, CompileOptions, Dense, Device, Gru, Loss, Lstm, Masking, MergeMode, Optimizer,
    Sequential, Tensor,
};

use crate::common::{self, rng, uniform};
use crate::gpu_parity::{Builder, check};
use crate::gradcheck::{check_graph, op, rand_in};

fn compiled(m: Sequential, device: Device) -> Sequential {
    let mut m = m;
    m.compile(CompileOptions::new(Optimizer::sgd(0.1), Loss::MeanSquaredError, device)).unwrap();
    m
}

/// The weights of one half, renamed as a plain layer's (`lstm.kernel`, …).
fn half(weights: &[(String, Tensor)], prefix: &str, layer: &str) -> Vec<(String, Tensor)> {
    weights
        .iter()
        .filter_map(|(n, t)| {
            let short = n.split_once('.')?.1.strip_prefix(prefix)?;
            Some((format!("{layer}.{short}"), t.clone()))
        })
        .collect()
}

#[test]
fn each_half_is_the_wrapped_layer_and_the_merge_modes_follow_keras() {
    let mut r = rng(71);
    let (steps, features, units) = (4, 3, 5);
    let x = Tensor::new(&[2, steps, features], uniform(&mut r, 2 * steps * features, -1.0, 1.0)).unwrap();
    for sequences in [false, true] {
        let lstm = || Lstm::new(units).return_sequences(sequences);
        let mut bi = compiled(
            Sequential::new(&[steps, features]).with_seed(2).add(Bidirectional::new(lstm())),
            Device::Cpu,
        );
        let w = bi.get_weights().unwrap();
        assert_eq!(w.len(), 6);
        assert_eq!(bi.param_count().unwrap(), 2 * 4 * (features * units + units * units + units));
        let mut fwd = compiled(Sequential::new(&[steps, features]).add(lstm()), Device::Cpu);
        fwd.set_weights(&half(&w, "forward_", "lstm")).unwrap();
        let mut bwd =
            compiled(Sequential::new(&[steps, features]).add(lstm().go_backwards(true)), Device::Cpu);
        bwd.set_weights(&half(&w, "backward_", "lstm")).unwrap();
        let (y, f, b) =
            (bi.predict(&x, 2).unwrap(), fwd.predict(&x, 2).unwrap(), bwd.predict(&x, 2).unwrap());
        let rows = if sequences { 2 * steps } else { 2 };
        assert_eq!(y.shape.last(), Some(&(2 * units)), "concat doubles the units");
        for row in 0..rows {
            // The backward half, in time order: Keras's go_backwards sequence reversed.
            let b_row = if sequences { (row / steps) * steps + steps - 1 - row % steps } else { row };
            let got = &y.data[row * 2 * units..(row + 1) * 2 * units];
            assert_eq!(&got[..units], &f.data[row * units..(row + 1) * units], "forward half, row {row}");
            assert_eq!(
                &got[units..],
                &b.data[b_row * units..(b_row + 1) * units],
                "backward half, row {row}"
            );
        }
        for (mode, merge) in [
            (MergeMode::Sum, (|a, b| a + b) as fn(f32, f32) -> f32),
            (MergeMode::Mul, |a, b| a * b),
            (MergeMode::Ave, |a, b| 0.5 * (a + b)),
        ] {
            let layer = Bidirectional::new(lstm()).merge_mode(mode);
            let mut m = compiled(Sequential::new(&[steps, features]).with_seed(2).add(layer), Device::Cpu);
            m.set_weights(&w).unwrap();
            let y = m.predict(&x, 2).unwrap();
            for row in 0..rows {
                let b_row = if sequences { (row / steps) * steps + steps - 1 - row % steps } else { row };
                for j in 0..units {
                    let want = merge(f.data[row * units + j], b.data[b_row * units + j]);
                    assert!((y.data[row * units + j] - want).abs() < 1e-6, "{mode:?} row {row}");
                }
            }
        }
    }
}

#[test]
fn joining_columns_has_the_right_gradient_on_both_backends() {
    check_graph("concat columns", &[rand_in(&[2, 3, 4]), rand_in(&[2, 3, 2])], &|g, x| {
        op(g, Op::ConcatColumns, x)
    });
    let mut r = rng(72);
    let mut b = Builder::default();
    for (rows, a_cols, b_cols) in [(1, 1, 1), (7, 5, 3), (300, 17, 64)] {
        let a = b.input(uniform(&mut r, rows * a_cols, -1.0, 1.0));
        let c = b.input(uniform(&mut r, rows * b_cols, -1.0, 1.0));
        b.op(Kernel::ConcatColumns { rows, a_cols, b_cols }, &[a, c], rows * (a_cols + b_cols));
        let cols = a_cols + b_cols;
        let x = b.input(uniform(&mut r, rows * cols, -1.0, 1.0));
        b.op(Kernel::SliceColumns { rows, cols, start: a_cols, len: b_cols }, &[x], rows * b_cols);
    }
    check(&b, 0.0);
}

/// A masked bidirectional GRU returning sequences, then an LSTM: a training step GPU = CPU.
#[test]
fn a_masked_bidirectional_training_step_matches_between_gpu_and_cpu() {
    if common::gpu().is_none() {
        return;
    }
    let mut r = rng(73);
    let (rows, steps, features) = (5, 6, 3);
    let mut data = uniform(&mut r, rows * steps * features, -1.0, 1.0);
    for b in 0..rows {
        for t in steps - b % 3..steps {
            data[(b * steps + t) * features..][..features].fill(0.0);
        }
    }
    let x = Tensor::new(&[rows, steps, features], data).unwrap();
    let y = Tensor::new(&[rows], (0..rows).map(|i| (i % 2) as f32).collect()).unwrap();
    let build = |device| {
        let mut m = Sequential::new(&[steps, features])
            .with_seed(8)
            .add(Masking { mask_value: 0.0 })
            .add(Bidirectional::new(Gru::new(4).return_sequences(true)))
            .add(Bidirectional::new(Lstm::new(3)).merge_mode(MergeMode::Ave))
            .add(Dense::new(2, Activation::Softmax));
        let opts = CompileOptions::new(Optimizer::adam(1e-2), Loss::SparseCategoricalCrossentropy, device);
        m.compile(opts).unwrap();
        m
    };
    let (mut cpu, mut gpu) = (build(Device::Cpu), build(Device::Gpu(None)));
    common::fit_both_and_compare(&mut cpu, &mut gpu, &x, &y, 2, "");
}

/// A sequence model's description (`Sequential::config`) reads back as the same model, and a
/// TOML model file takes the same keys.
#[test]
fn sequence_models_round_trip_through_model_files() {
    let m = Sequential::new(&[6, 3])
        .add(Masking { mask_value: 0.0 })
        .add(Bidirectional::new(Gru::new(4).return_sequences(true)).merge_mode(MergeMode::Sum))
        .add(kiln::SimpleRnn::new(3).activation(Activation::Relu).go_backwards(true))
        .add(Dense::new(2, Activation::Softmax));
    let config = m.config();
    let back = kiln::model::spec::parse_model(&config).unwrap().into_model(&[6, 3], 0);
    assert_eq!(back.config(), config);
    assert_eq!(back.param_count().unwrap(), m.param_count().unwrap());
    let toml = "[[layers]]\ntype = \"Bidirectional\"\nmerge_mode = \"concat\"\nlayer = { type = \"LSTM\", units = 8 }\n";
    let dir = common::TempDir::new("bidirectional-toml");
    std::fs::write(dir.join("bi.toml"), toml).unwrap();
    let spec = kiln::model::spec::load_model_file(&dir.join("bi.toml")).unwrap();
    assert!(spec.wants_sequences());
    assert_eq!(spec.into_model(&[5, 2], 0).param_count().unwrap(), 2 * 4 * (2 * 8 + 8 * 8 + 8));
    let bad =
        serde_json::json!({"layers": [{"type": "Bidirectional", "layer": {"type": "Dense", "units": 3}}]});
    let e = kiln::model::spec::parse_model(&bad).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("wraps a SimpleRNN, LSTM or GRU"), "{e}");
}

/// With a mask, a Bidirectional returning sequences gives zeros at the masked steps (Keras)
/// and, at the valid ones, what the same weights give on the unpadded sequence.
#[test]
fn masked_bidirectional_sequences_are_zero_at_the_padding() {
    let (steps, valid, features) = (5, 3, 2);
    let mut data = uniform(&mut rng(21), steps * features, -1.0, 1.0);
    data[valid * features..].fill(0.0);
    let layer = || Bidirectional::new(Lstm::new(3).return_sequences(true));
    let mut padded = compiled(
        Sequential::new(&[steps, features]).with_seed(4).add(Masking { mask_value: 0.0 }).add(layer()),
        Device::Cpu,
    );
    let mut short = compiled(Sequential::new(&[valid, features]).with_seed(9).add(layer()), Device::Cpu);
    // Both layers are named "bidirectional": the weights carry over by name.
    short.set_weights(&padded.get_weights().unwrap()).unwrap();
    let p = padded.predict(&Tensor::new(&[1, steps, features], data.clone()).unwrap(), 1).unwrap();
    let q = short
        .predict(&Tensor::new(&[1, valid, features], data[..valid * features].to_vec()).unwrap(), 1)
        .unwrap();
    assert!(p.data[valid * 6..].iter().all(|&v| v == 0.0), "masked steps: {:?}", &p.data[valid * 6..]);
    for (a, b) in p.data[..valid * 6].iter().zip(&q.data) {
        assert!((a - b).abs() < 1e-6, "valid steps: {a} vs {b}");
    }
}
