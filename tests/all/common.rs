//! Helpers shared by the integration tests.
use kiln::backend::gpu::GpuBackend;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The GPU backend on the default adapter, or None (with a skip line) when there is none.
/// Panics instead when `KILN_REQUIRE_GPU=1`: CI must never skip GPU tests silently.
pub fn gpu() -> Option<GpuBackend> {
    match GpuBackend::new(None) {
        Ok(g) => Some(g),
        Err(e) if std::env::var("KILN_REQUIRE_GPU").is_ok_and(|v| v == "1") => {
            panic!("KILN_REQUIRE_GPU=1 but no GPU backend: {e}")
        }
        Err(e) => {
            eprintln!("skipping GPU test: {e}");
            None
        }
    }
}

/// Devices to run model tests on: the CPU, and the GPU (required under KILN_REQUIRE_GPU).
pub fn devices() -> Vec<kiln::Device> {
    let mut d = vec![kiln::Device::Cpu];
    if gpu().is_some() {
        d.push(kiln::Device::Gpu(None));
    }
    d
}

/// A Dense(units, act) model on 4 inputs (seed 5) compiled for SGD with `loss` and `metrics`.
pub fn dense_model(
    units: usize,
    act: kiln::Activation,
    loss: kiln::Loss,
    metrics: &[kiln::Metric],
    device: kiln::Device,
) -> kiln::Sequential {
    let mut m = kiln::Sequential::new(&[4]).with_seed(5).add(kiln::Dense::new(units, act));
    let mut c = kiln::CompileOptions::new(kiln::Optimizer::sgd(0.1), loss, device);
    c.metrics = metrics.to_vec();
    m.compile(c).expect("compile");
    m
}

/// A seeded RNG: the same data on every run.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// `n` uniform values in [lo, hi).
pub fn uniform(rng: &mut ChaCha8Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// A fresh, empty directory under the system temp dir, unique to this process and `name`;
/// removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("kiln-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The digits, standardised: x `[1797, 64]`, y `[1797]`.
pub fn digits() -> (kiln::Tensor, kiln::Tensor) {
    let d = kiln::data::builtin::digits().unwrap();
    let mut x = d.x.clone();
    kiln::data::Scaler::fit(&x, kiln::data::Scaling::Standardize).apply(&mut x).unwrap();
    (kiln::Tensor::new(&[d.len(), 64], x.data).unwrap(), kiln::Tensor::new(&[d.len()], d.y.clone()).unwrap())
}

/// Fit `cpu` and `gpu` (the same seeded model on each backend) on (x, y) for `epochs` full-batch
/// epochs without shuffling, then assert every weight agrees to 1e-4 relative
/// (|c − g| / (|c| + 1e-3)); `what` starts the failure message.
pub fn fit_both_and_compare(
    cpu: &mut kiln::Model,
    gpu: &mut kiln::Model,
    x: &kiln::Tensor,
    y: &kiln::Tensor,
    epochs: usize,
    what: &str,
) {
    let opts =
        kiln::FitOptions { batch_size: x.rows(), epochs, verbose: 0, shuffle: false, ..Default::default() };
    cpu.fit(x, y, &opts).unwrap();
    gpu.fit(x, y, &opts).unwrap();
    for ((name, c), (_, g)) in cpu.get_weights().unwrap().iter().zip(&gpu.get_weights().unwrap()) {
        let worst =
            c.data.iter().zip(&g.data).map(|(a, b)| (a - b).abs() / (a.abs() + 1e-3)).fold(0.0, f32::max);
        assert!(worst < 1e-4, "{what}{name} differs by {worst:e} (relative)");
    }
}

/// `text` written to `name` in this process's directory for the test area `area` (kept, so a
/// failing test's files can be read).
pub fn temp_file(area: &str, name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-{area}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}
