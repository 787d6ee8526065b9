//! The image ops (im2col/col2im, pooling, dropout, reshape views): gradient checks in f64,
//! agreement with a naive direct convolution, and GPU-vs-CPU parity for every kernel.
use kiln::backend::cpu::{Arenas, execute};
use kiln::graph::plan::{PlanSpec, plan};
use kiln::graph::{Graph, NodeId, Op};
use kiln::program::{Kernel, Padding, ResidentLayout, StepScalars, Window2d, dropout_word};

use crate::common::{rng, uniform};
use crate::gpu_parity::{Builder, check, check_on};
use crate::gradcheck::{Fill, check_graph, op, rand_in};
use kiln::backend::gpu::MatmulKernel;

/// Geometries covering strides 1 and 2, both paddings, dilation, odd sizes, 1 and 3 channels.
fn geometries() -> Vec<(&'static str, Window2d)> {
    let w = |input, k, s, d, p| Window2d::new(input, k, s, d, p).expect("valid geometry");
    vec![
        ("3x3 s1 valid c1", w([2, 5, 6, 1], (3, 3), (1, 1), (1, 1), Padding::Valid)),
        ("3x3 s1 same c3", w([1, 5, 5, 3], (3, 3), (1, 1), (1, 1), Padding::Same)),
        ("3x2 s2 same c2", w([2, 7, 6, 2], (3, 2), (2, 2), (1, 1), Padding::Same)),
        ("2x2 s2 valid c3 odd", w([1, 5, 7, 3], (2, 2), (2, 2), (1, 1), Padding::Valid)),
        ("3x3 s2 d2 same c1", w([1, 7, 7, 1], (3, 3), (2, 1), (2, 2), Padding::Same)),
        ("4x4 s1 same even kernel", w([1, 6, 5, 2], (4, 4), (1, 1), (1, 1), Padding::Same)),
    ]
}

/// A convolution from the primitives, as the Conv2D layer builds it: im2col, matmul with the
/// HWIO filter viewed as [patch, filters], back to NHWC.
fn conv(g: &mut Graph, x: NodeId, filter: NodeId, win: Window2d, filters: usize) -> NodeId {
    let cols = op(g, Op::Im2Col { win }, &[x]);
    let w = op(g, Op::Reshape { shape: vec![win.patch_len(), filters] }, &[filter]);
    let y = op(g, Op::MatMul { trans_a: false, trans_b: false }, &[cols, w]);
    op(g, Op::Reshape { shape: vec![win.batch, win.out.0, win.out.1, filters] }, &[y])
}

fn image_shape(win: &Window2d) -> Vec<usize> {
    vec![win.batch, win.height, win.width, win.channels]
}

#[test]
fn convolution_gradients_match_finite_differences() {
    for (name, win) in geometries() {
        let filter = vec![win.kernel.0, win.kernel.1, win.channels, 2];
        let inputs = vec![rand_in(&image_shape(&win)), rand_in(&filter)];
        check_graph(name, &inputs, &|g, x| conv(g, x[0], x[1], win, 2));
    }
}

#[test]
fn col2im_gradient_matches_finite_differences() {
    for (name, win) in geometries() {
        let inputs = vec![rand_in(&[win.positions(), win.patch_len()])];
        check_graph(name, &inputs, &|g, x| op(g, Op::Col2Im { win }, x));
    }
}

#[test]
fn pooling_gradients_match_finite_differences() {
    for (name, win) in geometries().into_iter().filter(|(_, w)| w.dilation == (1, 1)) {
        let x = vec![rand_in(&image_shape(&win))];
        check_graph(&format!("max pool {name}"), &x, &|g, x| op(g, Op::MaxPool { win }, x));
        check_graph(&format!("avg pool {name}"), &x, &|g, x| op(g, Op::AvgPool { win }, x));
        let dy = vec![rand_in(&[win.batch, win.out.0, win.out.1, win.channels])];
        check_graph(&format!("avg pool grad {name}"), &dy, &|g, x| op(g, Op::AvgPoolGrad { win }, x));
    }
}

/// relu → (view) → max pool: the planner fuses the two backward passes into one
/// `MaxPoolGrad { relu: true }` launch; the fused gradient still matches finite differences,
/// for disjoint (2×2/2) and overlapping (3×3/2) windows.
#[test]
fn fused_relu_max_pool_gradient_matches_finite_differences() {
    use kiln::program::UnaryOp;
    for (k, s) in [(2, 2), (3, 2)] {
        let win = Window2d::new([2, 6, 7, 3], (k, k), (s, s), (1, 1), Padding::Same).unwrap();
        let build = move |g: &mut Graph, x: &[NodeId]| {
            let y = op(g, Op::Unary(UnaryOp::Relu), x);
            let v = op(g, Op::Reshape { shape: vec![2, 6, 7, 3] }, &[y]);
            op(g, Op::MaxPool { win }, &[v])
        };
        let input = vec![(vec![84, 3], Fill::AwayFromZero(0.05), true)];
        check_graph(&format!("relu + max pool {k}x{k}/{s}"), &input, &build);
        // The fusion happened: one max-pool gradient with the relu mask, no relu gradient.
        let mut g = Graph::new();
        let x = g.input("x", &[84, 3]);
        let out = build(&mut g, &[x]);
        let out_shape = g.shape(out).to_vec();
        let seed = g.input("seed", &out_shape);
        let dx = kiln::graph::autodiff::gradients(&mut g, out, seed, &[x]).unwrap()[0];
        let spec = PlanSpec { inputs: vec![x, seed], outputs: vec![("dx".into(), dx)], ..Default::default() };
        let kernels: Vec<Kernel> = plan(&g, &spec).unwrap().steps.iter().map(|s| s.kernel).collect();
        assert!(kernels.contains(&Kernel::MaxPoolGrad { win, relu: true }), "{kernels:?}");
        assert!(!kernels.iter().any(|k| matches!(k, Kernel::UnaryGrad { .. })), "{kernels:?}");
    }
}

#[test]
fn reshape_and_dropout_gradients_match_finite_differences() {
    check_graph("reshape", &[rand_in(&[2, 3, 4])], &|g, x| {
        let r = op(g, Op::Reshape { shape: vec![6, 4] }, x);
        op(g, Op::Unary(kiln::program::UnaryOp::Tanh), &[r])
    });
    // With the step fixed the flips are fixed: a linear map, its own adjoint.
    check_graph("random flip", &[rand_in(&[5, 2, 3, 2])], &|g, x| op(g, Op::RandomFlip { seed: 3 }, x));
    // With the step fixed the mask is fixed, so dropout is linear and checkable.
    check_graph("dropout", &[rand_in(&[7, 33])], &|g, x| {
        op(g, Op::Dropout { rate: 0.3, seed: 5, steps: 1 }, x)
    });
}

#[test]
fn batch_norm_gradients_match_finite_differences() {
    for (rows, cols) in [(7, 3), (2, 1), (12, 5)] {
        let inputs = vec![rand_in(&[rows, cols]), rand_in(&[cols]), rand_in(&[cols])];
        // The moments are a function of x: the check perturbs x through both paths.
        check_graph("batch norm", &inputs, &|g, x| {
            let moments = op(g, Op::BatchMoments, &x[..1]);
            op(g, Op::BatchNorm { eps: 1e-3 }, &[x[0], moments, x[1], x[2]])
        });
    }
}

/// Run a one-output graph on the CPU in f64.
fn run_cpu(g: &Graph, inputs: &[NodeId], out: NodeId, values: &[Vec<f64>], t: u32) -> Vec<f64> {
    let spec = PlanSpec { inputs: inputs.to_vec(), outputs: vec![("out".into(), out)], ..Default::default() };
    let program = plan(g, &spec).expect("plan");
    let mut arenas = Arenas::<f64>::new(&ResidentLayout::default(), program.work_len);
    for ((_, b), v) in program.inputs.iter().zip(values) {
        arenas.set(*b, v);
    }
    execute(&program.steps, &mut arenas, StepScalars { lr: 0.0, t });
    arenas.get(program.output("out").expect("out"))
}

/// Direct convolution with explicit TensorFlow padding arithmetic: the independent reference.
fn naive_conv(x: &[f64], f: &[f64], win: &Window2d, filters: usize) -> Vec<f64> {
    let (kh, kw) = win.kernel;
    let c = win.channels;
    let mut y = vec![0.0; win.positions() * filters];
    for n in 0..win.batch {
        for oy in 0..win.out.0 {
            for ox in 0..win.out.1 {
                for o in 0..filters {
                    let mut s = 0.0;
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy = (oy * win.stride.0 + ky * win.dilation.0) as isize - win.pad.0 as isize;
                            let ix = (ox * win.stride.1 + kx * win.dilation.1) as isize - win.pad.1 as isize;
                            if iy < 0 || ix < 0 || iy >= win.height as isize || ix >= win.width as isize {
                                continue;
                            }
                            for ch in 0..c {
                                let xv =
                                    x[((n * win.height + iy as usize) * win.width + ix as usize) * c + ch];
                                s += xv * f[((ky * kw + kx) * c + ch) * filters + o];
                            }
                        }
                    }
                    y[((n * win.out.0 + oy) * win.out.1 + ox) * filters + o] = s;
                }
            }
        }
    }
    y
}

#[test]
fn convolution_matches_a_direct_convolution_and_keras_output_sizes() {
    // Keras: same → ceil(in / stride); valid → floor((in − span) / stride) + 1.
    let w = Window2d::new([1, 28, 28, 1], (3, 3), (1, 1), (1, 1), Padding::Valid).unwrap();
    assert_eq!(w.out, (26, 26));
    let w = Window2d::new([1, 7, 7, 1], (3, 3), (2, 2), (1, 1), Padding::Same).unwrap();
    assert_eq!((w.out, w.pad), ((4, 4), (1, 1)));
    let w = Window2d::new([1, 6, 6, 1], (3, 3), (2, 2), (1, 1), Padding::Same).unwrap();
    assert_eq!((w.out, w.pad), ((3, 3), (0, 0)), "TF puts the odd padding row at the bottom");
    assert!(Window2d::new([1, 2, 2, 1], (3, 3), (1, 1), (1, 1), Padding::Valid).is_none());
    let mut r = rng(3);
    for (name, win) in geometries() {
        let x: Vec<f64> = uniform(&mut r, win.input_len(), -1.0, 1.0).into_iter().map(f64::from).collect();
        let f: Vec<f64> =
            uniform(&mut r, win.patch_len() * 3, -1.0, 1.0).into_iter().map(f64::from).collect();
        let mut g = Graph::new();
        let xn = g.input("x", &image_shape(&win));
        let fnode = g.input("f", &[win.kernel.0, win.kernel.1, win.channels, 3]);
        let y = conv(&mut g, xn, fnode, win, 3);
        let got = run_cpu(&g, &[xn, fnode], y, &[x.clone(), f.clone()], 1);
        let want = naive_conv(&x, &f, &win, 3);
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!((a - b).abs() < 1e-12, "{name}[{i}]: im2col conv {a} vs direct {b}");
        }
    }
}

#[test]
fn max_pool_takes_window_maxima_and_average_pool_ignores_padding() {
    // 1×3×3×1, 2×2 windows, stride 2, same padding: windows {0,1,3,4}, {2,5}, {6,7}, {8}.
    let win = Window2d::new([1, 3, 3, 1], (2, 2), (2, 2), (1, 1), Padding::Same).unwrap();
    let x: Vec<f64> = vec![1.0, 5.0, 2.0, 4.0, 3.0, 9.0, -1.0, -2.0, -7.0];
    let mut g = Graph::new();
    let xn = g.input("x", &[1, 3, 3, 1]);
    let mx = op(&mut g, Op::MaxPool { win }, &[xn]);
    let av = op(&mut g, Op::AvgPool { win }, &[xn]);
    assert_eq!(run_cpu(&g, &[xn], mx, std::slice::from_ref(&x), 1), vec![5.0, 9.0, -1.0, -7.0]);
    assert_eq!(run_cpu(&g, &[xn], av, &[x], 1), vec![13.0 / 4.0, 11.0 / 2.0, -3.0 / 2.0, -7.0]);
}

#[test]
fn dropout_drops_the_rate_scales_the_rest_and_changes_mask_per_step() {
    let n = 20_000;
    let mut g = Graph::new();
    let x = g.input("x", &[n]);
    let y = op(&mut g, Op::Dropout { rate: 0.25, seed: 11, steps: 1 }, &[x]);
    let ones = vec![1.0; n];
    let a = run_cpu(&g, &[x], y, std::slice::from_ref(&ones), 1);
    let b = run_cpu(&g, &[x], y, &[ones], 2);
    let dropped = a.iter().filter(|&&v| v == 0.0).count() as f64 / n as f64;
    assert!((dropped - 0.25).abs() < 0.015, "dropped fraction {dropped}");
    assert!(a.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6), "kept values are scaled");
    let same = a.iter().zip(&b).filter(|(p, q)| p == q).count() as f64 / n as f64;
    assert!(same < 0.75, "masks of steps 1 and 2 must differ (agree on {same})");
    // The mask is the documented function of (seed, step, index).
    for (i, &v) in a.iter().enumerate().take(100) {
        let kept = dropout_word(11, 1, i as u32) >= (0.25f64 * 4_294_967_296.0) as u32;
        assert_eq!(v != 0.0, kept);
    }
}

#[test]
fn reshapes_are_views_not_copies() {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 4, 4, 3]);
    let r = op(&mut g, Op::Reshape { shape: vec![2, 48] }, &[x]);
    let y = op(&mut g, Op::Unary(kiln::program::UnaryOp::Relu), &[r]);
    let back = op(&mut g, Op::Reshape { shape: vec![2, 4, 4, 3] }, &[y]);
    let spec = PlanSpec { inputs: vec![x], outputs: vec![("out".into(), back)], ..Default::default() };
    let p = plan(&g, &spec).unwrap();
    assert_eq!(p.steps.len(), 1, "only the relu runs: {:?}", p.steps);
    assert_eq!(p.steps[0].args[0], p.inputs[0].1, "the relu reads the input's own buffer");
    assert_eq!(p.output("out"), Some(p.steps[0].args[1]), "the output is the relu's buffer");
    let bad = g.add(Op::Reshape { shape: vec![5, 5] }, &[x], "flatten");
    assert!(bad.unwrap_err().to_string().contains("cannot reshape"));
}

#[test]
fn image_kernels_match_cpu_on_gpu() {
    let mut r = rng(21);
    let mut b = Builder::default();
    for (_, win) in geometries() {
        let x = b.input(uniform(&mut r, win.input_len(), -1.0, 1.0));
        let cols = b.input(uniform(&mut r, win.positions() * win.patch_len(), -1.0, 1.0));
        b.op(Kernel::Im2Col { win }, &[x], win.positions() * win.patch_len());
        b.op(Kernel::Col2Im { win }, &[cols], win.input_len());
        if win.dilation == (1, 1) {
            let pooled = win.positions() * win.channels;
            let dy = b.input(uniform(&mut r, pooled, -1.0, 1.0));
            b.op(Kernel::MaxPool { win }, &[x], pooled);
            b.op(Kernel::AvgPool { win }, &[x], pooled);
            b.op(Kernel::MaxPoolGrad { win, relu: false }, &[x, dy], win.input_len());
            b.op(Kernel::MaxPoolGrad { win, relu: true }, &[x, dy], win.input_len());
            b.op(Kernel::AvgPoolGrad { win }, &[dy], win.input_len());
        }
    }
    for (_, win) in geometries().into_iter().take(3) {
        let flat =
            Window2d::new([9, win.height, win.width, win.channels], (1, 1), (1, 1), (1, 1), Padding::Valid);
        let flat = flat.unwrap();
        let x = b.input(uniform(&mut r, flat.input_len(), -1.0, 1.0));
        b.op(Kernel::RandomFlip { win: flat, seed: 17 }, &[x], flat.input_len());
    }
    // A batch the size of mnist-cnn's first layer, for the 2-D grid and index arithmetic.
    let big = Window2d::new([16, 28, 28, 1], (3, 3), (1, 1), (1, 1), Padding::Valid).unwrap();
    let x = b.input(uniform(&mut r, big.input_len(), 0.0, 1.0));
    b.op(Kernel::Im2Col { win: big }, &[x], big.positions() * big.patch_len());
    for (len, rate) in [(1, 0.5), (1000, 0.1), (70_001, 0.5)] {
        let x = b.input(uniform(&mut r, len, -1.0, 1.0));
        let threshold = (rate * 4_294_967_296.0) as u32;
        let scale = (1.0 / (1.0 - rate)) as f32;
        b.op(Kernel::Dropout { len, seed: 3, threshold, scale, inner: 0, period: 0 }, &[x], len);
    }
    // One mask per sequence ([batch, steps, features] = [5, 7, 3] and [33, 29, 17]).
    for (batch, steps, features) in [(5, 7, 3), (33, 29, 17)] {
        let len = batch * steps * features;
        let x = b.input(uniform(&mut r, len, -1.0, 1.0));
        let (inner, period) = (features, steps * features);
        b.op(Kernel::Dropout { len, seed: 9, threshold: 1 << 31, scale: 2.0, inner, period }, &[x], len);
    }
    check(&b, 1e-5);
}

#[test]
fn batch_norm_kernels_match_cpu_on_gpu() {
    let mut r = rng(23);
    let mut b = Builder::default();
    // The last three take the split-row kernels (partials per 1024 rows, then in order).
    for (rows, cols) in [(1, 3), (33, 17), (70, 40), (2000, 5), (8_192, 1), (20_000, 5), (86_528, 32)] {
        let split = kiln::backend::gpu::splits_rows(&Kernel::BatchMoments { rows, cols });
        assert_eq!(split, rows >= 8_192, "{rows}×{cols}");
        assert_eq!(
            split,
            kiln::backend::gpu::splits_rows(&Kernel::BatchNormGradSums { rows, cols, eps: 1e-3 })
        );
        let x = b.input(uniform(&mut r, rows * cols, -2.0, 3.0));
        let gamma = b.input(uniform(&mut r, cols, 0.5, 1.5));
        let beta = b.input(uniform(&mut r, cols, -1.0, 1.0));
        let dy = b.input(uniform(&mut r, rows * cols, -1.0, 1.0));
        let mean = b.input(uniform(&mut r, cols, -1.0, 1.0));
        let var = b.input(uniform(&mut r, cols, 0.5, 2.0));
        let eps = 1e-3;
        // Each backend's own moments feed its other kernels (and are compared too).
        let moments = b.output(2 * cols);
        b.step(Kernel::BatchMoments { rows, cols }, &[x, moments]);
        b.op(Kernel::BatchNormTrain { rows, cols, eps }, &[x, moments, gamma, beta], rows * cols);
        // Each backend's own sums feed its dx.
        let sums = b.output(2 * cols);
        b.step(Kernel::BatchNormGradSums { rows, cols, eps }, &[x, moments, dy, sums]);
        b.op(Kernel::BatchNormGrad { rows, cols, eps }, &[x, moments, gamma, dy, sums], rows * cols);
        b.op(Kernel::Copy { len: cols, offset: cols }, &[sums], cols);
        b.op(Kernel::BatchNormInference { rows, cols, eps }, &[x, gamma, beta, mean, var], rows * cols);
        // The moving update runs in place on zero-initialised outputs.
        let (m2, v2) = (b.output(cols), b.output(cols));
        b.step(Kernel::BatchNormMoving { cols, momentum: 0.9 }, &[moments, m2, v2]);
    }
    check(&b, 1e-4);
}

/// The CPU GEMM splits a long K over the pool when C is small (a filter gradient such as
/// 9×86528×32): the result matches an f64 dot product, for every transpose and with `acc`.
#[test]
fn split_k_gemm_matches_f64_products() {
    use kiln::backend::cpu::kernels::{matmul, matmul_bias_act};
    let mut r = rng(31);
    for (m, k, n) in [(9, 20_000, 32), (3, 70_001, 5)] {
        for (trans_a, trans_b) in [(true, false), (false, false), (true, true)] {
            let a = uniform(&mut r, m * k, -1.0, 1.0);
            let b = uniform(&mut r, k * n, -1.0, 1.0);
            let mut c = vec![0f32; m * n];
            matmul(m, k, n, trans_a, trans_b, &a, &b, &mut c);
            let bias = uniform(&mut r, n, -1.0, 1.0);
            let mut c2 = vec![0f32; m * n];
            matmul_bias_act(m, k, n, trans_a, trans_b, None, &a, &b, &bias, &mut c2);
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k)
                        .map(|t| {
                            let av = if trans_a { a[t * m + i] } else { a[i * k + t] };
                            let bv = if trans_b { b[j * k + t] } else { b[t * n + j] };
                            f64::from(av) * f64::from(bv)
                        })
                        .sum();
                    let got = f64::from(c[i * n + j]);
                    assert!(
                        (got - want).abs() < 1e-3 * (1.0 + want.abs()),
                        "{m}x{k}x{n} [{i},{j}]: {got} vs {want}"
                    );
                    let got2 = f64::from(c2[i * n + j]) - f64::from(bias[j]);
                    assert!((got2 - want).abs() < 1e-3 * (1.0 + want.abs()), "with bias [{i},{j}]");
                }
            }
        }
    }
}

#[test]
fn random_flip_mirrors_about_half_the_images_and_changes_per_step() {
    let (n, h, w) = (400, 2, 3);
    let mut g = Graph::new();
    let x = g.input("x", &[n, h, w, 1]);
    let y = op(&mut g, Op::RandomFlip { seed: 9 }, &[x]);
    let data: Vec<f64> = (0..n * h * w).map(|i| i as f64).collect();
    let flipped = |t: u32| -> Vec<bool> {
        let out = run_cpu(&g, &[x], y, std::slice::from_ref(&data), t);
        (0..n)
            .map(|img| {
                let (a, b) = (&data[img * 6..img * 6 + 6], &out[img * 6..img * 6 + 6]);
                let mirrored: Vec<f64> =
                    (0..h).flat_map(|r| (0..w).rev().map(move |c| a[r * w + c])).collect();
                assert!(b == a || b == mirrored.as_slice(), "image {img} is neither copied nor mirrored");
                b != a
            })
            .collect()
    };
    let (a, b) = (flipped(1), flipped(2));
    let share = a.iter().filter(|&&f| f).count() as f64 / n as f64;
    assert!((share - 0.5).abs() < 0.08, "flipped share {share}");
    assert_ne!(a, b, "steps 1 and 2 flip different images");
}

/// Filter gradients (a small C over a long K) run split over K on hardware GPUs (the Tiled
/// matmul family; software adapters keep their faster register-blocked kernels unless a loop
/// would pass llvmpipe's limit): partial products per K-chunk, then an in-order sum. Both
/// paths match the CPU for the mnist-cnn shapes, odd sizes and every transpose; shapes with
/// many output tiles or a short K are never split.
#[test]
fn split_k_matmuls_match_cpu_on_gpu() {
    use kiln::backend::gpu::splits_k;
    let mut r = rng(41);
    let mut b = Builder::default();
    let shapes = [(9, 86_528, 32, true, false), (288, 15_488, 64, true, false), (5, 9_001, 7, false, false)];
    let more = [(7, 10_000, 3, false, true), (3, 8_200, 130, true, true)];
    for (m, k, n, trans_a, trans_b) in shapes.into_iter().chain(more) {
        let kernel = Kernel::MatMul { m, k, n, trans_a, trans_b };
        assert!(splits_k(&kernel), "{kernel:?} should split");
        let x = b.input(uniform(&mut r, m * k, -1.0, 1.0));
        let w = b.input(uniform(&mut r, k * n, -1.0, 1.0));
        b.op(kernel, &[x, w], m * n);
    }
    assert!(!splits_k(&Kernel::MatMul { m: 15_488, k: 288, n: 64, trans_a: false, trans_b: false }));
    assert!(!splits_k(&Kernel::MatMul { m: 9, k: 1000, n: 32, trans_a: true, trans_b: false }));
    for variant in [MatmulKernel::Tiled, MatmulKernel::Direct] {
        let Some(mut g) = crate::common::gpu() else { return };
        g.set_matmul_kernel(variant);
        check_on(g, &b, 1e-3);
    }
}

/// Bias gradients (a few columns summed over many rows) run split over chunks of rows on
/// every adapter: partial sums on (column groups × chunks) workgroups, then each column's
/// in-order sum. They match the CPU for the mnist-cnn shapes and odd sizes (a last partial
/// chunk, one column, 300 columns); short or wide sums keep the one-pass kernel.
#[test]
fn split_row_sums_match_cpu_on_gpu() {
    use kiln::backend::gpu::splits_rows;
    let mut r = rng(42);
    let mut b = Builder::default();
    for (rows, cols) in [(86_528, 32), (15_488, 64), (8_193, 1), (20_000, 10), (9_000, 300)] {
        let kernel = Kernel::SumRows { rows, cols };
        assert!(splits_rows(&kernel), "{kernel:?} should split");
        let x = b.input(uniform(&mut r, rows * cols, -1.0, 1.0));
        b.op(kernel, &[x], cols);
    }
    for (rows, cols) in [(128, 10), (9_000, 600)] {
        let kernel = Kernel::SumRows { rows, cols };
        assert!(!splits_rows(&kernel), "{kernel:?} should not split");
        let x = b.input(uniform(&mut r, rows * cols, -1.0, 1.0));
        b.op(kernel, &[x], cols);
    }
    check(&b, 1e-4);
}

/// The 2×2 stride-2 max-pool gradient (its own fast path) against a plain reference: each
/// window's gradient goes to its first tap (row-major) equal to the running maximum taken with
/// `v > m` from −∞; with relu only when that maximum is > 0. Values from a small set (many
/// ties), NaN and negatives, odd sizes (a remainder row and column get 0; with same padding,
/// windows past the edge take the general path), 1 to 70 channels.
#[test]
fn max_pool_grad_2x2_matches_a_reference_with_ties_and_nan() {
    use kiln::backend::cpu::conv::max_pool_grad;
    let mut r = rng(51);
    for (h, w, c, padding) in [
        (4, 4, 3, Padding::Valid),
        (7, 9, 70, Padding::Valid),
        (2, 2, 1, Padding::Valid),
        (7, 9, 5, Padding::Same),
    ] {
        let batch = 2;
        let win = Window2d::new([batch, h, w, c], (2, 2), (2, 2), (1, 1), padding).unwrap();
        let len = batch * h * w * c;
        let x: Vec<f32> = uniform(&mut r, len, 0.0, 1.0)
            .into_iter()
            .map(|u| match (u * 8.0) as u32 {
                0 => f32::NAN,
                k => k as f32 - 3.0,
            })
            .collect();
        let dy = uniform(&mut r, batch * win.out.0 * win.out.1 * c, -1.0, 1.0);
        for relu in [false, true] {
            let mut got = vec![7.0f32; len];
            max_pool_grad(&win, relu, &x, &dy, &mut got);
            let mut want = vec![0.0f32; len];
            for n in 0..batch {
                for (oy, ox) in (0..win.out.0).flat_map(|oy| (0..win.out.1).map(move |ox| (oy, ox))) {
                    for ch in 0..c {
                        // Same padding on odd sizes: the last window's outside taps are padding.
                        let taps: Vec<usize> = [(0, 0), (0, 1), (1, 0), (1, 1)]
                            .into_iter()
                            .map(|(dy_, dx_)| (2 * oy + dy_, 2 * ox + dx_))
                            .filter(|&(iy, ix)| iy < h && ix < w)
                            .map(|(iy, ix)| ((n * h + iy) * w + ix) * c + ch)
                            .collect();
                        let m = taps.iter().fold(f32::NEG_INFINITY, |m, &t| if x[t] > m { x[t] } else { m });
                        if let Some(&t) = taps.iter().find(|&&t| x[t] == m)
                            && (!relu || m > 0.0)
                        {
                            want[t] = dy[((n * win.out.0 + oy) * win.out.1 + ox) * c + ch];
                        }
                    }
                }
            }
            assert_eq!(got, want, "{h}×{w}×{c} relu {relu}");
        }
    }
}
