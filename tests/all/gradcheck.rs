//! Finite-difference gradient checks, in f64, for every backward rule: for a random seed r,
//! the analytic gradient of ⟨r, f(x)⟩ from the autodiff graph must match central differences.
use kiln::backend::cpu::{Arenas, execute};
use kiln::graph::autodiff::gradients;
use kiln::graph::plan::{PlanSpec, plan};
use kiln::graph::{Graph, NodeId, Op};
use kiln::program::{ResidentLayout, StepScalars, UnaryOp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How to fill an input: random normal-ish values, or fixed data (labels).
#[derive(Clone)]
pub(crate) enum Fill {
    Random,
    /// Random values kept at least this far from zero (relu's kink).
    AwayFromZero(f64),
    Fixed(Vec<f64>),
}

struct Case {
    name: &'static str,
    inputs: Vec<(Vec<usize>, Fill, bool)>, // shape, fill, differentiable
    build: fn(&mut Graph, &[NodeId]) -> NodeId,
}

/// A test input: shape, fill, differentiable.
pub(crate) type TestInput = (Vec<usize>, Fill, bool);
/// Builds the graph under test on its inputs.
pub(crate) type BuildFn<'a> = &'a dyn Fn(&mut Graph, &[NodeId]) -> NodeId;

/// Evaluate out and the gradients of ⟨seed, out⟩ w.r.t. the differentiable inputs.
fn evaluate(
    case: &[TestInput],
    build: BuildFn,
    values: &[Vec<f64>],
    seed: &[f64],
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let mut g = Graph::new();
    let inputs: Vec<NodeId> =
        case.iter().enumerate().map(|(i, (s, _, _))| g.input(&format!("in{i}"), s)).collect();
    let out = build(&mut g, &inputs);
    let out_shape = g.shape(out).to_vec();
    let seed_node = g.input("seed", &out_shape);
    let wrt: Vec<NodeId> = inputs.iter().zip(case).filter(|(_, c)| c.2).map(|(n, _)| *n).collect();
    let grads = gradients(&mut g, out, seed_node, &wrt).expect("gradients");
    let mut spec = PlanSpec { inputs: inputs.clone(), ..Default::default() };
    spec.inputs.push(seed_node);
    spec.outputs.push(("out".into(), out));
    for (i, gn) in grads.iter().enumerate() {
        spec.outputs.push((format!("g{i}"), *gn));
    }
    let program = plan(&g, &spec).expect("plan");
    let mut arenas = Arenas::<f64>::new(&ResidentLayout::default(), program.work_len);
    for ((_, b), v) in program.inputs.iter().zip(values.iter().chain(std::iter::once(&seed.to_vec()))) {
        arenas.set(*b, v);
    }
    execute(&program.steps, &mut arenas, StepScalars::default());
    let out_v = arenas.get(program.output("out").expect("out"));
    let gs = (0..grads.len()).map(|i| arenas.get(program.output(&format!("g{i}")).expect("grad"))).collect();
    (out_v, gs)
}

fn check(case: &Case) {
    check_graph(case.name, &case.inputs, &case.build);
}

/// Gradient check of the graph `build` makes over `inputs`.
pub(crate) fn check_graph(name: &str, inputs: &[TestInput], build: BuildFn) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let values: Vec<Vec<f64>> = inputs
        .iter()
        .map(|(shape, fill, _)| {
            let n: usize = shape.iter().product();
            match fill {
                Fill::Random => (0..n).map(|_| rng.random_range(-1.5..1.5)).collect(),
                Fill::AwayFromZero(m) => (0..n)
                    .map(|_| {
                        let v: f64 = rng.random_range(*m..1.5);
                        if rng.random_bool(0.5) { v } else { -v }
                    })
                    .collect(),
                Fill::Fixed(v) => v.clone(),
            }
        })
        .collect();
    let out_len = {
        let mut g = Graph::new();
        let nodes: Vec<NodeId> =
            inputs.iter().enumerate().map(|(i, (s, _, _))| g.input(&format!("in{i}"), s)).collect();
        let out = build(&mut g, &nodes);
        g.node(out).len()
    };
    let seed: Vec<f64> = (0..out_len).map(|_| rng.random_range(-1.0..1.0)).collect();
    let (_, analytic) = evaluate(inputs, build, &values, &seed);
    let diff_inputs: Vec<usize> = inputs.iter().enumerate().filter(|(_, c)| c.2).map(|(i, _)| i).collect();
    let h = 1e-6;
    for (gi, &input) in diff_inputs.iter().enumerate() {
        for j in 0..values[input].len() {
            let f = |delta: f64| {
                let mut v = values.clone();
                v[input][j] += delta;
                let (o, _) = evaluate(inputs, build, &v, &seed);
                o.iter().zip(&seed).map(|(a, b)| a * b).sum::<f64>()
            };
            let numeric = (f(h) - f(-h)) / (2.0 * h);
            let a = analytic[gi][j];
            let err = (a - numeric).abs() / (1.0 + numeric.abs());
            assert!(
                err < 1e-6,
                "{name}: d/d(input {input})[{j}]: analytic {a}, numeric {numeric} (rel err {err:e})"
            );
        }
    }
}

pub(crate) fn op(g: &mut Graph, op: Op, inputs: &[NodeId]) -> NodeId {
    g.add(op, inputs, "test").expect("add")
}

pub(crate) fn rand_in(shape: &[usize]) -> (Vec<usize>, Fill, bool) {
    (shape.to_vec(), Fill::Random, true)
}

#[test]
fn matmul_gradients_all_transposes() {
    let cases = [
        Case {
            name: "matmul nn",
            inputs: vec![rand_in(&[3, 5]), rand_in(&[5, 4])],
            build: |g, x| op(g, Op::MatMul { trans_a: false, trans_b: false }, x),
        },
        Case {
            name: "matmul tn",
            inputs: vec![rand_in(&[5, 3]), rand_in(&[5, 4])],
            build: |g, x| op(g, Op::MatMul { trans_a: true, trans_b: false }, x),
        },
        Case {
            name: "matmul nt",
            inputs: vec![rand_in(&[3, 5]), rand_in(&[4, 5])],
            build: |g, x| op(g, Op::MatMul { trans_a: false, trans_b: true }, x),
        },
        Case {
            name: "matmul tt",
            inputs: vec![rand_in(&[5, 3]), rand_in(&[4, 5])],
            build: |g, x| op(g, Op::MatMul { trans_a: true, trans_b: true }, x),
        },
    ];
    cases.iter().for_each(check);
}

#[test]
/// (Every activation: `activations::every_activation_gradient_matches_finite_differences`.)
fn elementwise_and_bias_gradients() {
    check(&Case {
        name: "bias add",
        inputs: vec![rand_in(&[4, 3]), rand_in(&[3])],
        build: |g, x| op(g, Op::BiasAdd, x),
    });
    check(&Case {
        name: "add",
        inputs: vec![rand_in(&[2, 3]), rand_in(&[2, 3])],
        build: |g, x| op(g, Op::Add, x),
    });
    check(&Case {
        name: "affine",
        inputs: vec![rand_in(&[3, 4])],
        build: |g, x| op(g, Op::Affine { scale: -0.7, shift: 0.25 }, x),
    });
}

#[test]
fn softmax_and_reduction_gradients() {
    check(&Case { name: "softmax", inputs: vec![rand_in(&[3, 5])], build: |g, x| op(g, Op::Softmax, x) });
    check(&Case {
        name: "log-softmax",
        inputs: vec![rand_in(&[3, 5])],
        build: |g, x| op(g, Op::LogSoftmax, x),
    });
    check(&Case { name: "sum rows", inputs: vec![rand_in(&[4, 3])], build: |g, x| op(g, Op::SumRows, x) });
    check(&Case {
        name: "broadcast rows",
        inputs: vec![rand_in(&[3])],
        build: |g, x| op(g, Op::BroadcastRows { rows: 4 }, x),
    });
    check(&Case {
        name: "sum all",
        inputs: vec![rand_in(&[4, 3])],
        build: |g, x| op(g, Op::SumAll { scale: 1.0 }, x),
    });
    check(&Case {
        name: "mean all",
        inputs: vec![rand_in(&[4, 3])],
        build: |g, x| op(g, Op::SumAll { scale: 1.0 / 12.0 }, x),
    });
    check(&Case {
        name: "broadcast scalar",
        inputs: vec![rand_in(&[1])],
        build: |g, x| op(g, Op::BroadcastScalar { shape: vec![2, 3], scale: 0.5 }, x),
    });
}

#[test]
fn loss_gradients() {
    let labels = (vec![4], Fill::Fixed(vec![2.0, 0.0, 4.0, 1.0]), false);
    check(&Case {
        name: "softmax xent sparse",
        inputs: vec![rand_in(&[4, 5]), labels],
        build: |g, x| op(g, Op::SoftmaxCrossEntropy { sparse: true, weighted: false }, x),
    });
    let one_hot = vec![0.0, 1.0, 0.0, 0.2, 0.3, 0.5, 1.0, 0.0, 0.0];
    check(&Case {
        name: "softmax xent one-hot",
        inputs: vec![rand_in(&[3, 3]), (vec![3, 3], Fill::Fixed(one_hot), false)],
        build: |g, x| op(g, Op::SoftmaxCrossEntropy { sparse: false, weighted: false }, x),
    });
    check(&Case {
        name: "mse",
        inputs: vec![rand_in(&[3, 2]), (vec![3, 2], Fill::Random, false)],
        build: |g, x| op(g, Op::MeanSquaredError { weighted: false }, x),
    });
    let targets = (vec![5, 1], Fill::Fixed(vec![1.0, 0.0, 1.0, 1.0, 0.0]), false);
    check(&Case {
        name: "sigmoid bce",
        inputs: vec![rand_in(&[5, 1]), targets],
        build: |g, x| op(g, Op::SigmoidBinaryCrossEntropy { weighted: false }, x),
    });
}

/// A mid-graph check: a two-layer tanh MLP whose input feeds two branches (so gradients are
/// summed), ending in softmax cross-entropy. Catches rules that drop the incoming gradient.
#[test]
fn composite_mlp_gradients() {
    check(&Case {
        name: "mlp",
        inputs: vec![
            rand_in(&[4, 3]),
            rand_in(&[3, 5]),
            rand_in(&[5]),
            rand_in(&[5, 3]),
            (vec![4], Fill::Fixed(vec![0.0, 2.0, 1.0, 2.0]), false),
        ],
        build: |g, x| {
            let h = op(g, Op::MatMul { trans_a: false, trans_b: false }, &[x[0], x[1]]);
            let h = op(g, Op::BiasAdd, &[h, x[2]]);
            let h = op(g, Op::Unary(UnaryOp::Tanh), &[h]);
            let z = op(g, Op::MatMul { trans_a: false, trans_b: false }, &[h, x[3]]);
            let skip = op(g, Op::Unary(UnaryOp::Sigmoid), &[x[0]]);
            let z = op(g, Op::Add, &[z, skip]);
            op(g, Op::SoftmaxCrossEntropy { sparse: true, weighted: false }, &[z, x[4]])
        },
    });
}
