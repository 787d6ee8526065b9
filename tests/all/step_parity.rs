//! One whole training step (forward, backward, Adam/SGD update) on the GPU gives the same
//! weights as on the CPU, starting from the same seeded initial weights.
use kiln::{Activation, CompileOptions, Dense, Device, FitOptions, Loss, Optimizer, Sequential, Tensor};

use crate::common;

fn mlp(device: Device, optimizer: Optimizer) -> Sequential {
    let mut m = Sequential::new(&[33])
        .with_seed(3)
        .add(Dense::new(17, Activation::Relu))
        .add(Dense::new(17, Activation::Tanh))
        .add(Dense::new(5, Activation::Softmax));
    m.compile(CompileOptions::new(optimizer, Loss::SparseCategoricalCrossentropy, device)).unwrap();
    m
}

fn data(rows: usize) -> (Tensor, Tensor) {
    let mut rng = common::rng(11);
    let x = Tensor::new(&[rows, 33], common::uniform(&mut rng, rows * 33, -1.0, 1.0)).unwrap();
    let y = Tensor::new(&[rows], (0..rows).map(|i| (i % 5) as f32).collect()).unwrap();
    (x, y)
}

/// Largest |a − b| / (|b| + 1e-3) over all weights.
fn max_rel_diff(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> f32 {
    a.iter()
        .zip(b)
        .flat_map(|((na, ta), (nb, tb))| {
            assert_eq!(na, nb);
            ta.data.iter().zip(&tb.data).map(|(x, y)| (x - y).abs() / (y.abs() + 1e-3)).collect::<Vec<_>>()
        })
        .fold(0.0, f32::max)
}

#[test]
fn one_training_step_matches_between_gpu_and_cpu() {
    if common::gpu().is_none() {
        return;
    }
    for optimizer in [Optimizer::adam(1e-2), Optimizer::momentum(0.1, 0.9, true)] {
        let (x, y) = data(130); // 130 rows: one full batch of 128 would hide edge handling
        let opts =
            FitOptions { batch_size: 130, epochs: 1, verbose: 0, shuffle: false, ..Default::default() };
        let mut cpu = mlp(Device::Cpu, optimizer);
        let mut gpu = mlp(Device::Gpu(None), optimizer);
        let (w_cpu0, w_gpu0) = (cpu.get_weights().unwrap(), gpu.get_weights().unwrap());
        assert_eq!(w_cpu0, w_gpu0, "identical seeded initial weights on both backends");
        let h_cpu = cpu.fit(&x, &y, &opts).unwrap();
        let h_gpu = gpu.fit(&x, &y, &opts).unwrap();
        let (w_cpu, w_gpu) = (cpu.get_weights().unwrap(), gpu.get_weights().unwrap());
        assert!(max_rel_diff(&w_cpu, &w_cpu0) > 1e-3, "the step changed the weights");
        let diff = max_rel_diff(&w_gpu, &w_cpu);
        assert!(diff < 1e-4, "{optimizer:?}: GPU weights differ from CPU by {diff:e} (relative)");
        let (lc, lg) = (h_cpu.last("loss").unwrap(), h_gpu.last("loss").unwrap());
        assert!((lc - lg).abs() < 1e-5 * lc.abs().max(1.0), "loss {lc} vs {lg}");
        // Predictions after the step agree too.
        let (pc, pg) = (cpu.predict(&x, 64).unwrap(), gpu.predict(&x, 64).unwrap());
        let worst = pc.data.iter().zip(&pg.data).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-5, "predictions differ by {worst}");
    }
}

#[test]
fn gpu_training_is_bitwise_reproducible() {
    if common::gpu().is_none() {
        return;
    }
    let (x, y) = data(100);
    let opts = FitOptions { batch_size: 32, epochs: 2, verbose: 0, ..Default::default() };
    let mut a = mlp(Device::Gpu(None), Optimizer::adam(1e-3));
    let mut b = mlp(Device::Gpu(None), Optimizer::adam(1e-3));
    a.fit(&x, &y, &opts).unwrap();
    b.fit(&x, &y, &opts).unwrap();
    assert_eq!(a.get_weights().unwrap(), b.get_weights().unwrap());
}

/// A model whose parameters together exceed one storage binding (128 MiB on lavapipe), each
/// tensor fitting in one, still trains on the GPU: the optimizer update over the flat Params
/// arena is split into chunks, and the step matches the CPU.
#[test]
fn a_model_larger_than_one_binding_trains_on_the_gpu() {
    let Some(g) = common::gpu() else { return };
    let binding = (g.info().max_storage_binding / 4) as usize; // in f32 elements
    drop(g);
    if binding > 1 << 26 {
        return; // a device with huge bindings: too costly to show here
    }
    // Kernel 1: inputs × 500 (~0.75 binding); kernel 2: 500 × outputs (~0.35 binding). Every
    // product's K stays small (inputs < 65535 on lavapipe's loop limit, 500, batch 2).
    let (inputs, outputs) = (binding * 3 / 4 / 500, binding * 35 / 100 / 500);
    let x = Tensor::new(&[2, inputs], (0..2 * inputs).map(|i| (i % 7) as f32 / 7.0).collect()).unwrap();
    let y = Tensor::new(&[2, outputs], vec![0.5; 2 * outputs]).unwrap();
    let train = |device| {
        let mut m = Sequential::new(&[inputs])
            .with_seed(1)
            .add(Dense { use_bias: false, ..Dense::new(500, Activation::Relu) })
            .add(Dense { use_bias: false, ..Dense::new(outputs, Activation::Linear) });
        let mut opts = CompileOptions::new(Optimizer::sgd(0.1), Loss::MeanSquaredError, device);
        opts.metrics.clear();
        m.compile(opts).unwrap();
        assert!(m.params().iter().map(|p| p.buf.len).sum::<usize>() > binding);
        m.fit(&x, &y, &FitOptions { batch_size: 2, epochs: 1, verbose: 0, ..Default::default() }).unwrap();
        m.get_weights().unwrap()
    };
    let (gpu, cpu) = (train(Device::Gpu(None)), train(Device::Cpu));
    let diff = max_rel_diff(&gpu, &cpu);
    assert!(diff < 1e-4, "GPU weights differ from CPU by {diff:e} (relative)");
}

/// Seeded random model configurations — depth, widths (odd ones included), activations, every
/// loss with its output layer, every optimizer, batch sizes with a partial last batch — train
/// two epochs on both backends and end with the same weights and losses.
#[test]
fn random_models_train_the_same_on_gpu_and_cpu() {
    use rand::{Rng, SeedableRng};
    if common::gpu().is_none() {
        return;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2024);
    let widths = [1usize, 3, 5, 17, 33, 64];
    let acts = [Activation::Relu, Activation::Sigmoid, Activation::Tanh, Activation::Linear];
    for case in 0..16 {
        let features = widths[rng.random_range(1..widths.len())];
        let (loss, out_units, out_act) = match case % 4 {
            0 => (Loss::SparseCategoricalCrossentropy, rng.random_range(2..7), Activation::Softmax),
            1 => (Loss::CategoricalCrossentropy, rng.random_range(2..7), Activation::Softmax),
            2 => (Loss::BinaryCrossentropy, 1, Activation::Sigmoid),
            _ => (Loss::MeanSquaredError, rng.random_range(1..4), acts[rng.random_range(0..acts.len())]),
        };
        let optimizer = match rng.random_range(0..4) {
            0 => Optimizer::sgd(0.05),
            1 => Optimizer::momentum(0.05, 0.9, false),
            2 => Optimizer::momentum(0.05, 0.9, true),
            _ => Optimizer::adam(0.01),
        };
        let hidden: Vec<(usize, Activation)> = (0..rng.random_range(0..3))
            .map(|_| (widths[rng.random_range(0..widths.len())], acts[rng.random_range(0..acts.len())]))
            .collect();
        let rows = rng.random_range(5..60);
        let batch = [1usize, 7, 32][rng.random_range(0..3)];
        let x =
            Tensor::new(&[rows, features], common::uniform(&mut rng, rows * features, -1.0, 1.0)).unwrap();
        let y = match loss {
            Loss::SparseCategoricalCrossentropy => {
                Tensor::new(&[rows], (0..rows).map(|_| rng.random_range(0..out_units) as f32).collect())
            }
            Loss::CategoricalCrossentropy => Tensor::new(
                &[rows, out_units],
                (0..rows)
                    .flat_map(|_| {
                        let c = rng.random_range(0..out_units);
                        (0..out_units).map(move |j| if j == c { 1.0 } else { 0.0 })
                    })
                    .collect(),
            ),
            Loss::BinaryCrossentropy => {
                Tensor::new(&[rows, 1], (0..rows).map(|_| rng.random_range(0..2) as f32).collect())
            }
            _ => Tensor::new(&[rows, out_units], common::uniform(&mut rng, rows * out_units, -1.0, 1.0)),
        }
        .unwrap();
        let build = |device| {
            let mut m = Sequential::new(&[features]).with_seed(case);
            for &(w, a) in &hidden {
                m = m.add(Dense::new(w, a));
            }
            m = m.add(Dense::new(out_units, out_act));
            m.compile(CompileOptions::new(optimizer, loss, device)).unwrap();
            m
        };
        let opts = FitOptions { batch_size: batch, epochs: 2, verbose: 0, ..Default::default() };
        let what = format!(
            "case {case}: {features} → {hidden:?} → {out_units} {out_act:?}, {loss:?}, {optimizer:?}, {rows} rows, batch {batch}"
        );
        let (mut cpu, mut gpu) = (build(Device::Cpu), build(Device::Gpu(None)));
        let (hc, hg) = (cpu.fit(&x, &y, &opts).unwrap(), gpu.fit(&x, &y, &opts).unwrap());
        for (key, values) in &hc.history {
            for (a, b) in values.iter().zip(&hg.history[key]) {
                assert!((a - b).abs() <= 1e-3 * a.abs().max(1.0), "{what}: {key} cpu {a} gpu {b}");
            }
        }
        let diff = max_rel_diff(&gpu.get_weights().unwrap(), &cpu.get_weights().unwrap());
        assert!(diff < 1e-3, "{what}: weights differ by {diff:e}");
    }
}

/// Readbacks go through one kept staging buffer that grows: small, larger than its first
/// size (1 MiB), then small again, each returns exactly the slice asked for.
#[test]
fn readbacks_of_growing_and_shrinking_sizes_return_their_slices() {
    use kiln::backend::Backend;
    use kiln::program::{Arena, ResidentLayout};
    let Some(mut g) = common::gpu() else { return };
    let len = 3 << 20;
    g.alloc_resident(&ResidentLayout { params_len: len, slots: 0, accum_len: 1 }).unwrap();
    let data: Vec<f32> = (0..len).map(|i| i as f32).collect();
    g.write(Arena::Params, 0, &data).unwrap();
    for (offset, n) in [(5, 3), (64, 300_000), (128, len - 128), (7, 1), (1000, 2 << 20), (0, 17)] {
        let got = g.read(Arena::Params, offset, n).unwrap();
        assert_eq!(got.len(), n);
        assert!(
            got.iter().enumerate().all(|(i, &v)| v == (offset + i) as f32),
            "slice at {offset}, {n} elements"
        );
    }
}
