//! The CPU kernels of a recurrent layer's time loop (layouts in program/recurrent.rs): the
//! loop itself (the cells are in `cells.rs`), the GRU's gate gradient, and the gathers of
//! what a layer returns.
use super::kernels::CpuFloat;
use super::{cells, gru, lstm};
use crate::program::{Recurrence, RecurrentCell, SequencePart};

/// Row `(t, b)` of the states.
pub(super) fn state_row(rec: &Recurrence, t: usize, b: usize) -> usize {
    (t * rec.batch + b) * rec.width()
}

/// Row `(b, τ)` of z (and dz).
pub(super) fn z_row(rec: &Recurrence, b: usize, tau: usize) -> usize {
    (b * rec.steps + tau) * rec.gates() * rec.units
}

/// The outputs h of processing step `t` for every sample, `[batch, units]`.
pub(super) fn outputs_at<T: CpuFloat>(rec: &Recurrence, s: &[T], t: usize, out: &mut [T]) {
    let u = rec.units;
    for b in 0..rec.batch {
        let row = state_row(rec, t, b);
        out[b * u..(b + 1) * u].copy_from_slice(&s[row..row + u]);
    }
}

/// s[t] = cell(z[:, τ(t)], s[t−1], u) for t = 0, 1, …; `bias` is the GRU's recurrent bias,
/// `mask` the `[batch, steps]` mask and `drop` the recurrent dropout mask (empty when unused).
pub fn forward<T: CpuFloat>(
    rec: &Recurrence,
    z: &[T],
    u: &[T],
    bias: &[T],
    mask: &[T],
    drop: &[T],
    s: &mut [T],
) {
    let drop = Dropped::new(rec, drop);
    match rec.cell {
        RecurrentCell::Simple { .. } => cells::simple_forward(rec, z, u, mask, drop, s),
        RecurrentCell::Lstm => lstm::forward(rec, z, u, mask, drop, s),
        RecurrentCell::Gru => gru::forward(rec, z, u, bias, mask, drop, s),
    }
}

/// The recurrent dropout mask: sample b's `[units]` row (its step-0 slice; every step's is
/// the same), or nothing without recurrent dropout.
#[derive(Clone, Copy)]
pub(super) struct Dropped<'a, T> {
    mask: Option<&'a [T]>,
    row: usize,
    units: usize,
}

impl<'a, T: CpuFloat> Dropped<'a, T> {
    fn new(rec: &Recurrence, drop: &'a [T]) -> Self {
        let mask = rec.recurrent_dropout.then_some(drop);
        Dropped { mask, row: rec.steps * rec.units, units: rec.units }
    }

    /// `v` (sample b's `[units]` values) times its mask, in place.
    pub(super) fn apply(&self, b: usize, v: &mut [T]) {
        if let Some(m) = self.mask {
            let m = &m[b * self.row..b * self.row + self.units];
            v.iter_mut().zip(m).for_each(|(v, &m)| *v = *v * m);
        }
    }

    /// Every sample's row of `rows` ([batch, units]) times its mask.
    pub(super) fn apply_rows(&self, rows: &mut [T]) {
        if self.mask.is_some() {
            for (b, v) in rows.chunks_exact_mut(self.units.max(1)).enumerate() {
                self.apply(b, v);
            }
        }
    }
}

/// Backpropagation through time: dz from the states' gradient ds, last step first. The
/// gradient reaching h_t is ds's plus dz_{t+1}·uᵀ from the next step (or, through a masked
/// step, that step's whole gradient).
pub fn backward<T: CpuFloat>(
    rec: &Recurrence,
    s: &[T],
    u: &[T],
    ds: &[T],
    mask: &[T],
    drop: &[T],
    dz: &mut [T],
) {
    let drop = Dropped::new(rec, drop);
    match rec.cell {
        RecurrentCell::Simple { .. } => cells::simple_backward(rec, s, u, ds, mask, drop, dz),
        RecurrentCell::Lstm => lstm::backward(rec, s, u, ds, mask, drop, dz),
        RecurrentCell::Gru => gru::backward(rec, s, u, ds, mask, drop, dz),
    }
}

/// The gradient of the GRU's recurrent pre-activations q = h_{t−1}·U + b_r from dz (that of
/// its input ones): the same for z and r, times r for the candidate (ĥ = tanh(h_x + r·q_h)).
/// Other cells' are dz itself.
pub fn gate_grad<T: CpuFloat>(rec: &Recurrence, s: &[T], dz: &[T], dq: &mut [T]) {
    dq.copy_from_slice(dz);
    if rec.cell != RecurrentCell::Gru {
        return;
    }
    let n = rec.units;
    for b in 0..rec.batch {
        for t in 0..rec.steps {
            let (zr, row) = (z_row(rec, b, rec.input_time(t)), state_row(rec, t, b));
            for j in 0..n {
                dq[zr + 2 * n + j] = dz[zr + 2 * n + j] * s[row + 2 * n + j];
            }
        }
    }
}

/// The part of the states a layer returns (see [`SequencePart`]).
pub fn gather<T: CpuFloat>(rec: &Recurrence, part: SequencePart, s: &[T], y: &mut [T]) {
    let (n, steps) = (rec.units, rec.steps);
    for b in 0..rec.batch {
        match part {
            SequencePart::Sequence => {
                for t in 0..steps {
                    let row = state_row(rec, t, b);
                    y[(b * steps + t) * n..][..n].copy_from_slice(&s[row..row + n]);
                }
            }
            SequencePart::Last => {
                let row = state_row(rec, steps - 1, b);
                y[b * n..(b + 1) * n].copy_from_slice(&s[row..row + n]);
            }
            SequencePart::LastCell => {
                let row = state_row(rec, steps - 1, b) + n;
                y[b * n..(b + 1) * n].copy_from_slice(&s[row..row + n]);
            }
            SequencePart::InputOrder => {
                for t in 0..steps {
                    let row = state_row(rec, t, b);
                    y[(b * steps + rec.input_time(t)) * n..][..n].copy_from_slice(&s[row..row + n]);
                }
            }
            SequencePart::Previous => {
                for t in 0..steps {
                    let out = &mut y[(b * steps + rec.input_time(t)) * n..][..n];
                    if t == 0 {
                        out.fill(T::zero());
                    } else {
                        let row = state_row(rec, t - 1, b);
                        out.copy_from_slice(&s[row..row + n]);
                    }
                }
            }
        }
    }
}

/// The gradient of [`gather`]: dy into the output columns of ds, zeros elsewhere.
pub fn scatter<T: CpuFloat>(rec: &Recurrence, part: SequencePart, dy: &[T], ds: &mut [T]) {
    let (n, steps) = (rec.units, rec.steps);
    ds.fill(T::zero());
    for b in 0..rec.batch {
        for t in 0..steps {
            let source = match part {
                SequencePart::Sequence => Some((b * steps + t) * n),
                SequencePart::Last | SequencePart::LastCell => (t + 1 == steps).then_some(b * n),
                SequencePart::Previous => (t + 1 < steps).then(|| (b * steps + rec.input_time(t + 1)) * n),
                SequencePart::InputOrder => Some((b * steps + rec.input_time(t)) * n),
            };
            if let Some(at) = source {
                // The cell state's columns follow h's in an LSTM's state row.
                let row = state_row(rec, t, b) + if part == SequencePart::LastCell { n } else { 0 };
                ds[row..row + n].copy_from_slice(&dy[at..at + n]);
            }
        }
    }
}

/// mask[r] = 1 where some feature of row r differs from `value` (Keras `Masking`), else 0.
pub fn sequence_mask<T: CpuFloat>(features: usize, value: T, x: &[T], mask: &mut [T]) {
    for (r, m) in mask.iter_mut().enumerate() {
        let data = x[r * features..(r + 1) * features].iter().any(|&v| v != value);
        *m = if data { T::one() } else { T::zero() };
    }
}
