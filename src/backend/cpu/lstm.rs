//! The LSTM cell of the CPU time loop (layouts in program/recurrent.rs). Per step, the
//! recurrent product h_{t−1}·u is one GEMM over the batch whose epilogue runs each sample's
//! gate math on the row blocks as the pool's threads finish them (so the elementwise work is
//! parallel and cache-hot); the gates are activated as whole blocks, vectorised for f32 (see
//! `CpuFloat::sigmoid_in_place`). Backwards, the GEMM dq_{t+1}·uᵀ carries the gate gradients
//! in its epilogue the same way. Every sample's arithmetic is the same whichever thread runs
//! it: the results do not depend on the thread count.
use super::cells::{hold, next_gate_grads, recurrent_product_then, valid};
use super::kernels::{CpuFloat, matmul_then};
use super::pool::SharedMut;
use super::recurrent::{Dropped, outputs_at, state_row, z_row};
use crate::program::Recurrence;

/// Forward: a = z + h_{t−1}·u per gate [i, f, g, o]; stores [h, c, i, f, g, o] per sample.
pub(super) fn forward<T: CpuFloat>(
    rec: &Recurrence,
    z: &[T],
    u: &[T],
    mask: &[T],
    drop: Dropped<T>,
    s: &mut [T],
) {
    let (b_n, n) = (rec.batch, rec.units);
    let g4 = 4 * n;
    let mut prev = vec![T::zero(); b_n * n];
    let mut acc = vec![T::zero(); b_n * g4];
    for t in 0..rec.steps {
        if t > 0 {
            outputs_at(rec, s, t - 1, &mut prev);
            drop.apply_rows(&mut prev);
        }
        let tau = rec.input_time(t);
        let states = SharedMut::new(s);
        // Rows `first..` of the products: each sample's cell.
        let cells = |first: usize, rows: &mut [T]| {
            let mut tc = vec![T::zero(); n];
            for (i, a) in rows.chunks_exact_mut(g4).enumerate() {
                let b = first + i;
                let zr = z_row(rec, b, tau);
                a.iter_mut().zip(&z[zr..zr + g4]).for_each(|(a, &z)| *a = *a + z);
                T::sigmoid_in_place(&mut a[..2 * n]);
                T::tanh_in_place(&mut a[2 * n..3 * n]);
                T::sigmoid_in_place(&mut a[3 * n..]);
                let row = state_row(rec, t, b);
                // SAFETY: sample b's rows of steps t and t − 1 are touched by this task only.
                let cur = unsafe { states.range(row..row + 6 * n) };
                match t {
                    0 => (0..n).for_each(|j| tc[j] = a[j] * a[2 * n + j]),
                    _ => {
                        let before = state_row(rec, t - 1, b) + n;
                        // SAFETY: as above (the previous step's c of sample b).
                        let c_prev = unsafe { states.range(before..before + n) };
                        (0..n).for_each(|j| tc[j] = a[n + j] * c_prev[j] + a[j] * a[2 * n + j]);
                    }
                }
                cur[n..2 * n].copy_from_slice(&tc);
                T::tanh_in_place(&mut tc);
                (0..n).for_each(|j| cur[j] = a[3 * n + j] * tc[j]);
                cur[2 * n..].copy_from_slice(a);
            }
        };
        match t {
            0 => {
                acc.fill(T::zero());
                cells(0, &mut acc);
            }
            _ => matmul_then(b_n, n, g4, false, false, &prev, u, &mut acc, &cells),
        }
        hold(rec, mask, t, s);
    }
}

/// Backward: dc_t = dh_t·o·(1 − tanh²c_t) + ds_c + dc_{t+1}·f_{t+1}, then the four gates'
/// pre-activation gradients into dz; a masked step passes dh and dc through unchanged.
pub(super) fn backward<T: CpuFloat>(
    rec: &Recurrence,
    s: &[T],
    u: &[T],
    ds: &[T],
    mask: &[T],
    drop: Dropped<T>,
    dz: &mut [T],
) {
    let (b_n, n) = (rec.batch, rec.units);
    let g4 = 4 * n;
    let mut next = vec![T::zero(); b_n * g4];
    let mut dh = vec![T::zero(); b_n * n];
    // To step t from step t + 1: dc (times f_{t+1} after a data step) and a passed-through dh.
    let (mut carry_c, mut pass_h) = (vec![T::zero(); b_n * n], vec![T::zero(); b_n * n]);
    let one = T::one();
    for t in (0..rec.steps).rev() {
        next_gate_grads(rec, t, dz, &mut next, |_, _| {});
        let tau = rec.input_time(t);
        let (grads, carry, pass) =
            (SharedMut::new(dz), SharedMut::new(&mut carry_c), SharedMut::new(&mut pass_h));
        // Rows `first..` of dh_t's recurrent part: each sample's gate gradients.
        let cells = |first: usize, rows: &mut [T]| {
            let mut tanh_c = vec![T::zero(); n];
            for (i, dh_rec) in rows.chunks_exact_mut(n).enumerate() {
                let b = first + i;
                // Step t + 1's product read h_t·drop.
                drop.apply(b, dh_rec);
                let (row, zr) = (state_row(rec, t, b), z_row(rec, b, tau));
                // SAFETY: sample b's rows of dz (step t), carry and pass belong to this task.
                let (dz_b, carry_b, pass_b) = unsafe {
                    (
                        grads.range(zr..zr + g4),
                        carry.range(b * n..(b + 1) * n),
                        pass.range(b * n..(b + 1) * n),
                    )
                };
                if !valid(rec, mask, b, t) {
                    for j in 0..n {
                        carry_b[j] = ds[row + n + j] + carry_b[j];
                        pass_b[j] = dh_rec[j] + ds[row + j] + pass_b[j];
                    }
                    dz_b.fill(T::zero());
                    continue;
                }
                tanh_c.copy_from_slice(&s[row + n..row + 2 * n]);
                T::tanh_in_place(&mut tanh_c);
                let at = |q: usize, j: usize| s[row + q * n + j];
                let c_before = (t > 0).then(|| state_row(rec, t - 1, b) + n);
                for j in 0..n {
                    let dh_t = dh_rec[j] + ds[row + j] + pass_b[j];
                    let dc_in = ds[row + n + j] + carry_b[j];
                    let (i, f, g, o) = (at(2, j), at(3, j), at(4, j), at(5, j));
                    let c_prev = c_before.map_or(T::zero(), |r| s[r + j]);
                    let tc = tanh_c[j];
                    let dc = dh_t * o * (one - tc * tc) + dc_in;
                    (carry_b[j], pass_b[j]) = (dc * f, T::zero());
                    dz_b[j] = dc * g * i * (one - i);
                    dz_b[n + j] = dc * c_prev * f * (one - f);
                    dz_b[2 * n + j] = dc * i * (one - g * g);
                    dz_b[3 * n + j] = dh_t * tc * o * (one - o);
                }
            }
        };
        recurrent_product_then(rec, t, u, &next, &mut dh, &cells);
    }
}
