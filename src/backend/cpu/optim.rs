//! CPU reference of the optimizer updates, gradient clipping and weight penalties (see the
//! `Kernel` variants of the same names for the contracts). Generic over f32/f64 like every CPU
//! kernel; elementwise work runs in fixed chunks over the pool, reductions in a fixed order.
use super::kernels::{CpuFloat, for_chunks, sum_indexed};
use super::pool::SharedMut;

/// Keras SGD update, in place on `p` and `vel` (`vel` unused, and may be empty, without
/// momentum).
pub fn sgd_update<T: CpuFloat>(lr: T, momentum: T, nesterov: bool, p: &mut [T], g: &[T], vel: &mut [T]) {
    if momentum == T::zero() {
        p.iter_mut().zip(g).for_each(|(p, &g)| *p = *p - lr * g);
        return;
    }
    for ((p, &g), v) in p.iter_mut().zip(g).zip(vel.iter_mut()) {
        *v = momentum * *v - lr * g;
        *p = if nesterov { *p + momentum * *v - lr * g } else { *p + *v };
    }
}

/// Keras Adam (`weight_decay` 0) or AdamW update at step t, in place on `p`, `m`, `v` and,
/// with AMSGrad, the running maximum `v_hat`.
#[allow(clippy::too_many_arguments)]
pub fn adam_update<T: CpuFloat>(
    lr: T,
    t: u32,
    beta1: T,
    beta2: T,
    eps: T,
    weight_decay: T,
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    v_hat: Option<&mut [T]>,
) {
    let t = t.max(1) as i32;
    let alpha = lr * (T::one() - beta2.powi(t)).sqrt() / (T::one() - beta1.powi(t));
    let len = p.len().min(g.len()).min(m.len()).min(v.len());
    let (p, m, v, v_hat) =
        (SharedMut::new(p), SharedMut::new(m), SharedMut::new(v), v_hat.map(SharedMut::new));
    for_chunks(len, |r| {
        // SAFETY: `for_chunks` hands out disjoint ranges of each buffer.
        let (p, m, v) = unsafe { (p.range(r.clone()), m.range(r.clone()), v.range(r.clone())) };
        let mut v_hat = v_hat.as_ref().map(|h| unsafe { h.range(r.clone()) });
        for (i, &g) in g[r].iter().enumerate() {
            if weight_decay != T::zero() {
                p[i] = p[i] - p[i] * weight_decay * lr;
            }
            m[i] = m[i] + (g - m[i]) * (T::one() - beta1);
            v[i] = v[i] + (g * g - v[i]) * (T::one() - beta2);
            let second = match v_hat.as_mut() {
                Some(h) => {
                    h[i] = h[i].max(v[i]);
                    h[i]
                }
                None => v[i],
            };
            p[i] = p[i] - alpha * m[i] / (second.sqrt() + eps);
        }
    });
}

/// Keras Adagrad update, in place on `p` and the accumulator `acc`.
pub fn adagrad_update<T: CpuFloat>(lr: T, eps: T, p: &mut [T], g: &[T], acc: &mut [T]) {
    let len = p.len().min(g.len()).min(acc.len());
    let (p, acc) = (SharedMut::new(p), SharedMut::new(acc));
    for_chunks(len, |r| {
        // SAFETY: `for_chunks` hands out disjoint ranges of each buffer.
        let (p, acc) = unsafe { (p.range(r.clone()), acc.range(r.clone())) };
        for (i, &g) in g[r].iter().enumerate() {
            acc[i] = acc[i] + g * g;
            p[i] = p[i] - lr * g / (acc[i] + eps).sqrt();
        }
    });
}

/// Keras RMSprop update, in place on `p`, the mean square `ms`, and (when used: momentum ≠ 0,
/// centered) the momentum buffer `mom` and the mean gradient `mg`.
#[allow(clippy::too_many_arguments)]
pub fn rmsprop_update<T: CpuFloat>(
    lr: T,
    rho: T,
    momentum: T,
    eps: T,
    p: &mut [T],
    g: &[T],
    ms: &mut [T],
    mom: Option<&mut [T]>,
    mg: Option<&mut [T]>,
) {
    let len = p.len().min(g.len()).min(ms.len());
    let (p, ms) = (SharedMut::new(p), SharedMut::new(ms));
    let (mom, mg) = (mom.map(SharedMut::new), mg.map(SharedMut::new));
    for_chunks(len, |r| {
        // SAFETY: `for_chunks` hands out disjoint ranges of each buffer.
        let (p, ms) = unsafe { (p.range(r.clone()), ms.range(r.clone())) };
        let mut mom = mom.as_ref().map(|s| unsafe { s.range(r.clone()) });
        let mut mg = mg.as_ref().map(|s| unsafe { s.range(r.clone()) });
        for (i, &g) in g[r].iter().enumerate() {
            ms[i] = rho * ms[i] + (T::one() - rho) * g * g;
            let denominator = match mg.as_mut() {
                Some(mg) => {
                    mg[i] = rho * mg[i] + (T::one() - rho) * g;
                    ms[i] - mg[i] * mg[i] + eps
                }
                None => ms[i] + eps,
            };
            let increment = lr * g / denominator.sqrt();
            match mom.as_mut() {
                Some(mom) => {
                    mom[i] = momentum * mom[i] + increment;
                    p[i] = p[i] - mom[i];
                }
                None => p[i] = p[i] - increment,
            }
        }
    });
}

/// Σ x² in a fixed order (see `sum_indexed`).
pub fn sum_squares<T: CpuFloat>(x: &[T]) -> T {
    sum_indexed(x.len(), |i| x[i] * x[i])
}

/// g *= c / max(sqrt(total), c), in place.
pub fn clip_by_norm<T: CpuFloat>(total: T, clip_norm: T, g: &mut [T]) {
    let scale = clip_norm / total.sqrt().max(clip_norm);
    let len = g.len();
    let g = SharedMut::new(g);
    // SAFETY: `for_chunks` hands out disjoint ranges.
    for_chunks(len, |r| unsafe { g.range(r) }.iter_mut().for_each(|v| *v = *v * scale));
}

/// g = min(max(g, −c), c), in place (NaN stays NaN).
pub fn clip_by_value<T: CpuFloat>(clip_value: T, g: &mut [T]) {
    let len = g.len();
    let g = SharedMut::new(g);
    let clip = |v: T| {
        if v > clip_value {
            clip_value
        } else if v < -clip_value {
            -clip_value
        } else {
            v
        }
    };
    // SAFETY: `for_chunks` hands out disjoint ranges.
    for_chunks(len, |r| unsafe { g.range(r) }.iter_mut().for_each(|v| *v = clip(*v)));
}

/// l1·Σ|w| + l2·Σw², one fixed-order sum of l1·|w| + l2·w².
pub fn weight_penalty<T: CpuFloat>(l1: T, l2: T, w: &[T]) -> T {
    sum_indexed(w.len(), |i| l1 * w[i].abs() + l2 * w[i] * w[i])
}

/// dw = dy·(l1·sign(w) + 2·l2·w), sign(0) = 0.
pub fn weight_penalty_grad<T: CpuFloat>(l1: T, l2: T, w: &[T], dy: T, dw: &mut [T]) {
    let sign = |v: T| {
        if v > T::zero() {
            T::one()
        } else if v < T::zero() {
            -T::one()
        } else {
            T::zero()
        }
    };
    let two_l2 = T::c(2.0) * l2;
    dw.iter_mut().zip(w).for_each(|(o, &v)| *o = dy * (l1 * sign(v) + two_l2 * v));
}
