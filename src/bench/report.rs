//! The bench report: one row per (device, workload, size), printed as a table or as JSON.
use serde_json::{Value, json};

/// A device the bench ran on (or could not open: `error`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceInfo {
    /// The flag spelling: cpu, gpu:N.
    pub device: String,
    /// "cpu (N threads) (simd)", or the adapter's name.
    pub name: String,
    /// "cpu", or the wgpu backend: "Vulkan", "Metal", "Dx12", "Gl".
    pub backend: String,
    /// "Cpu" for the CPU backend, else the adapter's type ("DiscreteGpu", "Cpu", ...).
    pub device_type: String,
    /// The adapter has timestamp queries (`gpu_seconds` of its rows come from them).
    pub timestamps: bool,
    /// Why the device could not be opened.
    pub error: Option<String>,
}

/// One measurement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BenchResult {
    /// The device's flag spelling (cpu, gpu:N).
    pub device: String,
    /// One of [`super::WORKLOADS`].
    pub workload: String,
    /// Shapes: MxKxN for matmul, the input and filters for conv2d, the batch for models.
    pub size: String,
    /// Median wall-clock seconds per run: one kernel launch (matmul, conv2d), one training
    /// step or one inference batch. On a GPU: from submit to the end of the wait.
    pub seconds: Option<f64>,
    /// Median GPU seconds per run from timestamp queries (GPU kernels, where supported).
    pub gpu_seconds: Option<f64>,
    /// Timed repetitions (the median is over these).
    pub runs: usize,
    /// Kernel launches (or training steps, inference batches) per timed repetition.
    pub launches_per_run: usize,
    /// Kernel throughput from `seconds`.
    pub gflops: Option<f64>,
    /// Model throughput from `seconds`.
    pub samples_per_sec: Option<f64>,
    /// This row's throughput ÷ the CPU's for the same workload and size.
    pub ratio_to_cpu: Option<f64>,
    /// Largest relative difference from the reference (the CPU's output; for the CPU's own
    /// matmul, f64 dot products at sampled entries). None: not checked (the CPU reference
    /// itself, or a model workload).
    pub max_error: Option<f64>,
    /// Why this measurement failed (a check against the CPU, or an error of the device).
    pub error: Option<String>,
    /// Why the device did not run this workload: it refused to compile the program (e.g. a
    /// size beyond its limits). Not a failure.
    pub not_run: Option<String>,
}

impl BenchResult {
    /// An empty row for `device`, `workload` and `size`.
    pub fn new(device: &str, workload: &str, size: &str) -> BenchResult {
        BenchResult {
            device: device.into(),
            workload: workload.into(),
            size: size.into(),
            ..Default::default()
        }
    }

    /// Throughput with its unit.
    fn rate(&self) -> String {
        match (self.gflops, self.samples_per_sec) {
            (Some(g), _) => format!("{g:.2} GFLOP/s"),
            (_, Some(s)) => format!("{s:.0} samples/s"),
            _ => "-".into(),
        }
    }

    /// What the check against the reference found.
    fn check(&self) -> String {
        match (&self.error, self.max_error) {
            (Some(_), _) => "FAILED".into(),
            (None, _) if self.not_run.is_some() => "not run".into(),
            (None, Some(e)) => format!("ok, err {e:.0e}"),
            (None, None) if self.gflops.is_some() => "reference".into(),
            (None, None) => "-".into(),
        }
    }

    /// One line for progress output.
    pub fn progress_line(&self) -> String {
        let head = format!("{} {} {}", self.device, self.workload, self.size);
        match (&self.error, &self.not_run) {
            (Some(e), _) => format!("{head}: error: {e}"),
            (None, Some(why)) => format!("{head}: not run: {why}"),
            (None, None) => format!(
                "{head}: {} per run, {} (median of {} repetitions of {} runs each)",
                human_seconds(self.seconds),
                self.rate(),
                self.runs,
                self.launches_per_run.max(1)
            ),
        }
    }
}

/// What `kiln bench` measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BenchReport {
    /// The CPU first, then the adapters.
    pub devices: Vec<DeviceInfo>,
    pub results: Vec<BenchResult>,
    /// Run with `--full`.
    pub full: bool,
    /// Wall-clock seconds of the whole bench.
    pub seconds: f64,
}

/// `1.23 s`, `12.3 ms`, `123 µs`, or `-`.
fn human_seconds(s: Option<f64>) -> String {
    match s {
        Some(s) if s >= 1.0 => format!("{s:.2} s"),
        Some(s) if s >= 1e-3 => format!("{:.2} ms", s * 1e3),
        Some(s) => format!("{:.1} µs", s * 1e6),
        None => "-".into(),
    }
}

impl BenchReport {
    /// Rows and devices that failed, as `device workload size: error` lines.
    pub fn failures(&self) -> Vec<String> {
        let devices =
            self.devices.iter().filter_map(|d| d.error.as_ref().map(|e| format!("{}: {e}", d.device)));
        let rows = self
            .results
            .iter()
            .filter_map(|r| r.error.as_ref().map(|e| format!("{} {} {}: {e}", r.device, r.workload, r.size)));
        devices.chain(rows).collect()
    }

    /// Set every row's ratio to the CPU's throughput on the same workload and size.
    pub(super) fn fill_ratios(&mut self) {
        let rate = |r: &BenchResult| r.gflops.or(r.samples_per_sec);
        let cpu: Vec<(String, String, f64)> = self
            .results
            .iter()
            .filter(|r| r.device == "cpu")
            .filter_map(|r| rate(r).map(|v| (r.workload.clone(), r.size.clone(), v)))
            .collect();
        for r in &mut self.results {
            let base = cpu.iter().find(|(w, s, _)| *w == r.workload && *s == r.size).map(|c| c.2);
            r.ratio_to_cpu = rate(r).zip(base).map(|(v, b)| v / b);
        }
    }

    /// The report as a table, devices first, failures last.
    pub fn table(&self) -> String {
        let mode = if self.full { " --full" } else { "" };
        let mut s = format!("kiln bench{mode}, {:.1} s\n", self.seconds);
        for d in &self.devices {
            let what = match &d.error {
                Some(e) => format!("not usable: {e}"),
                None if d.backend == "cpu" => d.name.clone(),
                None => {
                    let ts = if d.timestamps { ", timestamps" } else { "" };
                    format!("{} ({}, {}{ts})", d.name, d.backend, d.device_type)
                }
            };
            s += &format!("  {:<6} {what}\n", d.device);
        }
        let header = ["device", "workload", "size", "time/run", "gpu time", "rate", "vs cpu", "check"];
        let mut rows: Vec<[String; 8]> = vec![header.map(String::from)];
        for r in &self.results {
            rows.push([
                r.device.clone(),
                r.workload.clone(),
                r.size.clone(),
                human_seconds(r.seconds),
                human_seconds(r.gpu_seconds),
                r.rate(),
                r.ratio_to_cpu.map_or("-".into(), |x| format!("{x:.2}x")),
                r.check(),
            ]);
        }
        let mut widths = [0; 8];
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in &rows {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .enumerate()
                .map(|(i, (c, w))| if (3..7).contains(&i) { format!("{c:>w$}") } else { format!("{c:<w$}") })
                .collect();
            s += &format!("{}\n", cells.join("  ").trim_end());
        }
        s += "time/run: wall-clock median per kernel launch, training step or inference batch (GPU: \
              submit to end of wait); gpu time: timestamp queries; vs cpu: throughput / the CPU's\n";
        for r in &self.results {
            if let Some(why) = &r.not_run {
                s += &format!("not run: {} {} {}: {why}\n", r.device, r.workload, r.size);
            }
        }
        for f in self.failures() {
            s += &format!("FAILED {f}\n");
        }
        s
    }

    /// The report as one JSON document.
    pub fn to_json(&self) -> Value {
        let devices: Vec<Value> = self
            .devices
            .iter()
            .map(|d| {
                json!({
                    "device": d.device, "name": d.name, "backend": d.backend,
                    "device_type": d.device_type, "timestamps": d.timestamps, "error": d.error,
                })
            })
            .collect();
        let results: Vec<Value> = self
            .results
            .iter()
            .map(|r| {
                let d = self.devices.iter().find(|d| d.device == r.device);
                json!({
                    "device": r.device,
                    "adapter": d.map(|d| d.name.clone()),
                    "backend": d.map(|d| d.backend.clone()),
                    "workload": r.workload, "size": r.size,
                    "seconds_per_run": r.seconds, "gpu_seconds_per_run": r.gpu_seconds,
                    "runs": r.runs, "launches_per_run": r.launches_per_run,
                    "gflops": r.gflops, "samples_per_sec": r.samples_per_sec,
                    "ratio_to_cpu": r.ratio_to_cpu, "max_relative_error": r.max_error,
                    "error": r.error, "not_run": r.not_run,
                })
            })
            .collect();
        json!({
            "kiln_version": env!("CARGO_PKG_VERSION"),
            "full": self.full,
            "seconds": self.seconds,
            "devices": devices,
            "results": results,
        })
    }
}
