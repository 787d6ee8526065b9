//! Every mistake a user can make gives a typed error whose message names the problem.
use std::io::Write;

use kiln::cli::{TrainArgs, train};
use kiln::{Activation, CompileOptions, Dense, Device, FitOptions, Loss, Optimizer, Sequential, Tensor};

fn temp_file(name: &str, contents: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().write_all(contents).unwrap();
    p
}

fn train_err(args: TrainArgs) -> String {
    match train(&TrainArgs { json: true, epochs: 1, ..args }) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unknown_flag_values_are_named() {
    let e = train_err(TrainArgs { device: "tpu".into(), ..TrainArgs::default() });
    assert!(e.contains("device") && e.contains("tpu"), "{e}");
    let e = train_err(TrainArgs { optimizer: "lbfgs".into(), ..TrainArgs::default() });
    assert!(e.contains("optimizer") && e.contains("lbfgs"), "{e}");
    let e = train_err(TrainArgs { model: "transformer".into(), ..TrainArgs::default() });
    assert!(e.contains("transformer"), "{e}");
    let e = train_err(TrainArgs { data: Some("no-such-set".into()), ..TrainArgs::default() });
    assert!(e.contains("no-such-set"), "{e}");
}

#[test]
fn missing_and_malformed_csv_files_are_named_with_line() {
    let e = train_err(TrainArgs { data: Some("/nonexistent/data.csv".into()), ..TrainArgs::default() });
    assert!(e.contains("/nonexistent/data.csv"), "{e}");
    let p = temp_file("ragged.csv", b"1,2,0\n3,4,1\n5,6\n");
    let e = train_err(TrainArgs { data: Some(p.display().to_string()), ..TrainArgs::default() });
    assert!(e.contains("ragged.csv") && e.contains("line 3"), "{e}");
    let p = temp_file("nan.csv", b"1,2,0\n3,abc,1\n");
    let e = train_err(TrainArgs { data: Some(p.display().to_string()), ..TrainArgs::default() });
    assert!(e.contains("nan.csv") && e.contains("line 2") && e.contains("abc"), "{e}");
    let p = temp_file("truncated.csv.gz", &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2]);
    let e = train_err(TrainArgs { data: Some(p.display().to_string()), ..TrainArgs::default() });
    assert!(e.contains("truncated.csv.gz"), "{e}");
}

#[test]
fn labels_outside_the_class_range_are_rejected() {
    let p = temp_file("labels.csv", b"3,2,setosa,versicolor\n1.0,2.0,0\n2.0,1.0,1\n0.5,0.5,7\n");
    let e = train_err(TrainArgs { data: Some(p.display().to_string()), ..TrainArgs::default() });
    assert!(e.contains("label 7") || e.contains("label"), "{e}");
    let mut m = Sequential::new(&[2]).add(Dense::new(3, Activation::Softmax));
    m.compile(CompileOptions::new(Optimizer::adam(1e-3), Loss::SparseCategoricalCrossentropy, Device::Cpu))
        .unwrap();
    let x = Tensor::new(&[2, 2], vec![0.0; 4]).unwrap();
    let y = Tensor::new(&[2], vec![1.0, 3.0]).unwrap();
    let e = m.fit(&x, &y, &FitOptions { verbose: 0, ..Default::default() }).unwrap_err().to_string();
    assert!(e.contains("label 3") && e.contains("sample 1") && e.contains("0..3"), "{e}");
}

#[test]
fn shape_mismatches_name_the_layer_and_both_shapes() {
    let mut m =
        Sequential::new(&[4]).add(Dense::new(8, Activation::Relu)).add(Dense::new(3, Activation::Softmax));
    m.compile(CompileOptions::new(Optimizer::adam(1e-3), Loss::SparseCategoricalCrossentropy, Device::Cpu))
        .unwrap();
    let x = Tensor::new(&[2, 5], vec![0.0; 10]).unwrap();
    let y = Tensor::new(&[2], vec![0.0, 1.0]).unwrap();
    let e = m.fit(&x, &y, &FitOptions { verbose: 0, ..Default::default() }).unwrap_err().to_string();
    assert!(e.contains("dense") && e.contains("[2, 4]") && e.contains("[2, 5]"), "{e}");
    let e = m.set_weights(&[("dense_1.kernel".into(), Tensor::zeros(&[8, 4]))]).unwrap_err().to_string();
    assert!(e.contains("dense_1.kernel") && e.contains("[8, 3]") && e.contains("[8, 4]"), "{e}");
    // A dense layer on an image-shaped input asks for a Flatten.
    let e = Sequential::new(&[8, 8, 1])
        .add(Dense::new(3, Activation::Softmax))
        .summary()
        .unwrap_err()
        .to_string();
    assert!(e.contains("dense") && e.contains("[8, 8, 1]"), "{e}");
}

#[test]
fn loss_and_output_layer_must_fit_together() {
    let mut m = Sequential::new(&[4]).add(Dense::new(3, Activation::Relu));
    let e = m
        .compile(CompileOptions::new(Optimizer::adam(1e-3), Loss::SparseCategoricalCrossentropy, Device::Cpu))
        .unwrap_err()
        .to_string();
    assert!(e.contains("softmax") && e.contains("relu"), "{e}");
}

#[test]
fn using_a_model_before_compile_is_an_error() {
    let mut m = Sequential::new(&[4]).add(Dense::new(3, Activation::Softmax));
    let e = m.predict(&Tensor::zeros(&[1, 4]), 1).unwrap_err().to_string();
    assert!(e.contains("compile"), "{e}");
}

#[test]
fn gpu_device_without_adapter_is_a_clear_error() {
    // With no Vulkan/GL backend allowed, no adapter can be found.
    let e = kiln::backend::gpu::GpuBackend::new(Some(999)).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("adapter"), "{e}");
}

#[test]
fn the_cli_exits_non_zero_with_a_one_line_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["train", "--device", "tpu"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error:") && err.contains("tpu"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["train", "--epochs", "many"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("many"));
}

/// A diverging run stops with an error naming the epoch and the first step whose loss was not
/// finite, recorded on the device (no readback per step) — on the CPU and on the GPU.
#[test]
fn a_non_finite_loss_names_epoch_and_step() {
    let mut devices = vec![Device::Cpu];
    if crate::common::gpu().is_some() {
        devices.push(Device::Gpu(None));
    }
    for device in devices {
        let mut m = Sequential::new(&[2]).add(Dense::new(3, Activation::Softmax));
        m.compile(CompileOptions::new(Optimizer::sgd(0.1), Loss::SparseCategoricalCrossentropy, device))
            .unwrap();
        // 10 rows, batch 2, no shuffle: the 4th batch (rows 6 and 7) holds an inf.
        let mut data = vec![0.5f32; 20];
        data[14] = f32::INFINITY;
        let x = Tensor::new(&[10, 2], data).unwrap();
        let y = Tensor::new(&[10], vec![0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 0.0]).unwrap();
        let opts = FitOptions { batch_size: 2, epochs: 3, verbose: 0, shuffle: false, ..Default::default() };
        let e = m.fit(&x, &y, &opts).unwrap_err();
        assert!(matches!(e, kiln::Error::NonFiniteLoss { epoch: 1, step: 4, .. }), "{device:?}: {e}");
        assert!(e.to_string().contains("epoch 1, step 4"), "{e}");
    }
}

/// A model larger than the adapter allows fails at compile with an error naming the buffer
/// and the limit — checked against the limits before anything is allocated.
#[test]
fn a_model_too_large_for_the_device_is_out_of_device_memory() {
    let Some(gpu) = crate::common::gpu() else { return };
    let limit = gpu.info().max_buffer_size;
    drop(gpu);
    // Enough units that the parameters alone exceed the adapter's largest buffer.
    let units = (limit / 4 / 784 + 1) as usize;
    let mut m = Sequential::new(&[784]).add(Dense::new(units, Activation::Softmax));
    let opts =
        CompileOptions::new(Optimizer::sgd(0.01), Loss::SparseCategoricalCrossentropy, Device::Gpu(None));
    let e = m.compile(opts).unwrap_err();
    assert!(matches!(e, kiln::Error::OutOfDeviceMemory { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("Params") || msg.contains("params"), "{msg}");
    assert!(msg.contains(&limit.to_string()), "{msg}");
}

/// With `KILN_REQUIRE_GPU=1` a missing adapter fails the GPU tests instead of skipping them;
/// without it they skip. Runs this test binary on one GPU test with the Vulkan driver hidden.
#[test]
fn gpu_tests_fail_rather_than_skip_when_a_gpu_is_required() {
    let run = |require: bool| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "gpu_parity::adapter_matches_the_requested_backend", "--nocapture"])
            .env("WGPU_BACKEND", "vulkan")
            .env("VK_ICD_FILENAMES", "/nonexistent/kiln-no-driver.json")
            .env("VK_DRIVER_FILES", "/nonexistent/kiln-no-driver.json");
        if require {
            cmd.env("KILN_REQUIRE_GPU", "1");
        } else {
            cmd.env_remove("KILN_REQUIRE_GPU");
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, log) = run(true);
    assert!(!ok && log.contains("KILN_REQUIRE_GPU=1 but no GPU backend"), "{log}");
    let (ok, log) = run(false);
    assert!(ok && log.contains("skipping GPU test"), "{log}");
}

#[test]
fn device_flags_round_trip_and_reject_nonsense() {
    for s in ["auto", "cpu", "gpu", "gpu:0", "gpu:12"] {
        assert_eq!(s.parse::<Device>().unwrap().to_string(), s);
    }
    for bad in ["gpu:", "gpu:x", "cuda", "gpu:-1"] {
        let e = bad.parse::<Device>().unwrap_err().to_string();
        assert!(e.contains("device") && e.contains(bad), "{e}");
    }
}

/// A message a user sees holds words, not Rust's Debug output of internal types.
fn assert_in_words(msg: &str) {
    assert!(!msg.contains('{') && !msg.contains("Some(") && !msg.contains("None"), "Debug output in: {msg}");
}

/// Out of device memory in the activations of a layer: the message names the layer, the
/// value's role, the bytes needed and the limit, and says what to do.
#[test]
fn out_of_device_memory_names_the_layer_the_role_and_what_to_do() {
    let Some(gpu) = crate::common::gpu() else { return };
    let binding = gpu.info().max_storage_binding;
    drop(gpu);
    // [batch, units] activations just over one binding.
    let batch = 32;
    let units = (binding / 4 / batch as u64 + 64) as usize;
    let mut m = Sequential::new(&[1]).add(Dense::new(units, Activation::Linear));
    let opts = CompileOptions::new(Optimizer::sgd(0.01), Loss::MeanSquaredError, Device::Gpu(None));
    m.compile(opts).unwrap();
    let x = Tensor::new(&[batch, 1], vec![1.0; batch]).unwrap();
    let e = m.predict(&x, batch).unwrap_err();
    assert!(matches!(e, kiln::Error::OutOfDeviceMemory { .. }), "{e}");
    let msg = e.to_string();
    for part in ["layer 'dense'", "activations", &binding.to_string(), "--batch-size", "--device cpu"] {
        assert!(msg.contains(part), "'{part}' missing from: {msg}");
    }
    assert_in_words(&msg);
}

/// The errors of common mistakes (shapes, sizes, files, flags) are written in words.
#[test]
fn user_facing_errors_hold_no_debug_output() {
    let mut messages = Vec::new();
    // Data of the wrong width for the model.
    let mut m = Sequential::new(&[4]).add(Dense::new(3, Activation::Softmax));
    let opts = CompileOptions::new(Optimizer::sgd(0.01), Loss::SparseCategoricalCrossentropy, Device::Cpu);
    m.compile(opts).unwrap();
    let x = Tensor::new(&[2, 5], vec![0.0; 10]).unwrap();
    let y = Tensor::new(&[2], vec![0.0, 1.0]).unwrap();
    messages.push(m.fit(&x, &y, &FitOptions { epochs: 1, verbose: 0, ..Default::default() }).unwrap_err());
    // A label out of range, a model file with an unknown layer and one with a bad key.
    let y_bad = Tensor::new(&[2], vec![0.0, 7.0]).unwrap();
    let x_ok = Tensor::new(&[2, 4], vec![0.0; 8]).unwrap();
    messages
        .push(m.fit(&x_ok, &y_bad, &FitOptions { epochs: 1, verbose: 0, ..Default::default() }).unwrap_err());
    let bad_layer =
        temp_file("unknown.toml", b"input_shape = [4]\n[[layers]]\ntype = \"Denser\"\nunits = 3\n");
    messages.push(kiln::model::spec::load_model_file(&bad_layer).unwrap_err());
    let bad_key = temp_file("badkey.toml", b"input_shape = [4]\n[[layers]]\ntype = \"Dense\"\nunitz = 3\n");
    messages.push(kiln::model::spec::load_model_file(&bad_key).unwrap_err());
    // A model too large for the CPU's 32-bit GPU indices is still an error in words on the GPU.
    if let Some(gpu) = crate::common::gpu() {
        let limit = gpu.info().max_buffer_size;
        drop(gpu);
        let units = (limit / 4 / 784 + 1) as usize;
        let mut big = Sequential::new(&[784]).add(Dense::new(units, Activation::Softmax));
        let opts =
            CompileOptions::new(Optimizer::sgd(0.01), Loss::SparseCategoricalCrossentropy, Device::Gpu(None));
        messages.push(big.compile(opts).unwrap_err());
    }
    // Through the graph API: an op with the wrong number of inputs, and a gradient of a metric.
    let mut g = kiln::graph::Graph::new();
    let a = g.input("a", &[2, 2]);
    messages
        .push(g.add(kiln::graph::Op::MatMul { trans_a: false, trans_b: false }, &[a], "layer").unwrap_err());
    let labels = g.input("labels", &[2]);
    let count = g
        .add(
            kiln::graph::Op::CountCorrect { sparse: true, threshold: 0.5, weighted: false },
            &[a, labels],
            "metric",
        )
        .unwrap();
    let seed = g.add(kiln::graph::Op::Fill { shape: vec![1], value: 1.0 }, &[], "seed").unwrap();
    messages.push(kiln::graph::autodiff::gradients(&mut g, count, seed, &[a]).unwrap_err());
    for e in &messages {
        assert_in_words(&e.to_string());
    }
    assert!(messages.len() >= 6);
}
