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

#[test]
fn dense_chains_fuse_into_one_launch_and_compute_the_same() {
    use kiln::backend::cpu::{Arenas, execute};
    use kiln::graph::plan::{PlanSpec, plan};
    use kiln::graph::{Graph, Op};
    use kiln::program::{Kernel, ResidentLayout, StepScalars, UnaryOp};
    // x[5,7] → Dense(6, relu) → Dense(3) → outputs; all values fed as inputs.
    let mut g = Graph::new();
    let x = g.input("x", &[5, 7]);
    let w1 = g.input("w1", &[7, 6]);
    let b1 = g.input("b1", &[6]);
    let w2 = g.input("w2", &[6, 3]);
    let b2 = g.input("b2", &[3]);
    let h = g.add(Op::MatMul { trans_a: false, trans_b: false }, &[x, w1], "d1").unwrap();
    let h = g.add(Op::BiasAdd, &[h, b1], "d1").unwrap();
    let h = g.add(Op::Unary(UnaryOp::Relu), &[h], "d1").unwrap();
    let z = g.add(Op::MatMul { trans_a: false, trans_b: false }, &[h, w2], "d2").unwrap();
    let z = g.add(Op::BiasAdd, &[z, b2], "d2").unwrap();
    let mut spec = PlanSpec { inputs: vec![x, w1, b1, w2, b2], ..Default::default() };
    spec.outputs.push(("z".into(), z));
    let fused = plan(&g, &spec).unwrap();
    let kinds: Vec<_> = fused.steps.iter().map(|s| s.kernel).collect();
    assert!(
        matches!(
            kinds.as_slice(),
            [Kernel::MatMulBiasAct { act: Some(UnaryOp::Relu), .. }, Kernel::MatMulBiasAct { act: None, .. }]
        ),
        "{kinds:?}"
    );
    spec.no_fusion = true;
    let plain = plan(&g, &spec).unwrap();
    assert_eq!(plain.steps.len(), 5);
    let run = |p: &kiln::program::Program| {
        let mut a = Arenas::<f64>::new(&ResidentLayout::default(), p.work_len);
        for (i, (_, b)) in p.inputs.iter().enumerate() {
            let v: Vec<f64> = (0..b.len).map(|j| ((i * 31 + j * 7) % 11) as f64 / 5.0 - 1.0).collect();
            a.set(*b, &v);
        }
        execute(&p.steps, &mut a, StepScalars::default());
        a.get(p.output("z").unwrap())
    };
    let (f, u) = (run(&fused), run(&plain));
    assert!(f.iter().zip(&u).all(|(a, b)| (a - b).abs() < 1e-12), "{f:?} vs {u:?}");
}

#[test]
fn optimizer_updates_are_chunked_so_no_binding_exceeds_64_mib() {
    use kiln::optim::UPDATE_CHUNK;
    let len = 2 * UPDATE_CHUNK + 640;
    for opt in [Optimizer::adam(1e-3), Optimizer::sgd(0.1), Optimizer::momentum(0.1, 0.9, false)] {
        let steps = opt.update_steps(&[kiln::program::BufRef { arena: Arena::Params, offset: 0, len }]);
        assert_eq!(steps.len(), 3);
        let mut next = 0;
        for (kernel, args) in &steps {
            let n = match kernel {
                kiln::program::Kernel::AdamUpdate { len, .. }
                | kiln::program::Kernel::SgdUpdate { len, .. } => *len,
                other => panic!("{other:?}"),
            };
            assert!(n <= UPDATE_CHUNK && args[0].offset == next && args[0].len == n);
            assert!(args.iter().all(|a| (a.offset == next && a.len == n) || a.len == 0));
            next += n;
        }
        assert_eq!(next, len, "the chunks cover the whole arena");
    }
}
