//! Elementwise losses ([`PointwiseLoss`]): mean absolute error, Huber, binary cross-entropy
//! on probabilities. The mean is a fixed-order chunked sum (deterministic).
use super::kernels::CpuFloat;
use super::weights::RowWeights;
use crate::program::PointwiseLoss;

/// The loss of one element: prediction `p`, target `t`.
fn value<T: CpuFloat>(loss: PointwiseLoss, p: T, t: T) -> T {
    match loss {
        PointwiseLoss::AbsoluteError => (p - t).abs(),
        PointwiseLoss::Huber { delta } => {
            let (d, delta, half) = ((p - t).abs(), T::c(delta), T::c(0.5));
            if d <= delta { half * d * d } else { delta * d - half * delta * delta }
        }
        PointwiseLoss::BinaryCrossEntropy { eps } => {
            let q = p.max(T::c(eps)).min(T::one() - T::c(eps));
            -(t * q.ln() + (T::one() - t) * (T::one() - q).ln())
        }
    }
}

/// ∂loss/∂p of one element.
fn derivative<T: CpuFloat>(loss: PointwiseLoss, p: T, t: T) -> T {
    let d = p - t;
    let sign = |d: T| {
        if d > T::zero() {
            T::one()
        } else if d < T::zero() {
            -T::one()
        } else {
            T::zero()
        }
    };
    match loss {
        PointwiseLoss::AbsoluteError => sign(d),
        PointwiseLoss::Huber { delta } => {
            let delta = T::c(delta);
            if d.abs() <= delta { d } else { delta * sign(d) }
        }
        PointwiseLoss::BinaryCrossEntropy { eps } => {
            let (lo, hi) = (T::c(eps), T::one() - T::c(eps));
            if p < lo || p > hi { T::zero() } else { d / (p * (T::one() - p)) }
        }
    }
}

/// Mean of `loss` over the elements of `p` and `t` (each row's elements times its weight
/// when `w` has weights).
pub fn loss<T: CpuFloat>(loss: PointwiseLoss, p: &[T], t: &[T], w: RowWeights<T>) -> T {
    let len = p.len().min(t.len());
    w.sum(len, |i| value(loss, p[i], t[i])) / T::from(len).unwrap_or(T::one())
}

/// dp = ∂loss/∂p · dloss / len (times the row's weight when weighted).
pub fn grad<T: CpuFloat>(loss: PointwiseLoss, p: &[T], t: &[T], w: RowWeights<T>, dloss: T, dp: &mut [T]) {
    let s = dloss / T::from(p.len()).unwrap_or(T::one());
    w.map2_scaled(p, t, dp, s, |p, t| derivative(loss, p, t));
}
