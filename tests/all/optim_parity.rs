//! Every optimizer's update (AdaGrad, RMSprop with momentum and centered, Adam with AMSGrad,
//! AdamW, and with clipping in front) gives the same weights and state on the GPU as on the
//! CPU: the fused kernels over three steps, then whole training steps of an MLP.
use kiln::backend::Backend;
use kiln::backend::cpu::CpuBackend;
use kiln::optim::{Adam, AdamW, Rmsprop};
use kiln::program::{ALIGN_ELEMS, Arena, BufRef, Program, ResidentLayout, Step, StepScalars};
use kiln::{
    Activation, CompileOptions, Dense, Device, FitOptions, GradientClip, Loss, Optimizer, Sequential, Tensor,
};

use crate::common::{gpu, rng, uniform};
use crate::gpu_parity::assert_close;

fn optimizers() -> Vec<Optimizer> {
    vec![
        Optimizer::adagrad(0.05),
        Optimizer::rmsprop(0.01),
        Optimizer::new(Rmsprop { momentum: 0.9, ..Rmsprop::default() }, 0.01),
        Optimizer::new(Rmsprop { centered: true, ..Rmsprop::default() }, 0.01),
        Optimizer::new(Rmsprop { momentum: 0.5, centered: true, ..Rmsprop::default() }, 0.01),
        Optimizer::new(Adam { amsgrad: true, ..Adam::default() }, 0.01),
        Optimizer::adamw(0.01),
        Optimizer::new(AdamW { weight_decay: 0.2, amsgrad: true, ..AdamW::default() }, 0.05),
        Optimizer::adam(0.01).with_clip(GradientClip::GlobalNorm(2.0)),
        Optimizer::rmsprop(0.01).with_clip(GradientClip::Norm(1.0)),
        Optimizer::adagrad(0.05).with_clip(GradientClip::Value(0.25)),
    ]
}

/// The tail steps of `opt` over 1000 parameters (two tensors with a frozen one between them)
/// for steps t = 1, 2, 3 with lr growing per step, on both backends: params and every slot
/// agree after each step.
#[test]
fn update_kernels_match_cpu_over_three_steps() {
    let Some(mut g) = gpu() else { return };
    let mut c = CpuBackend::new();
    let len = 1000;
    let trainable = [
        BufRef { arena: Arena::Params, offset: 0, len: 300 },
        BufRef { arena: Arena::Params, offset: 384, len: 616 },
    ];
    let norm = BufRef { arena: Arena::Accum, offset: 0, len: 1 };
    let mut r = rng(6);
    let params = uniform(&mut r, len, -1.0, 1.0);
    for opt in optimizers() {
        let layout = ResidentLayout { params_len: len, slots: opt.slots(), accum_len: ALIGN_ELEMS };
        let steps =
            opt.steps(&trainable, norm).into_iter().map(|(kernel, args)| Step::new(kernel, args)).collect();
        let program = Program { steps, ..Program::default() };
        let mut ids = Vec::new();
        for backend in [&mut c as &mut dyn Backend, &mut g as &mut dyn Backend] {
            backend.alloc_resident(&layout).unwrap();
            backend.write(Arena::Params, 0, &params).unwrap();
            for k in 0..layout.slots {
                backend.write(Arena::Slot(k as u8), 0, &vec![opt.slot_init(k); len]).unwrap();
            }
            ids.push(backend.compile(&program).unwrap());
        }
        for t in 1..=3 {
            let grads = uniform(&mut r, len, -1.0, 1.0);
            let scalars = StepScalars { lr: opt.learning_rate() * t as f32, t };
            let mut state = Vec::new();
            for (backend, &id) in
                [&mut c as &mut dyn Backend, &mut g as &mut dyn Backend].into_iter().zip(&ids)
            {
                backend.write(Arena::Grads, 0, &grads).unwrap();
                backend.run(id, &[], scalars).unwrap();
                let mut s = vec![backend.read(Arena::Params, 0, len).unwrap()];
                for k in 0..layout.slots {
                    s.push(backend.read(Arena::Slot(k as u8), 0, len).unwrap());
                }
                state.push(s);
            }
            for (k, (gs, cs)) in state[1].iter().zip(&state[0]).enumerate() {
                assert_close(&format!("{opt:?} t={t} arena {k}"), gs, cs, 1e-5);
            }
            // The frozen slice between the two tensors is untouched on both.
            assert_eq!(state[0][0][300..384], params[300..384], "{opt:?}");
            assert_eq!(state[1][0][300..384], params[300..384], "{opt:?}");
        }
    }
}

/// Two epochs of an MLP with every new optimizer: the GPU ends with the CPU's weights and
/// losses.
#[test]
fn training_steps_match_between_gpu_and_cpu_for_every_optimizer() {
    if gpu().is_none() {
        return;
    }
    let mut r = rng(8);
    let x = Tensor::new(&[70, 20], uniform(&mut r, 1400, -1.0, 1.0)).unwrap();
    let y = Tensor::new(&[70], (0..70).map(|i| (i % 4) as f32).collect()).unwrap();
    for opt in optimizers() {
        let train = |device| {
            let mut m = Sequential::new(&[20])
                .with_seed(7)
                .add(Dense::new(16, Activation::Tanh))
                .add(Dense::new(4, Activation::Softmax));
            m.compile(CompileOptions::new(opt, Loss::SparseCategoricalCrossentropy, device)).unwrap();
            let h = m
                .fit(&x, &y, &FitOptions { batch_size: 16, epochs: 2, verbose: 0, ..FitOptions::default() })
                .unwrap();
            (h.history["loss"].clone(), m.get_weights().unwrap())
        };
        let ((lc, wc), (lg, wg)) = (train(Device::Cpu), train(Device::Gpu(None)));
        for (a, b) in lc.iter().zip(&lg) {
            assert!((a - b).abs() < 1e-4 * a.abs().max(1.0), "{opt:?}: loss cpu {a} gpu {b}");
        }
        for ((name, tc), (_, tg)) in wc.iter().zip(&wg) {
            assert_close(&format!("{opt:?} {name}"), &tg.data, &tc.data, 1e-4);
        }
    }
}
