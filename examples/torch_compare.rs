//! kiln's side of `../shared/bench/torch_ref.py` and `benches/torch_ref_seq.py`: the same
//! workloads, timed the same way (median of repeats after a warm-up), so the two can run back
//! to back on one machine: `benches/compare_torch.sh` runs both.
//!
//! `cargo run --release --example torch_compare [-- --device cpu|gpu]
//! [--workloads gemm,mlp,mnist-cnn,digits,lstm,vowels,char-lstm] [--char-epochs 8]`
use std::time::Instant;

use kiln::cli::{TrainArgs, train};
use kiln::{Activation, CompileOptions, Dense, Device, FitOptions, Loss, Optimizer, Sequential, Tensor};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median seconds of `steps` calls of `f`, over `repeats` timed runs after two warm-ups.
fn time_it(mut f: impl FnMut(), steps: usize, repeats: usize) -> f64 {
    f();
    f();
    median(
        (0..repeats)
            .map(|_| {
                let t = Instant::now();
                (0..steps).for_each(|_| f());
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn main() -> kiln::Result<()> {
    let device: Device =
        std::env::args().skip_while(|a| a != "--device").nth(1).unwrap_or("cpu".into()).parse()?;
    let workloads = std::env::args()
        .skip_while(|a| a != "--workloads")
        .nth(1)
        .unwrap_or("gemm,mlp,mnist-cnn,digits".into());
    let run = |w: &str| workloads.split(',').any(|x| x == w);
    // gemm: C = A·B, f32.
    for n in [256usize, 512, 1024, 2048].into_iter().filter(|_| run("gemm")) {
        let a: Vec<f32> = (0..n * n).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..n * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut c = vec![0.0f32; n * n];
        let steps = (2e9 / (2.0 * (n * n * n) as f64)).max(1.0) as usize;
        let t =
            time_it(|| kiln::backend::cpu::kernels::matmul(n, n, n, false, false, &a, &b, &mut c), steps, 3);
        println!("  workload=gemm{n}, gflops={:.1}", 2.0 * (n * n * n * steps) as f64 / t / 1e9);
    }
    let batch = 128;
    if run("mnist-cnn") {
        mnist_cnn(device, batch)?;
    }
    sequences(device, &run)?;
    if !run("mlp") {
        return Ok(());
    }
    // mlp: 784-128(relu)-10, softmax cross-entropy, Adam 1e-3, batch 128, one fixed batch.
    let x = Tensor::new(
        &[batch, 784],
        (0..batch * 784).map(|i| ((i * 7919) % 255) as f32 / 127.0 - 1.0).collect(),
    )?;
    let y = Tensor::new(&[batch], (0..batch).map(|i| (i % 10) as f32).collect())?;
    let mut m = Sequential::new(&[784])
        .add(Dense::new(128, Activation::Relu))
        .add(Dense::new(10, Activation::Softmax));
    m.compile(CompileOptions::new(Optimizer::adam(1e-3), Loss::SparseCategoricalCrossentropy, device))?;
    let opts = FitOptions { batch_size: batch, epochs: 1, verbose: 0, shuffle: false, ..Default::default() };
    let steps = 50;
    let t_train = time_it(|| drop(m.fit(&x, &y, &opts)), steps, 3);
    let t_infer = time_it(|| drop(m.predict(&x, batch)), steps, 3);
    println!(
        "  workload=mlp, params={}, batch={batch}, train_samples_per_s={:.4e}, infer_samples_per_s={:.4e}",
        m.param_count()?,
        (batch * steps) as f64 / t_train,
        (batch * steps) as f64 / t_infer
    );
    if !run("digits") {
        return Ok(());
    }
    // digits: the README's `kiln train` (stratified 80/20, standardised, MLP 64-64-10, Adam,
    // batch 32, 30 epochs), seeds 0..3.
    for seed in 0..3 {
        let args = TrainArgs {
            seed,
            json: true,
            device: format!("{device:?}").to_lowercase(),
            ..TrainArgs::default()
        };
        let args =
            TrainArgs { device: if device == Device::Cpu { "cpu".into() } else { args.device }, ..args };
        let r = train(&args)?;
        println!(
            "  workload=digits, seed={seed}, test_accuracy={:.4}, train_seconds={:.4}",
            r.test_accuracy, r.train_seconds
        );
    }
    Ok(())
}

/// mnist-cnn (93,322 parameters), Adam 1e-3, batch 128 of synthetic 28×28×1 images, as in
/// torch_ref.py: training and inference samples/s.
fn mnist_cnn(device: Device, batch: usize) -> kiln::Result<()> {
    let x = Tensor::new(
        &[batch, 28, 28, 1],
        (0..batch * 784).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect(),
    )?;
    let y = Tensor::new(&[batch], (0..batch).map(|i| (i % 10) as f32).collect())?;
    let mut m = kiln::cli::preset("mnist-cnn", &[28, 28, 1], 10, 0)?;
    m.compile(CompileOptions::new(Optimizer::adam(1e-3), Loss::SparseCategoricalCrossentropy, device))?;
    let opts = FitOptions { batch_size: batch, epochs: 1, verbose: 0, shuffle: false, ..Default::default() };
    let steps = 10;
    let t_train = time_it(|| drop(m.fit(&x, &y, &opts)), steps, 5);
    let t_infer = time_it(|| drop(m.predict(&x, batch)), steps, 5);
    println!(
        "  workload=mnist-cnn, params={}, batch={batch}, train_samples_per_s={:.0}, infer_samples_per_s={:.0}",
        m.param_count()?,
        (batch * steps) as f64 / t_train,
        (batch * steps) as f64 / t_infer
    );
    Ok(())
}

/// The sequence workloads of `benches/torch_ref_seq.py`: the LSTM(128) training step, the
/// JapaneseVowels protocol end to end, and the Shakespeare char-LSTM.
fn sequences(device: Device, run: &dyn Fn(&str) -> bool) -> kiln::Result<()> {
    let device_name = if device == Device::Cpu { "cpu".to_string() } else { "gpu".to_string() };
    if run("lstm") {
        // LSTM(128) over 50 steps of 32 features → Dense(10), Adam 1e-3, batch 64.
        let (batch, steps, features) = (64, 50, 32);
        let x = Tensor::new(
            &[batch, steps, features],
            (0..batch * steps * features).map(|i| ((i * 7919) % 255) as f32 / 127.0 - 1.0).collect(),
        )?;
        let y = Tensor::new(&[batch], (0..batch).map(|i| (i % 10) as f32).collect())?;
        let mut m = Sequential::new(&[steps, features])
            .add(kiln::Lstm::new(128))
            .add(Dense::new(10, Activation::Softmax));
        m.compile(CompileOptions::new(Optimizer::adam(1e-3), Loss::SparseCategoricalCrossentropy, device))?;
        let opts =
            FitOptions { batch_size: batch, epochs: 1, verbose: 0, shuffle: false, ..Default::default() };
        let n = 10;
        let t_train = time_it(|| drop(m.fit(&x, &y, &opts)), n, 3);
        let t_infer = time_it(|| drop(m.predict(&x, batch)), n, 3);
        println!(
            "  workload=lstm, batch={batch}, train_samples_per_s={:.1}, infer_samples_per_s={:.1}",
            (batch * n) as f64 / t_train,
            (batch * n) as f64 / t_infer
        );
    }
    if run("vowels") {
        for seed in 0..3 {
            let args = TrainArgs {
                data: Some("japanese-vowels".into()),
                model: "lstm".into(),
                epochs: 60,
                seed,
                json: true,
                device: device_name.clone(),
                ..TrainArgs::default()
            };
            let r = train(&args)?;
            println!(
                "  workload=vowels, seed={seed}, test_accuracy={:.4}, train_seconds={:.4}",
                r.test_accuracy, r.train_seconds
            );
        }
    }
    if run("char-lstm") {
        let epochs = std::env::args().skip_while(|a| a != "--char-epochs").nth(1);
        let epochs = epochs.and_then(|e| e.parse().ok()).unwrap_or(8);
        let args = TrainArgs {
            data: Some("shakespeare".into()),
            model: "char-lstm".into(),
            epochs,
            json: true,
            device: device_name,
            ..TrainArgs::default()
        };
        let r = train(&args)?;
        println!(
            "  workload=char-lstm, epochs={epochs}, test_bits_per_char={:.4}, train_seconds={:.1}",
            r.bits_per_char.unwrap_or(f32::NAN),
            r.train_seconds
        );
    }
    Ok(())
}
