//! Metric counters (see `Kernel::CountTopK`, `Kernel::BinaryCounts`): exact counts, so the
//! order of summation does not matter.
use super::kernels::CpuFloat;

/// Index of the first maximum of `r`.
fn argmax<T: CpuFloat>(r: &[T]) -> usize {
    let mut best = 0;
    for (j, &v) in r.iter().enumerate() {
        if v > r[best] {
            best = j;
        }
    }
    best
}

/// Rows whose label's prediction has fewer than `k` strictly larger predictions in its row
/// (TensorFlow's `in_top_k`: ties at the boundary count as in the top k).
pub fn count_top_k<T: CpuFloat>(
    rows: usize,
    cols: usize,
    sparse: bool,
    k: usize,
    p: &[T],
    labels: &[T],
) -> T {
    let hits = (0..rows)
        .filter(|&i| {
            let row = &p[i * cols..(i + 1) * cols];
            let label = if sparse {
                labels[i].to_usize().unwrap_or(usize::MAX)
            } else {
                argmax(&labels[i * cols..(i + 1) * cols])
            };
            let Some(&target) = row.get(label) else { return false };
            row.iter().filter(|&&v| v > target).count() < k
        })
        .count();
    T::from(hits).unwrap_or(T::zero())
}

/// [true positives, false positives, false negatives] of `pred > threshold` against
/// `label > 0.5`, into `out[0..3]`.
pub fn binary_counts<T: CpuFloat>(threshold: f32, p: &[T], labels: &[T], out: &mut [T]) {
    let (mut tp, mut fp, mut fneg) = (0usize, 0usize, 0usize);
    for (&v, &l) in p.iter().zip(labels) {
        match (v > T::c(threshold), l > T::c(0.5)) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fneg += 1,
            (false, false) => {}
        }
    }
    for (o, n) in out.iter_mut().zip([tp, fp, fneg]) {
        *o = T::from(n).unwrap_or(T::zero());
    }
}
