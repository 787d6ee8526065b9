//! The GRU cell (Keras `reset_after=True`) of the CPU time loop, built as the LSTM's (see
//! lstm.rs): the per-step product q = h_{t−1}·U carries each sample's gate math in its
//! epilogue, on the pool's threads, with the gates activated as whole blocks (vectorised for
//! f32); backwards, dq_{t+1}·Uᵀ carries the gate gradients the same way.
use super::cells::{hold, next_gate_grads, recurrent_product_then, valid};
use super::kernels::{CpuFloat, matmul_then};
use super::pool::SharedMut;
use super::recurrent::{Dropped, outputs_at, state_row, z_row};
use crate::program::Recurrence;

/// Forward: q = h_{t−1}·U + b_r; z = σ(x_z + q_z), r = σ(x_r + q_r), ĥ = tanh(x_h + r·q_h),
/// h = z·h_{t−1} + (1 − z)·ĥ; stores [h, z, r, ĥ, q_h] per sample.
pub(super) fn forward<T: CpuFloat>(
    rec: &Recurrence,
    z: &[T],
    u: &[T],
    bias: &[T],
    mask: &[T],
    drop: Dropped<T>,
    s: &mut [T],
) {
    let (b_n, n) = (rec.batch, rec.units);
    let g3 = 3 * n;
    let mut prev = vec![T::zero(); b_n * n];
    // The product reads h_{t−1}·drop; the update gate mixes the undropped h_{t−1} (Keras).
    let mut dropped = vec![T::zero(); b_n * n];
    let mut q = vec![T::zero(); b_n * g3];
    let one = T::one();
    for t in 0..rec.steps {
        if t > 0 {
            outputs_at(rec, s, t - 1, &mut prev);
            dropped.copy_from_slice(&prev);
            drop.apply_rows(&mut dropped);
        }
        let tau = rec.input_time(t);
        let states = SharedMut::new(s);
        let prev = &prev;
        let cells = |first: usize, rows: &mut [T]| {
            let mut hh = vec![T::zero(); n];
            for (i, q) in rows.chunks_exact_mut(g3).enumerate() {
                let b = first + i;
                let zr = z_row(rec, b, tau);
                q.iter_mut().zip(&bias[..g3]).for_each(|(q, &b)| *q = *q + b);
                let row = state_row(rec, t, b);
                // SAFETY: sample b's row of step t is touched by this task only.
                let cur = unsafe { states.range(row..row + 5 * n) };
                // z and r: σ(x + q), in the state row's blocks 1 and 2.
                for j in 0..2 * n {
                    cur[n + j] = z[zr + j] + q[j];
                }
                T::sigmoid_in_place(&mut cur[n..3 * n]);
                for j in 0..n {
                    hh[j] = z[zr + 2 * n + j] + cur[2 * n + j] * q[2 * n + j];
                }
                T::tanh_in_place(&mut hh);
                for j in 0..n {
                    let h_prev = if t > 0 { prev[b * n + j] } else { T::zero() };
                    let zg = cur[n + j];
                    cur[j] = zg * h_prev + (one - zg) * hh[j];
                }
                cur[3 * n..4 * n].copy_from_slice(&hh);
                cur[4 * n..].copy_from_slice(&q[2 * n..]);
            }
        };
        match t {
            0 => {
                q.fill(T::zero());
                cells(0, &mut q);
            }
            _ => matmul_then(b_n, n, g3, false, false, &dropped, u, &mut q, &cells),
        }
        hold(rec, mask, t, s);
    }
}

/// Backward: dh_t = ds + dh_{t+1}·z_{t+1} (the direct path; all of dh_{t+1} through a masked
/// step) + dq_{t+1}·Uᵀ, dq's candidate block scaled by r_{t+1}.
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
    let g3 = 3 * n;
    let mut next = vec![T::zero(); b_n * g3];
    let mut dh = vec![T::zero(); b_n * n];
    let mut carry = vec![T::zero(); b_n * n];
    let one = T::one();
    for t in (0..rec.steps).rev() {
        next_gate_grads(rec, t, dz, &mut next, |b, dq| {
            let row = state_row(rec, t + 1, b);
            (0..n).for_each(|j| dq[2 * n + j] = dq[2 * n + j] * s[row + 2 * n + j]);
        });
        let tau = rec.input_time(t);
        let (grads, carried) = (SharedMut::new(dz), SharedMut::new(&mut carry));
        let cells = |first: usize, rows: &mut [T]| {
            for (i, dh_rec) in rows.chunks_exact_mut(n).enumerate() {
                let b = first + i;
                // Step t + 1's product read h_t·drop (its direct path, the carry, did not).
                drop.apply(b, dh_rec);
                let (row, zr) = (state_row(rec, t, b), z_row(rec, b, tau));
                // SAFETY: sample b's rows of dz (step t) and carry belong to this task.
                let (dz_b, carry_b) =
                    unsafe { (grads.range(zr..zr + g3), carried.range(b * n..(b + 1) * n)) };
                let data = valid(rec, mask, b, t);
                let before = (t > 0).then(|| state_row(rec, t - 1, b));
                for j in 0..n {
                    let dh_t = dh_rec[j] + ds[row + j] + carry_b[j];
                    if !data {
                        carry_b[j] = dh_t;
                        continue;
                    }
                    let at = |q: usize| s[row + q * n + j];
                    let (zg, r, hh, qh) = (at(1), at(2), at(3), at(4));
                    let h_prev = before.map_or(T::zero(), |p| s[p + j]);
                    carry_b[j] = dh_t * zg;
                    let dhh = dh_t * (one - zg) * (one - hh * hh);
                    dz_b[j] = dh_t * (h_prev - hh) * zg * (one - zg);
                    dz_b[n + j] = dhh * qh * r * (one - r);
                    dz_b[2 * n + j] = dhh;
                }
                if !data {
                    dz_b.fill(T::zero());
                }
            }
        };
        recurrent_product_then(rec, t, u, &next, &mut dh, &cells);
    }
}
