//! Functional models (`Input`, `layer.call(&x)`, `Model::new`): the chain equals Sequential to
//! the bit, f64 gradient checks through branched graphs (a residual block, merges, a shared
//! layer used twice), GPU = CPU for branched training steps, and the errors a user meets.
use kiln::graph::{Graph, NodeId};
use kiln::model::{CallLayer, Input, Model, Shared, SymbolicTensor};
use kiln::nn::{Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract};
use kiln::{
    Activation, BatchNormalization, CompileOptions, Conv2D, Dense, Device, Dropout, FitOptions, Flatten,
    Loss, Optimizer, Padding, Sequential, Tensor,
};

use crate::common;
use crate::gradcheck::{Fill, TestInput, check_graph};

fn dense(units: usize, act: Activation) -> Dense {
    Dense::new(units, act)
}

/// A gradient check of `model`'s inference forward pass with respect to its input and every
/// parameter (f64 central differences, see gradcheck.rs).
fn check_model(name: &str, model: &Model, batch: usize) {
    let x_shape: Vec<usize> = std::iter::once(batch).chain(model.input_shape().iter().copied()).collect();
    let mut inputs: Vec<TestInput> = vec![(x_shape, Fill::AwayFromZero(0.05), true)];
    for (_, shape) in model.parameter_shapes().unwrap() {
        inputs.push((shape, Fill::AwayFromZero(0.05), true));
    }
    check_graph(name, &inputs, &|g: &mut Graph, n: &[NodeId]| model.forward_on(g, &n[..1], &n[1..]).unwrap());
}

#[test]
fn a_functional_chain_trains_to_the_same_bits_as_sequential() {
    let d = kiln::data::builtin::iris().unwrap();
    let x = Tensor::new(&[d.len(), 4], d.x.data.clone()).unwrap();
    let y = Tensor::new(&[d.len()], d.y.clone()).unwrap();
    let sequential = Sequential::new(&[4])
        .with_seed(9)
        .add(dense(16, Activation::Relu))
        .add(Dropout::new(0.2))
        .add(BatchNormalization::new())
        .add(dense(3, Activation::Softmax));
    let input = Input::new(&[4]);
    let h = dense(16, Activation::Relu).call(&input).unwrap();
    let h = Dropout::new(0.2).call(&h).unwrap();
    let h = BatchNormalization::new().call(&h).unwrap();
    let out = dense(3, Activation::Softmax).call(&h).unwrap();
    let functional = Model::new(&[input], &[out]).unwrap().with_seed(9);
    assert_eq!(functional.layer_names(), sequential.layer_names());
    let opts = FitOptions { batch_size: 32, epochs: 3, verbose: 0, ..Default::default() };
    let mut results = Vec::new();
    for mut m in [sequential.into_model(), functional] {
        let c = CompileOptions::new(Optimizer::adam(1e-2), Loss::SparseCategoricalCrossentropy, Device::Cpu);
        m.compile(c).unwrap();
        let h = m.fit(&x, &y, &opts).unwrap();
        results.push((m.get_weights().unwrap(), h.history, m.summary().unwrap()));
    }
    assert_eq!(results[0].0, results[1].0, "weights");
    assert_eq!(results[0].1, results[1].1, "history");
    assert!(results[1].2.contains("Connected to"), "{}", results[1].2);
}

/// x → Dense → Dense, added back to x (a residual block), → Dense.
fn residual_mlp(width: usize, classes: usize) -> Model {
    let x = Input::new(&[width]);
    let h = dense(width, Activation::Tanh).call(&x).unwrap();
    let h = dense(width, Activation::Linear).call(&h).unwrap();
    let skip = Add.call_many(&[&x, &h]).unwrap();
    let out = dense(classes, Activation::Softmax).call(&skip).unwrap();
    Model::new(&[x], &[out]).unwrap().with_seed(4)
}

#[test]
fn residual_and_merge_gradients_match_finite_differences() {
    check_model("residual block", &residual_mlp(5, 3), 4);
    // Every merge on two (or three) branches of one input.
    let x = Input::new(&[4]);
    let a = dense(4, Activation::Tanh).call(&x).unwrap();
    let b = dense(4, Activation::Sigmoid).call(&x).unwrap();
    let c = dense(4, Activation::Linear).call(&x).unwrap();
    let merged: Vec<SymbolicTensor> = vec![
        Add.call_many(&[&a, &b, &c]).unwrap(),
        Subtract.call_many(&[&a, &b]).unwrap(),
        Multiply.call_many(&[&a, &b, &c]).unwrap(),
        Average.call_many(&[&a, &c]).unwrap(),
        Maximum.call_many(&[&a, &b]).unwrap(),
        Minimum.call_many(&[&b, &c]).unwrap(),
    ];
    let refs: Vec<&SymbolicTensor> = merged.iter().collect();
    let joined = Concatenate::new().call_many(&refs).unwrap();
    assert_eq!(joined.shape(), [24]);
    let out = dense(2, Activation::Linear).call(&joined).unwrap();
    check_model("every merge", &Model::new(&[x], &[out]).unwrap(), 3);
    // A convolutional residual block on images (channels joined and added).
    let x = Input::new(&[5, 5, 2]);
    let h = Conv2D::new(2, 3, Activation::Tanh).padding(Padding::Same).call(&x).unwrap();
    let skip = Add.call_many(&[&x, &h]).unwrap();
    let both = Concatenate::new().call_many(&[&skip, &h]).unwrap();
    assert_eq!(both.shape(), [5, 5, 4]);
    let out = dense(2, Activation::Linear).call(&Flatten.call(&both).unwrap()).unwrap();
    check_model("conv residual", &Model::new(&[x], &[out]).unwrap(), 2);
}

#[test]
fn a_shared_layer_has_one_set_of_weights_and_sums_its_gradients() {
    let x = Input::new(&[3]);
    let shared = Shared::new(dense(3, Activation::Tanh));
    let a = shared.call(&x).unwrap();
    let b = shared.call(&a).unwrap(); // the same weights applied twice in a row
    let c = dense(3, Activation::Linear).call(&x).unwrap();
    let d = shared.call(&c).unwrap(); // and on another branch
    let out = dense(2, Activation::Linear).call(&Add.call_many(&[&b, &d]).unwrap()).unwrap();
    let model = Model::new(&[x], &[out]).unwrap();
    assert_eq!(model.layer_names(), ["dense", "dense_1", "add", "dense_2"]);
    assert_eq!(model.calls().len(), 6);
    // One kernel and bias for the three uses: 3·3 + 3, plus dense_1 and dense_2.
    assert_eq!(model.param_count().unwrap(), 12 + 12 + 8);
    // The finite differences perturb the one shared kernel, so they see all three uses.
    check_model("shared layer", &model, 4);
    let summary = model.summary().unwrap();
    assert!(summary.contains("'input[0][0]',") && summary.contains("'dense[1][0]'"), "{summary}");
}

#[test]
fn branched_training_steps_match_between_gpu_and_cpu() {
    if common::gpu().is_none() {
        return;
    }
    let make = |device: Device| {
        // A residual CNN block with BatchNorm, and merges of every kind, on 6×6 images.
        let x = Input::new(&[6, 6, 3]);
        let stem = Conv2D::new(4, 3, Activation::Relu).padding(Padding::Same).call(&x).unwrap();
        // No bias before BatchNorm (its gradient is rounding noise, which Adam would amplify).
        let mut conv = Conv2D::new(4, 3, Activation::Linear).padding(Padding::Same);
        conv.use_bias = false;
        let h = conv.call(&stem).unwrap();
        let h = BatchNormalization::new().call(&h).unwrap();
        let res = Add.call_many(&[&stem, &h]).unwrap();
        let other = Conv2D::new(4, 1, Activation::Sigmoid).call(&stem).unwrap();
        let merged = [
            Multiply.call_many(&[&res, &other]).unwrap(),
            Subtract.call_many(&[&res, &other]).unwrap(),
            Average.call_many(&[&res, &other]).unwrap(),
            Maximum.call_many(&[&res, &other]).unwrap(),
            Minimum.call_many(&[&res, &other]).unwrap(),
        ];
        let refs: Vec<&SymbolicTensor> = merged.iter().collect();
        let joined = Concatenate::new().call_many(&refs).unwrap();
        let out = dense(5, Activation::Softmax).call(&Flatten.call(&joined).unwrap()).unwrap();
        let mut m = Model::new(&[x], &[out]).unwrap().with_seed(2);
        // Momentum rather than Adam: Adam's second step divides by √v and so turns a rounding
        // difference in a near-cancelling gradient into a visible one (1e-5 on a 3e-3 weight).
        let sgd = Optimizer::momentum(0.1, 0.9, false);
        m.compile(CompileOptions::new(sgd, Loss::SparseCategoricalCrossentropy, device)).unwrap();
        m
    };
    let mut rng = common::rng(3);
    let x = Tensor::new(&[21, 6, 6, 3], common::uniform(&mut rng, 21 * 108, -1.0, 1.0)).unwrap();
    let y = Tensor::new(&[21], (0..21).map(|i| (i % 5) as f32).collect()).unwrap();
    let (mut cpu, mut gpu) = (make(Device::Cpu), make(Device::Gpu(None)));
    common::fit_both_and_compare(&mut cpu, &mut gpu, &x, &y, 2, "branched CNN: ");
}

#[test]
fn merge_errors_name_both_branches() {
    let x = Input::new(&[8, 8, 1]);
    let conv = Conv2D::new(4, 3, Activation::Relu).call(&x).unwrap();
    let flat = dense(10, Activation::Relu).call(&Flatten.call(&x).unwrap()).unwrap();
    let e = Add.call_many(&[&conv, &flat]).unwrap_err().to_string();
    assert!(e.contains("conv2d") && e.contains("(None, 6, 6, 4)") && e.contains("(None, 10)"), "{e}");
    let e = Concatenate::new().call_many(&[&conv, &x]).unwrap_err().to_string();
    assert!(e.contains("(None, 6, 6, 4)") && e.contains("(None, 8, 8, 1)"), "{e}");
    let e = Subtract.call_many(&[&flat, &flat, &flat]).unwrap_err().to_string();
    assert!(e.contains("exactly two"), "{e}");
    let e = Add.call(&flat).unwrap_err().to_string();
    assert!(e.contains("at least two"), "{e}");
    let e = Concatenate::axis(1).call_many(&[&conv, &conv]).unwrap_err().to_string();
    assert!(e.contains("last axis"), "{e}");
    // A layer with weights called on inputs that need other weights.
    let shared = Shared::new(dense(4, Activation::Relu));
    let a = shared.call(&flat).unwrap();
    let b = shared.call(&Flatten.call(&x).unwrap()).unwrap();
    let e = Model::new(std::slice::from_ref(&x), &[Add.call_many(&[&a, &b]).unwrap()]).unwrap().param_count();
    assert!(e.unwrap_err().to_string().contains("shared layer"));
    // An output that needs an input the model does not list.
    let other = Input::named("features", &[10]);
    let sum = Add.call_many(&[&flat, &other]).unwrap();
    let e = Model::new(std::slice::from_ref(&x), &[sum]).err().unwrap().to_string();
    assert!(e.contains("'features'") && e.contains("not among the model's inputs"), "{e}");
    let e = Model::new(std::slice::from_ref(&x), std::slice::from_ref(&x)).err().unwrap().to_string();
    assert!(e.contains("output is a model input"), "{e}");
}

#[test]
fn a_residual_model_learns_digits_on_both_backends() {
    let (x, y) = common::digits();
    for device in common::devices() {
        let mut m = residual_mlp(64, 10);
        m.compile(CompileOptions::new(Optimizer::adam(3e-3), Loss::SparseCategoricalCrossentropy, device))
            .unwrap();
        let opts = FitOptions { batch_size: 64, epochs: 8, verbose: 0, ..Default::default() };
        m.fit(&x, &y, &opts).unwrap();
        let (_, acc) = m.evaluate(&x, &y, 256).unwrap();
        assert!(acc > 0.95, "{device:?}: training accuracy {acc}");
    }
}

/// Digits as 8×8 images and, beside them, each image's row and column ink sums.
fn two_input_digits() -> (Tensor, Tensor, Tensor) {
    let (x, y) = common::digits();
    let n = x.rows();
    let mut ink = Vec::with_capacity(n * 16);
    for image in x.data.chunks(64) {
        ink.extend((0..8).map(|r| (0..8).map(|c| image[r * 8 + c]).sum::<f32>() / 8.0));
        ink.extend((0..8).map(|c| (0..8).map(|r| image[r * 8 + c]).sum::<f32>() / 8.0));
    }
    (Tensor::new(&[n, 8, 8, 1], x.data).unwrap(), Tensor::new(&[n, 16], ink).unwrap(), y)
}

fn two_input_model(device: Device) -> Model {
    let image = Input::named("image", &[8, 8, 1]);
    let ink = Input::named("ink", &[16]);
    let h = Conv2D::new(4, 3, Activation::Relu).call(&image).unwrap();
    let h = Flatten.call(&h).unwrap();
    let f = dense(8, Activation::Tanh).call(&ink).unwrap();
    let joined = Concatenate::new().call_many(&[&h, &f]).unwrap();
    let out = dense(10, Activation::Softmax).call(&joined).unwrap();
    let mut m = Model::new(&[image, ink], &[out]).unwrap().with_seed(8);
    m.compile(CompileOptions::new(Optimizer::adam(3e-3), Loss::SparseCategoricalCrossentropy, device))
        .unwrap();
    m
}

#[test]
fn a_two_input_model_trains_saves_and_checks_its_inputs() {
    let (image, ink, y) = two_input_digits();
    let mut m = two_input_model(Device::Cpu);
    let opts = FitOptions {
        batch_size: 32,
        epochs: 12,
        verbose: 0,
        validation: kiln::Validation::Split(0.2),
        ..Default::default()
    };
    let h = m.fit([&image, &ink], &y, &opts).unwrap();
    let val = h.last("val_accuracy").unwrap();
    assert!(val > 0.9, "validation accuracy {val}");
    let p = m.predict([&image, &ink], 100).unwrap();
    assert_eq!(p.shape, [image.rows(), 10]);
    assert!(m.summary().unwrap().contains("ink (InputLayer)"));
    // Saved and loaded: the same predictions.
    let dir = common::TempDir::new("two-inputs");
    let path = dir.join("m.safetensors");
    m.save(&path).unwrap();
    let mut back = kiln::Checkpoint::load(&path).unwrap().into_model(Device::Cpu).unwrap();
    assert_eq!(back.predict([&image, &ink], 100).unwrap(), p);
    // The inputs must be the model's: their count, sample counts and shapes.
    let e = m.predict(&image, 10).unwrap_err().to_string();
    assert!(e.contains("takes 2 ('image', 'ink'), got 1"), "{e}");
    let short = Tensor::new(&[5, 16], vec![0.0; 80]).unwrap();
    let e = m.predict([&image, &short], 10).unwrap_err().to_string();
    assert!(e.contains("'ink' 5"), "{e}");
    let e = m.predict([&ink, &ink], 10).unwrap_err().to_string();
    assert!(e.contains("input 'image' of layer 'conv2d'"), "{e}");
    // The two-input training step on the GPU gives the CPU's weights.
    if common::gpu().is_some() {
        let first = |t: &Tensor| {
            let shape: Vec<usize> = std::iter::once(50).chain(t.shape[1..].iter().copied()).collect();
            Tensor::new(&shape, t.data[..50 * t.row_len()].to_vec()).unwrap()
        };
        let (image, ink, y) = (first(&image), first(&ink), first(&y));
        let opts = FitOptions { batch_size: 50, epochs: 2, verbose: 0, shuffle: false, ..Default::default() };
        let (mut cpu, mut gpu) = (two_input_model(Device::Cpu), two_input_model(Device::Gpu(None)));
        cpu.fit([&image, &ink], &y, &opts).unwrap();
        gpu.fit([&image, &ink], &y, &opts).unwrap();
        for ((name, c), (_, g)) in cpu.get_weights().unwrap().iter().zip(&gpu.get_weights().unwrap()) {
            let worst =
                c.data.iter().zip(&g.data).map(|(a, b)| (a - b).abs() / (a.abs() + 1e-3)).fold(0.0, f32::max);
            assert!(worst < 1e-4, "two inputs: {name} differs by {worst:e} (relative)");
        }
    }
}

/// x·W + b for row-major x [n, k] and Keras kernels W [k, u].
fn affine(x: &[f32], w: &Tensor, b: &Tensor) -> Vec<f32> {
    let (k, u) = (w.shape[0], w.shape[1]);
    x.chunks(k)
        .flat_map(|row| {
            (0..u).map(move |j| b.data[j] + (0..k).map(|i| row[i] * w.data[i * u + j]).sum::<f32>())
        })
        .collect()
}

#[test]
fn branched_programs_reuse_memory_and_keep_skip_values_until_their_last_reader() {
    // `stem` is read by the next Dense and by the Add two layers later: the planner must keep
    // its slot that long (a Work-arena value, not the program's input). The predictions equal
    // the formula computed here.
    let input = Input::new(&[5]);
    let stem = dense(4, Activation::Tanh).call(&input).unwrap();
    let h = dense(6, Activation::Relu).call(&stem).unwrap();
    let h = dense(4, Activation::Linear).call(&h).unwrap();
    let sum = Add.call_many(&[&stem, &h]).unwrap();
    let out = dense(3, Activation::Softmax).call(&sum).unwrap();
    let mut m = Model::new(&[input], &[out]).unwrap().with_seed(1);
    m.compile(CompileOptions::new(Optimizer::adam(1e-3), Loss::SparseCategoricalCrossentropy, Device::Cpu))
        .unwrap();
    let w: std::collections::HashMap<String, Tensor> = m.get_weights().unwrap().into_iter().collect();
    let mut rng = common::rng(4);
    let x = Tensor::new(&[7, 5], common::uniform(&mut rng, 35, -1.0, 1.0)).unwrap();
    let stem: Vec<f32> =
        affine(&x.data, &w["dense.kernel"], &w["dense.bias"]).iter().map(|v| v.tanh()).collect();
    let h: Vec<f32> =
        affine(&stem, &w["dense_1.kernel"], &w["dense_1.bias"]).iter().map(|v| v.max(0.0)).collect();
    let h = affine(&h, &w["dense_2.kernel"], &w["dense_2.bias"]);
    let skip: Vec<f32> = stem.iter().zip(&h).map(|(a, b)| a + b).collect();
    let logits = affine(&skip, &w["dense_3.kernel"], &w["dense_3.bias"]);
    let p = m.predict(&x, 7).unwrap();
    for (row, got) in logits.chunks(3).zip(p.data.chunks(3)) {
        let max = row.iter().copied().fold(f32::MIN, f32::max);
        let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
        for (l, g) in row.iter().zip(got) {
            assert!(((l - max).exp() / sum - g).abs() < 1e-5, "{row:?} vs {got:?}");
        }
    }
    // resnet-small: the planner reuses slots across its branches.
    let mut m = kiln::cli::preset("resnet-small", &[12, 12, 1], 4, 0).unwrap();
    m.compile(CompileOptions::new(Optimizer::adam(1e-3), Loss::SparseCategoricalCrossentropy, Device::Cpu))
        .unwrap();
    let train = m.planned_program(kiln::ProgramKind::Train, 16).unwrap();
    // A training step keeps most activations for the backward pass: about half the naive sum.
    let ratio = train.work_len as f64 / train.naive_work_len as f64;
    assert!(ratio < 0.6, "train: planned {} vs naive {}", train.work_len, train.naive_work_len);
    let fwd = m.planned_program(kiln::ProgramKind::Predict, 16).unwrap();
    assert!(
        fwd.work_len * 3 < fwd.naive_work_len,
        "predict: planned {} vs naive {}",
        fwd.work_len,
        fwd.naive_work_len
    );
}
