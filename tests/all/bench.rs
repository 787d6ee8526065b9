//! `kiln bench` with tiny sizes: every workload on the CPU and on the GPU, positive finite
//! timings, GPU kernels checked against the CPU, and a wrong result caught by the check.
use kiln::bench::{BenchArgs, BenchReport, TOLERANCE, WORKLOADS, check_close, run};

use crate::common::gpu;

/// Sizes small enough for lavapipe in a test; the GPU when there is one (with
/// KILN_REQUIRE_GPU=1 a missing adapter fails the test), else the CPU alone.
fn tiny_bench() -> (BenchReport, bool) {
    let device = gpu().map_or("cpu".to_string(), |g| format!("gpu:{}", g.info().index));
    let args = BenchArgs {
        device: Some(device.clone()),
        matmul: vec!["16x24x8".into(), "33".into()],
        conv_batch: Some(1),
        batch: Some(8),
        steps: Some(1),
        reps: Some(2),
        ..BenchArgs::default()
    };
    (run(&args).expect("bench runs"), device != "cpu")
}

#[test]
fn bench_times_every_workload_on_cpu_and_gpu_and_checks_gpu_kernels() {
    let (report, with_gpu) = tiny_bench();
    assert!(report.failures().is_empty(), "failures: {:?}", report.failures());
    let not_run: Vec<_> = report.results.iter().filter(|r| r.not_run.is_some()).collect();
    assert!(not_run.is_empty(), "{not_run:?}");
    let devices: Vec<&str> = report.devices.iter().map(|d| d.device.as_str()).collect();
    assert_eq!(devices[0], "cpu", "the CPU runs first, as the reference");
    assert_eq!(devices.len(), 1 + usize::from(with_gpu), "{devices:?}");
    if with_gpu {
        let d = &report.devices[1];
        assert!(!d.name.is_empty() && !d.backend.is_empty(), "{d:?}");
    }
    for device in &devices {
        for workload in WORKLOADS {
            let rows: Vec<_> =
                report.results.iter().filter(|r| r.device == *device && r.workload == workload).collect();
            let expected = if workload == "matmul" { 2 } else { 1 };
            assert_eq!(rows.len(), expected, "{device} {workload}: {rows:?}");
            for r in rows {
                let seconds = r.seconds.expect("timed");
                assert!(seconds.is_finite() && seconds > 0.0, "{r:?}");
                let rate = r.gflops.or(r.samples_per_sec).expect("a throughput");
                assert!(rate.is_finite() && rate > 0.0, "{r:?}");
                let ratio = r.ratio_to_cpu.expect("a ratio to the CPU");
                assert!(ratio.is_finite() && ratio > 0.0, "{r:?}");
                if *device == "cpu" {
                    assert!((ratio - 1.0).abs() < 1e-12, "{r:?}");
                }
                let kernel = ["matmul", "conv2d fwd", "conv2d bwd"].contains(&workload);
                let timestamps = report.devices.iter().any(|d| d.device == *device && d.timestamps);
                if kernel && timestamps {
                    // The pass runs between submit and the end of the wait.
                    let g = r.gpu_seconds.expect("timestamp queries on this adapter");
                    assert!(g.is_finite() && g > 0.0 && g <= 1.1 * seconds, "timestamp time {r:?}");
                }
                if kernel && (*device != "cpu" || workload == "matmul") {
                    let err = r.max_error.expect("checked before timing");
                    assert!(err <= TOLERANCE, "{r:?}");
                }
            }
        }
    }
    let table = report.table();
    for needle in WORKLOADS.iter().chain(&["vs cpu", "GFLOP/s", "samples/s", "16x24x8", "33x33x33"]) {
        assert!(table.contains(needle), "table lacks {needle}:\n{table}");
    }
    let json = report.to_json();
    let results = json["results"].as_array().expect("results list");
    assert_eq!(results.len(), report.results.len());
    for r in results {
        for key in ["device", "adapter", "backend", "workload", "size", "seconds_per_run", "ratio_to_cpu"] {
            assert!(!r[key].is_null(), "{key} missing in {r}");
        }
    }
    assert_eq!(json["devices"].as_array().map(Vec::len), Some(devices.len()));
}

#[test]
fn check_catches_a_wrong_element_and_accepts_f32_rounding() {
    let want: Vec<f32> = (0..100).map(|i| (i as f32 * 0.7).sin() * 10.0).collect();
    // f32 rounding of a long sum: a few ulps off everywhere.
    let close: Vec<f32> = want.iter().map(|v| v * (1.0 + 3e-7)).collect();
    let err = check_close("gpu:0 matmul", &close, &want, TOLERANCE).expect("rounding is accepted");
    assert!(err < 1e-5, "{err}");
    // One element 1% off: caught, and the message names the element and both values.
    let mut wrong = want.clone();
    wrong[37] *= 1.01;
    let e = check_close("gpu:0 matmul 512x512x512", &wrong, &want, TOLERANCE).unwrap_err().to_string();
    assert!(e.contains("gpu:0 matmul 512x512x512") && e.contains("element 37"), "{e}");
    // An entry that cancels to ~0 is judged against the typical magnitude, not its own.
    let mut tiny = want.clone();
    tiny[0] = 1e-6;
    let mut tiny_got = tiny.clone();
    tiny_got[0] = 2e-6;
    assert!(check_close("cancellation", &tiny_got, &tiny, TOLERANCE).is_ok());
    // NaN, infinity and a wrong length are failures too.
    let mut nan = want.clone();
    nan[5] = f32::NAN;
    assert!(check_close("nan", &nan, &want, TOLERANCE).unwrap_err().to_string().contains("element 5"));
    let mut inf = want.clone();
    inf[6] = f32::INFINITY;
    assert!(check_close("inf", &inf, &want, TOLERANCE).is_err());
    let e = check_close("short", &want[..99], &want, TOLERANCE).unwrap_err().to_string();
    assert!(e.contains("99 elements") && e.contains("100"), "{e}");
}

#[test]
fn bench_arguments_are_checked_before_any_work() {
    let err = |args: BenchArgs| run(&args).unwrap_err().to_string();
    let e = err(BenchArgs { matmul: vec!["12x0x4".into()], ..BenchArgs::default() });
    assert!(e.contains("--matmul") && e.contains("12x0x4"), "{e}");
    let e = err(BenchArgs { only: vec!["attention".into()], ..BenchArgs::default() });
    assert!(e.contains("attention"), "{e}");
    let e = err(BenchArgs { device: Some("tpu".into()), ..BenchArgs::default() });
    assert!(e.contains("tpu"), "{e}");
    let e =
        err(BenchArgs { device: Some("gpu:99".into()), only: vec!["matmul".into()], ..BenchArgs::default() });
    assert!(e.contains("99"), "{e}");
    let e = err(BenchArgs { reps: Some(0), ..BenchArgs::default() });
    assert!(e.contains("--reps"), "{e}");
}

#[test]
fn kiln_bench_json_is_one_document_on_stdout() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "bench", "--device", "cpu", "--only", "matmul", "--matmul", "8,4x5x6", "--reps", "1", "--json",
        ])
        .output()
        .expect("runs kiln");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let results = doc["results"].as_array().expect("results");
    assert_eq!(results.len(), 2);
    assert_eq!(results[1]["size"], "4x5x6");
    assert!(results[0]["gflops"].as_f64().is_some_and(|g| g > 0.0), "{doc}");
}

#[test]
fn a_size_the_device_refuses_is_reported_as_not_run_rather_than_failed() {
    let Some(g) = gpu() else { return };
    let llvmpipe = g.info().name.contains("llvmpipe");
    // K = 1,500,000: even split over K (at most 512 chunks) each chunk loops past llvmpipe's
    // 65,535-iteration limit, which kiln refuses at compile.
    let args = BenchArgs {
        device: Some(format!("gpu:{}", g.info().index)),
        matmul: vec!["1x1500000x4".into()],
        only: vec!["matmul".into()],
        reps: Some(1),
        ..BenchArgs::default()
    };
    let report = run(&args).expect("bench runs");
    assert!(report.failures().is_empty(), "{:?}", report.failures());
    let gpu_row = report.results.iter().find(|r| r.device != "cpu").expect("a GPU row");
    if llvmpipe {
        let why = gpu_row.not_run.as_deref().expect("refused on llvmpipe");
        assert!(why.contains("65535"), "{why}");
        assert!(gpu_row.seconds.is_none() && gpu_row.ratio_to_cpu.is_none(), "{gpu_row:?}");
        assert!(report.table().contains("not run"), "{}", report.table());
    } else {
        assert!(gpu_row.seconds.is_some(), "{gpu_row:?}");
    }
}
