//! Conv1D and the mask-aware GlobalAveragePooling1D / GlobalMaxPooling1D: f64 gradients with
//! and without a mask (a sample with no valid step included), values against hand-computed
//! ones, Keras's parameter counts, model files, and a training step GPU = CPU.
use std::cell::RefCell;

use kiln::graph::{Graph, NodeId};
use kiln::nn::BuildContext;
use kiln::{
    Activation, CompileOptions, Conv1D, Dense, Device, Embedding, GlobalAveragePooling1D, GlobalMaxPooling1D,
    Layer, Loss, Optimizer, Padding, Sequential, Tensor,
};

use crate::common::{self, rng, uniform};
use crate::gradcheck::{Fill, check_graph, rand_in};

/// A `[2, 4]` mask: sample 0 keeps steps 0 and 2, sample 1 none.
const MASK: [f64; 8] = [1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0];

fn build(layer: &dyn Layer, g: &mut Graph, x: &[NodeId], masked: bool) -> NodeId {
    let updates = RefCell::new(Vec::new());
    let params = &x[1 + usize::from(masked)..];
    let ctx = BuildContext {
        name: "layer",
        params,
        activation: true,
        training: true,
        seed: 0,
        updates: &updates,
        mask: masked.then(|| x[1]),
    };
    layer.build(g, x[0], &ctx).unwrap()
}

#[test]
fn global_pooling_1d_has_the_right_gradient_with_and_without_a_mask() {
    for (name, layer) in
        [("average", &GlobalAveragePooling1D as &dyn Layer), ("max", &GlobalMaxPooling1D as &dyn Layer)]
    {
        check_graph(name, &[rand_in(&[2, 4, 3])], &|g, x| build(layer, g, x, false));
        let inputs = [rand_in(&[2, 4, 3]), (vec![2, 4], Fill::Fixed(MASK.to_vec()), false)];
        check_graph(name, &inputs, &|g, x| build(layer, g, x, true));
    }
}

#[test]
fn conv1d_has_the_right_gradient() {
    let layer = Conv1D::new(3, 3, Activation::Tanh).padding(Padding::Same).strides(2);
    let inputs = [rand_in(&[2, 7, 4]), rand_in(&[3, 4, 3]), rand_in(&[3])];
    check_graph("conv1d", &inputs, &|g, x| build(&layer, g, x, false));
}

/// The masked pools over valid steps only, as Keras's GlobalAveragePooling1D: a two-sample
/// batch through `Embedding(mask_zero)` (ids 0 are padding) on the CPU.
#[test]
fn masked_pools_read_only_the_valid_steps() {
    let ids = Tensor::new(&[2, 4], vec![1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0]).unwrap();
    for max in [false, true] {
        let mut m = Sequential::new(&[4]).add(Embedding::new(3, 2).mask_zero(true));
        m = if max { m.add(GlobalMaxPooling1D) } else { m.add(GlobalAveragePooling1D) };
        let opts = CompileOptions::new(Optimizer::sgd(0.1), Loss::MeanSquaredError, Device::Cpu);
        m.compile(opts).unwrap();
        let table = m.get_weights().unwrap()[0].1.data.clone();
        let p = m.predict(&ids, 2).unwrap();
        let (e1, e2) = (&table[2..4], &table[4..6]);
        let want: Vec<f32> = (0..2)
            .map(|j| if max { e1[j].max(e2[j]) } else { (e1[j] + e2[j]) / 2.0 })
            .chain([0.0, 0.0])
            .collect();
        assert_eq!(p.data, want, "max {max}: the padding (ids 0) is not read; no valid step gives 0");
    }
}

/// Conv1D is a convolution along the steps with Keras's kernel `[k, in, filters]`, checked
/// against a direct loop; parameter counts as Keras's.
#[test]
fn conv1d_matches_a_direct_convolution_and_keras_counts() {
    let (t, f, filters, k) = (9, 3, 4, 3);
    let mut m = Sequential::new(&[t, f]).add(Conv1D::new(filters, k, Activation::Linear).strides(2));
    assert_eq!(m.output_shapes().unwrap(), vec![vec![4, 4]]);
    assert_eq!(m.param_count().unwrap(), k * f * filters + filters, "Keras: k·in·filters + filters");
    m.compile(CompileOptions::new(Optimizer::sgd(0.1), Loss::MeanSquaredError, Device::Cpu)).unwrap();
    let w = m.get_weights().unwrap();
    assert_eq!(w[0].1.shape, vec![k, f, filters]);
    let (kernel, bias) = (&w[0].1.data, &w[1].1.data);
    let x = Tensor::new(&[1, t, f], uniform(&mut rng(4), t * f, -1.0, 1.0)).unwrap();
    let p = m.predict(&x, 1).unwrap();
    for o in 0..4 {
        for c in 0..filters {
            let mut want = bias[c];
            for d in 0..k {
                for i in 0..f {
                    want += x.data[(2 * o + d) * f + i] * kernel[(d * f + i) * filters + c];
                }
            }
            let got = p.data[o * filters + c];
            assert!((got - want).abs() < 1e-5, "step {o} filter {c}: {got} vs {want}");
        }
    }
    let e = Sequential::new(&[2, 3]).add(Conv1D::new(2, 5, Activation::Linear)).output_shapes();
    let e = e.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("Conv1D"), "{e}");
}

/// The new layers in model files (Keras keys; TimeDistributed(Dense) is Dense on every step).
#[test]
fn sequence_layers_read_from_model_files() {
    let toml = r#"
[[layers]]
type = "Conv1D"
filters = 8
kernel_size = 3
padding = "same"
activation = "relu"

[[layers]]
type = "TimeDistributed"
layer = { type = "Dense", units = 5, activation = "tanh" }

[[layers]]
type = "GlobalMaxPooling1D"

[[layers]]
type = "Dense"
units = 2
activation = "softmax"
"#;
    let dir = common::TempDir::new("sequence-layers-toml");
    std::fs::write(dir.join("m.toml"), toml).unwrap();
    let spec = kiln::model::spec::load_model_file(&dir.join("m.toml")).unwrap();
    assert!(spec.wants_sequences());
    let m = spec.into_model(&[10, 4], 0);
    assert_eq!(m.output_shapes().unwrap(), vec![vec![10, 8], vec![10, 5], vec![5], vec![2]]);
    assert_eq!(m.param_count().unwrap(), (3 * 4 * 8 + 8) + (8 * 5 + 5) + (5 * 2 + 2));
    let config = m.config();
    let back = kiln::model::spec::parse_model(&config).unwrap().into_model(&[10, 4], 0);
    assert_eq!(back.config(), config);
    let bad =
        serde_json::json!({"layers": [{"type": "TimeDistributed", "layer": {"type": "LSTM", "units": 3}}]});
    let e = kiln::model::spec::parse_model(&bad).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("a Dense table"), "{e}");
}

/// Embedding(mask_zero) → Conv1D → masked max pool → Dense: a training step GPU = CPU.
#[test]
fn a_conv1d_text_classifier_training_step_matches_between_gpu_and_cpu() {
    if common::gpu().is_none() {
        return;
    }
    let (n, steps) = (6, 11);
    let ids: Vec<f32> = (0..n * steps)
        .map(|i| if i % steps >= steps - i / steps { 0.0 } else { (i % 7 + 1) as f32 })
        .collect();
    let x = Tensor::new(&[n, steps], ids).unwrap();
    let y = Tensor::new(&[n], (0..n).map(|i| (i % 2) as f32).collect()).unwrap();
    let model = |device| {
        let mut m = Sequential::new(&[steps])
            .with_seed(3)
            .add(Embedding::new(8, 5))
            .add(Conv1D::new(6, 3, Activation::Relu).padding(Padding::Same))
            .add(GlobalAveragePooling1D)
            .add(Dense::new(2, Activation::Softmax));
        m.compile(CompileOptions::new(Optimizer::sgd(0.3), Loss::SparseCategoricalCrossentropy, device))
            .unwrap();
        m
    };
    let (mut cpu, mut gpu) = (model(Device::Cpu), model(Device::Gpu(None)));
    common::fit_both_and_compare(&mut cpu, &mut gpu, &x, &y, 3, "conv1d classifier: ");
    let masked = |device| {
        let mut m = Sequential::new(&[steps])
            .with_seed(3)
            .add(Embedding::new(8, 5).mask_zero(true))
            .add(kiln::Lstm::new(4).return_sequences(true))
            .add(GlobalMaxPooling1D)
            .add(Dense::new(2, Activation::Softmax));
        m.compile(CompileOptions::new(Optimizer::sgd(0.3), Loss::SparseCategoricalCrossentropy, device))
            .unwrap();
        m
    };
    let (mut cpu, mut gpu) = (masked(Device::Cpu), masked(Device::Gpu(None)));
    common::fit_both_and_compare(&mut cpu, &mut gpu, &x, &y, 3, "masked max pool: ");
}

/// Keras's recurrent `dropout`: one mask per sequence (a feature is dropped at every step or
/// at none), about `rate` of them; the LSTM's training step with it is the same on both
/// backends; inference leaves the inputs alone.
#[test]
fn recurrent_input_dropout_draws_one_mask_per_sequence() {
    use kiln::graph::Op;
    use kiln::program::Kernel;
    let (batch, steps, features) = (40, 6, 25);
    let mut g = Graph::new();
    let x = g.input("x", &[batch, steps, features]);
    let y = g.add(Op::Dropout { rate: 0.3, seed: 4, steps }, &[x], "test").unwrap();
    let program = kiln::graph::plan::plan(
        &g,
        &kiln::graph::plan::PlanSpec {
            inputs: vec![x],
            outputs: vec![("y".into(), y)],
            ..Default::default()
        },
    )
    .unwrap();
    assert!(program.steps.iter().any(|s| matches!(s.kernel, Kernel::Dropout { period: 150, inner: 25, .. })));
    let mut out = vec![0.0f32; batch * steps * features];
    kiln::backend::cpu::conv::dropout(
        9,
        1,
        (0.3 * 4_294_967_296.0) as u32,
        2.0,
        (features, steps * features),
        &vec![1.0; out.len()],
        &mut out,
    );
    let mut dropped = 0;
    for b in 0..batch {
        for f in 0..features {
            let first = out[b * steps * features + f];
            assert!(
                (0..steps).all(|t| out[(b * steps + t) * features + f] == first),
                "sample {b} feature {f}"
            );
            dropped += usize::from(first == 0.0);
        }
    }
    let share = dropped as f64 / (batch * features) as f64;
    assert!((share - 0.3).abs() < 0.05, "dropped {share} of the features");
    check_graph("per-sequence dropout", &[rand_in(&[2, 4, 3])], &|g, x| {
        g.add(Op::Dropout { rate: 0.4, seed: 2, steps: 4 }, x, "test").unwrap()
    });
    let data = uniform(&mut rng(8), 12 * steps * 3, -1.0, 1.0);
    let x = Tensor::new(&[12, steps, 3], data).unwrap();
    let yl = Tensor::new(&[12], (0..12).map(|i| (i % 2) as f32).collect()).unwrap();
    let model = |device, rate| {
        let mut m = Sequential::new(&[steps, 3])
            .with_seed(6)
            .add(kiln::Lstm::new(5).dropout(rate))
            .add(Dense::new(2, Activation::Softmax));
        m.compile(CompileOptions::new(Optimizer::sgd(0.3), Loss::SparseCategoricalCrossentropy, device))
            .unwrap();
        m
    };
    let mut plain = model(Device::Cpu, 0.0);
    let mut dropped = model(Device::Cpu, 0.5);
    assert_eq!(plain.predict(&x, 12).unwrap(), dropped.predict(&x, 12).unwrap(), "no dropout in inference");
    assert_eq!(dropped.config()["layers"][0]["dropout"], 0.5);
    if common::gpu().is_some() {
        let mut gpu = model(Device::Gpu(None), 0.5);
        common::fit_both_and_compare(&mut dropped, &mut gpu, &x, &yl, 3, "LSTM with dropout: ");
    }
    let bad = serde_json::json!({"layers": [{"type": "LSTM", "units": 3, "recurrent_dropout": 1.0}]});
    let e = kiln::model::spec::parse_model(&bad).unwrap().into_model(&[4, 2], 0).output_shapes();
    let e = e.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("recurrent_dropout must be in [0, 1)"), "{e}");
}

/// Keras's `recurrent_dropout` (h_{t−1} masked before the recurrent product, one mask per
/// sequence): training steps of an LSTM and a masked GRU are the same on both backends, the
/// training loss differs from the undropped model's while inference is the same, and the
/// model-file key round-trips.
#[test]
fn recurrent_dropout_trains_alike_on_both_backends() {
    let steps = 6;
    let mut data = uniform(&mut rng(31), 12 * steps * 3, -1.0, 1.0);
    data[(steps - 2) * 3..steps * 3].fill(0.0);
    let x = Tensor::new(&[12, steps, 3], data).unwrap();
    let y = Tensor::new(&[12], (0..12).map(|i| (i % 2) as f32).collect()).unwrap();
    let model = |device, rate: f32, gru: bool| {
        let m = Sequential::new(&[steps, 3]).with_seed(6).add(kiln::Masking { mask_value: 0.0 });
        let m = match gru {
            true => m
                .add(kiln::Gru::new(5).recurrent_dropout(rate).return_sequences(true))
                .add(kiln::Lstm::new(3)),
            false => m.add(kiln::Lstm::new(5).recurrent_dropout(rate).dropout(rate / 2.0)),
        };
        let mut m = m.add(Dense::new(2, Activation::Softmax));
        m.compile(CompileOptions::new(Optimizer::sgd(0.3), Loss::SparseCategoricalCrossentropy, device))
            .unwrap();
        m
    };
    for gru in [false, true] {
        let (mut plain, mut dropped) = (model(Device::Cpu, 0.0, gru), model(Device::Cpu, 0.4, gru));
        assert_eq!(plain.predict(&x, 12).unwrap(), dropped.predict(&x, 12).unwrap(), "inference: no dropout");
        let opts =
            kiln::FitOptions { batch_size: 12, epochs: 1, verbose: 0, shuffle: false, ..Default::default() };
        let (a, b) = (plain.fit(&x, &y, &opts).unwrap(), dropped.fit(&x, &y, &opts).unwrap());
        assert_ne!(a.last("loss"), b.last("loss"), "gru {gru}: dropout changes the training loss");
        if common::gpu().is_some() {
            let (mut cpu, mut gpu) = (model(Device::Cpu, 0.4, gru), model(Device::Gpu(None), 0.4, gru));
            common::fit_both_and_compare(
                &mut cpu,
                &mut gpu,
                &x,
                &y,
                3,
                &format!("recurrent dropout (gru {gru}): "),
            );
        }
    }
    let bad = serde_json::json!({"layers": [{"type": "LSTM", "units": 3, "return_state": true}]});
    // A chain of layers cannot take several outputs (as Keras's Sequential); a functional one
    // can (tests/all/functional.rs).
    let chain = kiln::model::spec::parse_model(&bad).unwrap().into_model(&[steps, 3], 0);
    let e = chain.output_shapes().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("several tensors (return_state)") && e.contains("Sequential"), "{e}");
    let config = model(Device::Cpu, 0.25, false).config();
    assert_eq!(config["layers"][1]["recurrent_dropout"], 0.25);
    let back = kiln::model::spec::parse_model(&config).unwrap().into_model(&[steps, 3], 0);
    assert_eq!(back.config(), config);
}
