//! Implicit-GEMM convolutions (`Kernel::Conv2d`, `Conv2dFilterGrad`, `Conv2dInputGrad`): the
//! GPU kernels against the CPU reference (im2col → matmul → col2im), and the GPU plan, which
//! holds no patch matrices.
use kiln::Model;
use kiln::program::{Kernel, Padding, UnaryOp, Window2d};
use kiln::{Activation, CompileOptions, Conv2D, Dense, Device, Flatten, Loss, MaxPooling2D, Optimizer};
use kiln::{FitOptions, ProgramKind, Sequential, Tensor};

use crate::common::{rng, uniform};
use crate::gpu_parity::{Builder, check};

/// Strides 1 and 2, both paddings, dilation 2, odd sizes, 1, 3 and 5 channels, filter counts
/// that are not multiples of 4 (the 4×4 blocks' edges).
fn geometries() -> Vec<(Window2d, usize)> {
    let w = |input, k, s, d, p| Window2d::new(input, k, s, d, p).expect("valid geometry");
    vec![
        (w([2, 5, 6, 1], (3, 3), (1, 1), (1, 1), Padding::Valid), 3),
        (w([1, 5, 5, 3], (3, 3), (1, 1), (1, 1), Padding::Same), 8),
        (w([2, 7, 6, 2], (3, 2), (2, 2), (1, 1), Padding::Same), 5),
        (w([1, 5, 7, 3], (2, 2), (2, 2), (1, 1), Padding::Valid), 1),
        (w([1, 7, 7, 1], (3, 3), (2, 1), (2, 2), Padding::Same), 6),
        (w([3, 9, 8, 5], (4, 4), (1, 1), (1, 1), Padding::Same), 7),
    ]
}

#[test]
fn implicit_gemm_convolutions_match_the_cpu_on_the_gpu() {
    let mut r = rng(31);
    let mut b = Builder::default();
    let acts: Vec<Option<UnaryOp>> =
        std::iter::once(None).chain(UnaryOp::ALL.iter().copied().map(Some)).collect();
    for (i, (win, filters)) in geometries().into_iter().enumerate() {
        let x = b.input(uniform(&mut r, win.input_len(), -1.0, 1.0));
        let w = b.input(uniform(&mut r, win.patch_len() * filters, -1.0, 1.0));
        let bias = b.input(uniform(&mut r, filters, -1.0, 1.0));
        let dy = b.input(uniform(&mut r, win.positions() * filters, -1.0, 1.0));
        let out = win.positions() * filters;
        let act = acts[i % acts.len()];
        b.op(Kernel::Conv2d { win, filters, bias: true, act }, &[x, w, bias], out);
        b.op(Kernel::Conv2d { win, filters, bias: false, act: None }, &[x, w], out);
        b.op(Kernel::Conv2dFilterGrad { win, filters }, &[x, dy], win.patch_len() * filters);
        b.op(Kernel::Conv2dInputGrad { win, filters }, &[dy, w], win.input_len());
    }
    // Many positions: the filter gradient splits into chunks of 2048 positions (the last one
    // partial), summed in order; a 2-D grid of 32×32 blocks for the forward.
    let big = Window2d::new([9, 28, 28, 3], (3, 3), (1, 1), (1, 1), Padding::Valid).unwrap();
    assert!(kiln::backend::gpu::splits_rows(&Kernel::Conv2dFilterGrad { win: big, filters: 10 }));
    let x = b.input(uniform(&mut r, big.input_len(), 0.0, 1.0));
    let w = b.input(uniform(&mut r, big.patch_len() * 10, -1.0, 1.0));
    let dy = b.input(uniform(&mut r, big.positions() * 10, -1.0, 1.0));
    b.op(Kernel::Conv2dFilterGrad { win: big, filters: 10 }, &[x, dy], big.patch_len() * 10);
    b.op(
        Kernel::Conv2d { win: big, filters: 10, bias: false, act: Some(UnaryOp::Relu) },
        &[x, w],
        10 * big.positions(),
    );
    b.op(Kernel::Conv2dInputGrad { win: big, filters: 10 }, &[dy, w], big.input_len());
    check(&b, 1e-4);
}

fn mnist_cnn(batch: usize) -> (Sequential, Tensor, Tensor) {
    let m = Sequential::new(&[28, 28, 1])
        .add(Conv2D::new(32, 3, Activation::Relu))
        .add(MaxPooling2D::new(2))
        .add(Conv2D::new(64, 3, Activation::Relu))
        .add(MaxPooling2D::new(2))
        .add(Conv2D::new(64, 3, Activation::Relu))
        .add(Flatten)
        .add(Dense::new(64, Activation::Relu))
        .add(Dense::new(10, Activation::Softmax));
    let mut r = rng(5);
    let x = Tensor::new(&[batch, 28, 28, 1], uniform(&mut r, batch * 784, 0.0, 1.0)).unwrap();
    let y = Tensor::new(&[batch], (0..batch).map(|i| (i % 10) as f32).collect()).unwrap();
    (m, x, y)
}

/// Compiled with every convolution as an implicit GEMM on GPUs (mnist-cnn's patch matrices
/// are below the `Auto` size).
fn compile(m: &mut Model, device: Device) {
    let opts = CompileOptions::new(Optimizer::adam(0.001), Loss::SparseCategoricalCrossentropy, device);
    m.compile(opts.with_implicit_conv(kiln::ImplicitConv::Always)).unwrap();
}

/// The GPU plans mnist-cnn's convolutions as implicit GEMMs (no im2col, col2im or patch
/// matrix), the CPU keeps them explicit; the GPU's Work arena is smaller by the patches.
#[test]
fn the_gpu_plan_has_no_patch_matrices_and_needs_less_memory() {
    if crate::common::gpu().is_none() {
        return;
    }
    let batch = 128;
    let names = |m: &Model| -> Vec<&'static str> {
        m.planned_program(ProgramKind::Train, batch).unwrap().steps.iter().map(|s| s.kernel.name()).collect()
    };
    let (mut cpu, _, _) = mnist_cnn(batch);
    compile(&mut cpu, Device::Cpu);
    let (mut gpu, _, _) = mnist_cnn(batch);
    compile(&mut gpu, Device::Gpu(None));
    let (c, g) = (names(&cpu), names(&gpu));
    let count = |v: &[&str], k: &str| v.iter().filter(|&&n| n == k).count();
    assert_eq!((count(&c, "Im2Col"), count(&c, "Col2Im")), (3, 2), "{c:?}");
    assert_eq!((count(&g, "Im2Col"), count(&g, "Col2Im")), (0, 0), "{g:?}");
    assert_eq!((count(&g, "Conv2d"), count(&g, "Conv2dFilterGrad"), count(&g, "Conv2dInputGrad")), (3, 3, 2));
    let work = |m: &Model| m.planned_program(ProgramKind::Train, batch).unwrap().work_bytes();
    let (cw, gw) = (work(&cpu), work(&gpu));
    // The first layer's patches alone: 128·26·26·9 floats.
    assert!(gw + 4 * 128 * 26 * 26 * 9 <= cw, "gpu work {gw} bytes against cpu {cw}");
    eprintln!("mnist-cnn batch {batch} train Work arena: explicit {cw} bytes, implicit {gw} bytes");
    // By default (ImplicitConv::Auto) patch matrices this small stay materialised.
    let (mut auto, _, _) = mnist_cnn(batch);
    let opts =
        CompileOptions::new(Optimizer::adam(0.001), Loss::SparseCategoricalCrossentropy, Device::Gpu(None));
    auto.compile(opts).unwrap();
    assert_eq!(count(&names(&auto), "Im2Col"), 3);
}

/// A whole mnist-cnn training step on the GPU (implicit GEMMs) ends with the CPU's weights
/// (explicit im2col) to 1e-4.
#[test]
fn implicit_gemm_training_steps_match_the_cpu() {
    if crate::common::gpu().is_none() {
        return;
    }
    let batch = 16;
    let opts = FitOptions { batch_size: 8, epochs: 1, verbose: 0, shuffle: false, ..Default::default() };
    let mut weights = Vec::new();
    for device in [Device::Cpu, Device::Gpu(None)] {
        let (mut m, x, y) = mnist_cnn(batch);
        compile(&mut m, device);
        m.fit(&x, &y, &opts).unwrap();
        weights.push(m.get_weights().unwrap());
    }
    for ((name, c), (_, g)) in weights[0].iter().zip(&weights[1]) {
        for (i, (a, b)) in c.data.iter().zip(&g.data).enumerate() {
            assert!((a - b).abs() <= 1e-4 * (a.abs() + 1.0), "{name}[{i}]: cpu {a} gpu {b}");
        }
    }
}
