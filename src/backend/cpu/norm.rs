//! CPU kernels of batch normalisation over x: [rows, cols] (channels last, so a column is a
//! channel). The batch moments are computed once per step (`moments`) and read by the other
//! kernels. Column sums go through `column_totals` (fixed parts of rows, summed in order),
//! so results do not depend on the thread count.
use super::kernels::{CpuFloat, column_totals, for_rows};

/// Per-column batch mean and biased variance (two passes) into `out` = [mean (cols), var (cols)].
pub fn moments<T: CpuFloat>(rows: usize, cols: usize, x: &[T], out: &mut [T]) {
    let n = T::from(rows.max(1)).unwrap_or(T::one());
    let rows_of = |r: std::ops::Range<usize>| x[r.start * cols..r.end * cols].chunks_exact(cols);
    let sums = column_totals(rows, cols, cols, |r, acc: &mut [T]| {
        for xr in rows_of(r) {
            acc.iter_mut().zip(xr).for_each(|(a, &v)| *a = *a + v);
        }
    });
    let mean: Vec<T> = sums.into_iter().map(|s| s / n).collect();
    let squares = column_totals(rows, cols, cols, |r, acc: &mut [T]| {
        for xr in rows_of(r) {
            acc.iter_mut().zip(xr).zip(&mean).for_each(|((a, &v), &m)| *a = *a + (v - m) * (v - m));
        }
    });
    let (mean_out, var_out) = out.split_at_mut(cols);
    mean_out.copy_from_slice(&mean);
    var_out.iter_mut().zip(squares).for_each(|(v, s)| *v = s / n);
}

/// Per column: [Σ_i dy_ij (cols), Σ_i dy_ij · x̂_ij (cols)], x̂ = (x − mean)·inv.
fn gradient_sums<T: CpuFloat>(cols: usize, x: &[T], dy: &[T], mean: &[T], inv: &[T]) -> Vec<T> {
    column_totals(x.len() / cols.max(1), cols, 2 * cols, |r, acc: &mut [T]| {
        let (sum_dy, sum_dy_xhat) = acc.split_at_mut(cols);
        let span = r.start * cols..r.end * cols;
        for (xr, gr) in x[span.clone()].chunks_exact(cols).zip(dy[span].chunks_exact(cols)) {
            sum_dy.iter_mut().zip(gr).for_each(|(a, &g)| *a = *a + g);
            for ((a, (&xv, &g)), (&m, &s)) in
                sum_dy_xhat.iter_mut().zip(xr.iter().zip(gr)).zip(mean.iter().zip(inv))
            {
                *a = *a + g * ((xv - m) * s);
            }
        }
    })
}

/// (mean, 1 / sqrt(var + eps)) from the moments [mean, var].
fn mean_inv_std<T: CpuFloat>(cols: usize, moments: &[T], eps: f32) -> (&[T], Vec<T>) {
    let (mean, var) = moments.split_at(cols);
    (mean, inv_std(var, eps))
}

fn inv_std<T: CpuFloat>(var: &[T], eps: f32) -> Vec<T> {
    var.iter().map(|&v| T::one() / (v + T::c(eps)).sqrt()).collect()
}

/// y = γ (x − μ) / sqrt(σ² + eps) + β with the batch moments.
pub fn batch_norm_train<T: CpuFloat>(
    cols: usize,
    eps: f32,
    x: &[T],
    moments: &[T],
    gamma: &[T],
    beta: &[T],
    y: &mut [T],
) {
    let (mean, inv) = mean_inv_std(cols, moments, eps);
    normalize(cols, x, mean, &inv, gamma, beta, y);
}

fn normalize<T: CpuFloat>(cols: usize, x: &[T], mean: &[T], inv: &[T], gamma: &[T], beta: &[T], y: &mut [T]) {
    for_rows(cols, y, |i, out| {
        let xr = &x[i * cols..(i + 1) * cols];
        for ((o, &v), ((&m, &s), (&g, &b))) in
            out.iter_mut().zip(xr).zip(mean.iter().zip(inv).zip(gamma.iter().zip(beta)))
        {
            *o = (v - m) * s * g + b;
        }
    });
}

/// [Σdy (cols), Σdy·x̂ (cols)] per column into `out`: dβ and dγ, and what dx needs.
pub fn batch_norm_grad_sums<T: CpuFloat>(
    cols: usize,
    eps: f32,
    x: &[T],
    moments: &[T],
    dy: &[T],
    out: &mut [T],
) {
    let (mean, inv) = mean_inv_std(cols, moments, eps);
    out.copy_from_slice(&gradient_sums(cols, x, dy, mean, &inv));
}

/// dx = γ/(sqrt(σ² + eps)·rows) · (rows·dy − Σdy − x̂·Σ(dy·x̂)), with the sums of
/// [`batch_norm_grad_sums`]. `inputs`: x, moments, gamma, dy, sums.
pub fn batch_norm_grad<T: CpuFloat>(rows: usize, cols: usize, eps: f32, inputs: [&[T]; 5], dx: &mut [T]) {
    let [x, moments, gamma, dy, sums] = inputs;
    let (mean, inv) = mean_inv_std(cols, moments, eps);
    let n = T::from(rows.max(1)).unwrap_or(T::one());
    let (sum_dy, sum_dy_xhat) = sums.split_at(cols);
    // γ·inv/n per column, evaluated as in the formula (the same bits as inline).
    let scale: Vec<T> = gamma.iter().zip(&inv).map(|(&g, &s)| g * s / n).collect();
    for_rows(cols, dx, |i, out| {
        let (xr, gr) = (&x[i * cols..(i + 1) * cols], &dy[i * cols..(i + 1) * cols]);
        let column = mean.iter().zip(&inv).zip(scale.iter().zip(sum_dy.iter().zip(sum_dy_xhat)));
        for (((o, &xv), &g), ((&m, &s), (&c, (&sg, &sgx)))) in out.iter_mut().zip(xr).zip(gr).zip(column) {
            *o = c * (n * g - sg - (xv - m) * s * sgx);
        }
    });
}

/// Keras's moving statistics: m = m·momentum + μ·(1 − momentum), v likewise with σ².
pub fn batch_norm_moving<T: CpuFloat>(
    cols: usize,
    momentum: f32,
    moments: &[T],
    moving_mean: &mut [T],
    moving_var: &mut [T],
) {
    let (mean, var) = moments.split_at(cols);
    let (m, rest) = (T::c(momentum), T::one() - T::c(momentum));
    for j in 0..cols {
        moving_mean[j] = moving_mean[j] * m + mean[j] * rest;
        moving_var[j] = moving_var[j] * m + var[j] * rest;
    }
}

/// Inference: y = γ (x − mean) / sqrt(var + eps) + β with the moving statistics.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_inference<T: CpuFloat>(
    cols: usize,
    eps: f32,
    x: &[T],
    gamma: &[T],
    beta: &[T],
    mean: &[T],
    var: &[T],
    y: &mut [T],
) {
    normalize(cols, x, mean, &inv_std(var, eps), gamma, beta, y);
}
