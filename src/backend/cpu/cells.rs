//! The CPU cells of the time loop (layouts in program/recurrent.rs): per step, one GEMM over
//! the batch for the recurrent product, then the cell's elementwise math. A masked step keeps
//! the previous state ([`hold`]); backwards its gradient passes straight to the step before.
use super::gemm::Epilogue;
use super::kernels::{CpuFloat, matmul, matmul_then, unary_grad, unary_in_place};
use super::recurrent::{Dropped, outputs_at, state_row, z_row};
use crate::program::{GradSource, Recurrence};

/// Whether processing step `t` of sample `b` is data (always, without a mask).
pub(super) fn valid<T: CpuFloat>(rec: &Recurrence, mask: &[T], b: usize, t: usize) -> bool {
    !rec.masked || mask[b * rec.steps + rec.input_time(t)] != T::zero()
}

/// After step `t`: the masked samples keep the state before it (zeros before the first step).
pub(super) fn hold<T: CpuFloat>(rec: &Recurrence, mask: &[T], t: usize, s: &mut [T]) {
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

/// dq_{t+1} into `next` ([batch, gates·units]) before backward step t (nothing at the last
/// step): dz_{t+1}'s rows, each turned into dq in place by `dq_of(b, row)` (the GRU scales
/// its candidate block by r).
pub(super) fn next_gate_grads<T: CpuFloat>(
    rec: &Recurrence,
    t: usize,
    dz: &[T],
    next: &mut [T],
    dq_of: impl Fn(usize, &mut [T]),
) {
    if t + 1 == rec.steps {
        return;
    }
    let (g, tau) = (rec.gates() * rec.units, rec.input_time(t + 1));
    for b in 0..rec.batch {
        let zr = z_row(rec, b, tau);
        next[b * g..(b + 1) * g].copy_from_slice(&dz[zr..zr + g]);
        dq_of(b, &mut next[b * g..(b + 1) * g]);
    }
}

/// dh_t's recurrent part dq_{t+1}·uᵀ into `dh` (zeros at the last step), `next` from
/// [`next_gate_grads`]; then `cells(first, rows)` over dh's row blocks as the pool's threads
/// finish them (all rows at once at the last step).
pub(super) fn recurrent_product_then<T: CpuFloat>(
    rec: &Recurrence,
    t: usize,
    u: &[T],
    next: &[T],
    dh: &mut [T],
    cells: Epilogue<T>,
) {
    let (n, g) = (rec.units, rec.gates() * rec.units);
    if t + 1 == rec.steps {
        dh.fill(T::zero());
        cells(0, dh);
    } else {
        matmul_then(rec.batch, g, n, false, true, next, u, dh, cells);
    }
}

/// [`recurrent_product_then`] without an epilogue.
fn recurrent_grad<T: CpuFloat>(
    rec: &Recurrence,
    t: usize,
    u: &[T],
    dz: &[T],
    next: &mut [T],
    dh: &mut [T],
    dq_of: impl Fn(usize, &mut [T]),
) {
    next_gate_grads(rec, t, dz, next, dq_of);
    recurrent_product_then(rec, t, u, next, dh, &|_, _| {});
}

/// SimpleRNN: stores h = f(a) and a, a = z + h_{t−1}·u.
pub(super) fn simple_forward<T: CpuFloat>(
    rec: &Recurrence,
    z: &[T],
    u: &[T],
    mask: &[T],
    drop: Dropped<T>,
    s: &mut [T],
) {
    let (b_n, n) = (rec.batch, rec.units);
    let mut prev = vec![T::zero(); b_n * n];
    let mut acc = vec![T::zero(); b_n * n];
    for t in 0..rec.steps {
        if t > 0 {
            outputs_at(rec, s, t - 1, &mut prev);
            drop.apply_rows(&mut prev);
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
    drop: Dropped<T>,
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
        // Step t + 1's product read h_t·drop.
        drop.apply_rows(&mut dh);
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
