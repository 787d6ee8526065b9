//! SGEMM on the CPU (GFLOP/s = Gelem/s): kiln's dispatch (`backend::cpu::gemm`) beside the two
//! GEMM crates called directly, so the choice in `gemm.rs` can be re-checked on any machine.
//! Shapes: the MLP 784-128-10 forward product at batch 128, and squares. `cargo bench --bench gemm`.
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn data(n: usize, seed: f32) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * 0.37 + seed).sin()).collect()
}

fn sgemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgemm");
    group.sample_size(10);
    for (m, k, n) in [(128usize, 784usize, 128usize), (256, 256, 256), (512, 512, 512), (1024, 1024, 1024)] {
        let (a, b) = (data(m * k, 0.0), data(k * n, 1.0));
        let mut out = vec![0.0f32; m * n];
        let id = format!("{m}x{k}x{n}");
        group.throughput(Throughput::Elements(2 * (m * k * n) as u64));
        group.bench_with_input(BenchmarkId::new("kiln", &id), &(), |bench, _| {
            bench.iter(|| kiln::backend::cpu::kernels::matmul(m, k, n, false, false, &a, &b, &mut out))
        });
        group.bench_with_input(BenchmarkId::new("matrixmultiply-threaded", &id), &(), |bench, _| {
            // SAFETY: a, b, out are dense row-major matrices of the given shapes.
            bench.iter(|| unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    a.as_ptr(),
                    k as isize,
                    1,
                    b.as_ptr(),
                    n as isize,
                    1,
                    0.0,
                    out.as_mut_ptr(),
                    n as isize,
                    1,
                )
            })
        });
        group.bench_with_input(BenchmarkId::new("gemm-rayon", &id), &(), |bench, _| {
            // SAFETY: as above.
            bench.iter(|| unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    out.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    a.as_ptr(),
                    1,
                    k as isize,
                    b.as_ptr(),
                    1,
                    n as isize,
                    0.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    gemm::Parallelism::Rayon(0),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, sgemm);
criterion_main!(benches);
