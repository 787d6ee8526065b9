//! CPU kernels: the reference semantics of every [`Kernel`](crate::program::Kernel), generic
//! over the float type so gradient checks run in f64. Matmul goes through a GEMM crate (see
//! `gemm.rs`); the rest are plain loops, split into fixed-size chunks over the CPU pool (`pool.rs`) where the
//! elements are independent. Every reduction runs in a fixed order, so results do not depend
//! on the thread count.
use num_traits::Float;

use super::gemm::{Epilogue, Gemm};
use super::pool::{SharedMut, ranges};
use super::weights::RowWeights;
use crate::program::UnaryOp;

/// The float types the CPU backend runs in: f32 (training) and f64 (gradient checks).
pub trait CpuFloat: Float + Send + Sync + std::fmt::Debug + std::iter::Sum + 'static {
    /// The product `g` over these operands (see [`Gemm`]), then `epi` over C's rows.
    fn gemm(g: &Gemm, a: &[Self], b: &[Self], c: &mut [Self], epi: Option<Epilogue<Self>>);
    /// Conversion from f32 (kernel constants).
    fn c(v: f32) -> Self;
    /// tanh over a slice in place (f32: vectorised, see [`super::fastmath`]; f64: libm).
    fn tanh_in_place(v: &mut [Self]);
    /// The logistic sigmoid over a slice in place (f32: vectorised; f64: [`sigmoid`]).
    fn sigmoid_in_place(v: &mut [Self]);
}

impl CpuFloat for f32 {
    fn gemm(g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32], epi: Option<Epilogue<f32>>) {
        super::gemm::sgemm(g, a, b, c, epi)
    }
    fn c(v: f32) -> f32 {
        v
    }
    fn tanh_in_place(v: &mut [f32]) {
        super::fastmath::tanh_in_place(v)
    }
    fn sigmoid_in_place(v: &mut [f32]) {
        super::fastmath::sigmoid_in_place(v)
    }
}

impl CpuFloat for f64 {
    fn gemm(g: &Gemm, a: &[f64], b: &[f64], c: &mut [f64], epi: Option<Epilogue<f64>>) {
        super::gemm::dgemm(g, a, b, c, epi)
    }
    fn c(v: f32) -> f64 {
        v as f64
    }
    fn tanh_in_place(v: &mut [f64]) {
        v.iter_mut().for_each(|x| *x = x.tanh())
    }
    fn sigmoid_in_place(v: &mut [f64]) {
        v.iter_mut().for_each(|x| *x = sigmoid(*x))
    }
}

/// Tensors below this many elements stay on one thread (waking workers costs more than the
/// work); above it elementwise work is split into chunks of [`PAR_CHUNK`] elements.
pub(crate) const PAR_MIN_ELEMS: usize = 1 << 16;
pub(crate) const PAR_CHUNK: usize = 1 << 14;

/// The product op(a)[m,k] · op(b)[k,n] with a stored [m,k] (or [k,m] when `trans_a`) and b
/// stored [k,n] (or [n,k] when `trans_b`), as strides.
fn product(m: usize, k: usize, n: usize, trans_a: bool, trans_b: bool, acc: bool) -> Gemm {
    let sa = if trans_a { (1, m as isize) } else { (k as isize, 1) };
    let sb = if trans_b { (1, k as isize) } else { (n as isize, 1) };
    Gemm { m, k, n, sa, sb, acc }
}

/// `c[m,n] = op(a) · op(b)`; a stored `[m,k]` or `[k,m]` (trans_a), b stored `[k,n]` or `[n,k]` (trans_b).
#[allow(clippy::too_many_arguments)]
pub fn matmul<T: CpuFloat>(
    m: usize,
    k: usize,
    n: usize,
    trans_a: bool,
    trans_b: bool,
    a: &[T],
    b: &[T],
    c: &mut [T],
) {
    T::gemm(&product(m, k, n, trans_a, trans_b, false), a, b, c, None);
}

/// `c[m,n] = op(a) · op(b)` as [`matmul`], then `epi(first_row, rows)` over blocks of C's rows
/// (on the pool's threads, while they are in cache).
#[allow(clippy::too_many_arguments)]
pub fn matmul_then<T: CpuFloat>(
    m: usize,
    k: usize,
    n: usize,
    trans_a: bool,
    trans_b: bool,
    a: &[T],
    b: &[T],
    c: &mut [T],
    epi: super::gemm::Epilogue<T>,
) {
    T::gemm(&product(m, k, n, trans_a, trans_b, false), a, b, c, Some(epi));
}

/// c = act(op(a) · op(b) + bias): the product, then bias and activation on each block of
/// rows of C as soon as it is computed (while it is in cache).
#[allow(clippy::too_many_arguments)]
pub fn matmul_bias_act<T: CpuFloat>(
    m: usize,
    k: usize,
    n: usize,
    trans_a: bool,
    trans_b: bool,
    act: Option<UnaryOp>,
    a: &[T],
    b: &[T],
    bias: &[T],
    c: &mut [T],
) {
    let epilogue = |_: usize, rows: &mut [T]| {
        for row in rows.chunks_exact_mut(n.max(1)) {
            row.iter_mut().zip(bias).for_each(|(v, &bb)| *v = *v + bb);
            if let Some(op) = act {
                unary_slice(op, row);
            }
        }
    };
    T::gemm(&product(m, k, n, trans_a, trans_b, false), a, b, c, Some(&epilogue));
}

/// `y[i,j] = x[i,j] + b[j]`; x, y: `[rows, cols]`, b: `[cols]`.
pub fn bias_add<T: CpuFloat>(cols: usize, x: &[T], b: &[T], y: &mut [T]) {
    let cols = cols.max(1);
    for_rows(cols, y, |i, yr| {
        for ((o, &v), &bb) in yr.iter_mut().zip(&x[i * cols..(i + 1) * cols]).zip(b) {
            *o = v + bb;
        }
    });
}

/// Call `f` over `0..len` in chunks of [`PAR_CHUNK`] elements, in parallel for large `len`.
pub(crate) fn for_chunks(len: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    if len < PAR_MIN_ELEMS { f(0..len) } else { ranges(len, PAR_CHUNK, f) }
}

/// Apply `f` elementwise to (x → y), in parallel chunks for large tensors.
pub(crate) fn map1<T: CpuFloat>(x: &[T], y: &mut [T], f: impl Fn(T) -> T + Sync) {
    let run = |yc: &mut [T], xc: &[T]| yc.iter_mut().zip(xc).for_each(|(o, &v)| *o = f(v));
    if y.len() < PAR_MIN_ELEMS {
        return run(y, x);
    }
    let len = y.len().min(x.len());
    let out = SharedMut::new(y);
    // SAFETY: `ranges` hands out disjoint ranges.
    ranges(len, PAR_CHUNK, |r| run(unsafe { out.range(r.clone()) }, &x[r]));
}

/// Apply `f` elementwise in place.
pub(crate) fn map_in_place<T: CpuFloat>(y: &mut [T], f: impl Fn(T) -> T + Sync) {
    let run = |yc: &mut [T]| yc.iter_mut().for_each(|o| *o = f(*o));
    if y.len() < PAR_MIN_ELEMS {
        return run(y);
    }
    let len = y.len();
    let out = SharedMut::new(y);
    // SAFETY: `ranges` hands out disjoint ranges.
    ranges(len, PAR_CHUNK, |r| run(unsafe { out.range(r) }));
}

/// Apply `f` elementwise to (a, b → y).
pub(crate) fn map2<T: CpuFloat>(a: &[T], b: &[T], y: &mut [T], f: impl Fn(T, T) -> T + Sync) {
    let run = |yc: &mut [T], ac: &[T], bc: &[T]| {
        yc.iter_mut().zip(ac.iter().zip(bc)).for_each(|(o, (&u, &v))| *o = f(u, v))
    };
    if y.len() < PAR_MIN_ELEMS {
        return run(y, a, b);
    }
    let len = y.len().min(a.len()).min(b.len());
    let out = SharedMut::new(y);
    // SAFETY: `ranges` hands out disjoint ranges.
    ranges(len, PAR_CHUNK, |r| run(unsafe { out.range(r.clone()) }, &a[r.clone()], &b[r]));
}

/// Apply `f` elementwise to (a, b, c → y).
pub(crate) fn map3<T: CpuFloat>(a: &[T], b: &[T], c: &[T], y: &mut [T], f: impl Fn(T, T, T) -> T + Sync) {
    let run = |yc: &mut [T], ac: &[T], bc: &[T], cc: &[T]| {
        yc.iter_mut().zip(ac.iter().zip(bc).zip(cc)).for_each(|(o, ((&u, &v), &w))| *o = f(u, v, w))
    };
    if y.len() < PAR_MIN_ELEMS {
        return run(y, a, b, c);
    }
    let len = y.len().min(a.len()).min(b.len()).min(c.len());
    let out = SharedMut::new(y);
    // SAFETY: `ranges` hands out disjoint ranges.
    ranges(len, PAR_CHUNK, |r| run(unsafe { out.range(r.clone()) }, &a[r.clone()], &b[r.clone()], &c[r]));
}

/// y = a + b.
pub fn add<T: CpuFloat>(a: &[T], b: &[T], y: &mut [T]) {
    map2(a, b, y, |u, v| u + v);
}

pub use crate::program::unary::sigmoid;

pub(crate) use super::tables::unary_slice;
pub use super::tables::{binary, binary_grad, unary, unary_grad, unary_in_place};

/// Run `f(row_index, out_row)` over the rows of `out` ([rows, cols]).
pub(crate) fn for_rows<T: CpuFloat>(cols: usize, out: &mut [T], f: impl Fn(usize, &mut [T]) + Sync) {
    let cols = cols.max(1);
    if out.len() < PAR_MIN_ELEMS {
        out.chunks_mut(cols).enumerate().for_each(|(i, r)| f(i, r));
        return;
    }
    // The last row may be partial (dropout's fixed-width rows).
    let len = out.len();
    let rows = len.div_ceil(cols);
    let shared = SharedMut::new(out);
    let rows_per_task = (PAR_CHUNK / cols).max(1);
    ranges(rows, rows_per_task, |rr| {
        for i in rr {
            // SAFETY: each row index is visited once, rows are disjoint.
            f(i, unsafe { shared.range(i * cols..((i + 1) * cols).min(len)) });
        }
    });
}

fn row_max<T: CpuFloat>(r: &[T]) -> T {
    r.iter().fold(T::neg_infinity(), |m, &v| m.max(v))
}

/// Row-wise softmax: x, y: [rows, cols].
pub fn softmax<T: CpuFloat>(cols: usize, x: &[T], y: &mut [T]) {
    for_rows(cols, y, |i, yr| {
        let xr = &x[i * cols..(i + 1) * cols];
        let mx = row_max(xr);
        let mut s = T::zero();
        for (o, &v) in yr.iter_mut().zip(xr) {
            *o = (v - mx).exp();
            s = s + *o;
        }
        yr.iter_mut().for_each(|o| *o = *o / s);
    });
}

/// Row-wise log-softmax: x, y: [rows, cols].
pub fn log_softmax<T: CpuFloat>(cols: usize, x: &[T], y: &mut [T]) {
    for_rows(cols, y, |i, yr| {
        let xr = &x[i * cols..(i + 1) * cols];
        let mx = row_max(xr);
        let lse = xr.iter().map(|&v| (v - mx).exp()).sum::<T>().ln() + mx;
        yr.iter_mut().zip(xr).for_each(|(o, &v)| *o = v - lse);
    });
}

/// dx = y ⊙ (dy − Σ dy·y) per row.
pub fn softmax_grad<T: CpuFloat>(cols: usize, y: &[T], dy: &[T], dx: &mut [T]) {
    for_rows(cols, dx, |i, dr| {
        let (yr, gr) = (&y[i * cols..(i + 1) * cols], &dy[i * cols..(i + 1) * cols]);
        let dot: T = yr.iter().zip(gr).map(|(&a, &b)| a * b).sum();
        dr.iter_mut().zip(yr.iter().zip(gr)).for_each(|(o, (&a, &b))| *o = a * (b - dot));
    });
}

/// dx = dy − exp(y) · Σ dy per row.
pub fn log_softmax_grad<T: CpuFloat>(cols: usize, y: &[T], dy: &[T], dx: &mut [T]) {
    for_rows(cols, dx, |i, dr| {
        let (yr, gr) = (&y[i * cols..(i + 1) * cols], &dy[i * cols..(i + 1) * cols]);
        let s: T = gr.iter().copied().sum();
        dr.iter_mut().zip(yr.iter().zip(gr)).for_each(|(o, (&a, &b))| *o = b - a.exp() * s);
    });
}

/// Totals of `width` per-column accumulators over the `rows` rows of a [rows, cols] input:
/// `add(range, acc)` adds the rows of `range`, in order, to `acc` (zeroed). The rows are cut
/// into parts of a fixed size (by `cols` alone), summed in parallel, and the parts' sums are
/// added in part order — the same bits whatever the thread count.
pub(crate) fn column_totals<T: CpuFloat>(
    rows: usize,
    cols: usize,
    width: usize,
    add: impl Fn(std::ops::Range<usize>, &mut [T]) + Sync,
) -> Vec<T> {
    let per_part = (PAR_CHUNK / cols.max(1)).max(1);
    let parts = rows.div_ceil(per_part);
    let mut partial = vec![T::zero(); parts * width];
    let run = |p: usize, acc: &mut [T]| add(p * per_part..((p + 1) * per_part).min(rows), acc);
    if rows * cols < PAR_MIN_ELEMS {
        partial.chunks_mut(width.max(1)).enumerate().for_each(|(p, acc)| run(p, acc));
    } else {
        let shared = SharedMut::new(&mut partial);
        ranges(parts, 1, |r| {
            // SAFETY: part p writes its own `width` accumulators only.
            r.for_each(|p| run(p, unsafe { shared.range(p * width..(p + 1) * width) }))
        });
    }
    let mut total = vec![T::zero(); width];
    for part in partial.chunks(width.max(1)) {
        total.iter_mut().zip(part).for_each(|(t, &v)| *t = *t + v);
    }
    total
}

/// `y[j] = Σ_i x[i,j]`, in fixed parts of rows added in order (the same bits for any thread
/// count).
pub fn sum_rows<T: CpuFloat>(cols: usize, x: &[T], y: &mut [T]) {
    let totals = column_totals(x.len() / cols.max(1), cols, cols, |r, acc| {
        for xr in x[r.start * cols..r.end * cols].chunks_exact(cols) {
            acc.iter_mut().zip(xr).for_each(|(o, &v)| *o = *o + v);
        }
    });
    y.copy_from_slice(&totals);
}

/// y[i,j] = x[j].
pub fn broadcast_rows<T: CpuFloat>(cols: usize, x: &[T], y: &mut [T]) {
    y.chunks_mut(cols).for_each(|r| r.copy_from_slice(&x[..cols]));
}

/// y[i, :] = table[ids[i], :]. The host rejects ids outside the table; here they are clamped
/// into it, so the kernel never reads out of bounds.
pub fn embedding<T: CpuFloat>(dim: usize, vocab: usize, table: &[T], ids: &[T], y: &mut [T]) {
    for (row, id) in y.chunks_mut(dim.max(1)).zip(ids) {
        let v = id.to_usize().unwrap_or(0).min(vocab.saturating_sub(1));
        row.copy_from_slice(&table[v * dim..(v + 1) * dim]);
    }
}

/// dtable[v, :] = Σ_{i: ids[i] = v} dy[i, :], in i order (the GPU's order too).
pub fn embedding_grad<T: CpuFloat>(dim: usize, vocab: usize, ids: &[T], dy: &[T], dtable: &mut [T]) {
    dtable.fill(T::zero());
    for (i, id) in ids.iter().enumerate() {
        let v = id.to_usize().unwrap_or(0).min(vocab.saturating_sub(1));
        for d in 0..dim {
            dtable[v * dim + d] = dtable[v * dim + d] + dy[i * dim + d];
        }
    }
}

/// y[r, :] = [a[r, :], b[r, :]] (the last axis joined).
pub fn concat_columns<T: CpuFloat>(a_cols: usize, b_cols: usize, a: &[T], b: &[T], y: &mut [T]) {
    for (r, row) in y.chunks_mut(a_cols + b_cols).enumerate() {
        row[..a_cols].copy_from_slice(&a[r * a_cols..(r + 1) * a_cols]);
        row[a_cols..].copy_from_slice(&b[r * b_cols..(r + 1) * b_cols]);
    }
}

/// y[r, c] = x[r, start + c] for c < len (x: [rows, cols]).
pub fn slice_columns<T: CpuFloat>(cols: usize, start: usize, len: usize, x: &[T], y: &mut [T]) {
    for (r, row) in y.chunks_mut(len.max(1)).enumerate() {
        row.copy_from_slice(&x[r * cols + start..r * cols + start + row.len()]);
    }
}

/// y = zeros but row `index`, which is x (y: [rows, cols]).
pub fn place_row<T: CpuFloat>(cols: usize, index: usize, x: &[T], y: &mut [T]) {
    y.fill(T::zero());
    y[index * cols..(index + 1) * cols].copy_from_slice(&x[..cols]);
}

/// Σ_i f(i) over `0..len`, summed in fixed chunks of 4096 combined in order: the same
/// summation tree whatever the thread count.
pub(crate) fn sum_indexed<T: CpuFloat>(len: usize, f: impl Fn(usize) -> T + Sync) -> T {
    const CHUNK: usize = 4096;
    let chunk_sum = |r: std::ops::Range<usize>| r.map(&f).fold(T::zero(), |a, b| a + b);
    let mut parts = vec![T::zero(); len.div_ceil(CHUNK)];
    if len < PAR_MIN_ELEMS {
        parts.iter_mut().enumerate().for_each(|(i, p)| *p = chunk_sum(i * CHUNK..((i + 1) * CHUNK).min(len)));
    } else {
        let shared = SharedMut::new(&mut parts);
        ranges(len, CHUNK, |r| {
            let i = r.start / CHUNK;
            // SAFETY: part i is written by the task for chunk i only.
            unsafe { shared.range(i..i + 1)[0] = chunk_sum(r) };
        });
    }
    parts.into_iter().fold(T::zero(), |a, b| a + b)
}

/// Σ x (see [`sum_indexed`] for the order).
pub fn sum_all<T: CpuFloat>(x: &[T]) -> T {
    sum_indexed(x.len(), |i| x[i])
}

/// The target row t_i (one-hot from a class index when sparse) and its j-th element.
fn target<T: CpuFloat>(labels: &[T], cols: usize, sparse: bool, i: usize, j: usize) -> T {
    if sparse {
        if labels[i].to_usize() == Some(j) { T::one() } else { T::zero() }
    } else {
        labels[i * cols + j]
    }
}

/// Mean over rows of −Σ_j t_ij log softmax(z_i)_j.
pub fn softmax_cross_entropy<T: CpuFloat>(
    rows: usize,
    cols: usize,
    sparse: bool,
    z: &[T],
    labels: &[T],
    weights: Option<&[T]>,
) -> T {
    let mut total = T::zero();
    for i in 0..rows {
        let zr = &z[i * cols..(i + 1) * cols];
        let mx = row_max(zr);
        let lse = zr.iter().map(|&v| (v - mx).exp()).sum::<T>().ln() + mx;
        let mut l = T::zero();
        for (j, &v) in zr.iter().enumerate() {
            let t = target(labels, cols, sparse, i, j);
            if t != T::zero() {
                l = l - t * (v - lse);
            }
        }
        total = total + weights.map_or(l, |w| l * w[i]);
    }
    total / T::from(rows).unwrap_or(T::one())
}

/// dz = (softmax(z) − t) · dloss / rows (row i times w_i when weighted).
#[allow(clippy::too_many_arguments)]
pub fn softmax_cross_entropy_grad<T: CpuFloat>(
    rows: usize,
    cols: usize,
    sparse: bool,
    z: &[T],
    labels: &[T],
    weights: Option<&[T]>,
    dloss: T,
    dz: &mut [T],
) {
    let scale = dloss / T::from(rows).unwrap_or(T::one());
    softmax(cols, z, dz);
    for_rows(cols, dz, |i, r| {
        let scale = weights.map_or(scale, |w| scale * w[i]);
        for (j, o) in r.iter_mut().enumerate() {
            *o = (*o - target(labels, cols, sparse, i, j)) * scale;
        }
    });
}

/// mean (p − t)² (each row's elements times its weight when weighted).
pub fn mean_squared_error<T: CpuFloat>(p: &[T], t: &[T], w: RowWeights<T>) -> T {
    let len = p.len().min(t.len());
    w.sum(len, |i| (p[i] - t[i]) * (p[i] - t[i])) / T::from(len).unwrap_or(T::one())
}

/// dp = 2 (p − t) · dloss / len (times the row's weight when weighted).
pub fn mean_squared_error_grad<T: CpuFloat>(p: &[T], t: &[T], w: RowWeights<T>, dloss: T, dp: &mut [T]) {
    let s = T::c(2.0) * dloss / T::from(p.len()).unwrap_or(T::one());
    w.map2_scaled(p, t, dp, s, |a, b| a - b);
}

/// mean of max(z,0) − z·t + log(1 + exp(−|z|)) (weighted per row when weighted).
pub fn sigmoid_bce<T: CpuFloat>(z: &[T], t: &[T], w: RowWeights<T>) -> T {
    let len = z.len().min(t.len());
    let loss = |i: usize| z[i].max(T::zero()) - z[i] * t[i] + (-z[i].abs()).exp().ln_1p();
    w.sum(len, loss) / T::from(len).unwrap_or(T::one())
}

/// dz = (σ(z) − t) · dloss / len (times the row's weight when weighted).
pub fn sigmoid_bce_grad<T: CpuFloat>(z: &[T], t: &[T], w: RowWeights<T>, dloss: T, dz: &mut [T]) {
    let s = dloss / T::from(z.len()).unwrap_or(T::one());
    w.map2_scaled(z, t, dz, s, |z, t| sigmoid(z) - t);
}

/// Number of rows whose prediction matches the label, or with `weights` the sum of their
/// weights, in row order (see `Kernel::CountCorrect`).
pub fn count_correct<T: CpuFloat>(
    rows: usize,
    cols: usize,
    sparse: bool,
    threshold: f32,
    p: &[T],
    labels: &[T],
    weights: Option<&[T]>,
) -> T {
    let argmax = |r: &[T]| {
        let mut best = 0;
        for (j, &v) in r.iter().enumerate() {
            if v > r[best] {
                best = j;
            }
        }
        best
    };
    let correct = (0..rows).filter(|&i| {
        if cols == 1 {
            (p[i] > T::c(threshold)) == (labels[i] > T::c(0.5))
        } else {
            let label = if sparse {
                labels[i].to_usize().unwrap_or(usize::MAX)
            } else {
                argmax(&labels[i * cols..(i + 1) * cols])
            };
            argmax(&p[i * cols..(i + 1) * cols]) == label
        }
    });
    match weights {
        Some(w) => correct.fold(T::zero(), |sum, i| sum + w[i]),
        None => T::from(correct.count()).unwrap_or(T::zero()),
    }
}

/// y = scale·x + shift elementwise.
pub fn affine<T: CpuFloat>(scale: f32, shift: f32, x: &[T], y: &mut [T]) {
    let (a, b) = (T::c(scale), T::c(shift));
    y.iter_mut().zip(x).for_each(|(y, &x)| *y = x * a + b);
}

/// y[0] = scale · Σ x.
pub fn scaled_sum<T: CpuFloat>(scale: f32, x: &[T], y: &mut [T]) {
    y[0] = sum_all(x) * T::c(scale);
}

/// y[i] = scale · x[0].
pub fn broadcast_scalar<T: CpuFloat>(scale: f32, x: &[T], y: &mut [T]) {
    let v = x[0] * T::c(scale);
    y.iter_mut().for_each(|o| *o = v);
}

/// y[i] = value.
pub fn fill<T: CpuFloat>(value: f32, y: &mut [T]) {
    y.iter_mut().for_each(|o| *o = T::c(value));
}

/// acc[i] += scale · x[i].
pub fn accumulate<T: CpuFloat>(scale: f32, x: &[T], acc: &mut [T]) {
    acc.iter_mut().zip(x).for_each(|(a, &x)| *a = *a + x * T::c(scale));
}

/// flag[0] = t when it is still 0 and x[0] is NaN or ±inf (the first non-finite loss).
pub fn first_non_finite<T: CpuFloat>(t: u32, x: &[T], flag: &mut [T]) {
    if flag[0] == T::zero() && !x[0].is_finite() {
        flag[0] = T::from(t).unwrap_or(T::one());
    }
}
