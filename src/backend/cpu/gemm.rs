//! The CPU GEMM: which crate runs a product of a given shape on this machine.
//!
//! Measured here (2-core Zen4-class EPYC, AVX-512 double-pumped; `examples/` were ad hoc, the
//! bench is `benches/gemm.rs`): `gemm` wins on the small and mid-size products a training step
//! is made of (128×784×128: ~1.0–1.7× `matrixmultiply`; 128×128×10: ~2×) and ties on large
//! squares (1024³: both ~190 GFLOP/s with 2 threads). On Zen5, where AVX-512 runs at full
//! width, `matrixmultiply`'s runtime-detected AVX-512 kernels reach 320–365 GFLOP/s at 1024³
//! against `gemm`'s 224–236 (stable `gemm` has no AVX-512 path). So: large products go to
//! `matrixmultiply` when the CPU has AVX-512, everything else to `gemm`.
//!
//! Both crates split the work over output blocks only and keep the K loop whole, so results do
//! not depend on the thread count (a test checks this for `gemm`).

/// (row stride, column stride) of a matrix, in elements.
pub type Strides = (isize, isize);

/// Products with fewer multiply-adds than this run on one thread.
const PARALLEL_MIN_MACS: usize = 1 << 18;
/// Products with at least this many multiply-adds may go to `matrixmultiply` (AVX-512).
const LARGE_MACS: usize = 1 << 24;

#[allow(clippy::too_many_arguments)]
fn check(m: usize, k: usize, n: usize, a: usize, sa: Strides, b: usize, sb: Strides, c: usize) {
    // Largest index each stride pattern reaches must lie inside its slice: a and b are dense
    // [m,k] / [k,n] matrices read straight or transposed, c is dense [m,n].
    let reach = |rows: usize, cols: usize, s: Strides| {
        if rows == 0 || cols == 0 { 0 } else { (rows - 1) * s.0 as usize + (cols - 1) * s.1 as usize + 1 }
    };
    assert!(reach(m, k, sa) <= a && reach(k, n, sb) <= b && m * n <= c, "gemm operands out of bounds");
}

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

/// A raw pointer that may cross to pool workers: each worker writes a disjoint block of C.
struct SendPtr<T>(*mut T);
impl<T> Clone for SendPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SendPtr<T> {}
// SAFETY: the blocks handed to different workers never overlap (see `blocked`).
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

/// c (+)= a · b through `gemm` on one thread, for raw operands (bounds checked by the caller).
///
/// # Safety
/// `a`, `b` and `c` must cover every index the shapes and strides reach; `c` has row stride
/// `ldc` and column stride 1.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_raw<T: 'static + num_traits::One>(
    m: usize,
    k: usize,
    n: usize,
    a: *const T,
    sa: Strides,
    b: *const T,
    sb: Strides,
    c: *mut T,
    ldc: usize,
    acc: bool,
) {
    // gemm computes dst = alpha·dst + beta·lhs·rhs, reading dst only when `acc`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c,
            1,
            ldc as isize,
            acc,
            a,
            sa.1,
            sa.0,
            b,
            sb.1,
            sb.0,
            T::one(),
            T::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Rows (or columns) per block of C: a function of the shape alone. `gemm`'s summation order
/// can depend on the block's shape (a 44×784×96 block differs in the last bit from the same
/// columns computed within 44×784×256), so blocks must not follow the thread count.
fn block_len(dim: usize) -> usize {
    (dim / 8).next_multiple_of(64).max(64)
}

/// Split C into fixed blocks of rows (or columns when C is wide and short) and run each block
/// as its own single-threaded GEMM on the pool. The blocks depend on the shape only, so the
/// result does not depend on the thread count (a test trains under 1, 2 and 3 threads and
/// compares the bits).
///
/// # Safety
/// As [`gemm_raw`].
#[allow(clippy::too_many_arguments)]
unsafe fn blocked<T: 'static + num_traits::One + Send + Sync>(
    m: usize,
    k: usize,
    n: usize,
    a: *const T,
    sa: Strides,
    b: *const T,
    sb: Strides,
    c: *mut T,
    acc: bool,
) {
    // SAFETY: forwarded from the caller.
    super::pool::with_current(|pool| unsafe { blocked_on(pool, m, k, n, a, sa, b, sb, c, acc) })
}

/// [`blocked`] on a given pool.
///
/// # Safety
/// As [`gemm_raw`].
#[allow(clippy::too_many_arguments)]
unsafe fn blocked_on<T: 'static + num_traits::One + Send + Sync>(
    pool: &super::pool::Pool,
    m: usize,
    k: usize,
    n: usize,
    a: *const T,
    sa: Strides,
    b: *const T,
    sb: Strides,
    c: *mut T,
    acc: bool,
) {
    // Decided by the shape alone (not the thread count), like the blocks themselves.
    if m * k * n < PARALLEL_MIN_MACS {
        // SAFETY: forwarded from the caller.
        unsafe { gemm_raw(m, k, n, a, sa, b, sb, c, n, acc) };
        return;
    }
    let by_rows = m >= n;
    let dim = if by_rows { m } else { n };
    let block = block_len(dim);
    let (a, b, c) = (SendPtr(a as *mut T), SendPtr(b as *mut T), SendPtr(c));
    pool.run(dim.div_ceil(block), &|i| {
        let (start, len) = (i * block, block.min(dim - i * block));
        let (a, b, c) = (a, b, c);
        // SAFETY: block i covers rows (or columns) start..start+len of C, disjoint from every
        // other block; its A rows / B columns are a sub-range of the caller's operands.
        unsafe {
            if by_rows {
                let a_off = a.0.offset(start as isize * sa.0);
                gemm_raw(len, k, n, a_off, sa, b.0, sb, c.0.add(start * n), n, acc);
            } else {
                let b_off = b.0.offset(start as isize * sb.1);
                gemm_raw(m, k, len, a.0, sa, b_off, sb, c.0.add(start), n, acc);
            }
        }
    });
}

/// c (+)= a · b in f32.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    sa: Strides,
    b: &[f32],
    sb: Strides,
    c: &mut [f32],
    acc: bool,
) {
    check(m, k, n, a.len(), sa, b.len(), sb, c.len());
    if m * k * n >= LARGE_MACS && avx512() {
        let beta = if acc { 1.0 } else { 0.0 };
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
        return;
    }
    // SAFETY: `check` bounds every index the strides reach.
    unsafe { blocked(m, k, n, a.as_ptr(), sa, b.as_ptr(), sb, c.as_mut_ptr(), acc) }
}

/// c (+)= a · b in f64 (gradient checks).
#[allow(clippy::too_many_arguments)]
pub fn dgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f64],
    sa: Strides,
    b: &[f64],
    sb: Strides,
    c: &mut [f64],
    acc: bool,
) {
    check(m, k, n, a.len(), sa, b.len(), sb, c.len());
    // SAFETY: `check` bounds every index the strides reach.
    unsafe { blocked(m, k, n, a.as_ptr(), sa, b.as_ptr(), sb, c.as_mut_ptr(), acc) }
}
