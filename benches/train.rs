//! Training-step throughput of the MLP 784-128-10 (Adam, batch 128) on every device present:
//! the CPU and each GPU adapter. Samples/s = Kelem/s × 1000. `cargo bench --bench train`.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kiln::{Activation, CompileOptions, Dense, Device, FitOptions, Loss, Optimizer, Sequential, Tensor};

fn mlp_784(device: Device) -> Option<Sequential> {
    let mut m = Sequential::new(&[784])
        .add(Dense::new(128, Activation::Relu))
        .add(Dense::new(10, Activation::Softmax));
    m.compile(CompileOptions::new(Optimizer::adam(1e-3), Loss::SparseCategoricalCrossentropy, device))
        .ok()?;
    Some(m)
}

fn train_steps(c: &mut Criterion) {
    let batch = 128;
    let steps = 20;
    let n = batch * steps;
    let x =
        Tensor::new(&[n, 784], (0..n * 784).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect()).unwrap();
    let y = Tensor::new(&[n], (0..n).map(|i| (i % 10) as f32).collect()).unwrap();
    let mut group = c.benchmark_group("mlp784_train_batch128");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));
    let mut devices = vec![("cpu".to_string(), Device::Cpu)];
    for a in kiln::backend::gpu::adapters() {
        devices.push((format!("gpu{}-{}", a.index, a.name.replace(' ', "_")), Device::Gpu(Some(a.index))));
    }
    for (name, device) in devices {
        let Some(mut model) = mlp_784(device) else {
            continue;
        };
        let opts =
            FitOptions { batch_size: batch, epochs: 1, verbose: 0, shuffle: false, ..Default::default() };
        group.bench_function(name, |b| b.iter(|| model.fit(&x, &y, &opts).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, train_steps);
criterion_main!(benches);
