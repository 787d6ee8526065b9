//! The planner reuses Work-arena slots by liveness and keeps parameters resident.
use kiln::program::Arena;
use kiln::{Activation, CompileOptions, Dense, Device, Loss, Optimizer, ProgramKind, Sequential};

fn deep_mlp(depth: usize) -> Sequential {
    let mut m = Sequential::new(&[32]);
    for _ in 0..depth {
        m = m.add(Dense::new(128, Activation::Relu));
    }
    m.add(Dense::new(10, Activation::Softmax))
}

#[test]
fn deep_mlp_activation_memory_is_smaller_than_the_naive_sum() {
    let mut m = deep_mlp(8);
    m.compile(CompileOptions::new(Optimizer::adam(1e-3), Loss::SparseCategoricalCrossentropy, Device::Cpu))
        .unwrap();
    let train = m.planned_program(ProgramKind::Train, 64).unwrap();
    assert!(
        train.work_len < train.naive_work_len,
        "train: planned {} vs naive {}",
        train.work_len,
        train.naive_work_len
    );
    // A forward pass only needs two live activations at a time: far below the naive sum.
    let fwd = m.planned_program(ProgramKind::Predict, 64).unwrap();
    assert!(
        fwd.work_len * 3 < fwd.naive_work_len,
        "predict: planned {} vs naive {}",
        fwd.work_len,
        fwd.naive_work_len
    );
    // Parameters are never in the Work arena; gradients go straight to the Grads arena.
    let touches = |a: Arena| train.steps.iter().any(|s| s.args.iter().any(|b| b.arena == a));
    assert!(touches(Arena::Params) && touches(Arena::Grads) && touches(Arena::Slot(1)));
}

#[test]
fn planned_program_is_one_step_per_kernel_with_fused_update() {
    let mut m = deep_mlp(2);
    m.compile(CompileOptions::new(Optimizer::adam(1e-3), Loss::SparseCategoricalCrossentropy, Device::Cpu))
        .unwrap();
    let train = m.planned_program(ProgramKind::Train, 16).unwrap();
    let updates =
        train.steps.iter().filter(|s| matches!(s.kernel, kiln::program::Kernel::AdamUpdate { .. })).count();
    assert_eq!(updates, 1, "one fused optimizer update over all parameters");
}
