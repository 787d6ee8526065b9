//! The CPU GEMM: which crate runs a product of a given shape on this machine, and how it is
//! split over the CPU pool.
//!
//! Measured here (2-core Zen4-class EPYC, AVX-512 double-pumped; `benches/gemm.rs`): `gemm`
//! wins on the small and mid-size products a training step is made of (128×784×128: ~1.0–1.7×
//! `matrixmultiply`; 128×128×10: ~2×) and ties on large squares (1024³: both ~190 GFLOP/s with
//! 2 threads). On Zen5, where AVX-512 runs at full width, `matrixmultiply`'s runtime-detected
//! AVX-512 kernels reach 320–365 GFLOP/s at 1024³ against `gemm`'s 224–236 (stable `gemm` has
//! no AVX-512 path). So: products of 1024³ and more go to `matrixmultiply` when the CPU has
//! AVX-512, everything else to `gemm`, split into blocks of C on the pool.
//!
//! Determinism: `matrixmultiply` splits over output blocks with the K loop whole; the `gemm`
//! blocks below depend on the shape alone. Results do not depend on the thread count (tested).
use num_traits::{Num, One};

use super::pool::{self, Pool};

/// (row stride, column stride) of a matrix, in elements.
pub type Strides = (isize, isize);

/// Work applied to finished rows of C, given the first row's index and whole rows (n elements
/// each): a Dense/Conv layer's bias and activation, run on each block of rows right after the
/// block's product, while it is still in cache.
pub type Epilogue<'a, T> = &'a (dyn Fn(usize, &mut [T]) + Sync);

/// Products with fewer multiply-adds than this run as one block (one thread).
const PARALLEL_MIN_MACS: usize = 1 << 18;
/// Products with at least this many multiply-adds (1024³) go to `matrixmultiply` on AVX-512
/// CPUs, where its full-width kernels pay off; below, its threading splits too coarsely
/// (256³: ~95 GFLOP/s against ~200 for the blocks below, measured here).
const LARGE_MACS: usize = 1 << 30;

/// One product `c[m,n] (+)= a·b`: a is read as `[m,k]` and b as `[k,n]` through their strides
/// (transposes are strides); c is dense row-major. `acc` adds onto c instead of overwriting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gemm {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub sa: Strides,
    pub sb: Strides,
    pub acc: bool,
}

impl Gemm {
    fn macs(&self) -> usize {
        self.m * self.k * self.n
    }

    /// Panics unless every index the strides reach lies inside the slices (an internal bug:
    /// the planner sizes every buffer from the same shapes).
    fn check(&self, a: usize, b: usize, c: usize) {
        let reach = |rows: usize, cols: usize, s: Strides| {
            if rows == 0 || cols == 0 { 0 } else { (rows - 1) * s.0 as usize + (cols - 1) * s.1 as usize + 1 }
        };
        let ok = reach(self.m, self.k, self.sa) <= a
            && reach(self.k, self.n, self.sb) <= b
            && self.m * self.n <= c;
        assert!(ok, "gemm operands out of bounds: {self:?}");
    }

    /// One block on the calling thread through `gemm`, c with row stride `ldc`.
    ///
    /// # Safety
    /// `a`, `b`, `c` must cover every index this shape and these strides reach.
    unsafe fn run_block<T: 'static + One>(&self, a: *const T, b: *const T, c: *mut T, ldc: usize) {
        let (m, k, n) = (self.m, self.k, self.n);
        // gemm computes dst = alpha·dst + beta·lhs·rhs, reading dst only when `acc`; its
        // strides are (column, row).
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c,
                1,
                ldc as isize,
                self.acc,
                a,
                self.sa.1,
                self.sa.0,
                b,
                self.sb.1,
                self.sb.0,
                T::one(),
                T::one(),
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }

    /// Split C into fixed blocks of rows (or columns when C is wide and short), each its own
    /// single-threaded GEMM, run on `pool`.
    ///
    /// # Safety
    /// As [`Gemm::run_block`].
    unsafe fn run_blocked<T: 'static + Num + Copy + Send + Sync>(
        &self,
        pool: &Pool,
        a: *const T,
        b: *const T,
        c: *mut T,
        epi: Option<Epilogue<T>>,
    ) {
        let (m, n) = (self.m, self.n);
        // The epilogue over all of C at once, split into row chunks on the pool.
        let whole = |c: *mut T| {
            if let Some(epi) = epi {
                // At most one chunk per thread's share, so that a heavy epilogue (an LSTM
                // cell's gate math) runs on every thread; rows are independent, so the chunking
                // never changes the results.
                let rows = (PARALLEL_MIN_MACS / 16 / n.max(1)).min(m.div_ceil(pool.threads())).max(1);
                let c = SendPtr(c);
                pool.run(m.div_ceil(rows), &|i| {
                    let (start, len) = (i * rows, rows.min(m - i * rows));
                    // SAFETY: chunk i covers rows start..start+len of C (m·n elements, the
                    // caller's contract), disjoint from the other chunks.
                    epi(start, unsafe { std::slice::from_raw_parts_mut(c.get().add(start * n), len * n) });
                });
            }
        };
        // Decided by the shape alone (never the thread count), like the blocks themselves.
        if self.macs() < PARALLEL_MIN_MACS {
            // SAFETY: forwarded from the caller.
            unsafe { self.run_block(a, b, c, self.n) };
            return whole(c);
        }
        let by_rows = self.m >= self.n;
        let dim = if by_rows { self.m } else { self.n };
        let block = block_len(dim);
        if dim.div_ceil(block) == 1 && self.k >= SPLIT_K_MIN {
            // SAFETY: forwarded from the caller.
            unsafe { self.run_split_k(pool, a, b, c) };
            return whole(c);
        }
        let (a, b, c) = (SendPtr(a as *mut T), SendPtr(b as *mut T), SendPtr(c));
        pool.run(dim.div_ceil(block), &|i| {
            let (start, len) = (i * block, block.min(dim - i * block));
            let (a, b, c) = (a, b, c);
            // SAFETY: block i covers rows (or columns) start..start+len of C, disjoint from
            // every other block; its rows of A / columns of B lie inside the caller's operands.
            unsafe {
                if by_rows {
                    let part = Gemm { m: len, ..*self };
                    part.run_block(
                        a.0.offset(start as isize * self.sa.0),
                        b.0,
                        c.0.add(start * self.n),
                        self.n,
                    );
                    if let Some(epi) = epi {
                        epi(start, std::slice::from_raw_parts_mut(c.0.add(start * self.n), len * self.n));
                    }
                } else {
                    let part = Gemm { n: len, ..*self };
                    part.run_block(a.0, b.0.offset(start as isize * self.sb.1), c.0.add(start), self.n);
                }
            }
        });
        if !by_rows {
            whole(c.0);
        }
    }
}

impl Gemm {
    /// A small C over a long K (a convolution's filter gradient: 9×86528×32 for a 3×3 filter
    /// on grey 28×28 images at batch 128) would be one block on one thread: split K into
    /// fixed chunks (by the shape alone), compute each chunk's product on the pool, then add
    /// the partial products in chunk order — the same bits for any thread count.
    ///
    /// # Safety
    /// As [`Gemm::run_block`].
    unsafe fn run_split_k<T: 'static + Num + Copy + Send + Sync>(
        &self,
        pool: &Pool,
        a: *const T,
        b: *const T,
        c: *mut T,
    ) {
        let (m, n, k) = (self.m, self.n, self.k);
        let chunk = (k / 8).next_multiple_of(256).max(SPLIT_K_MIN / 4);
        let chunks = k.div_ceil(chunk);
        let mut partial = vec![T::zero(); chunks * m * n];
        let p = SendPtr(partial.as_mut_ptr());
        let (a, b) = (SendPtr(a as *mut T), SendPtr(b as *mut T));
        pool.run(chunks, &|i| {
            let (start, len) = (i * chunk, chunk.min(k - i * chunk));
            let (a, b, p) = (a, b, p);
            let part = Gemm { k: len, acc: false, ..*self };
            // SAFETY: chunk i reads columns start..start+len of A and rows of B inside the
            // caller's operands, and writes its own m×n slice of `partial`.
            unsafe {
                part.run_block(
                    a.0.offset(start as isize * self.sa.1),
                    b.0.offset(start as isize * self.sb.0),
                    p.0.add(i * m * n),
                    n,
                )
            };
        });
        // SAFETY: c covers m·n elements (the caller's contract).
        let c = unsafe { std::slice::from_raw_parts_mut(c, m * n) };
        if !self.acc {
            c.fill(T::zero());
        }
        for part in partial.chunks_exact(m * n) {
            c.iter_mut().zip(part).for_each(|(o, &v)| *o = *o + v);
        }
    }
}

/// Products whose C is one block split K from this length on.
const SPLIT_K_MIN: usize = 8192;

/// Rows (or columns) per block of C: a function of the shape alone. `gemm`'s summation order
/// can depend on the block's shape (a 44×784×96 block differs in the last bit from the same
/// columns computed within 44×784×256), so blocks must not follow the thread count.
///
/// About four blocks per dimension up to 1024 (measured here on 2 threads, GFLOP/s at 256³ /
/// 512³ / 2048³: eight blocks 183 / 185 / 190, two 159 / 166 / 142, four 199 / 205 / 194),
/// then 256-wide blocks so that larger machines get more blocks than threads.
fn block_len(dim: usize) -> usize {
    (dim / 4).next_multiple_of(16).clamp(32, 256)
}

/// A raw pointer that may cross to pool workers: each worker writes a disjoint block of C.
struct SendPtr<T>(*mut T);
impl<T> Clone for SendPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SendPtr<T> {}
impl<T> SendPtr<T> {
    /// The pointer (a method, so closures capture the whole `SendPtr`, which is `Sync`).
    fn get(self) -> *mut T {
        self.0
    }
}
// SAFETY: the blocks handed to different workers never overlap (see `run_blocked`).
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// c (+)= a · b in f32, then `epi` over C's rows.
pub fn sgemm(g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32], epi: Option<Epilogue<f32>>) {
    g.check(a.len(), b.len(), c.len());
    if g.macs() >= LARGE_MACS && avx512() {
        let beta = if g.acc { 1.0 } else { 0.0 };
        let (m, k, n, sa, sb) = (g.m, g.k, g.n, g.sa, g.sb);
        // SAFETY: `check` bounds every index the strides reach.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                sa.0,
                sa.1,
                b.as_ptr(),
                sb.0,
                sb.1,
                beta,
                c.as_mut_ptr(),
                n as isize,
                1,
            );
        }
        if let Some(epi) = epi {
            let n = g.n.max(1);
            let rows = (PARALLEL_MIN_MACS / 16 / n).max(1);
            let shared = pool::SharedMut::new(c);
            pool::ranges(g.m, rows, |r| {
                // SAFETY: `ranges` hands out disjoint row ranges.
                epi(r.start, unsafe { shared.range(r.start * n..r.end * n) })
            });
        }
        return;
    }
    // SAFETY: `check` bounds every index the strides reach.
    pool::with_current(|p| unsafe { g.run_blocked(p, a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), epi) })
}

/// c (+)= a · b in f64 (gradient checks), then `epi` over C's rows.
pub fn dgemm(g: &Gemm, a: &[f64], b: &[f64], c: &mut [f64], epi: Option<Epilogue<f64>>) {
    g.check(a.len(), b.len(), c.len());
    // SAFETY: `check` bounds every index the strides reach.
    pool::with_current(|p| unsafe { g.run_blocked(p, a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), epi) })
}
