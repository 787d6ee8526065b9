//! Vectorised tanh and logistic sigmoid over f32 slices, for the recurrent cells' gate math
//! (libm's scalar `tanhf`/`expf` took a quarter of an LSTM step's time).
//!
//! tanh is Eigen's rational approximation (`generic_fast_tanh_float`: odd degree-13 over even
//! degree-6 polynomials on [-7.905, 7.905], where f32 tanh reaches ±1): branch-free, so the
//! loops vectorise; they are compiled for AVX-512, AVX2+FMA and the baseline, chosen at run
//! time (never by the build machine). σ(x) = ½ + ½·tanh(x/2). The maximum error against libm
//! is under 5e-7 absolute, a few ulp (checked in the tests below); results do not depend on the path taken beyond
//! FMA contraction, which each path applies or not consistently for a given machine.

/// The clamp beyond which f32 tanh is ±1.
const CLAMP: f32 = 7.905_311;
/// Below this |x|, tanh(x) = x to f32 precision.
const TINY: f32 = 0.0004;
// Eigen's coefficients, as published (more digits than f32 keeps).
#[allow(clippy::excessive_precision)]
const ALPHA: [f32; 7] = [
    4.893_524_6e-3,
    6.372_619_3e-4,
    1.485_722_4e-5,
    5.122_297e-8,
    -8.604_671_5e-11,
    2.000_187_9e-13,
    -2.760_768_5e-16,
];
#[allow(clippy::excessive_precision)]
const BETA: [f32; 4] = [4.893_525e-3, 2.268_434_6e-3, 1.185_347_1e-4, 1.198_258_4e-6];

#[inline(always)]
fn tanh_one(a: f32) -> f32 {
    let x = a.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    let mut p = x2 * ALPHA[6] + ALPHA[5];
    p = x2 * p + ALPHA[4];
    p = x2 * p + ALPHA[3];
    p = x2 * p + ALPHA[2];
    p = x2 * p + ALPHA[1];
    p = x2 * p + ALPHA[0];
    p *= x;
    let mut q = x2 * BETA[3] + BETA[2];
    q = x2 * q + BETA[1];
    q = x2 * q + BETA[0];
    if a.abs() < TINY { a } else { p / q }
}

#[inline(always)]
fn sigmoid_one(a: f32) -> f32 {
    0.5 + 0.5 * tanh_one(0.5 * a)
}

macro_rules! multiversion {
    ($name:ident, $one:ident) => {
        /// In place over `v` (see the module).
        pub fn $name(v: &mut [f32]) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512(v: &mut [f32]) {
                    v.iter_mut().for_each(|x| *x = $one(*x));
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2(v: &mut [f32]) {
                    v.iter_mut().for_each(|x| *x = $one(*x));
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F (detected above).
                    return unsafe { avx512(v) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has AVX2 and FMA (detected above).
                    return unsafe { avx2(v) };
                }
            }
            v.iter_mut().for_each(|x| *x = $one(*x));
        }
    };
}

multiversion!(tanh_in_place, tanh_one);
multiversion!(sigmoid_in_place, sigmoid_one);

#[cfg(test)]
mod tests {
    use super::*;

    /// Within 5e-7 of libm (absolute; tanh and σ are in [-1, 1]) over [-12, 12], exactly ±1
    /// and 0/1 far out, odd, and tanh(x) = x for tiny x.
    #[test]
    fn close_to_libm_everywhere() {
        let xs: Vec<f32> = (-120_000..=120_000).map(|i| i as f32 * 1e-4).collect();
        let (mut t, mut s) = (xs.clone(), xs.clone());
        tanh_in_place(&mut t);
        sigmoid_in_place(&mut s);
        for ((&x, &t), &s) in xs.iter().zip(&t).zip(&s) {
            let (want_t, want_s) = (x.tanh(), 1.0 / (1.0 + (-x).exp()));
            assert!((t - want_t).abs() < 5e-7, "tanh({x}) = {t}, libm {want_t}");
            assert!((s - want_s).abs() < 5e-7, "sigmoid({x}) = {s}, libm {want_s}");
        }
        let mut far = vec![-100.0, 100.0, 1e-5, -1e-5];
        tanh_in_place(&mut far);
        assert_eq!(far, vec![-1.0, 1.0, 1e-5, -1e-5]);
    }
}
