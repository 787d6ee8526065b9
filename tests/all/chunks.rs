//! Steps larger than one storage binding run in batch chunks on the GPU (`gpu/chunk.rs`):
//! with a tiny binding limit every chunkable kernel splits, and gives the bits of the
//! unchunked step (the sums over the batch: within rounding of them) and the CPU's values.
use kiln::backend::Backend;
use kiln::backend::gpu::GpuBackend;
use kiln::program::{Kernel, Padding, ResidentLayout, StepScalars, UnaryOp, Window2d};

use crate::common::{gpu, rng, uniform};
use crate::gpu_parity::{Builder, assert_close, check_on};

/// Every output of `b`'s program on `g`, and the dispatches it took.
fn run(g: &mut GpuBackend, b: &Builder) -> (Vec<Vec<f32>>, usize) {
    let inputs: Vec<&[f32]> = b.data.iter().map(|d| d.as_slice()).collect();
    g.alloc_resident(&ResidentLayout::default()).unwrap();
    let id = g.compile(&b.program).unwrap();
    g.run(id, &inputs, StepScalars::default()).unwrap();
    let outs = b.program.outputs.iter().map(|(_, o)| g.read_work(id, *o).unwrap()).collect();
    (outs, g.dispatches(id).unwrap())
}

#[test]
fn steps_over_the_binding_limit_run_in_chunks_with_the_same_results() {
    let Some(mut whole) = gpu() else { return };
    let Some(mut chunked) = gpu() else { return };
    // 4 KiB bindings: every arg of more than 1024 elements is split.
    chunked.set_binding_limit(Some(4096));
    let mut r = rng(41);
    let mut b = Builder::default();
    let mut sums = Vec::new();
    let w = |input, k, s, p| Window2d::new(input, k, s, (1, 1), p).unwrap();
    for (win, filters) in [
        (w([7, 8, 8, 3], (3, 3), (1, 1), Padding::Valid), 5),
        (w([5, 9, 7, 2], (3, 3), (2, 2), Padding::Same), 4),
    ] {
        let x = b.input(uniform(&mut r, win.input_len(), -1.0, 1.0));
        let wt = b.input(uniform(&mut r, win.patch_len() * filters, -1.0, 1.0));
        let bias = b.input(uniform(&mut r, filters, -1.0, 1.0));
        let dy = b.input(uniform(&mut r, win.positions() * filters, -1.0, 1.0));
        let out = win.positions() * filters;
        b.op(Kernel::Conv2d { win, filters, bias: true, act: Some(UnaryOp::Relu) }, &[x, wt, bias], out);
        b.op(Kernel::Conv2d { win, filters, bias: false, act: None }, &[x, wt], out);
        b.op(Kernel::Conv2dInputGrad { win, filters }, &[dy, wt], win.input_len());
        sums.push(b.program.outputs.len());
        b.op(Kernel::Conv2dFilterGrad { win, filters }, &[x, dy], win.patch_len() * filters);
    }
    let pool = w([9, 8, 8, 3], (2, 2), (2, 2), Padding::Valid);
    let x = b.input(uniform(&mut r, pool.input_len(), -1.0, 1.0));
    let dy = b.input(uniform(&mut r, pool.positions() * 3, -1.0, 1.0));
    b.op(Kernel::MaxPool { win: pool }, &[x], pool.positions() * 3);
    b.op(Kernel::AvgPool { win: pool }, &[x], pool.positions() * 3);
    b.op(Kernel::MaxPoolGrad { win: pool, relu: true }, &[x, dy], pool.input_len());
    b.op(Kernel::MaxPoolGrad { win: pool, relu: false }, &[x, dy], pool.input_len());
    b.op(Kernel::AvgPoolGrad { win: pool }, &[dy], pool.input_len());
    let (rows, cols) = (700, 6);
    let m = b.input(uniform(&mut r, rows * cols, -1.0, 1.0));
    let m2 = b.input(uniform(&mut r, rows * cols, -1.0, 1.0));
    let v = b.input(uniform(&mut r, cols, -1.0, 1.0));
    sums.push(b.program.outputs.len());
    b.op(Kernel::SumRows { rows, cols }, &[m], cols);
    b.op(Kernel::BiasAdd { rows, cols }, &[m, v], rows * cols);
    b.op(Kernel::Unary { op: UnaryOp::Tanh, len: rows * cols }, &[m], rows * cols);
    b.op(Kernel::UnaryGrad { op: UnaryOp::Sigmoid, len: rows * cols }, &[m, m2], rows * cols);
    b.op(Kernel::Add { len: rows * cols }, &[m, m2], rows * cols);
    let ((a, whole_dispatches), (c, chunked_dispatches)) = (run(&mut whole, &b), run(&mut chunked, &b));
    // The steps split into two chunks or more (the summing ones add an in-order sum).
    assert!(
        chunked_dispatches > 2 * whole_dispatches,
        "{chunked_dispatches} vs {whole_dispatches} dispatches"
    );
    for (k, (a, c)) in a.iter().zip(&c).enumerate() {
        let what = format!("{:?}", b.program.steps[k].kernel.name());
        if sums.contains(&k) {
            // Partial sums per chunk, then added in chunk order: rounding differs.
            assert_close(&what, c, a, 1e-5);
        } else {
            let first = a.iter().zip(c).position(|(x, y)| x.to_bits() != y.to_bits());
            assert!(first.is_none(), "{what}: chunked and whole steps differ first at {first:?}");
            assert_eq!(a.len(), c.len());
        }
    }
    check_on(chunked, &b, 1e-4);
}

/// The seed's image CNN (Conv32 → MaxPool → Conv64 → MaxPool → Conv128 → MaxPool → Flatten →
/// Dense128 → Dense10) on 224×224×3 images at batch 32: its first activations (202 MB) do not
/// fit one of lavapipe's 128 MiB bindings, so those steps run in chunks. One SGD step ends with
/// the CPU's weights to 1e-4 (SGD: Adam's first step would turn gradients that are both ~0
/// into ±lr).
#[test]
fn the_224_pixel_cnn_trains_on_the_gpu_at_batch_32_like_the_cpu() {
    use kiln::{Activation, CompileOptions, Conv2D, Dense, Device, FitOptions, Flatten, Loss, MaxPooling2D};
    use kiln::{Optimizer, Sequential, Tensor};
    let Some(g) = gpu() else { return };
    let binding = g.info().max_storage_binding;
    drop(g);
    let n = 32;
    assert!(4 * (n * 222 * 222 * 32) as u64 > binding, "the first activations exceed one binding here");
    let pixels: Vec<f32> = (0..n * 224 * 224 * 3).map(|i| ((i * 7919) % 251) as f32 / 251.0).collect();
    let x = Tensor::new(&[n, 224, 224, 3], pixels).unwrap();
    let y = Tensor::new(&[n], (0..n).map(|i| (i % 10) as f32).collect()).unwrap();
    let mut weights = Vec::new();
    for device in [Device::Cpu, Device::Gpu(None)] {
        let mut m = Sequential::new(&[224, 224, 3])
            .add(Conv2D::new(32, 3, Activation::Relu))
            .add(MaxPooling2D::new(2))
            .add(Conv2D::new(64, 3, Activation::Relu))
            .add(MaxPooling2D::new(2))
            .add(Conv2D::new(128, 3, Activation::Relu))
            .add(MaxPooling2D::new(2))
            .add(Flatten)
            .add(Dense::new(128, Activation::Relu))
            .add(Dense::new(10, Activation::Softmax));
        let opts = CompileOptions::new(Optimizer::sgd(0.01), Loss::SparseCategoricalCrossentropy, device);
        m.compile(opts).unwrap();
        let fit = FitOptions { batch_size: n, epochs: 1, verbose: 0, shuffle: false, ..Default::default() };
        let history = m.fit(&x, &y, &fit).unwrap();
        assert!(history.history["loss"][0].is_finite());
        weights.push(m.get_weights().unwrap());
    }
    for ((name, c), (_, g)) in weights[0].iter().zip(&weights[1]) {
        for (i, (a, b)) in c.data.iter().zip(&g.data).enumerate() {
            assert!((a - b).abs() <= 1e-4 * (a.abs() + 1.0), "{name}[{i}]: cpu {a} gpu {b}");
        }
    }
}
