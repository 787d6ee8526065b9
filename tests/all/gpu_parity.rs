//! The GPU backend computes what the CPU backend (the specification) computes: every Kernel
//! variant on random data, odd shapes, optimizer steps over resident arenas, size limits,
//! backend selection and run-to-run determinism.
use kiln::Error;
use kiln::backend::cpu::CpuBackend;
use kiln::backend::gpu::{GpuBackend, MatmulKernel, adapters, entry_point};
use kiln::backend::{Backend, DeviceKind};
use kiln::program::{Arena, BufRef, Kernel, Program, ResidentLayout, Step, StepScalars, UnaryOp, align};
use rand_chacha::ChaCha8Rng;

use crate::common::{gpu, rng, uniform};

/// Builds a program over the Work arena: inputs and outputs at 64-aligned offsets.
#[derive(Default)]
pub(crate) struct Builder {
    pub(crate) program: Program,
    pub(crate) data: Vec<Vec<f32>>,
}

impl Builder {
    fn alloc(&mut self, len: usize) -> BufRef {
        let b = BufRef { arena: Arena::Work, offset: self.program.work_len, len };
        self.program.work_len += align(len.max(1));
        b
    }

    /// A host-fed input holding `data`.
    pub(crate) fn input(&mut self, data: Vec<f32>) -> BufRef {
        let b = self.alloc(data.len());
        let name = format!("in{}", self.program.inputs.len());
        self.program.inputs.push((name, b));
        self.data.push(data);
        b
    }

    /// A readable output of `len` elements.
    pub(crate) fn output(&mut self, len: usize) -> BufRef {
        let b = self.alloc(len);
        let name = format!("out{}", self.program.outputs.len());
        self.program.outputs.push((name, b));
        b
    }

    pub(crate) fn step(&mut self, kernel: Kernel, args: &[BufRef]) {
        self.program.steps.push(Step::new(kernel, args.to_vec()));
    }

    /// Step with `inputs` and a fresh output of `out_len` elements.
    pub(crate) fn op(&mut self, kernel: Kernel, inputs: &[BufRef], out_len: usize) {
        let out = self.output(out_len);
        let mut args = inputs.to_vec();
        args.push(out);
        self.step(kernel, &args);
    }
}

/// |gpu − cpu| ≤ tol · (|cpu| + 1) elementwise, with a message naming what differs.
pub(crate) fn assert_close(what: &str, gpu: &[f32], cpu: &[f32], tol: f32) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths differ");
    for (i, (&g, &c)) in gpu.iter().zip(cpu).enumerate() {
        let ok = (g - c).abs() <= tol * (c.abs() + 1.0) || (g.is_nan() && c.is_nan());
        assert!(ok, "{what}[{i}]: gpu {g} vs cpu {c} (tol {tol})");
    }
}

/// Run the built program once on both backends (empty resident arenas) and compare every
/// output, naming the kernel that produced it.
pub(crate) fn check(b: &Builder, tol: f32) {
    let Some(g) = gpu() else { return };
    check_on(g, b, tol);
}

/// As [`check`], on a given GPU backend.
pub(crate) fn check_on(mut g: GpuBackend, b: &Builder, tol: f32) {
    let mut c = CpuBackend::new();
    let inputs: Vec<&[f32]> = b.data.iter().map(|d| d.as_slice()).collect();
    let mut results = Vec::new();
    for backend in [&mut c as &mut dyn Backend, &mut g as &mut dyn Backend] {
        backend.alloc_resident(&ResidentLayout::default()).unwrap();
        let id = backend.compile(&b.program).unwrap();
        backend.run(id, &inputs, StepScalars::default()).unwrap();
        let outs: Vec<Vec<f32>> =
            b.program.outputs.iter().map(|(_, o)| backend.read_work(id, *o).unwrap()).collect();
        results.push(outs);
    }
    for (k, (name, out)) in b.program.outputs.iter().enumerate() {
        let step = b.program.steps.iter().find(|s| s.args.contains(out));
        let what = format!("{name} of {:?}", step.map(|s| s.kernel));
        assert_close(&what, &results[1][k], &results[0][k], tol);
    }
}

#[test]
fn fused_matmul_bias_activation_matches_cpu() {
    let mut r = rng(9);
    let mut b = Builder::default();
    let acts: Vec<Option<UnaryOp>> =
        std::iter::once(None).chain(UnaryOp::ALL.iter().copied().map(Some)).collect();
    for (i, &(m, k, n)) in [(3, 5, 7), (33, 17, 130), (130, 67, 33), (1, 1, 1), (4, 0, 5)].iter().enumerate()
    {
        for (j, (trans_a, trans_b)) in
            [(false, false), (true, false), (false, true), (true, true)].into_iter().enumerate()
        {
            let a = b.input(uniform(&mut r, m * k, -1.0, 1.0));
            let bb = b.input(uniform(&mut r, k * n, -1.0, 1.0));
            let bias = b.input(uniform(&mut r, n, -1.0, 1.0));
            let act = acts[(i + j) % acts.len()];
            b.op(Kernel::MatMulBiasAct { m, k, n, trans_a, trans_b, act }, &[a, bb, bias], m * n);
        }
    }
    for variant in [MatmulKernel::Tiled, MatmulKernel::Direct] {
        let Some(mut g) = gpu() else { return };
        g.set_matmul_kernel(variant);
        check_on(g, &b, 1e-4);
    }
}

#[test]
fn matmul_matches_cpu_for_odd_shapes_and_all_transposes() {
    let mut r = rng(1);
    let mut b = Builder::default();
    let shapes = [
        (1, 1, 1),
        (3, 5, 7),
        (17, 33, 1),
        (33, 17, 130),
        (130, 67, 33),
        (64, 64, 64),
        (1, 130, 3),
        (65, 16, 129),
        (5, 0, 3),
    ];
    for &(m, k, n) in &shapes {
        for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = b.input(uniform(&mut r, m * k, -1.0, 1.0));
            let bb = b.input(uniform(&mut r, k * n, -1.0, 1.0));
            let kernel = Kernel::MatMul { m, k, n, trans_a, trans_b };
            b.op(kernel, &[a, bb], m * n);
        }
    }
    for variant in [MatmulKernel::Tiled, MatmulKernel::Direct] {
        let Some(mut g) = gpu() else { return };
        g.set_matmul_kernel(variant);
        check_on(g, &b, 1e-4);
    }
}

const TRANSPOSES: [(bool, bool); 4] = [(false, false), (true, false), (false, true), (true, true)];

/// Whether `shaders/matmul_vec4.wgsl` serves a (m, k, n, transposes) matmul: n % 4 == 0 and the
/// contiguous axis of each stored operand a multiple of 4.
fn expect_vec4(m: usize, k: usize, n: usize, trans_a: bool, trans_b: bool) -> bool {
    let (a, b) = (if trans_a { m } else { k }, if trans_b { k } else { n });
    n.is_multiple_of(4) && a.is_multiple_of(4) && b.is_multiple_of(4)
}

#[test]
fn vec4_path_is_taken_exactly_for_aligned_shapes() {
    let act = Some(UnaryOp::Relu);
    for &(m, k, n) in &[(4, 4, 4), (36, 8, 12), (3, 12, 8), (128, 7, 32), (36, 8, 10), (5, 6, 7), (64, 0, 16)]
    {
        for (trans_a, trans_b) in TRANSPOSES {
            let plain = Kernel::MatMul { m, k, n, trans_a, trans_b };
            let fused = Kernel::MatMulBiasAct { m, k, n, trans_a, trans_b, act };
            for kernel in [plain, fused] {
                for (variant, scalar, vec4) in [
                    (MatmulKernel::Tiled, "matmul", "matmul_vec4_tiled"),
                    (MatmulKernel::Direct, "matmul_direct", "matmul_vec4"),
                ] {
                    let want = if expect_vec4(m, k, n, trans_a, trans_b) { vec4 } else { scalar };
                    assert_eq!(entry_point(&kernel, variant, true).unwrap(), want, "{kernel:?} {variant:?}");
                    assert_eq!(
                        entry_point(&kernel, variant, false).unwrap(),
                        scalar,
                        "{kernel:?} {variant:?}"
                    );
                }
            }
        }
    }
    // The shapes of a training step: Dense forward (NN), weight gradient Xᵀ·G (TN), input
    // gradient G·Wᵀ (NT), all aligned.
    for (trans_a, trans_b) in [(false, false), (true, false), (false, true)] {
        let kernel = Kernel::MatMul { m: 64, k: 16, n: 128, trans_a, trans_b };
        assert_eq!(entry_point(&kernel, MatmulKernel::Direct, true).unwrap(), "matmul_vec4");
        assert_eq!(entry_point(&kernel, MatmulKernel::Tiled, true).unwrap(), "matmul_vec4_tiled");
    }
}

#[test]
fn vec4_matmul_matches_cpu_for_aligned_edge_and_unaligned_shapes() {
    let mut r = rng(10);
    let mut b = Builder::default();
    let acts: Vec<Option<UnaryOp>> =
        std::iter::once(None).chain(UnaryOp::ALL.iter().copied().map(Some)).collect();
    // m not a multiple of the 32/64 tile (4, 36, 132, 260), m not a multiple of 4 (1, 3, 33),
    // odd k with Aᵀ·B (7, 5), k = 0, and unaligned n (10) or k (6) falling back to the scalar
    // kernels.
    let shapes = [
        (4, 4, 4),
        (36, 8, 12),
        (132, 20, 68),
        (260, 64, 36),
        (3, 12, 8),
        (33, 16, 4),
        (1, 4, 4),
        (128, 7, 32),
        (36, 5, 12),
        (64, 0, 16),
        (36, 8, 10),
        (36, 6, 12),
    ];
    let mut vec4_launches = 0;
    for (i, &(m, k, n)) in shapes.iter().enumerate() {
        for (j, (trans_a, trans_b)) in TRANSPOSES.into_iter().enumerate() {
            let a = b.input(uniform(&mut r, m * k, -1.0, 1.0));
            let bb = b.input(uniform(&mut r, k * n, -1.0, 1.0));
            let bias = b.input(uniform(&mut r, n, -1.0, 1.0));
            let act = acts[(i + j) % acts.len()];
            let plain = Kernel::MatMul { m, k, n, trans_a, trans_b };
            let fused = Kernel::MatMulBiasAct { m, k, n, trans_a, trans_b, act };
            if expect_vec4(m, k, n, trans_a, trans_b) {
                assert_eq!(entry_point(&fused, MatmulKernel::Direct, true).unwrap(), "matmul_vec4");
                assert_eq!(entry_point(&plain, MatmulKernel::Tiled, true).unwrap(), "matmul_vec4_tiled");
                vec4_launches += 2;
            }
            b.op(plain, &[a, bb], m * n);
            b.op(fused, &[a, bb, bias], m * n);
        }
    }
    assert!(vec4_launches >= 50, "only {vec4_launches} launches take the vec4 path");
    for variant in [MatmulKernel::Tiled, MatmulKernel::Direct] {
        let Some(mut g) = gpu() else { return };
        g.set_matmul_kernel(variant);
        check_on(g, &b, 1e-4);
    }
    // The same program through the scalar kernels only.
    let Some(mut g) = gpu() else { return };
    g.set_matmul_vec4(false);
    check_on(g, &b, 1e-4);
}

#[test]
fn elementwise_kernels_match_cpu() {
    let mut r = rng(2);
    let mut b = Builder::default();
    let (rows, cols, len) = (13, 37, 1000);
    let x = b.input(uniform(&mut r, rows * cols, -3.0, 3.0));
    let bias = b.input(uniform(&mut r, cols, -1.0, 1.0));
    b.op(Kernel::BiasAdd { rows, cols }, &[x, bias], rows * cols);
    let u = b.input(uniform(&mut r, len, -20.0, 20.0));
    let v = b.input(uniform(&mut r, len, -2.0, 2.0));
    b.op(Kernel::Add { len }, &[u, v], len);
    b.op(Kernel::Affine { len, scale: 0.9, shift: 0.1 / 3.0 }, &[v], len);
    for op in [UnaryOp::Relu, UnaryOp::Sigmoid, UnaryOp::Tanh] {
        b.op(Kernel::Unary { op, len }, &[u], len);
        let small = b.input(uniform(&mut r, len, -0.01, 0.01));
        b.op(Kernel::Unary { op, len }, &[small], len);
        // The backward pass sees the forward output y.
        let y = b.input(uniform(&mut r, len, -1.0, 1.0));
        b.op(Kernel::UnaryGrad { op, len }, &[y, v], len);
    }
    b.op(Kernel::BroadcastRows { rows, cols }, &[bias], rows * cols);
    b.op(Kernel::BroadcastScalar { len, scale: 0.25 }, &[bias], len);
    let f = b.output(len);
    b.step(Kernel::Fill { len, value: -1.5 }, &[f]);
    let acc = b.input(uniform(&mut r, len, -1.0, 1.0));
    b.program.outputs.push(("acc".into(), acc));
    b.step(Kernel::Accumulate { len, scale: 0.5 }, &[u, acc]);
    check(&b, 1e-5);
}

#[test]
fn softmax_family_matches_cpu() {
    let mut r = rng(3);
    let mut b = Builder::default();
    for (rows, cols) in [(1, 1), (7, 13), (300, 10), (2, 257)] {
        let n = rows * cols;
        let x = b.input(uniform(&mut r, n, -5.0, 5.0));
        b.op(Kernel::Softmax { rows, cols }, &[x], n);
        b.op(Kernel::LogSoftmax { rows, cols }, &[x], n);
        let y = b.input(uniform(&mut r, n, 0.0, 1.0));
        let dy = b.input(uniform(&mut r, n, -1.0, 1.0));
        b.op(Kernel::SoftmaxGrad { rows, cols }, &[y, dy], n);
        let ly = b.input(uniform(&mut r, n, -4.0, 0.0));
        b.op(Kernel::LogSoftmaxGrad { rows, cols }, &[ly, dy], n);
    }
    check(&b, 1e-5);
}

#[test]
fn reductions_and_broadcasts_match_cpu() {
    let mut r = rng(4);
    let mut b = Builder::default();
    for (rows, cols) in [(1, 1), (37, 129), (1000, 3), (0, 5)] {
        let x = b.input(uniform(&mut r, rows * cols, -1.0, 1.0));
        b.op(Kernel::SumRows { rows, cols }, &[x], cols);
    }
    for len in [0, 1, 255, 10_000] {
        let x = b.input(uniform(&mut r, len, -1.0, 1.0));
        let scale = 1.0 / len.max(1) as f32;
        b.op(Kernel::SumAll { len, scale }, &[x], 1);
        b.op(Kernel::SumAll { len, scale: 1.0 }, &[x], 1);
    }
    check(&b, 1e-4);
}

/// Class indices (as f32) and the matching one-hot rows.
fn labels(r: &mut ChaCha8Rng, rows: usize, cols: usize) -> (Vec<f32>, Vec<f32>) {
    let sparse: Vec<f32> = uniform(r, rows, 0.0, cols as f32).into_iter().map(f32::floor).collect();
    let mut dense = vec![0.0; rows * cols];
    for (i, &c) in sparse.iter().enumerate() {
        dense[i * cols + c as usize] = 1.0;
    }
    (sparse, dense)
}

#[test]
fn losses_and_metrics_match_cpu() {
    let mut r = rng(5);
    let mut b = Builder::default();
    for (rows, cols) in [(1, 3), (33, 10), (600, 7)] {
        let z = b.input(uniform(&mut r, rows * cols, -4.0, 4.0));
        let (sparse_labels, dense_labels) = labels(&mut r, rows, cols);
        let ls = b.input(sparse_labels);
        let ld = b.input(dense_labels);
        let dloss = b.input(vec![1.7]);
        // A step mask (0/1) and fractional weights for the weighted count.
        let mask: Vec<f32> = uniform(&mut r, rows, 0.0, 2.0).into_iter().map(f32::floor).collect();
        let (mask, frac) = (b.input(mask), b.input(uniform(&mut r, rows, 0.0, 1.0)));
        for (sparse, l) in [(true, ls), (false, ld)] {
            b.op(Kernel::SoftmaxCrossEntropy { rows, cols, sparse, weighted: false }, &[z, l], 1);
            let grad = Kernel::SoftmaxCrossEntropyGrad { rows, cols, sparse, weighted: false };
            b.op(grad, &[z, l, dloss], rows * cols);
            let threshold = 0.0;
            let count = Kernel::CountCorrect { rows, cols, sparse, threshold, weighted: false };
            b.op(count, &[z, l], 1);
            for w in [mask, frac] {
                b.op(Kernel::CountCorrect { rows, cols, sparse, threshold, weighted: true }, &[z, l, w], 1);
                b.op(Kernel::CountTopK { rows, cols, sparse, k: 2, weighted: true }, &[z, l, w], 1);
            }
        }
    }
    for len in [1, 100, 3001] {
        let p = b.input(uniform(&mut r, len, -30.0, 30.0));
        let t = b.input(uniform(&mut r, len, 0.0, 1.0));
        let dloss = b.input(vec![0.5]);
        b.op(Kernel::MeanSquaredError { len, rows: len, weighted: false }, &[p, t], 1);
        b.op(Kernel::MeanSquaredErrorGrad { len, rows: len, weighted: false }, &[p, t, dloss], len);
        b.op(Kernel::SigmoidBinaryCrossEntropy { len, rows: len, weighted: false }, &[p, t], 1);
        b.op(Kernel::SigmoidBinaryCrossEntropyGrad { len, rows: len, weighted: false }, &[p, t, dloss], len);
        let count =
            Kernel::CountCorrect { rows: len, cols: 1, sparse: false, threshold: 0.5, weighted: false };
        b.op(count, &[p, t], 1);
        let w = b.input(uniform(&mut r, len, 0.0, 1.0));
        let count =
            Kernel::CountCorrect { rows: len, cols: 1, sparse: false, threshold: 0.5, weighted: true };
        b.op(count, &[p, t, w], 1);
    }
    check(&b, 1e-4);
}

/// Run one optimizer kernel for steps t = 1, 2, 3 over resident arenas on both backends,
/// with fresh gradients each step, and compare params and every slot after each step.
fn check_optimizer(kernel: Kernel, slots: usize) {
    let Some(mut g) = gpu() else { return };
    let mut c = CpuBackend::new();
    let len = 1000;
    let layout = ResidentLayout { params_len: len, slots, accum_len: 0 };
    let whole = |arena| BufRef { arena, offset: 0, len };
    let mut args = vec![whole(Arena::Params), whole(Arena::Grads)];
    args.extend((0..slots).map(|k| whole(Arena::Slot(k as u8))));
    if args.len() < 3 {
        // SGD without momentum: the velocity slot is absent (empty slice).
        args.push(BufRef { arena: Arena::Slot(0), offset: 0, len: 0 });
    }
    let program = Program { steps: vec![Step::new(kernel, args)], ..Program::default() };
    let mut r = rng(6);
    let params = uniform(&mut r, len, -1.0, 1.0);
    let mut ids = Vec::new();
    for backend in [&mut c as &mut dyn Backend, &mut g as &mut dyn Backend] {
        backend.alloc_resident(&layout).unwrap();
        backend.write(Arena::Params, 0, &params).unwrap();
        ids.push(backend.compile(&program).unwrap());
    }
    for t in 1..=3 {
        let grads = uniform(&mut r, len, -1.0, 1.0);
        let scalars = StepScalars { lr: 0.01 * t as f32, t };
        let mut state = Vec::new();
        for (backend, &id) in [&mut c as &mut dyn Backend, &mut g as &mut dyn Backend].into_iter().zip(&ids) {
            backend.write(Arena::Grads, 0, &grads).unwrap();
            backend.run(id, &[], scalars).unwrap();
            let mut s = vec![backend.read(Arena::Params, 0, len).unwrap()];
            for k in 0..slots {
                s.push(backend.read(Arena::Slot(k as u8), 0, len).unwrap());
            }
            state.push(s);
        }
        for (k, (gs, cs)) in state[1].iter().zip(&state[0]).enumerate() {
            assert_close(&format!("{kernel:?} t={t} arena {k}"), gs, cs, 1e-5);
        }
    }
}

#[test]
fn sgd_updates_match_cpu_over_three_steps() {
    check_optimizer(Kernel::SgdUpdate { len: 1000, momentum: 0.0, nesterov: false }, 0);
    for nesterov in [false, true] {
        let kernel = Kernel::SgdUpdate { len: 1000, momentum: 0.9, nesterov };
        check_optimizer(kernel, 1);
    }
}

#[test]
fn adam_updates_match_cpu_over_three_steps() {
    let kernel = Kernel::AdamUpdate {
        len: 1000,
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-7,
        weight_decay: 0.0,
        amsgrad: false,
    };
    check_optimizer(kernel, 2);
}

#[test]
fn large_elementwise_launch_uses_a_2d_grid() {
    // More than 65535 workgroups of 256 threads: the grid folds into two dimensions.
    let len = 65_535 * 256 + 300;
    let mut b = Builder::default();
    let out = b.output(len);
    b.step(Kernel::Fill { len, value: 2.5 }, &[out]);
    let Some(mut g) = gpu() else { return };
    g.alloc_resident(&ResidentLayout::default()).unwrap();
    let id = g.compile(&b.program).unwrap();
    g.run(id, &[], StepScalars::default()).unwrap();
    let y = g.read_work(id, out).unwrap();
    assert!(y.iter().all(|&v| v == 2.5), "every element filled");
}

#[test]
fn oversized_arenas_and_bindings_are_reported_before_allocation() {
    let Some(mut g) = gpu() else { return };
    let max_buffer = g.info().max_buffer_size;
    let huge = ResidentLayout { params_len: (max_buffer / 4) as usize + 64, slots: 2, accum_len: 1 };
    match g.alloc_resident(&huge) {
        Err(Error::OutOfDeviceMemory { buffer, limit_name, .. }) => {
            assert!(buffer.contains("Params"), "names the buffer: {buffer}");
            assert_eq!(limit_name, "max_buffer_size");
        }
        other => panic!("expected OutOfDeviceMemory, got {other:?}"),
    }
    let len = align((g.info().max_storage_binding / 4) as usize + 1);
    if (4 * len as u64) > max_buffer {
        return; // the binding limit equals the buffer limit here
    }
    let mut b = Builder::default();
    let out = b.output(len);
    b.step(Kernel::Fill { len, value: 1.0 }, &[out]);
    g.alloc_resident(&ResidentLayout::default()).unwrap();
    match g.compile(&b.program) {
        Err(Error::OutOfDeviceMemory { buffer, limit_name, .. }) => {
            assert!(buffer.contains("Fill"), "names the step: {buffer}");
            assert_eq!(limit_name, "max_storage_buffer_binding_size");
        }
        Err(e) => panic!("expected OutOfDeviceMemory, got {e}"),
        Ok(_) => panic!("expected OutOfDeviceMemory, the program compiled"),
    }
}

#[test]
fn adapter_matches_the_requested_backend() {
    let Some(g) = gpu() else { return };
    let list = adapters();
    assert!(list.iter().any(|a| a.name == g.info().name));
    let requested = std::env::var("WGPU_BACKEND").unwrap_or_default();
    for wanted in ["Vulkan", "Gl"] {
        if requested.eq_ignore_ascii_case(wanted) {
            assert_eq!(g.info().backend, wanted);
            assert!(list.iter().all(|a| a.backend == wanted));
        }
    }
    let DeviceKind::Gpu { backend, .. } = g.kind() else {
        panic!("the GPU backend reports a GPU device kind");
    };
    assert_eq!(backend, g.info().backend);
    assert!(g.info().max_storage_binding > 0 && g.info().max_workgroup_invocations >= 256);
}

#[test]
fn running_a_program_twice_is_bitwise_identical() {
    let mut r = rng(7);
    let mut b = Builder::default();
    let (rows, k, cols) = (50, 70, 10);
    let x = b.input(uniform(&mut r, rows * k, -1.0, 1.0));
    let w = b.input(uniform(&mut r, k * cols, -1.0, 1.0));
    let (sparse_labels, _) = labels(&mut r, rows, cols);
    let l = b.input(sparse_labels);
    let z = b.output(rows * cols);
    let mm = Kernel::MatMul { m: rows, k, n: cols, trans_a: false, trans_b: false };
    b.step(mm, &[x, w, z]);
    let sparse = true;
    b.op(Kernel::SoftmaxCrossEntropy { rows, cols, sparse, weighted: false }, &[z, l], 1);
    b.op(Kernel::SumRows { rows, cols }, &[z], cols);
    b.op(Kernel::SumAll { len: rows * cols, scale: 1.0 }, &[z], 1);
    let Some(mut g) = gpu() else { return };
    g.alloc_resident(&ResidentLayout::default()).unwrap();
    let id = g.compile(&b.program).unwrap();
    let inputs: Vec<&[f32]> = b.data.iter().map(|d| d.as_slice()).collect();
    let mut runs = Vec::new();
    for _ in 0..2 {
        g.run(id, &inputs, StepScalars::default()).unwrap();
        let outs: Vec<u32> = b
            .program
            .outputs
            .iter()
            .flat_map(|(_, o)| g.read_work(id, *o).unwrap())
            .map(f32::to_bits)
            .collect();
        runs.push(outs);
    }
    assert_eq!(runs[0], runs[1]);
}

#[test]
fn wrong_inputs_are_rejected_with_errors() {
    let Some(mut g) = gpu() else { return };
    let mut b = Builder::default();
    let x = b.input(vec![1.0; 10]);
    b.op(Kernel::Unary { op: UnaryOp::Relu, len: 10 }, &[x], 10);
    g.alloc_resident(&ResidentLayout::default()).unwrap();
    let id = g.compile(&b.program).unwrap();
    let short = [0.0f32; 3];
    assert!(matches!(g.run(id, &[&short], StepScalars::default()), Err(Error::Shape { .. })));
    assert!(g.run(id, &[], StepScalars::default()).is_err());
    assert!(g.read(Arena::Params, 0, 10).is_err(), "outside the empty Params arena");
    let mut bad = b.program.clone();
    bad.steps[0].args[0].len = 1_000_000;
    assert!(matches!(g.compile(&bad), Err(Error::Invalid { .. })));
}

#[test]
fn compiled_programs_follow_a_new_resident_allocation() {
    // A program compiled before alloc_resident runs against the new arenas afterwards.
    let Some(mut g) = gpu() else { return };
    let mut c = CpuBackend::new();
    let len = 300;
    let acc = BufRef { arena: Arena::Accum, offset: 64, len };
    let mut b = Builder::default();
    let x = b.input(uniform(&mut rng(8), len, -1.0, 1.0));
    b.step(Kernel::Accumulate { len, scale: 2.0 }, &[x, acc]);
    let inputs: Vec<&[f32]> = b.data.iter().map(|d| d.as_slice()).collect();
    let mut results = Vec::new();
    for backend in [&mut c as &mut dyn Backend, &mut g as &mut dyn Backend] {
        let layout = ResidentLayout { params_len: 10, slots: 0, accum_len: 64 + len };
        backend.alloc_resident(&layout).unwrap();
        let id = backend.compile(&b.program).unwrap();
        backend.run(id, &inputs, StepScalars::default()).unwrap();
        backend.alloc_resident(&layout).unwrap(); // zeroed again
        backend.write(Arena::Accum, 64, &vec![1.0; len]).unwrap();
        backend.run(id, &inputs, StepScalars::default()).unwrap();
        backend.run(id, &inputs, StepScalars::default()).unwrap();
        results.push(backend.read(Arena::Accum, 0, 64 + len).unwrap());
        // A layout too small for the program makes it fail to run, with an error.
        backend.alloc_resident(&ResidentLayout::default()).unwrap();
        if backend.name().starts_with("cpu") {
            continue; // the CPU backend does not re-validate at run time
        }
        assert!(backend.run(id, &inputs, StepScalars::default()).is_err());
    }
    assert_close("Accum after reallocation", &results[1], &results[0], 1e-6);
    assert!(results[1][..64].iter().all(|&v| v == 0.0));
}

#[test]
fn gpu_backend_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<GpuBackend>();
    assert_send::<kiln::backend::gpu::AdapterSummary>();
}

#[test]
fn backends_on_one_adapter_share_compiled_pipelines() {
    let Some(mut first) = gpu() else { return };
    let mut r = rng(5);
    let mut b = Builder::default();
    let x = b.input(uniform(&mut r, 40, -1.0, 1.0));
    b.op(Kernel::Unary { op: UnaryOp::Tanh, len: 40 }, &[x], 40);
    b.op(Kernel::Softmax { rows: 4, cols: 10 }, &[x], 40);
    first.alloc_resident(&ResidentLayout::default()).unwrap();
    first.compile(&b.program).unwrap();
    assert_eq!(first.pipelines_to_compile(&b.program).unwrap(), 0);
    let Some(mut second) = gpu() else { return };
    assert_eq!(
        second.pipelines_to_compile(&b.program).unwrap(),
        0,
        "the second backend reuses every pipeline"
    );
    second.alloc_resident(&ResidentLayout::default()).unwrap();
    second.compile(&b.program).unwrap();
    drop(first);
    check_on(second, &b, 1e-5);
}
