//! Learning-rate schedules against values computed by hand from Keras's formulas, the training
//! loop using them step by step, and the learning-rate API callbacks use.
use kiln::{Device, LearningRateSchedule, Optimizer};

use crate::optim::{one_weight_reference, one_weight_trajectory};

fn close(got: f32, want: f64) -> bool {
    (f64::from(got) - want).abs() <= 1e-6 * want.abs().max(1e-3)
}

fn check(s: LearningRateSchedule, expected: &[(u64, f64)]) {
    for &(step, want) in expected {
        let got = s.at(step);
        assert!(close(got, want), "{s:?} at step {step}: {got} vs {want}");
    }
}

#[test]
fn exponential_and_step_decay_match_keras() {
    // ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5): 0.1 · 0.5^(step/10).
    let smooth = LearningRateSchedule::exponential_decay(0.1, 10, 0.5);
    check(smooth, &[(0, 0.1), (5, 0.1 * 0.5f64.sqrt()), (10, 0.05), (25, 0.1 * 0.5f64.powf(2.5))]);
    // staircase=True: 0.1 for steps 0..9, 0.05 for 10..19, 0.025 from 20.
    let stairs = LearningRateSchedule::step_decay(0.1, 10, 0.5);
    check(stairs, &[(0, 0.1), (9, 0.1), (10, 0.05), (19, 0.05), (20, 0.025), (35, 0.0125)]);
    assert_eq!(LearningRateSchedule::Constant(0.3).at(1_000_000), 0.3);
}

#[test]
fn cosine_decay_with_and_without_warmup_matches_keras() {
    use std::f64::consts::PI;
    // CosineDecay(0.2, decay_steps=100): 0.2 · ½(1 + cos(π·min(step, 100)/100)).
    let cos = LearningRateSchedule::cosine_decay(0.2, 100);
    let at = |s: f64| 0.2 * 0.5 * (1.0 + (PI * s / 100.0).cos());
    check(cos, &[(0, 0.2), (25, at(25.0)), (50, 0.1), (99, at(99.0)), (100, 0.0), (500, 0.0)]);
    // alpha = 0.1: the rate ends at 0.1 · initial.
    let floor = LearningRateSchedule::CosineDecay {
        initial: 0.2,
        decay_steps: 100,
        alpha: 0.1,
        warmup_target: None,
        warmup_steps: 0,
    };
    check(floor, &[(0, 0.2), (50, 0.2 * (0.9 * 0.5 + 0.1)), (100, 0.02), (1000, 0.02)]);
    // CosineDecay(0.0, decay_steps=100, warmup_target=1e-3, warmup_steps=10): linear 0 → 1e-3
    // over steps 0..10, then cosine from 1e-3 over 100 steps, then 0.
    let warm = LearningRateSchedule::warmup_cosine_decay(1e-3, 10, 100);
    let decay = |s: f64| 1e-3 * 0.5 * (1.0 + (PI * s / 100.0).cos());
    check(
        warm,
        &[(0, 0.0), (1, 1e-4), (5, 5e-4), (9, 9e-4), (10, 1e-3), (60, decay(50.0)), (110, 0.0), (200, 0.0)],
    );
    // A warm-up from a non-zero initial rate.
    let from = LearningRateSchedule::CosineDecay {
        initial: 1e-4,
        decay_steps: 100,
        alpha: 0.0,
        warmup_target: Some(1e-3),
        warmup_steps: 4,
    };
    check(from, &[(0, 1e-4), (2, 1e-4 + 0.5 * 9e-4), (4, 1e-3)]);
}

#[test]
fn bad_schedules_are_rejected_at_compile_with_the_parameter_named() {
    use kiln::{Activation, CompileOptions, Dense, Loss, Sequential};
    let bad = [
        (LearningRateSchedule::exponential_decay(0.1, 0, 0.5), "decay_steps"),
        (LearningRateSchedule::Constant(f32::NAN), "learning_rate"),
        (
            LearningRateSchedule::CosineDecay {
                initial: 0.1,
                decay_steps: 10,
                alpha: 2.0,
                warmup_target: None,
                warmup_steps: 0,
            },
            "alpha",
        ),
    ];
    for (schedule, name) in bad {
        let mut m = Sequential::new(&[2]).add(Dense::new(2, Activation::Softmax));
        let opts = CompileOptions::new(
            Optimizer::sgd(0.1).with_schedule(schedule),
            Loss::SparseCategoricalCrossentropy,
            Device::Cpu,
        );
        let e = m.compile(opts).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains("sgd"), "{e}");
    }
}

/// fit evaluates the schedule at every step (step t uses the schedule at t − 1, Keras's
/// `iterations`), also across fit calls.
#[test]
fn training_follows_the_schedule_step_by_step() {
    for schedule in [
        LearningRateSchedule::step_decay(0.2, 2, 0.5),
        LearningRateSchedule::warmup_cosine_decay(0.3, 2, 3),
        LearningRateSchedule::exponential_decay(0.1, 1, 0.7),
    ] {
        for opt in [Optimizer::sgd(0.0), Optimizer::adam(0.0)] {
            let opt = opt.with_schedule(schedule);
            let got = one_weight_trajectory(opt, Device::Cpu, 0.9, 6);
            let want = one_weight_reference(opt, 0.9, 6);
            for (t, (g, w)) in got.iter().zip(&want).enumerate() {
                // f32 tolerance (see optim::every_optimizer_trains_a_single_weight_as_keras_does).
                assert!((f64::from(*g) - w).abs() < 1e-5, "{opt:?} step {}: {g} vs {w}", t + 1);
            }
        }
    }
}

#[test]
fn learning_rate_can_be_read_and_set_between_fits_without_recompiling() {
    use kiln::{Activation, CompileOptions, Dense, FitOptions, Loss, ProgramKind, Sequential, Tensor};
    let mut m = Sequential::new(&[2]).add(Dense::new(2, Activation::Softmax));
    assert!(m.learning_rate().is_err(), "no optimizer before compile");
    let schedule = LearningRateSchedule::step_decay(0.1, 3, 0.5);
    let opt = Optimizer::sgd(0.0).with_schedule(schedule);
    m.compile(CompileOptions::new(opt, Loss::SparseCategoricalCrossentropy, Device::Cpu)).unwrap();
    assert_eq!(m.learning_rate().unwrap(), 0.1);
    let x = Tensor::new(&[4, 2], vec![0.0, 1.0, 1.0, 0.0, 0.5, 0.5, 1.0, 1.0]).unwrap();
    let y = Tensor::new(&[4], vec![0.0, 1.0, 0.0, 1.0]).unwrap();
    let opts = FitOptions { batch_size: 1, epochs: 1, verbose: 0, ..FitOptions::default() };
    m.fit(&x, &y, &opts).unwrap(); // 4 steps: the next one is step 5, schedule at 4
    assert_eq!(m.learning_rate().unwrap(), 0.05);
    let program = m.planned_program(ProgramKind::Train, 1).unwrap();
    m.set_learning_rate(0.0).unwrap();
    assert_eq!(m.learning_rate().unwrap(), 0.0);
    assert_eq!(m.optimizer().unwrap().schedule, LearningRateSchedule::Constant(0.0));
    assert_eq!(m.planned_program(ProgramKind::Train, 1).unwrap(), program, "the same program");
    // Learning rate 0: the weights no longer move.
    let before = m.get_weights().unwrap();
    m.fit(&x, &y, &opts).unwrap();
    assert_eq!(m.get_weights().unwrap(), before);
    assert!(m.set_learning_rate(f32::NAN).is_err());
    assert!(m.set_learning_rate(-1.0).is_err());
}

/// `--lr-schedule` specs count in epochs and become step schedules for the run's length.
#[test]
fn cli_schedule_specs_convert_epochs_to_steps() {
    let spec = |s: &str| LearningRateSchedule::from_epochs_spec(s, 0.01, 10, 5).unwrap();
    assert_eq!(spec("constant"), LearningRateSchedule::Constant(0.01));
    assert_eq!(spec("cosine"), LearningRateSchedule::cosine_decay(0.01, 50));
    assert_eq!(spec("cosine:2"), LearningRateSchedule::warmup_cosine_decay(0.01, 10, 40));
    assert_eq!(spec("exponential:0.9"), LearningRateSchedule::exponential_decay(0.01, 5, 0.9));
    assert_eq!(spec("step:3:0.5"), LearningRateSchedule::step_decay(0.01, 15, 0.5));
    for bad in ["cosine:x", "step:3", "warm", "cosine:10", "exponential:-1"] {
        let e = LearningRateSchedule::from_epochs_spec(bad, 0.01, 10, 5).unwrap_err().to_string();
        assert!(e.contains("--lr-schedule") && e.contains(bad), "{e}");
    }
}
