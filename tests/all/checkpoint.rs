//! Checkpoints: resuming is exact, nothing is lost when a write is interrupted, damaged files
//! and other architectures are refused with errors that name the problem, checkpoints move
//! between backends, and the files open with standard safetensors readers.
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kiln::checkpoint::{NamedTensors, temp_path};
use kiln::{
    Activation, BatchNormalization, Checkpoint, CompileOptions, Dense, Device, Dropout, Error, FitOptions,
    Loss, Model, Optimizer, Sequential, Tensor,
};

use crate::common::{self, TempDir, digits};

/// Dense → BatchNormalization → Dropout → Dense: weights, moving statistics, Adam's two
/// slots and dropout masks (which depend on the step) all have to be restored.
fn model(device: Device) -> Sequential {
    let mut m = Sequential::new(&[64])
        .with_seed(3)
        .add(Dense::new(32, Activation::Relu))
        .add(BatchNormalization::new())
        .add(Dropout::new(0.2))
        .add(Dense::new(10, Activation::Softmax));
    m.compile(CompileOptions::new(Optimizer::adam(1e-3), Loss::SparseCategoricalCrossentropy, device))
        .unwrap();
    m
}

fn first_rows(n: usize) -> (Tensor, Tensor) {
    let (x, y) = digits();
    (
        Tensor::new(&[n, 64], x.data[..n * 64].to_vec()).unwrap(),
        Tensor::new(&[n], y.data[..n].to_vec()).unwrap(),
    )
}

fn fit(m: &mut Model, x: &Tensor, y: &Tensor, epochs: usize) -> kiln::History {
    let opts = FitOptions { epochs, batch_size: 24, verbose: 0, ..FitOptions::default() };
    m.fit(x, y, &opts).unwrap()
}

/// (weights after 4 epochs in one go, weights after 2 + save + load into a fresh model + 2).
fn four_epochs_two_ways(device: Device, dir: &Path) -> (NamedTensors, NamedTensors) {
    let (x, y) = first_rows(500);
    let mut straight = model(device);
    let h4 = fit(&mut straight, &x, &y, 4);
    let mut first = model(device);
    fit(&mut first, &x, &y, 2);
    let path = dir.join("half.safetensors");
    first.save(&path).unwrap();
    drop(first);
    // A fresh model of the same architecture, restored from the file alone.
    let mut resumed = Checkpoint::load(&path).unwrap().into_model(device).unwrap();
    assert_eq!(resumed.epochs_trained(), 2);
    assert_eq!(resumed.steps_taken(), 2 * 500usize.div_ceil(24) as u32);
    let h2 = fit(&mut resumed, &x, &y, 2);
    assert_eq!(h2.history["loss"].len(), 2);
    let tol = if device == Device::Cpu { 0.0 } else { 1e-4 };
    for (a, b) in h4.history["loss"][2..].iter().zip(&h2.history["loss"]) {
        assert!((a - b).abs() <= tol * a.abs(), "epoch loss {a} vs resumed {b}");
    }
    (straight.get_weights().unwrap(), resumed.get_weights().unwrap())
}

#[test]
fn resume_after_two_epochs_is_bitwise_identical_to_four_epochs_on_cpu() {
    let dir = TempDir::new("resume-cpu");
    let (straight, resumed) = four_epochs_two_ways(Device::Cpu, &dir);
    assert_eq!(straight.len(), 8, "kernel, bias, gamma, beta, moving mean/variance, kernel, bias");
    for ((name, a), (_, b)) in straight.iter().zip(&resumed) {
        let same = a.data.iter().zip(&b.data).all(|(p, q)| p.to_bits() == q.to_bits());
        assert!(same, "{name} differs after resume");
    }
}

#[test]
fn resume_on_the_gpu_agrees_with_four_epochs_within_tolerance() {
    if common::gpu().is_none() {
        return;
    }
    let dir = TempDir::new("resume-gpu");
    let (straight, resumed) = four_epochs_two_ways(Device::Gpu(None), &dir);
    for ((name, a), (_, b)) in straight.iter().zip(&resumed) {
        for (p, q) in a.data.iter().zip(&b.data) {
            assert!((p - q).abs() <= 1e-4 * (1.0 + p.abs()), "{name}: {p} vs {q}");
        }
    }
}

/// Predictions of `m` on the first 50 digits.
fn predictions(m: &mut Model) -> Vec<f32> {
    m.predict(&first_rows(50).0, 16).unwrap().data
}

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    for (i, (p, q)) in a.iter().zip(b).enumerate() {
        assert!((p - q).abs() <= tol, "{what}: element {i}: {p} vs {q}");
    }
}

#[test]
fn a_checkpoint_saved_on_the_cpu_loads_on_the_gpu_and_back() {
    if common::gpu().is_none() {
        return;
    }
    let dir = TempDir::new("cross-backend");
    let (x, y) = first_rows(300);
    let mut cpu = model(Device::Cpu);
    fit(&mut cpu, &x, &y, 2);
    cpu.save(dir.join("cpu.safetensors")).unwrap();
    let mut gpu = model(Device::Gpu(None));
    Checkpoint::load_into(dir.join("cpu.safetensors"), &mut gpu).unwrap();
    assert_eq!(gpu.get_weights().unwrap(), cpu.get_weights().unwrap(), "weights arrive bit for bit");
    assert_close(&predictions(&mut cpu), &predictions(&mut gpu), 1e-5, "CPU vs GPU predictions");
    // One more epoch on each side from the same state, then back from the GPU to the CPU.
    fit(&mut cpu, &x, &y, 1);
    fit(&mut gpu, &x, &y, 1);
    gpu.save(dir.join("gpu.safetensors")).unwrap();
    let mut back = Checkpoint::load(dir.join("gpu.safetensors")).unwrap().into_model(Device::Cpu).unwrap();
    assert_eq!(back.steps_taken(), cpu.steps_taken());
    assert_close(&predictions(&mut back), &predictions(&mut cpu), 1e-4, "GPU-trained vs CPU-trained");
}

#[test]
fn weights_open_with_the_safetensors_crate_alone() {
    let dir = TempDir::new("standard-reader");
    let mut m = model(Device::Cpu);
    let (x, y) = first_rows(100);
    fit(&mut m, &x, &y, 1);
    let path = dir.join("m.safetensors");
    m.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (name, w) in m.get_weights().unwrap() {
        let t = st.tensor(&name).unwrap();
        assert_eq!(t.dtype(), safetensors::Dtype::F32);
        assert_eq!(t.shape(), &w.shape[..], "{name}");
        let values: Vec<f32> =
            t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        assert_eq!(values, w.data, "{name}");
    }
    // Adam's m and v for every parameter, with the parameter's shape.
    assert_eq!(st.tensor("optimizer.slot1.dense.kernel").unwrap().shape(), &[64, 32]);
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    let model: serde_json::Value = serde_json::from_str(&meta["model"]).unwrap();
    assert_eq!(model, m.config());
    assert!(meta["optimizer"].contains("\"name\":\"adam\""), "{}", meta["optimizer"]);
    assert!(meta["training"].contains("\"epoch\":1"), "{}", meta["training"]);
}

#[test]
fn weights_open_with_python_safetensors_numpy_when_available() {
    let python = Path::new("/tmp/torch/bin/python");
    let probe = Command::new(python).args(["-c", "import safetensors.numpy, numpy"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "skipping the Python part: {} with safetensors and numpy is not available",
            python.display()
        );
        return;
    }
    let dir = TempDir::new("python-reader");
    let mut m = model(Device::Cpu);
    let path = dir.join("m.safetensors");
    m.save(&path).unwrap();
    let script = "import sys\nfrom safetensors.numpy import load_file\nt = load_file(sys.argv[1])\n\
                  k = t['dense_1.kernel']\nprint(k.shape, k.dtype, repr(float(k[2, 3])), sorted(t)[0])";
    let out = Command::new(python).args(["-c", script]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(fields[..3], ["(32,", "10)", "float32"], "{stdout}");
    let weights = m.get_weights().unwrap();
    let kernel = &weights.iter().find(|(n, _)| n == "dense_1.kernel").unwrap().1;
    assert_eq!(fields[3].parse::<f64>().unwrap(), kernel.data[2 * 10 + 3] as f64, "{stdout}");
    assert_eq!(fields[4], "batch_normalization.beta", "{stdout}");
}

/// The error of loading `bytes` as a checkpoint.
fn load_error(dir: &Path, name: &str, bytes: &[u8]) -> (Error, String) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let e = Checkpoint::load(&path).unwrap_err();
    let m = e.to_string();
    assert!(m.contains(name), "the error names the file: {m}");
    (e, m)
}

#[test]
fn truncated_and_corrupted_files_are_refused_saying_what_is_wrong() {
    let dir = TempDir::new("corrupt");
    let mut m = model(Device::Cpu);
    m.save(dir.join("good.safetensors")).unwrap();
    let good = std::fs::read(dir.join("good.safetensors")).unwrap();
    let header = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;

    let (e, msg) = load_error(&dir, "tiny.safetensors", &good[..5]);
    assert!(matches!(e, Error::CorruptCheckpoint { .. }) && msg.contains("too short"), "{msg}");
    let (_, msg) = load_error(&dir, "cut-header.safetensors", &good[..8 + header / 2]);
    assert!(msg.contains("truncated") && msg.contains(&format!("declares {header} bytes")), "{msg}");
    let (_, msg) = load_error(&dir, "cut-data.safetensors", &good[..good.len() - 100]);
    assert!(msg.contains("truncated") && msg.contains(&format!("ends at byte {}", good.len())), "{msg}");

    let mut flipped = good.clone();
    let at = good.len() - 7;
    flipped[at] ^= 0x40;
    let (e, msg) = load_error(&dir, "flipped.safetensors", &flipped);
    assert!(matches!(e, Error::CorruptCheckpoint { .. }) && msg.contains("CRC32"), "{msg}");

    let mut bad_json = good.clone();
    bad_json[8] = b'[';
    let (_, msg) = load_error(&dir, "header.safetensors", &bad_json);
    assert!(msg.contains("invalid safetensors header"), "{msg}");

    let e = Checkpoint::load(dir.join("missing.safetensors")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }) && e.to_string().contains("missing.safetensors"), "{e}");
}

fn mlp(hidden: usize, activation: Activation, optimizer: Optimizer) -> Sequential {
    let mut m =
        Sequential::new(&[64]).add(Dense::new(hidden, activation)).add(Dense::new(10, Activation::Softmax));
    m.compile(CompileOptions::new(optimizer, Loss::SparseCategoricalCrossentropy, Device::Cpu)).unwrap();
    m
}

fn mismatch(c: &Checkpoint, into: &mut Model) -> String {
    let e = c.restore(into, Path::new("ckpt.safetensors")).unwrap_err();
    assert!(matches!(e, Error::CheckpointMismatch { .. }), "{e:?}");
    e.to_string()
}

#[test]
fn checkpoints_of_another_architecture_or_optimizer_are_refused_naming_tensor_and_shapes() {
    let saved = Checkpoint::capture(&mut mlp(32, Activation::Relu, Optimizer::adam(1e-3))).unwrap();
    let msg = mismatch(&saved, &mut mlp(16, Activation::Relu, Optimizer::adam(1e-3)));
    assert!(
        msg.contains("'dense.kernel' has shape [64, 32] in the checkpoint, the model expects [64, 16]"),
        "{msg}"
    );
    let msg = mismatch(&saved, &mut mlp(32, Activation::Tanh, Optimizer::adam(1e-3)));
    assert!(msg.contains("another architecture: layer 1") && msg.contains("tanh"), "{msg}");
    let msg = mismatch(&saved, &mut mlp(32, Activation::Relu, Optimizer::sgd(0.1)));
    assert!(msg.contains("optimizer is adam with 2 state slots") && msg.contains("sgd"), "{msg}");
    let mut missing = saved.clone();
    missing.weights.retain(|(n, _)| n != "dense_1.bias");
    let msg = mismatch(&missing, &mut mlp(32, Activation::Relu, Optimizer::adam(1e-3)));
    assert!(msg.contains("tensor 'dense_1.bias' is missing (the model needs shape [10])"), "{msg}");
    // A file that loads but fits nothing: the error names the path too.
    let dir = TempDir::new("mismatch");
    saved.save(dir.join("a.safetensors")).unwrap();
    let mut other = mlp(16, Activation::Relu, Optimizer::adam(1e-3));
    let e = Checkpoint::load_into(dir.join("a.safetensors"), &mut other).unwrap_err();
    assert!(e.to_string().contains("a.safetensors does not fit the model"), "{e}");
}

/// Polls until the write of `last` after the first one has begun: `last` exists (the first
/// write was renamed into place, taking its temporary file with it) and a temporary file
/// with bytes in it is there again. Fails after two minutes or if kiln exits.
fn wait_for_second_write(last: &Path, child: &mut std::process::Child) {
    let t0 = Instant::now();
    while !(last.exists() && std::fs::metadata(temp_path(last)).is_ok_and(|m| m.len() > 0)) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("kiln exited ({status}) before the interrupted write");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no second write of {} after 2 minutes",
            last.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The fault hook writes half the file in one call, fsyncs and sleeps: let it get there.
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn a_process_killed_mid_write_leaves_the_previous_checkpoint_and_resume_finishes_the_run() {
    let dir = TempDir::new("killed");
    let run = dir.join("run");
    let kiln = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
        c.args(["train", "--device", "cpu", "--epochs", "4", "--verbose", "0"]).args(args);
        c
    };
    // The second write of last.safetensors (after epoch 2) stops halfway and sleeps; kill it.
    let mut child = kiln(&["--out", run.to_str().unwrap()])
        .env("KILN_FAULT_WRITE", "last.safetensors:2:pause")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let last = run.join("last.safetensors");
    wait_for_second_write(&last, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    // The half-written temporary file is refused; the previous checkpoint is intact.
    let e = Checkpoint::load(temp_path(&last)).unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");
    let previous = Checkpoint::load(&last).unwrap();
    assert_eq!(previous.training.as_ref().unwrap().epoch, 1);
    // Resuming finishes epochs 2..4 and ends where an uninterrupted run ends, bit for bit.
    let out = kiln(&["--resume", run.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let straight = dir.join("straight");
    let out = kiln(&["--out", straight.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (a, b) = (
        Checkpoint::load(run.join("model.safetensors")).unwrap(),
        Checkpoint::load(straight.join("model.safetensors")).unwrap(),
    );
    assert_eq!(a.training.as_ref().unwrap().epoch, 4);
    assert_eq!(a.weights, b.weights, "resumed and uninterrupted runs end with the same weights");
    assert_eq!(a.training.unwrap().slots, b.training.unwrap().slots);
    assert!(!temp_path(&last).exists(), "the next write replaced the stale temporary file");
}

#[test]
fn every_optimizer_schedule_and_clip_round_trips_and_resumes_exactly() {
    use kiln::optim::{Adagrad, AdamW, GradientClip, LearningRateSchedule, Rmsprop};
    let optimizers = [
        Optimizer::new(Rmsprop { momentum: 0.5, centered: true, ..Rmsprop::default() }, 1e-3)
            .with_clip(GradientClip::Norm(1.0)),
        Optimizer::new(AdamW { amsgrad: true, weight_decay: 0.01, ..AdamW::default() }, 2e-3)
            .with_schedule(LearningRateSchedule::warmup_cosine_decay(5e-3, 10, 40))
            .with_clip(GradientClip::GlobalNorm(2.0)),
        Optimizer::new(Adagrad::default(), 1e-2)
            .with_schedule(LearningRateSchedule::step_decay(1e-2, 15, 0.5)),
        Optimizer::momentum(0.05, 0.9, true).with_clip(GradientClip::Value(0.5)),
    ];
    let (x, y) = first_rows(200);
    let dir = TempDir::new("optimizers");
    for opt in optimizers {
        let build = || {
            let mut m = Sequential::new(&[64])
                .add(Dense::new(16, Activation::Relu))
                .add(Dense::new(10, Activation::Softmax));
            m.compile(CompileOptions::new(opt, Loss::SparseCategoricalCrossentropy, Device::Cpu)).unwrap();
            m
        };
        let mut straight = build();
        fit(&mut straight, &x, &y, 4);
        let mut first = build();
        fit(&mut first, &x, &y, 2);
        let path = dir.join(format!("{}.safetensors", opt.name()));
        first.save(&path).unwrap();
        let checkpoint = Checkpoint::load(&path).unwrap();
        assert_eq!(checkpoint.optimizer().unwrap(), opt, "{} round-trips", opt.name());
        let mut resumed = checkpoint.into_model(Device::Cpu).unwrap();
        fit(&mut resumed, &x, &y, 2);
        assert_eq!(
            resumed.get_weights().unwrap(),
            straight.get_weights().unwrap(),
            "{} resumes exactly",
            opt.name()
        );
    }
}

#[test]
fn a_learning_rate_changed_by_a_callback_survives_a_resume() {
    let dir = TempDir::new("lr-resume");
    let mut m = model(Device::Cpu);
    m.set_learning_rate(2.5e-4).unwrap();
    m.save(dir.join("m.safetensors")).unwrap();
    let resumed = Checkpoint::load(dir.join("m.safetensors")).unwrap().into_model(Device::Cpu).unwrap();
    assert_eq!(resumed.learning_rate().unwrap(), 2.5e-4);
}
