//! SGEMM on the CPU: the two GEMM crates side by side (throughput in GFLOP/s = Gelem/s),
//! so the faster one is the one kiln's CPU backend uses. `cargo bench --bench gemm`.
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn data(n: usize, seed: f32) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * 0.37 + seed).sin()).collect()
}

fn sgemm(c: &mut Criterion) {
    let threads = rayon::current_num_threads();
    let mut group = c.benchmark_group("sgemm");
    group.sample_size(10);
    for n in [256usize, 512, 1024] {
        let (a, b) = (data(n * n, 0.0), data(n * n, 1.0));
        let mut out = vec![0.0f32; n * n];
        group.throughput(Throughput::Elements(2 * (n * n * n) as u64));
        group.bench_with_input(BenchmarkId::new("matrixmultiply", n), &n, |bench, &n| {
            bench.iter(|| kiln::backend::cpu::kernels::matmul(n, n, n, false, false, &a, &b, &mut out))
        });
        group.bench_with_input(BenchmarkId::new(format!("gemm-rayon{threads}"), n), &n, |bench, &n| {
            bench.iter(|| {
                // SAFETY: a, b, out are dense row-major n×n matrices.
                unsafe {
                    gemm::gemm(
                        n,
                        n,
                        n,
                        out.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        1,
                        n as isize,
                        b.as_ptr(),
                        1,
                        n as isize,
                        0.0f32,
                        1.0f32,
                        false,
                        false,
                        false,
                        gemm::Parallelism::Rayon(threads),
                    )
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, sgemm);
criterion_main!(benches);
