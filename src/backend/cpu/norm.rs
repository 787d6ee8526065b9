//! CPU kernels of batch normalisation over x: [rows, cols] (channels last, so a column is a
//! channel). The batch moments are computed once per step (`moments`) and read by the other
//! kernels. Column sums run over the rows in order, so results do not depend on threads.
use super::kernels::{CpuFloat, for_rows};

/// Σ_i f(row i) per column, rows in order.
fn column_sums<T: CpuFloat>(cols: usize, x: &[T], f: impl Fn(usize, T) -> T) -> Vec<T> {
    let mut s = vec![T::zero(); cols];
    for row in x.chunks(cols) {
        for (j, (o, &v)) in s.iter_mut().zip(row).enumerate() {
            *o = *o + f(j, v);
        }
    }
    s
}

/// Per-column batch mean and biased variance (two passes) into `out` = [mean (cols), var (cols)].
pub fn moments<T: CpuFloat>(rows: usize, cols: usize, x: &[T], out: &mut [T]) {
    let n = T::from(rows.max(1)).unwrap_or(T::one());
    let (mean, var) = out.split_at_mut(cols);
    for (m, s) in mean.iter_mut().zip(column_sums(cols, x, |_, v| v)) {
        *m = s / n;
    }
    let mean = &*mean;
    for (v, s) in var.iter_mut().zip(column_sums(cols, x, |j, v| (v - mean[j]) * (v - mean[j]))) {
        *v = s / n;
    }
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
        for (j, o) in out.iter_mut().enumerate() {
            *o = (x[i * cols + j] - mean[j]) * inv[j] * gamma[j] + beta[j];
        }
    });
}

/// dx = γ/(sqrt(σ² + eps)·rows) · (rows·dy − Σdy − x̂·Σ(dy·x̂)).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_grad<T: CpuFloat>(
    rows: usize,
    cols: usize,
    eps: f32,
    x: &[T],
    moments: &[T],
    gamma: &[T],
    dy: &[T],
    dx: &mut [T],
) {
    let (mean, inv) = mean_inv_std(cols, moments, eps);
    let n = T::from(rows.max(1)).unwrap_or(T::one());
    let sum_dy = column_sums(cols, dy, |_, g| g);
    let mut sum_dy_xhat = vec![T::zero(); cols];
    for (xr, gr) in x.chunks(cols).zip(dy.chunks(cols)) {
        for j in 0..cols {
            sum_dy_xhat[j] = sum_dy_xhat[j] + gr[j] * (xr[j] - mean[j]) * inv[j];
        }
    }
    for_rows(cols, dx, |i, out| {
        for (j, o) in out.iter_mut().enumerate() {
            let xhat = (x[i * cols + j] - mean[j]) * inv[j];
            let g = dy[i * cols + j];
            *o = gamma[j] * inv[j] / n * (n * g - sum_dy[j] - xhat * sum_dy_xhat[j]);
        }
    });
}

/// dγ_j = Σ_i dy_ij · x̂_ij.
pub fn batch_norm_gamma_grad<T: CpuFloat>(
    cols: usize,
    eps: f32,
    x: &[T],
    moments: &[T],
    dy: &[T],
    dg: &mut [T],
) {
    let (mean, inv) = mean_inv_std(cols, moments, eps);
    dg.iter_mut().for_each(|v| *v = T::zero());
    for (xr, gr) in x.chunks(cols).zip(dy.chunks(cols)) {
        for j in 0..cols {
            dg[j] = dg[j] + gr[j] * (xr[j] - mean[j]) * inv[j];
        }
    }
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
