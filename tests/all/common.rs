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

/// A seeded RNG: the same data on every run.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// `n` uniform values in [lo, hi).
pub fn uniform(rng: &mut ChaCha8Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}
