//! Gradient clipping (Keras `global_clipnorm`, `clipnorm`, `clipvalue`): the clipped norms
//! and values, the trainable-only coverage, chunking, GPU = CPU, and clipping inside a step.
use kiln::backend::Backend;
use kiln::backend::cpu::{Arenas, CpuBackend, execute, validate};
use kiln::optim::UPDATE_CHUNK;
use kiln::program::{ALIGN_ELEMS, Arena, BufRef, Kernel, Program, ResidentLayout, Step, StepScalars, align};
use kiln::{Device, GradientClip, Optimizer};

use crate::common::{gpu, rng, uniform};
use crate::gpu_parity::assert_close;
use crate::gpu_parity::{Builder, check};
use crate::optim::one_weight_trajectory;

/// Three parameters of 5, 130 and 7 elements laid out as a model does (64-aligned), the
/// middle one frozen: the trainable slices, all slices, and the layout.
fn layout() -> (Vec<BufRef>, Vec<BufRef>, ResidentLayout) {
    let mut all = Vec::new();
    let mut offset = 0;
    for len in [5, 130, 7] {
        all.push(BufRef { arena: Arena::Params, offset, len });
        offset += align(len);
    }
    let trainable = vec![all[0], all[2]];
    (trainable, all, ResidentLayout { params_len: offset, slots: 0, accum_len: ALIGN_ELEMS })
}

/// The clipping steps of `clip` as a program.
fn clip_program(clip: GradientClip, trainable: &[BufRef]) -> Program {
    let opt = Optimizer::sgd(0.0).with_clip(clip);
    let norm = BufRef { arena: Arena::Accum, offset: 0, len: 1 };
    let steps = opt.clip_steps(trainable, norm);
    Program {
        steps: steps.into_iter().map(|(kernel, args)| Step::new(kernel, args)).collect(),
        ..Program::default()
    }
}

/// Clip `grads` (the whole Grads arena) on the CPU in f64.
fn clip_f64(clip: GradientClip, grads: &[f64]) -> Vec<f64> {
    let (trainable, _, layout) = layout();
    let program = clip_program(clip, &trainable);
    validate(&program, &layout).unwrap();
    let mut a = Arenas::<f64>::new(&layout, 0);
    a.grads.copy_from_slice(grads);
    execute(&program.steps, &mut a, StepScalars::default());
    a.grads
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Gradients of the three parameters (zeros in the padding, as the Grads arena has them).
fn grads(scale: f64) -> Vec<f64> {
    let (_, all, layout) = layout();
    let mut g = vec![0.0; layout.params_len];
    let mut r = rng(9);
    for p in &all {
        for (i, v) in uniform(&mut r, p.len, -1.0, 1.0).into_iter().enumerate() {
            g[p.offset + i] = f64::from(v) * scale;
        }
    }
    g
}

fn trainable_part(g: &[f64]) -> Vec<f64> {
    layout().0.iter().flat_map(|p| g[p.range()].to_vec()).collect()
}

#[test]
fn global_clipnorm_rescales_all_trainable_gradients_to_the_norm() {
    let g = grads(1.0);
    let before = norm(&trainable_part(&g));
    assert!(before > 1.0, "{before}");
    let clipped = clip_f64(GradientClip::GlobalNorm(1.0), &g);
    let after = norm(&trainable_part(&clipped));
    assert!((after - 1.0).abs() < 1e-12, "global norm after clipping: {after}");
    // Same direction: every trainable element scaled by 1/‖g‖.
    for (c, o) in trainable_part(&clipped).iter().zip(trainable_part(&g)) {
        assert!((c - o / before).abs() < 1e-15);
    }
    // The frozen parameter's slice is neither counted nor touched.
    let frozen = layout().1[1];
    assert_eq!(clipped[frozen.range()], g[frozen.range()]);
    // Below the threshold nothing changes, bit for bit.
    assert_eq!(clip_f64(GradientClip::GlobalNorm(before as f32 * 1.01), &g), g);
}

#[test]
fn clipnorm_clips_each_parameter_on_its_own() {
    let g = grads(1.0);
    let (trainable, ..) = layout();
    let norms: Vec<f64> = trainable.iter().map(|p| norm(&g[p.range()])).collect();
    let c = 0.5 * (norms[0] + norms[1]); // between the two: one is clipped, one is not
    assert!(norms[0].min(norms[1]) < c && c < norms[0].max(norms[1]), "{norms:?}");
    let clipped = clip_f64(GradientClip::Norm(c as f32), &g);
    for (p, n) in trainable.iter().zip(&norms) {
        let after = norm(&clipped[p.range()]);
        let want = n.min(f64::from(c as f32));
        assert!((after - want).abs() < 1e-12, "{p:?}: norm {after}, want {want}");
    }
}

#[test]
fn clipvalue_clamps_every_trainable_element_and_keeps_nan() {
    let mut g = grads(3.0);
    let first = layout().0[0];
    g[first.offset] = f64::NAN;
    let clipped = clip_f64(GradientClip::Value(0.5), &g);
    assert!(clipped[first.offset].is_nan(), "NaN is not hidden by clipping");
    for (c, o) in trainable_part(&clipped).iter().zip(trainable_part(&g)).skip(1) {
        assert_eq!(*c, o.clamp(-0.5, 0.5));
    }
    let frozen = layout().1[1];
    assert_eq!(clipped[frozen.range()], g[frozen.range()]);
}

#[test]
fn norm_clipping_over_more_than_one_chunk_sums_every_chunk_before_scaling() {
    let len = 2 * UPDATE_CHUNK + 640;
    let param = BufRef { arena: Arena::Params, offset: 0, len };
    let opt = Optimizer::adam(1e-3).with_clip(GradientClip::GlobalNorm(1.0));
    let norm = BufRef { arena: Arena::Accum, offset: 0, len: 1 };
    let steps = opt.steps(&[param], norm);
    let kinds: Vec<String> =
        steps.iter().map(|(k, _)| format!("{k:?}").split(' ').next().unwrap().to_string()).collect();
    assert_eq!(
        kinds,
        [
            "SumSquares",
            "SumSquares",
            "SumSquares",
            "ClipByNorm",
            "ClipByNorm",
            "ClipByNorm",
            "AdamUpdate",
            "AdamUpdate",
            "AdamUpdate"
        ]
    );
    let accumulate: Vec<bool> = steps
        .iter()
        .filter_map(
            |(k, _)| if let Kernel::SumSquares { accumulate, .. } = k { Some(*accumulate) } else { None },
        )
        .collect();
    assert_eq!(accumulate, [false, true, true], "the first chunk overwrites, the others add");
    let mut next = 0;
    for (_, args) in &steps[..3] {
        assert_eq!((args[0].arena, args[0].offset), (Arena::Grads, next));
        assert!(args[0].len <= UPDATE_CHUNK);
        next += args[0].len;
    }
    assert_eq!(next, len);
}

/// The clipping kernels on lavapipe give the CPU's gradients (all three kinds, a model-like
/// layout, gradients large enough to clip).
#[test]
fn clipping_matches_between_gpu_and_cpu() {
    let Some(mut g) = gpu() else { return };
    let mut c = CpuBackend::new();
    let (trainable, _, layout) = layout();
    let grads: Vec<f32> = grads(2.0).into_iter().map(|v| v as f32).collect();
    for clip in [GradientClip::GlobalNorm(1.0), GradientClip::Norm(0.7), GradientClip::Value(0.3)] {
        let program = clip_program(clip, &trainable);
        let mut out = Vec::new();
        for backend in [&mut c as &mut dyn Backend, &mut g as &mut dyn Backend] {
            backend.alloc_resident(&layout).unwrap();
            backend.write(Arena::Grads, 0, &grads).unwrap();
            let id = backend.compile(&program).unwrap();
            backend.run(id, &[], StepScalars::default()).unwrap();
            out.push(backend.read(Arena::Grads, 0, layout.params_len).unwrap());
        }
        assert_close(&format!("{clip:?}"), &out[1], &out[0], 1e-6);
        assert_ne!(out[0], grads, "{clip:?} clipped something");
    }
}

/// Inside a training step: the one-weight model (gradient 2w = 1.6) with SGD takes a step of
/// lr · 0.5 when the gradient is clipped to norm 0.5 or to value 0.5, on both backends.
#[test]
fn a_training_step_uses_the_clipped_gradient() {
    let mut devices = vec![Device::Cpu];
    if gpu().is_some() {
        devices.push(Device::Gpu(None));
    }
    for device in devices {
        for clip in [GradientClip::GlobalNorm(0.5), GradientClip::Norm(0.5), GradientClip::Value(0.5)] {
            let w = one_weight_trajectory(Optimizer::sgd(0.1).with_clip(clip), device, 0.8, 1)[0];
            assert!((w - (0.8 - 0.1 * 0.5)).abs() < 1e-6, "{clip:?} on {device:?}: {w}");
            // A gradient below the threshold is left alone: 2w = 1.6 < 2.
            let clip = match clip {
                GradientClip::Value(_) => GradientClip::Value(2.0),
                GradientClip::Norm(_) => GradientClip::Norm(2.0),
                _ => GradientClip::GlobalNorm(2.0),
            };
            let w = one_weight_trajectory(Optimizer::sgd(0.1).with_clip(clip), device, 0.8, 1)[0];
            assert!((w - (0.8 - 0.1 * 1.6)).abs() < 1e-6, "{clip:?} on {device:?}: {w}");
        }
    }
}

/// The squared-norm sums on lavapipe equal the CPU's, short (one workgroup) and long (split
/// over 16384-element chunks, then an in-order sum), written and accumulated.
#[test]
fn sum_squares_match_cpu_on_gpu_short_and_split() {
    let mut r = rng(14);
    let mut b = Builder::default();
    for (first, second) in [(1000, 7), (300_001, 70_000), (65_536, 200_000)] {
        let split =
            |len: usize| kiln::backend::gpu::splits_rows(&Kernel::SumSquares { len, accumulate: true });
        assert_eq!((split(first), split(second)), (first >= 65_536, second >= 65_536));
        let x1 = b.input(uniform(&mut r, first, -2.0, 2.0));
        let x2 = b.input(uniform(&mut r, second, -2.0, 2.0));
        let total = b.output(1);
        b.step(Kernel::SumSquares { len: first, accumulate: false }, &[x1, total]);
        b.step(Kernel::SumSquares { len: second, accumulate: true }, &[x2, total]);
    }
    check(&b, 1e-5);
}
