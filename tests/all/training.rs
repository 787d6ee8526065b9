//! End to end on real data: the CLI's train path (stratified 80/20 split, standardised
//! features, MLP, Adam) on the CPU and on the GPU adapter (lavapipe in CI).
use kiln::cli::{TrainArgs, train};

use crate::common;

fn run(data: &str, device: &str, epochs: usize) -> kiln::cli::TrainReport {
    let args = TrainArgs {
        data: Some(data.into()),
        device: device.into(),
        epochs,
        json: true,
        ..TrainArgs::default()
    };
    train(&args).unwrap_or_else(|e| panic!("train {data} on {device}: {e}"))
}

#[test]
fn digits_mlp_reaches_096_on_cpu() {
    let r = run("digits", "cpu", 30);
    assert_eq!(r.device, "cpu");
    assert!(r.test_accuracy >= 0.96, "digits test accuracy {}", r.test_accuracy);
    assert!(r.planned_memory_bytes > 0);
}

#[test]
fn digits_mlp_reaches_096_on_gpu() {
    if common::gpu().is_none() {
        return;
    }
    let r = run("digits", "gpu", 30);
    assert_eq!(r.device, "gpu");
    assert!(
        r.test_accuracy >= 0.96,
        "digits test accuracy on {} ({}): {}",
        r.adapter,
        r.backend,
        r.test_accuracy
    );
}

#[test]
fn iris_mlp_reaches_090() {
    let r = run("iris", "cpu", 200);
    assert!(r.test_accuracy >= 0.9, "iris test accuracy {}", r.test_accuracy);
}

#[test]
fn breast_cancer_sigmoid_bce_reaches_093() {
    let r = run("breast-cancer", "cpu", 30);
    assert!(r.test_accuracy >= 0.93, "breast cancer test accuracy {}", r.test_accuracy);
    if common::gpu().is_some() {
        let g = run("breast-cancer", "gpu", 30);
        assert!(g.test_accuracy >= 0.93, "breast cancer test accuracy on the GPU {}", g.test_accuracy);
    }
}

#[test]
fn same_seed_gives_the_same_bits_on_cpu() {
    let a = run("iris", "cpu", 5);
    let b = run("iris", "cpu", 5);
    assert_eq!(a.test_loss.to_bits(), b.test_loss.to_bits());
}

/// CPU results do not depend on the thread count: the same training under 1, 2 and 3 CPU
/// threads ends with the same test loss, bit for bit.
#[test]
fn cpu_training_is_bitwise_identical_for_any_thread_count() {
    let losses: Vec<String> = ["1", "2", "3"]
        .iter()
        .map(|threads| {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
                .args([
                    "train",
                    "--data",
                    "digits",
                    "--epochs",
                    "3",
                    "--batch-size",
                    "200",
                    "--device",
                    "cpu",
                    "--json",
                ])
                .env("KILN_NUM_THREADS", threads)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let stdout = String::from_utf8_lossy(&out.stdout);
            let json: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
            assert_eq!(json["adapter"], format!("cpu ({threads} threads)"));
            json["test_loss"].to_string()
        })
        .collect();
    assert!(losses.iter().all(|l| l == &losses[0]), "{losses:?}");
}

/// The same, in process, on a model large enough for every parallel CPU path (split GEMMs,
/// chunked elementwise kernels and optimizer update).
#[test]
fn cpu_kernels_give_the_same_bits_under_1_2_and_3_threads() {
    use kiln::backend::cpu::pool::{Pool, with_pool};
    use kiln::{Activation, CompileOptions, Dense, Device, FitOptions, Loss, Optimizer, Sequential, Tensor};
    use std::sync::Arc;
    let n = 300;
    let mut rng = common::rng(5);
    let x = Tensor::new(&[n, 784], common::uniform(&mut rng, n * 784, 0.0, 1.0)).unwrap();
    let y = Tensor::new(&[n], (0..n).map(|i| (i % 10) as f32).collect()).unwrap();
    let weights: Vec<_> = [1, 2, 3]
        .iter()
        .map(|&threads| {
            with_pool(&Arc::new(Pool::new(threads)), || {
                let mut m = Sequential::new(&[784])
                    .add(Dense::new(256, Activation::Relu))
                    .add(Dense::new(10, Activation::Softmax));
                let opts = CompileOptions::new(
                    Optimizer::adam(1e-3),
                    Loss::SparseCategoricalCrossentropy,
                    Device::Cpu,
                );
                m.compile(opts).unwrap();
                m.fit(&x, &y, &FitOptions { batch_size: 128, epochs: 2, verbose: 0, ..Default::default() })
                    .unwrap();
                m.get_weights().unwrap()
            })
        })
        .collect();
    assert!(weights[0] == weights[1] && weights[1] == weights[2], "weights differ between thread counts");
}

/// `--data PATH.csv` trains on a user's file: a plain numeric CSV with a header and the label
/// in the last column (here the iris measurements, rewritten in that layout).
#[test]
fn a_user_csv_file_trains_through_the_cli_path() {
    let iris = kiln::data::builtin::iris().unwrap();
    let mut csv = String::from("sepal_length,sepal_width,petal_length,petal_width,species\n");
    for i in 0..iris.len() {
        let row: Vec<String> = iris.x.row(i).iter().map(|v| v.to_string()).collect();
        csv += &format!("{},{}\n", row.join(","), iris.y[i]);
    }
    let path = std::env::temp_dir().join(format!("kiln-user-{}.csv", std::process::id()));
    std::fs::write(&path, csv).unwrap();
    let r = run(path.to_str().unwrap(), "cpu", 200);
    assert!(r.test_accuracy >= 0.9, "user CSV test accuracy {}", r.test_accuracy);
    std::fs::remove_file(&path).ok();
}

/// A CSV whose label column holds real numbers is a regression: one linear output, MSE, no
/// accuracy (null in the JSON).
#[test]
fn a_regression_csv_trains_with_mse() {
    let mut csv = String::from("a,b,target\n");
    for i in 0..200 {
        let (a, b) = ((i % 17) as f32 / 17.0, (i % 7) as f32 / 7.0);
        csv += &format!("{a},{b},{}\n", 3.0 * a - 2.0 * b + 0.25);
    }
    let path = std::env::temp_dir().join(format!("kiln-regression-{}.csv", std::process::id()));
    std::fs::write(&path, csv).unwrap();
    let r = run(path.to_str().unwrap(), "cpu", 100);
    assert!(r.test_accuracy.is_nan());
    assert!(r.test_loss < 0.01, "regression test MSE {}", r.test_loss);
    std::fs::remove_file(&path).ok();
}
