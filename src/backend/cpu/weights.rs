//! Per-sample weights of a loss (Keras `sample_weight`): one weight per row of the loss's
//! inputs, applied to every element of that row.
use super::kernels::{CpuFloat, for_rows, map2, sum_indexed};

/// The weights w [rows] of a loss over `[rows, len / rows]` elements, or none (unweighted).
#[derive(Debug, Clone, Copy)]
pub struct RowWeights<'a, T> {
    w: Option<&'a [T]>,
    rows: usize,
}

impl<'a, T: CpuFloat> RowWeights<'a, T> {
    /// Weights `w` (one per row) over `rows` rows; `None`: every element counts once.
    pub fn new(w: Option<&'a [T]>, rows: usize) -> Self {
        RowWeights { w, rows: rows.max(1) }
    }

    /// Unweighted.
    pub fn none() -> Self {
        RowWeights { w: None, rows: 1 }
    }

    /// Σ_e w(row of e) · f(e) over `len` elements, in `sum_indexed`'s fixed order; unweighted,
    /// exactly `sum_indexed(len, f)` (and a weight of 1 gives the same bits: x · 1 = x).
    pub fn sum(&self, len: usize, f: impl Fn(usize) -> T + Sync) -> T {
        match self.w {
            None => sum_indexed(len, f),
            Some(w) => {
                let per_row = (len / self.rows).max(1);
                sum_indexed(len, |e| f(e) * w[e / per_row])
            }
        }
    }

    /// out[e] = f(a[e], b[e]) · scale · w(row of e); unweighted, `map2` with f(a, b) · scale.
    /// The scale is multiplied by the weight first, so a weight of 1 gives the same bits.
    pub fn map2_scaled(&self, a: &[T], b: &[T], out: &mut [T], scale: T, f: impl Fn(T, T) -> T + Sync) {
        match self.w {
            None => map2(a, b, out, |u, v| f(u, v) * scale),
            Some(w) => {
                let per_row = (out.len() / self.rows).max(1);
                for_rows(per_row, out, |i, row| {
                    let s = scale * w[i];
                    for (j, o) in row.iter_mut().enumerate() {
                        let e = i * per_row + j;
                        *o = f(a[e], b[e]) * s;
                    }
                });
            }
        }
    }
}
