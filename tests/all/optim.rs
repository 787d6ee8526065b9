//! Optimizers against updates computed by hand from Keras's formulas: the kernels in f64 over
//! three steps (through the tail steps `Optimizer::steps` builds, so slot wiring and slot
//! initial values are covered), whole training steps of a one-weight model in f32, and
//! frozen parameters that no optimizer may touch.
use kiln::backend::cpu::optim::{adam_update, sgd_update};
use kiln::backend::cpu::{Arenas, execute, validate};
use kiln::optim::{Adagrad, Adam, AdamW, Rmsprop, Sgd, UpdateRule};
use kiln::program::{ALIGN_ELEMS, Arena, BufRef, Program, ResidentLayout, Step, StepScalars, align};
use kiln::{
    Activation, BatchNormalization, CompileOptions, Dense, Device, FitOptions, Loss, Optimizer, Sequential,
    Tensor,
};

use crate::common;

/// An f32 hyper-parameter as the f64 kernels see it.
fn f(x: f32) -> f64 {
    f64::from(x)
}

/// Keras's update formulas (keras/src/optimizers/*.py, `update_step`), transcribed in f64
/// for one scalar weight: `state` holds the rule's slots for that weight.
pub(crate) struct KerasReference {
    rule: UpdateRule,
    state: [f64; 3],
    t: i32,
}

impl KerasReference {
    pub(crate) fn new(rule: UpdateRule) -> KerasReference {
        let acc = match rule {
            UpdateRule::Adagrad(a) => f(a.initial_accumulator),
            _ => 0.0,
        };
        KerasReference { rule, state: [acc, 0.0, 0.0], t: 0 }
    }

    /// The weight after one update from `p` with gradient `g` and learning rate `lr`.
    pub(crate) fn step(&mut self, p: f64, g: f64, lr: f64) -> f64 {
        self.t += 1;
        let s = &mut self.state;
        match self.rule {
            UpdateRule::Sgd(Sgd { momentum, nesterov }) => {
                let m = f(momentum);
                if m == 0.0 {
                    return p - lr * g;
                }
                s[0] = m * s[0] - lr * g;
                if nesterov { p + m * s[0] - lr * g } else { p + s[0] }
            }
            UpdateRule::Adam(Adam { beta1, beta2, epsilon, amsgrad }) => {
                adam_reference(s, self.t, p, g, lr, [f(beta1), f(beta2), f(epsilon), 0.0], amsgrad)
            }
            UpdateRule::AdamW(AdamW { beta1, beta2, epsilon, weight_decay, amsgrad }) => {
                let decay = [f(beta1), f(beta2), f(epsilon), f(weight_decay)];
                adam_reference(s, self.t, p, g, lr, decay, amsgrad)
            }
            UpdateRule::Adagrad(Adagrad { epsilon, .. }) => {
                s[0] += g * g;
                p - lr * g / (s[0] + f(epsilon)).sqrt()
            }
            UpdateRule::Rmsprop(Rmsprop { rho, momentum, epsilon, centered }) => {
                let (rho, eps) = (f(rho), f(epsilon));
                s[0] = rho * s[0] + (1.0 - rho) * g * g;
                let denominator = if centered {
                    s[2] = rho * s[2] + (1.0 - rho) * g;
                    s[0] - s[2] * s[2] + eps
                } else {
                    s[0] + eps
                };
                let increment = lr * g / denominator.sqrt();
                if momentum != 0.0 {
                    s[1] = f(momentum) * s[1] + increment;
                    p - s[1]
                } else {
                    p - increment
                }
            }
        }
    }
}

/// Keras Adam/AdamW: `variable -= variable * wd * lr` first, then m, v (v̂), and the step.
fn adam_reference(s: &mut [f64; 3], t: i32, p: f64, g: f64, lr: f64, h: [f64; 4], amsgrad: bool) -> f64 {
    let [b1, b2, eps, wd] = h;
    let p = p - p * wd * lr;
    s[0] += (g - s[0]) * (1.0 - b1);
    s[1] += (g * g - s[1]) * (1.0 - b2);
    let mut v = s[1];
    if amsgrad {
        s[2] = s[2].max(s[1]);
        v = s[2];
    }
    let alpha = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
    p - alpha * s[0] / (v.sqrt() + eps)
}

/// Run `opt`'s tail steps (clipping and update, as the training program has them) on the
/// CPU interpreter in f64 over one parameter tensor: the weights after each step.
pub(crate) fn run_tail_f64(opt: Optimizer, p0: &[f64], grads: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = p0.len();
    let layout = ResidentLayout { params_len: align(n), slots: opt.slots(), accum_len: ALIGN_ELEMS };
    let param = BufRef { arena: Arena::Params, offset: 0, len: n };
    let norm = BufRef { arena: Arena::Accum, offset: 0, len: 1 };
    let steps = opt.steps(&[param], norm).into_iter().map(|(kernel, args)| Step::new(kernel, args)).collect();
    let program = Program { steps, ..Program::default() };
    validate(&program, &layout).unwrap();
    let mut arenas = Arenas::<f64>::new(&layout, 0);
    arenas.set(param, p0);
    for k in 0..layout.slots {
        arenas.slots[k].iter_mut().for_each(|v| *v = f(opt.slot_init(k)));
    }
    let mut out = Vec::new();
    for (t, g) in (1..).zip(grads) {
        arenas.set(BufRef { arena: Arena::Grads, ..param }, g);
        execute(&program.steps, &mut arenas, StepScalars { lr: opt.learning_rate_at(t), t });
        out.push(arenas.get(param));
    }
    out
}

/// Every element of `got` within 1e-12 (relative) of the reference, per step.
fn check_against_reference(opt: Optimizer, p0: &[f64], grads: &[Vec<f64>]) {
    let got = run_tail_f64(opt, p0, grads);
    for (i, &start) in p0.iter().enumerate() {
        let mut reference = KerasReference::new(opt.rule);
        let mut p = start;
        for (t, g) in grads.iter().enumerate() {
            p = reference.step(p, g[i], f(opt.learning_rate_at(t as u32 + 1)));
            let err = (got[t][i] - p).abs() / p.abs().max(1e-3);
            assert!(err < 1e-12, "{opt:?} step {} element {i}: kernel {} vs Keras {p}", t + 1, got[t][i]);
        }
    }
}

/// Three steps; the gradient's magnitude falls (so AMSGrad's running maximum matters) and
/// changes sign.
fn three_steps() -> (Vec<f64>, Vec<Vec<f64>>) {
    (vec![1.0, -0.5, 0.25], vec![vec![0.5, -1.0, 2.0], vec![0.05, 0.01, -0.1], vec![0.01, -0.001, 0.02]])
}

#[test]
fn sgd_plain_momentum_and_nesterov_match_hand_computed_steps() {
    let g = [0.5f64, -1.0];
    // Plain: p -= lr g.
    let (mut p, mut v) = ([1.0f64, 2.0], [0.0f64; 2]);
    sgd_update(0.1, 0.0, false, &mut p, &g, &mut v);
    assert_eq!(p, [0.95, 2.1]);
    // Momentum 0.9, two steps: v1 = -lr g, p1 = p0 + v1; v2 = 0.9 v1 - lr g, p2 = p1 + v2.
    let (mut p, mut v) = ([1.0f64, 2.0], [0.0f64; 2]);
    sgd_update(0.1, 0.9, false, &mut p, &g, &mut v);
    sgd_update(0.1, 0.9, false, &mut p, &g, &mut v);
    let v2 = [0.9 * -0.05 - 0.05, 0.9 * 0.1 + 0.1];
    assert!(
        (p[0] - (1.0 - 0.05 + v2[0])).abs() < 1e-12 && (p[1] - (2.0 + 0.1 + v2[1])).abs() < 1e-12,
        "{p:?}"
    );
    // Nesterov, one step: v1 = -lr g; p1 = p0 + 0.9 v1 - lr g.
    let (mut p, mut v) = ([1.0f64, 2.0], [0.0f64; 2]);
    sgd_update(0.1, 0.9, true, &mut p, &g, &mut v);
    assert!((p[0] - (1.0 + 0.9 * -0.05 - 0.05)).abs() < 1e-12, "{p:?}");
    let (p0, grads) = three_steps();
    for opt in
        [Optimizer::sgd(0.1), Optimizer::momentum(0.1, 0.9, false), Optimizer::momentum(0.1, 0.9, true)]
    {
        check_against_reference(opt, &p0, &grads);
    }
}

#[test]
fn adam_matches_hand_computed_steps() {
    let (lr, b1, b2, eps) = (0.01f64, 0.9, 0.999, 1e-7);
    let grads = [[0.3f64], [-0.2], [0.5]];
    let (mut p, mut m, mut v) = ([1.0f64], [0.0f64], [0.0f64]);
    let (mut pe, mut me, mut ve) = (1.0f64, 0.0f64, 0.0f64);
    for (t, g) in grads.iter().enumerate() {
        let t = t as i32 + 1;
        adam_update(lr, t as u32, b1, b2, eps, 0.0, &mut p, g, &mut m, &mut v, None);
        me = b1 * me + (1.0 - b1) * g[0];
        ve = b2 * ve + (1.0 - b2) * g[0] * g[0];
        let alpha = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
        pe -= alpha * me / (ve.sqrt() + eps);
        assert!((p[0] - pe).abs() < 1e-12, "step {t}: {} vs {pe}", p[0]);
    }
    // The first Adam step moves each weight by about lr, whatever the gradient's scale.
    let (mut p, mut m, mut v) = ([0.0f64], [0.0f64], [0.0f64]);
    adam_update(lr, 1, b1, b2, eps, 0.0, &mut p, &[1234.0], &mut m, &mut v, None);
    assert!((p[0] + lr).abs() < 1e-9);
    let (p0, grads) = three_steps();
    check_against_reference(Optimizer::adam(0.01), &p0, &grads);
}

#[test]
fn amsgrad_divides_by_the_running_maximum_of_the_second_moment() {
    let (p0, grads) = three_steps();
    let amsgrad = Optimizer::new(Adam { amsgrad: true, ..Adam::default() }, 0.01);
    assert_eq!(amsgrad.slots(), 3);
    check_against_reference(amsgrad, &p0, &grads);
    // With falling gradients v̂ > v from step 2 on, so the result differs from plain Adam.
    let (a, b) = (run_tail_f64(amsgrad, &p0, &grads), run_tail_f64(Optimizer::adam(0.01), &p0, &grads));
    assert_eq!(a[0], b[0], "identical first step (v̂ = v)");
    assert!(a[2].iter().zip(&b[2]).all(|(x, y)| (x - y).abs() > 1e-6), "{a:?} vs {b:?}");
}

#[test]
fn adamw_decays_weights_by_lr_times_weight_decay_before_the_adam_step() {
    let (p0, grads) = three_steps();
    let adamw = Optimizer::adamw(0.01);
    assert_eq!(adamw.rule, UpdateRule::AdamW(AdamW { weight_decay: 0.004, ..AdamW::default() }));
    check_against_reference(adamw, &p0, &grads);
    let strong = Optimizer::new(AdamW { weight_decay: 0.5, ..AdamW::default() }, 0.1);
    check_against_reference(strong, &p0, &grads);
    let amsgrad = Optimizer::new(AdamW { amsgrad: true, ..AdamW::default() }, 0.01);
    check_against_reference(amsgrad, &p0, &grads);
    // Zero gradients: Adam leaves weights alone, AdamW shrinks them by (1 − lr·wd) per step.
    let zeros = vec![vec![0.0; 3]; 3];
    assert_eq!(run_tail_f64(Optimizer::adam(0.1), &p0, &zeros)[2], p0);
    let decayed = run_tail_f64(strong, &p0, &zeros);
    for (d, p) in decayed[2].iter().zip(&p0) {
        let want = p * (1.0 - f(0.1) * f(0.5)).powi(3);
        assert!((d - want).abs() < 1e-12, "{d} vs {want}");
    }
}

#[test]
fn adagrad_accumulates_squares_from_the_initial_accumulator() {
    let (p0, grads) = three_steps();
    let adagrad = Optimizer::adagrad(0.1);
    assert_eq!((adagrad.slots(), adagrad.slot_init(0)), (1, 0.1));
    check_against_reference(adagrad, &p0, &grads);
    // First step by hand: a = 0.1 + 0.5², p = 1 − 0.1·0.5 / sqrt(a + 1e-7).
    let first = run_tail_f64(adagrad, &p0, &grads)[0][0];
    let want = 1.0 - f(0.1) * 0.5 / (f(0.1) + 0.25 + f(1e-7)).sqrt();
    assert!((first - want).abs() < 1e-15, "{first} vs {want}");
}

#[test]
fn rmsprop_plain_momentum_and_centered_match_hand_computed_steps() {
    let (p0, grads) = three_steps();
    for (momentum, centered, slots) in [(0.0, false, 1), (0.9, false, 2), (0.0, true, 2), (0.9, true, 3)] {
        let opt = Optimizer::new(Rmsprop { momentum, centered, ..Rmsprop::default() }, 0.01);
        assert_eq!(opt.slots(), slots);
        check_against_reference(opt, &p0, &grads);
    }
    // First plain step by hand: ms = 0.1 g², p −= lr g / sqrt(ms + ε).
    let first = run_tail_f64(Optimizer::rmsprop(0.01), &p0, &grads)[0][1];
    let ms = (1.0 - f(0.9)) * 1.0;
    let want = -0.5 + f(0.01) / (ms + f(1e-7)).sqrt(); // g = −1
    assert!((first - want).abs() < 1e-15, "{first} vs {want}");
}

/// y = w·x without bias, trained on x = 1, y = 0 with MSE: loss w², gradient 2w.
fn one_weight(opt: Optimizer, device: Device, w0: f32) -> Sequential {
    let mut m = Sequential::new(&[1]).add(Dense { use_bias: false, ..Dense::new(1, Activation::Linear) });
    let mut c = CompileOptions::new(opt, Loss::MeanSquaredError, device);
    c.metrics.clear();
    m.compile(c).unwrap();
    m.set_weights(&[("dense.kernel".into(), Tensor::new(&[1, 1], vec![w0]).unwrap())]).unwrap();
    m
}

/// Train the one-weight model for `steps` steps (one sample per step); the weight after each.
pub(crate) fn one_weight_trajectory(opt: Optimizer, device: Device, w0: f32, steps: usize) -> Vec<f32> {
    let mut m = one_weight(opt, device, w0);
    let (x, y) = (Tensor::new(&[1, 1], vec![1.0]).unwrap(), Tensor::new(&[1, 1], vec![0.0]).unwrap());
    let opts = FitOptions { batch_size: 1, epochs: 1, verbose: 0, shuffle: false, ..FitOptions::default() };
    (0..steps)
        .map(|_| {
            m.fit(&x, &y, &opts).unwrap();
            m.get_weights().unwrap()[0].1.data[0]
        })
        .collect()
}

/// The weights Keras's formulas give for the one-weight model (gradient 2w each step).
pub(crate) fn one_weight_reference(opt: Optimizer, w0: f32, steps: usize) -> Vec<f64> {
    let mut r = KerasReference::new(opt.rule);
    let mut w = f(w0);
    (1..=steps as u32)
        .map(|t| {
            w = r.step(w, 2.0 * w, f(opt.learning_rate_at(t)));
            w
        })
        .collect()
}

/// Every optimizer, through compile and fit (slot allocation and initial values, per-step lr
/// and t), takes the steps Keras's formulas give, in f32. The tolerance is f32's: Adam's
/// 1 − β2^t loses four digits to cancellation in early steps (as it does in Keras).
#[test]
fn every_optimizer_trains_a_single_weight_as_keras_does() {
    let opts = [
        Optimizer::sgd(0.1),
        Optimizer::momentum(0.1, 0.9, true),
        Optimizer::adam(0.05),
        Optimizer::new(Adam { amsgrad: true, ..Adam::default() }, 0.05),
        Optimizer::new(AdamW { weight_decay: 0.3, ..AdamW::default() }, 0.05),
        Optimizer::adagrad(0.1),
        Optimizer::new(Rmsprop { momentum: 0.5, centered: true, ..Rmsprop::default() }, 0.01),
    ];
    for opt in opts {
        let got = one_weight_trajectory(opt, Device::Cpu, 0.8, 3);
        let want = one_weight_reference(opt, 0.8, 3);
        for (t, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((f(*g) - w).abs() < 1e-5, "{opt:?} step {}: {g} vs Keras {w}", t + 1);
        }
    }
}

/// Frozen parameters (batch-norm moving statistics, here with momentum 1 so the step's own
/// update leaves them alone too) keep their exact bits under every rule, weight decay
/// included; the trainable batch-norm scale next to them does decay.
#[test]
fn frozen_parameters_stay_bitwise_equal_under_adamw_and_every_other_rule() {
    let mut rng = common::rng(3);
    let x = Tensor::new(&[40, 6], common::uniform(&mut rng, 240, -1.0, 1.0)).unwrap();
    let y = Tensor::new(&[40], (0..40).map(|i| (i % 3) as f32).collect()).unwrap();
    let mut devices = vec![Device::Cpu];
    if common::gpu().is_some() {
        devices.push(Device::Gpu(None));
    }
    let rules = [
        Optimizer::new(AdamW { weight_decay: 0.5, ..AdamW::default() }, 0.05),
        Optimizer::adagrad(0.05),
        Optimizer::new(Rmsprop { momentum: 0.9, centered: true, ..Rmsprop::default() }, 0.01),
        Optimizer::adam(0.05).with_clip(kiln::GradientClip::GlobalNorm(0.1)),
    ];
    for device in devices {
        for opt in rules {
            let mut m = Sequential::new(&[6])
                .add(Dense::new(8, Activation::Relu))
                .add(BatchNormalization { momentum: 1.0, ..BatchNormalization::default() })
                .add(Dense::new(3, Activation::Softmax));
            m.compile(CompileOptions::new(opt, Loss::SparseCategoricalCrossentropy, device)).unwrap();
            let before = m.get_weights().unwrap();
            m.fit(&x, &y, &FitOptions { batch_size: 8, epochs: 2, verbose: 0, ..FitOptions::default() })
                .unwrap();
            let after = m.get_weights().unwrap();
            let frozen: Vec<&str> =
                m.params().iter().filter(|p| !p.trainable).map(|p| p.name.as_str()).collect();
            assert_eq!(frozen.len(), 2, "{frozen:?}");
            for ((name, b), (_, a)) in before.iter().zip(&after) {
                let same_bits = b.data.iter().zip(&a.data).all(|(u, v)| u.to_bits() == v.to_bits());
                if frozen.contains(&name.as_str()) {
                    assert!(same_bits, "{opt:?} on {device:?} changed frozen '{name}': {:?}", a.data);
                } else {
                    assert!(!same_bits, "{opt:?} on {device:?} left trainable '{name}' unchanged");
                }
            }
        }
    }
}

/// The planned training step updates and clips runs of trainable parameters only: no
/// optimizer or clipping step's slice reaches into a frozen parameter.
#[test]
fn update_and_clip_steps_skip_frozen_parameters() {
    use kiln::ProgramKind;
    let mut m = Sequential::new(&[6])
        .add(Dense::new(8, Activation::Relu))
        .add(BatchNormalization::new())
        .add(Dense::new(3, Activation::Softmax));
    let opt = Optimizer::adamw(1e-3).with_clip(kiln::GradientClip::Norm(1.0));
    m.compile(CompileOptions::new(opt, Loss::SparseCategoricalCrossentropy, Device::Cpu)).unwrap();
    let frozen: Vec<BufRef> = m.params().iter().filter(|p| !p.trainable).map(|p| p.buf).collect();
    let program = m.planned_program(ProgramKind::Train, 4).unwrap();
    let tail: Vec<&Step> = program
        .steps
        .iter()
        .filter(|s| {
            matches!(
                s.kernel,
                kiln::program::Kernel::AdamUpdate { .. } | kiln::program::Kernel::ClipByNorm { .. }
            )
        })
        .collect();
    // Two runs (dense; batch_normalization gamma+beta and dense_1) and one clip per parameter.
    let updates =
        tail.iter().filter(|s| matches!(s.kernel, kiln::program::Kernel::AdamUpdate { .. })).count();
    assert_eq!((updates, tail.len() - updates), (2, 6));
    for s in tail {
        for a in s.args.iter().filter(|a| matches!(a.arena, Arena::Params | Arena::Grads | Arena::Slot(_))) {
            for f in &frozen {
                assert!(
                    a.range().end <= f.offset || a.offset >= f.range().end,
                    "{:?} touches {f:?}",
                    s.kernel
                );
            }
        }
    }
}
