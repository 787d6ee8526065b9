//! The CPU kernels of a recurrent layer's time loop (layouts in program/recurrent.rs): each
//! step's recurrent product is one GEMM over the batch, then the cell's elementwise math.
use super::kernels::{CpuFloat, matmul, sigmoid, unary_grad, unary_in_place};
use crate::program::{GradSource, Recurrence, RecurrentCell, SequencePart};

/// Row `(t, b)` of the states.
fn state_row(rec: &Recurrence, t: usize, b: usize) -> usize {
    (t * rec.batch + b) * rec.width()
}

/// Row `(b, τ)` of z (and dz).
fn z_row(rec: &Recurrence, b: usize, tau: usize) -> usize {
    (b * rec.steps + tau) * rec.gates() * rec.units
}

/// The outputs h of processing step `t` for every sample, `[batch, units]`.
fn outputs_at<T: CpuFloat>(rec: &Recurrence, s: &[T], t: usize, out: &mut [T]) {
    let u = rec.units;
    for b in 0..rec.batch {
        let row = state_row(rec, t, b);
        out[b * u..(b + 1) * u].copy_from_slice(&s[row..row + u]);
    }
}

/// s[t] = cell(z[:, τ(t)], s[t−1], u) for t = 0, 1, …; `bias` is the GRU's recurrent bias.
pub fn forward<T: CpuFloat>(rec: &Recurrence, z: &[T], u: &[T], bias: Option<&[T]>, s: &mut [T]) {
    match rec.cell {
        RecurrentCell::Simple { .. } => simple_forward(rec, z, u, s),
        RecurrentCell::Lstm => lstm_forward(rec, z, u, s),
        RecurrentCell::Gru => gru_forward(rec, z, u, bias.unwrap_or(&[]), s),
    }
}

/// Backpropagation through time: dz from the states' gradient ds, last step first. The
/// gradient reaching h_t is ds's plus dz_{t+1}·uᵀ from the next step.
pub fn backward<T: CpuFloat>(rec: &Recurrence, s: &[T], u: &[T], ds: &[T], dz: &mut [T]) {
    match rec.cell {
        RecurrentCell::Simple { .. } => simple_backward(rec, s, u, ds, dz),
        RecurrentCell::Lstm => lstm_backward(rec, s, u, ds, dz),
        RecurrentCell::Gru => gru_backward(rec, s, u, ds, dz),
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

/// The recurrent part of the gradient reaching h_t, dz_{t+1}·uᵀ (zeros at the last step).
fn recurrent_grad<T: CpuFloat>(
    rec: &Recurrence,
    t: usize,
    u: &[T],
    dz: &[T],
    next_dz: &mut [T],
    dh: &mut [T],
) {
    let (b_n, n, g) = (rec.batch, rec.units, rec.gates() * rec.units);
    if t + 1 < rec.steps {
        let tau = rec.input_time(t + 1);
        for b in 0..b_n {
            let zr = z_row(rec, b, tau);
            next_dz[b * g..(b + 1) * g].copy_from_slice(&dz[zr..zr + g]);
        }
        matmul(b_n, g, n, false, true, next_dz, u, dh);
    } else {
        dh.fill(T::zero());
    }
}

/// SimpleRNN: stores h = f(a) and a.
fn simple_forward<T: CpuFloat>(rec: &Recurrence, z: &[T], u: &[T], s: &mut [T]) {
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
    }
}

fn simple_backward<T: CpuFloat>(rec: &Recurrence, s: &[T], u: &[T], ds: &[T], dz: &mut [T]) {
    let (b_n, n) = (rec.batch, rec.units);
    let mut next_dz = vec![T::zero(); b_n * n];
    let mut dh = vec![T::zero(); b_n * n];
    let mut v = vec![T::zero(); b_n * n];
    let mut dzt = vec![T::zero(); b_n * n];
    let from_input = rec.activation().is_some_and(|op| op.grad_source() == GradSource::Input);
    for t in (0..rec.steps).rev() {
        recurrent_grad(rec, t, u, dz, &mut next_dz, &mut dh);
        for b in 0..b_n {
            let row = state_row(rec, t, b);
            for j in 0..n {
                dh[b * n + j] = dh[b * n + j] + ds[row + j];
                v[b * n + j] = s[row + j + if from_input { n } else { 0 }];
            }
        }
        match rec.activation() {
            Some(op) => unary_grad(op, &v, &dh, &mut dzt),
            None => dzt.copy_from_slice(&dh),
        }
        let tau = rec.input_time(t);
        for b in 0..b_n {
            let zr = z_row(rec, b, tau);
            dz[zr..zr + n].copy_from_slice(&dzt[b * n..(b + 1) * n]);
        }
    }
}

/// LSTM: a = z + h_{t−1}·u per gate; stores [h, c, i, f, g, o].
fn lstm_forward<T: CpuFloat>(rec: &Recurrence, z: &[T], u: &[T], s: &mut [T]) {
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
    }
}

/// LSTM backward: dc_t = dh_t·o·(1 − tanh²c_t) + ds_c + dc_{t+1}·f_{t+1}, then the four gates'
/// pre-activation gradients.
fn lstm_backward<T: CpuFloat>(rec: &Recurrence, s: &[T], u: &[T], ds: &[T], dz: &mut [T]) {
    let (b_n, n) = (rec.batch, rec.units);
    let mut next_dz = vec![T::zero(); b_n * 4 * n];
    let mut dh = vec![T::zero(); b_n * n];
    // dc_{t+1}·f_{t+1}, carried to step t.
    let mut carry = vec![T::zero(); b_n * n];
    let one = T::one();
    for t in (0..rec.steps).rev() {
        recurrent_grad(rec, t, u, dz, &mut next_dz, &mut dh);
        let tau = rec.input_time(t);
        for b in 0..b_n {
            let (row, zr) = (state_row(rec, t, b), z_row(rec, b, tau));
            for j in 0..n {
                let at = |q: usize| s[row + q * n + j];
                let (c, i, f, g, o) = (at(1), at(2), at(3), at(4), at(5));
                let c_prev = if t > 0 { s[state_row(rec, t - 1, b) + n + j] } else { T::zero() };
                let dh_t = dh[b * n + j] + ds[row + j];
                let tc = c.tanh();
                let dc = dh_t * o * (one - tc * tc) + ds[row + n + j] + carry[b * n + j];
                carry[b * n + j] = dc * f;
                dz[zr + j] = dc * g * i * (one - i);
                dz[zr + n + j] = dc * c_prev * f * (one - f);
                dz[zr + 2 * n + j] = dc * i * (one - g * g);
                dz[zr + 3 * n + j] = dh_t * tc * o * (one - o);
            }
        }
    }
}

/// GRU (reset after): q = h_{t−1}·U + b_r; stores [h, z, r, ĥ, q_h].
fn gru_forward<T: CpuFloat>(rec: &Recurrence, z: &[T], u: &[T], bias: &[T], s: &mut [T]) {
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
    }
}

/// GRU backward: dh_t = ds + dh_{t+1}·z_{t+1} (the direct path) + dq_{t+1}·Uᵀ.
fn gru_backward<T: CpuFloat>(rec: &Recurrence, s: &[T], u: &[T], ds: &[T], dz: &mut [T]) {
    let (b_n, n) = (rec.batch, rec.units);
    let g3 = 3 * n;
    let mut next_dq = vec![T::zero(); b_n * g3];
    let mut dh = vec![T::zero(); b_n * n];
    // dh_{t+1}·z_{t+1}, carried to step t.
    let mut carry = vec![T::zero(); b_n * n];
    let one = T::one();
    for t in (0..rec.steps).rev() {
        if t + 1 < rec.steps {
            let tau = rec.input_time(t + 1);
            for b in 0..b_n {
                let (zr, row) = (z_row(rec, b, tau), state_row(rec, t + 1, b));
                next_dq[b * g3..(b + 1) * g3].copy_from_slice(&dz[zr..zr + g3]);
                for j in 0..n {
                    next_dq[b * g3 + 2 * n + j] = next_dq[b * g3 + 2 * n + j] * s[row + 2 * n + j];
                }
            }
            matmul(b_n, g3, n, false, true, &next_dq, u, &mut dh);
        } else {
            dh.fill(T::zero());
        }
        let tau = rec.input_time(t);
        for b in 0..b_n {
            let (row, zr) = (state_row(rec, t, b), z_row(rec, b, tau));
            for j in 0..n {
                let at = |k: usize| s[row + k * n + j];
                let (zg, r, hh, qh) = (at(1), at(2), at(3), at(4));
                let h_prev = if t > 0 { s[state_row(rec, t - 1, b) + j] } else { T::zero() };
                let dh_t = dh[b * n + j] + ds[row + j] + carry[b * n + j];
                carry[b * n + j] = dh_t * zg;
                let dhh = dh_t * (one - zg) * (one - hh * hh);
                dz[zr + j] = dh_t * (h_prev - hh) * zg * (one - zg);
                dz[zr + n + j] = dhh * qh * r * (one - r);
                dz[zr + 2 * n + j] = dhh;
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
                SequencePart::Last => (t + 1 == steps).then_some(b * n),
                SequencePart::Previous => (t + 1 < steps).then(|| (b * steps + rec.input_time(t + 1)) * n),
            };
            if let Some(at) = source {
                let row = state_row(rec, t, b);
                ds[row..row + n].copy_from_slice(&dy[at..at + n]);
            }
        }
    }
}
