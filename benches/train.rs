//! Training throughput and latency on every device present (the CPU and each GPU adapter),
//! side by side in one run. `cargo bench --bench train`.
//!
//! - `mlp784_train_batch128`: MLP 784-128-10, Adam, batch 128, 20 steps per iteration
//!   (samples/s = Kelem/s × 1000); the same workload as `../shared/bench/torch_ref.py mlp`.
//! - `mlp128_step_latency_batch16`: the latency benchmark peers run on lavapipe (MLP 128 → 64
//!   relu → 64 relu → 10 without the last bias, softmax cross-entropy, SGD, batch 16): one
//!   training step = upload the batch, forward, backward, update, read the loss back.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kiln::{Activation, CompileOptions, Dense, Device, FitOptions, Loss, Optimizer, Sequential, Tensor};

fn devices() -> Vec<(String, Device)> {
    let mut devices = vec![("cpu".to_string(), Device::Cpu)];
    for a in kiln::backend::gpu::adapters() {
        devices.push((format!("gpu{}-{}", a.index, a.name.replace(' ', "_")), Device::Gpu(Some(a.index))));
    }
    devices
}

fn synthetic(rows: usize, features: usize) -> (Tensor, Tensor) {
    let x = Tensor::new(
        &[rows, features],
        (0..rows * features).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect(),
    );
    let y = Tensor::new(&[rows], (0..rows).map(|i| (i % 10) as f32).collect());
    (x.unwrap(), y.unwrap())
}

fn compiled(model: Sequential, optimizer: Optimizer, device: Device) -> Option<Sequential> {
    let mut model = model;
    model.compile(CompileOptions::new(optimizer, Loss::SparseCategoricalCrossentropy, device)).ok()?;
    Some(model)
}

fn mlp784_throughput(c: &mut Criterion) {
    let (batch, steps) = (128, 20);
    let (x, y) = synthetic(batch * steps, 784);
    let mut group = c.benchmark_group("mlp784_train_batch128");
    group.sample_size(10);
    group.throughput(Throughput::Elements((batch * steps) as u64));
    for (name, device) in devices() {
        let model = Sequential::new(&[784])
            .add(Dense::new(128, Activation::Relu))
            .add(Dense::new(10, Activation::Softmax));
        let Some(mut model) = compiled(model, Optimizer::adam(1e-3), device) else { continue };
        let opts =
            FitOptions { batch_size: batch, epochs: 1, verbose: 0, shuffle: false, ..Default::default() };
        group.bench_function(name, |b| b.iter(|| model.fit(&x, &y, &opts).unwrap()));
    }
    group.finish();
}

fn mlp128_latency(c: &mut Criterion) {
    let (x, y) = synthetic(16, 128);
    let mut group = c.benchmark_group("mlp128_step_latency_batch16");
    group.sample_size(20);
    for (name, device) in devices() {
        let last = Dense { use_bias: false, ..Dense::new(10, Activation::Softmax) };
        let model = Sequential::new(&[128])
            .add(Dense::new(64, Activation::Relu))
            .add(Dense::new(64, Activation::Relu))
            .add(last);
        let Some(mut model) = compiled(model, Optimizer::sgd(0.01), device) else { continue };
        // One epoch of one batch: upload, forward, backward, update, loss read back.
        let opts = FitOptions { batch_size: 16, epochs: 1, verbose: 0, shuffle: false, ..Default::default() };
        group.bench_function(name, |b| b.iter(|| model.fit(&x, &y, &opts).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, mlp784_throughput, mlp128_latency);
criterion_main!(benches);
