//! The CPU cells of the time loop (layouts in program/recurrent.rs): per step, one GEMM over
//! the batch for the recurrent product, then the cell's elementwise math. A masked step keeps
//! the previous state ([`hold`]); backwards its gradient passes straight to the step before.
use super::kernels::{CpuFloat, matmul, sigmoid, unary_grad, unary_in_place};
use super::recurrent::{outputs_at, state_row, z_row};
use crate::program::{GradSource, Recurrence};

/// Whether processing step `t` of sample `b` is data (always, without a mask).
pub(super) fn valid<T: CpuFloat>(rec: &Recurrence, mask: &[T], b: usize, t: usize) -> bool {
    !rec.masked || mask[b * rec.steps + rec.input_time(t)] != T::zero()
}

/// After step `t`: the masked samples keep the state before it (zeros before the first step).
fn hold<T: CpuFloat>(rec: &Recurrence, mask: &[T], t: usize, s: &mut [T]) {
    let w = rec.width();
    for b in 0..rec.batch {
        if !valid(rec, mask, b, t) {
            let row = state_row(rec, t, b);
            if t == 0 {
                s[row..row + w].fill(T::zero());
            } else {
                s.copy_within(state_row(rec, t - 1, b)..state_row(rec, t - 1, b) + w, row);
            }
        }
    }
}

/// dh_t's recurrent part dq_{t+1}·uᵀ into `dh` (zeros at the last step); `dq_of` turns row
/// `b` of dz_{t+1} into dq_{t+1} in place (the GRU scales its candidate block by r).
fn recurrent_grad<T: CpuFloat>(
    rec: &Recurrence,
    t: usize,
    u: &[T],
    dz: &[T],
    next: &mut [T],
    dh: &mut [T],
    dq_of: impl Fn(usize, &mut [T]),
) {
    let (b_n, n, g) = (rec.batch, rec.units, rec.gates() * rec.units);
    if t + 1 == rec.steps {
        dh.fill(T::zero());
        return;
    }
    let tau = rec.input_time(t + 1);
    for b in 0..b_n {
        let zr = z_row(rec, b, tau);
        next[b * g..(b + 1) * g].copy_from_slice(&dz[zr..zr + g]);
        dq_of(b, &mut next[b * g..(b + 1) * g]);
    }
    matmul(b_n, g, n, false, true, next, u, dh);
}

/// SimpleRNN: stores h = f(a) and a, a = z + h_{t−1}·u.
pub(super) fn simple_forward<T: CpuFloat>(rec: &Recurrence, z: &[T], u: &[T], mask: &[T], s: &mut [T]) {
    let (b_n, n) = (rec.batch, rec.units);
    let mut prev = vec![T::zero(); b_n * n];
    let mut acc = vec![T::zero(); b_n * n];
    for t in 0..rec.steps {
        if t > 0 {
            outputs_at(rec, s, t - 1, &mut prev);
            matmul(b_n, n, n, false, false, &prev, u, &mut acc);
        }
        let tau = rec.input_time(t);
        for b in 0..b_n {
            let zr = z_row(rec, b, tau);
            for j in 0..n {
                acc[b * n + j] = z[zr + j] + if t > 0 { acc[b * n + j] } else { T::zero() };
            }
        }
        // acc now holds the pre-activations a; prev becomes f(a).
        prev.copy_from_slice(&acc);
        if let Some(op) = rec.activation() {
            unary_in_place(op, &mut prev);
        }
        for b in 0..b_n {
            let row = state_row(rec, t, b);
            s[row..row + n].copy_from_slice(&prev[b * n..(b + 1) * n]);
            s[row + n..row + 2 * n].copy_from_slice(&acc[b * n..(b + 1) * n]);
        }
        hold(rec, mask, t, s);
    }
}

/// SimpleRNN backward: dh_t = ds + dz_{t+1}·uᵀ (+ the gradient passed through a masked t+1).
pub(super) fn simple_backward<T: CpuFloat>(
    rec: &Recurrence,
    s: &[T],
    u: &[T],
    ds: &[T],
    mask: &[T],
    dz: &mut [T],
) {
    let (b_n, n) = (rec.batch, rec.units);
    let mut next = vec![T::zero(); b_n * n];
    let (mut dh, mut v, mut dzt) =
        (vec![T::zero(); b_n * n], vec![T::zero(); b_n * n], vec![T::zero(); b_n * n]);
    let mut pass = vec![T::zero(); b_n * n];
    let from_input = rec.activation().is_some_and(|op| op.grad_source() == GradSource::Input);
    for t in (0..rec.steps).rev() {
        recurrent_grad(rec, t, u, dz, &mut next, &mut dh, |_, _| {});
        for b in 0..b_n {
            let row = state_row(rec, t, b);
            for j in 0..n {
                dh[b * n + j] = dh[b * n + j] + ds[row + j] + pass[b * n + j];
                v[b * n + j] = s[row + j + if from_input { n } else { 0 }];
            }
        }
        match rec.activation() {
            Some(op) => unary_grad(op, &v, &dh, &mut dzt),
            None => dzt.copy_from_slice(&dh),
        }
        let tau = rec.input_time(t);
        for b in 0..b_n {
            let (zr, at) = (z_row(rec, b, tau), b * n..(b + 1) * n);
            if valid(rec, mask, b, t) {
                dz[zr..zr + n].copy_from_slice(&dzt[at.clone()]);
                pass[at].fill(T::zero());
            } else {
                dz[zr..zr + n].fill(T::zero());
                pass[at.clone()].copy_from_slice(&dh[at]);
            }
        }
    }
}

/// LSTM: a = z + h_{t−1}·u per gate; stores [h, c, i, f, g, o].
pub(super) fn lstm_forward<T: CpuFloat>(rec: &Recurrence, z: &[T], u: &[T], mask: &[T], s: &mut [T]) {
    let (b_n, n) = (rec.batch, rec.units);
    let g4 = 4 * n;
    let mut prev = vec![T::zero(); b_n * n];
    let mut acc = vec![T::zero(); b_n * g4];
    for t in 0..rec.steps {
        if t > 0 {
            outputs_at(rec, s, t - 1, &mut prev);
            matmul(b_n, n, g4, false, false, &prev, u, &mut acc);
        }
        let tau = rec.input_time(t);
        for b in 0..b_n {
            let (zr, row) = (z_row(rec, b, tau), state_row(rec, t, b));
            for j in 0..n {
                let a =
                    |q: usize| z[zr + q * n + j] + if t > 0 { acc[b * g4 + q * n + j] } else { T::zero() };
                let (i, f, g, o) = (sigmoid(a(0)), sigmoid(a(1)), a(2).tanh(), sigmoid(a(3)));
                let c_prev = if t > 0 { s[state_row(rec, t - 1, b) + n + j] } else { T::zero() };
                let c = f * c_prev + i * g;
                for (q, v) in [o * c.tanh(), c, i, f, g, o].into_iter().enumerate() {
                    s[row + q * n + j] = v;
                }
            }
        }
        hold(rec, mask, t, s);
    }
}

/// LSTM backward: dc_t = dh_t·o·(1 − tanh²c_t) + ds_c + dc_{t+1}·f_{t+1}, then the four gates'
/// pre-activation gradients; a masked step passes dh and dc through unchanged.
pub(super) fn lstm_backward<T: CpuFloat>(
    rec: &Recurrence,
    s: &[T],
    u: &[T],
    ds: &[T],
    mask: &[T],
    dz: &mut [T],
) {
    let (b_n, n) = (rec.batch, rec.units);
    let mut next = vec![T::zero(); b_n * 4 * n];
    let mut dh = vec![T::zero(); b_n * n];
    // To step t from step t + 1: dc (times f_{t+1} after a data step) and a passed-through dh.
    let (mut carry_c, mut pass_h) = (vec![T::zero(); b_n * n], vec![T::zero(); b_n * n]);
    let one = T::one();
    for t in (0..rec.steps).rev() {
        recurrent_grad(rec, t, u, dz, &mut next, &mut dh, |_, _| {});
        let tau = rec.input_time(t);
        for b in 0..b_n {
            let (row, zr, data) = (state_row(rec, t, b), z_row(rec, b, tau), valid(rec, mask, b, t));
            for j in 0..n {
                let k = b * n + j;
                let dh_t = dh[k] + ds[row + j] + pass_h[k];
                let dc_in = ds[row + n + j] + carry_c[k];
                if !data {
                    (carry_c[k], pass_h[k]) = (dc_in, dh_t);
                    (0..4).for_each(|q| dz[zr + q * n + j] = T::zero());
                    continue;
                }
                let at = |q: usize| s[row + q * n + j];
                let (c, i, f, g, o) = (at(1), at(2), at(3), at(4), at(5));
                let c_prev = if t > 0 { s[state_row(rec, t - 1, b) + n + j] } else { T::zero() };
                let tc = c.tanh();
                let dc = dh_t * o * (one - tc * tc) + dc_in;
                (carry_c[k], pass_h[k]) = (dc * f, T::zero());
                dz[zr + j] = dc * g * i * (one - i);
                dz[zr + n + j] = dc * c_prev * f * (one - f);
                dz[zr + 2 * n + j] = dc * i * (one - g * g);
                dz[zr + 3 * n + j] = dh_t * tc * o * (one - o);
            }
        }
    }
}

/// GRU (reset after): q = h_{t−1}·U + b_r; stores [h, z, r, ĥ, q_h].
pub(super) fn gru_forward<T: CpuFloat>(
    rec: &Recurrence,
    z: &[T],
    u: &[T],
    bias: &[T],
    mask: &[T],
    s: &mut [T],
) {
    let (b_n, n) = (rec.batch, rec.units);
    let g3 = 3 * n;
    let mut prev = vec![T::zero(); b_n * n];
    let mut q = vec![T::zero(); b_n * g3];
    let one = T::one();
    for t in 0..rec.steps {
        if t > 0 {
            outputs_at(rec, s, t - 1, &mut prev);
            matmul(b_n, n, g3, false, false, &prev, u, &mut q);
        }
        let tau = rec.input_time(t);
        for b in 0..b_n {
            let (zr, row) = (z_row(rec, b, tau), state_row(rec, t, b));
            for j in 0..n {
                let rq = |k: usize| if t > 0 { q[b * g3 + k * n + j] } else { T::zero() } + bias[k * n + j];
                let zg = sigmoid(z[zr + j] + rq(0));
                let r = sigmoid(z[zr + n + j] + rq(1));
                let qh = rq(2);
                let hh = (z[zr + 2 * n + j] + r * qh).tanh();
                let h_prev = if t > 0 { prev[b * n + j] } else { T::zero() };
                let h = zg * h_prev + (one - zg) * hh;
                for (k, v) in [h, zg, r, hh, qh].into_iter().enumerate() {
                    s[row + k * n + j] = v;
                }
            }
        }
        hold(rec, mask, t, s);
    }
}

/// GRU backward: dh_t = ds + dh_{t+1}·z_{t+1} (the direct path; all of dh_{t+1} through a
/// masked step) + dq_{t+1}·Uᵀ.
pub(super) fn gru_backward<T: CpuFloat>(
    rec: &Recurrence,
    s: &[T],
    u: &[T],
    ds: &[T],
    mask: &[T],
    dz: &mut [T],
) {
    let (b_n, n) = (rec.batch, rec.units);
    let mut next = vec![T::zero(); b_n * 3 * n];
    let mut dh = vec![T::zero(); b_n * n];
    let mut carry = vec![T::zero(); b_n * n];
    let one = T::one();
    for t in (0..rec.steps).rev() {
        let scale_candidate = |b: usize, dq: &mut [T]| {
            let row = state_row(rec, t + 1, b);
            (0..n).for_each(|j| dq[2 * n + j] = dq[2 * n + j] * s[row + 2 * n + j]);
        };
        recurrent_grad(rec, t, u, dz, &mut next, &mut dh, scale_candidate);
        let tau = rec.input_time(t);
        for b in 0..b_n {
            let (row, zr, data) = (state_row(rec, t, b), z_row(rec, b, tau), valid(rec, mask, b, t));
            for j in 0..n {
                let k = b * n + j;
                let dh_t = dh[k] + ds[row + j] + carry[k];
                if !data {
                    carry[k] = dh_t;
                    (0..3).for_each(|q| dz[zr + q * n + j] = T::zero());
                    continue;
                }
                let at = |q: usize| s[row + q * n + j];
                let (zg, r, hh, qh) = (at(1), at(2), at(3), at(4));
                let h_prev = if t > 0 { s[state_row(rec, t - 1, b) + j] } else { T::zero() };
                carry[k] = dh_t * zg;
                let dhh = dh_t * (one - zg) * (one - hh * hh);
                dz[zr + j] = dh_t * (h_prev - hh) * zg * (one - zg);
                dz[zr + n + j] = dhh * qh * r * (one - r);
                dz[zr + 2 * n + j] = dhh;
            }
        }
    }
}
