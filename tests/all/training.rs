//! End to end on real data: the CLI's train path (stratified 80/20 split, standardised
//! features, MLP, Adam) on the CPU and on the GPU adapter (lavapipe in CI).
use kiln::cli::{TrainArgs, train};

use crate::common;

fn run(data: &str, device: &str, epochs: usize) -> kiln::cli::TrainReport {
    let args =
        TrainArgs { data: data.into(), device: device.into(), epochs, json: true, ..TrainArgs::default() };
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
