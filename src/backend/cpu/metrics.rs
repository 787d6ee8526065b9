//! Metric counters (see `Kernel::CountTopK`, `Kernel::BinaryCounts`, `Kernel::ClassCounts`):
//! exact counts, so the order of summation does not matter; and the ROC AUC histograms
//! (`Kernel::RocHistogram`), summed in element order as on the GPU.
use super::kernels::CpuFloat;
use crate::program::{CLASS_COUNT_CHUNK, ROC_CHUNK};

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
    weights: Option<&[T]>,
) -> T {
    let hits = (0..rows).filter(|&i| {
        let row = &p[i * cols..(i + 1) * cols];
        let label = if sparse {
            labels[i].to_usize().unwrap_or(usize::MAX)
        } else {
            argmax(&labels[i * cols..(i + 1) * cols])
        };
        let Some(&target) = row.get(label) else { return false };
        row.iter().filter(|&&v| v > target).count() < k
    });
    // With weights: their sum over the hits, in row order.
    match weights {
        Some(w) => hits.fold(T::zero(), |sum, i| sum + w[i]),
        None => T::from(hits.count()).unwrap_or(T::zero()),
    }
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

/// The ROC histogram bucket of probability `p` among `thresholds` (see `Kernel::RocHistogram`):
/// min(ceil(p·(T − 1)), T) − 1, and 0 for p ≤ 0 or NaN.
fn roc_bucket<T: CpuFloat>(p: T, thresholds: usize) -> usize {
    if p.is_nan() || p <= T::zero() {
        return 0;
    }
    let top = T::from(thresholds).unwrap_or(T::zero());
    let b = (p * T::from(thresholds - 1).unwrap_or(T::zero())).ceil().min(top);
    b.to_usize().unwrap_or(1).saturating_sub(1)
}

/// Partial ROC histograms `out` [chunks, 2T] (see `Kernel::RocHistogram`), each chunk's
/// elements added in order as the GPU kernel does.
pub fn roc_histogram<T: CpuFloat>(
    cols: usize,
    sparse: bool,
    thresholds: usize,
    p: &[T],
    labels: &[T],
    out: &mut [T],
) {
    out.iter_mut().for_each(|o| *o = T::zero());
    for (c, (chunk, hist)) in p.chunks(ROC_CHUNK).zip(out.chunks_mut(2 * thresholds)).enumerate() {
        for (k, &v) in chunk.iter().enumerate() {
            let e = c * ROC_CHUNK + k;
            let w = if sparse {
                let label = labels[e / cols].to_usize();
                if label == Some(e % cols) { T::one() } else { T::zero() }
            } else {
                labels[e]
            };
            let b = roc_bucket(v, thresholds);
            hist[b] = hist[b] + w;
            hist[thresholds + b] = hist[thresholds + b] + (T::one() - w);
        }
    }
}

/// Partial per-class TP / FP / FN `out` [chunks, 3·cols] (see `Kernel::ClassCounts`).
pub fn class_counts<T: CpuFloat>(
    rows: usize,
    cols: usize,
    sparse: bool,
    threshold: Option<f32>,
    p: &[T],
    labels: &[T],
    out: &mut [T],
) {
    out.iter_mut().for_each(|o| *o = T::zero());
    let add = |counts: &mut [T], k: usize| counts[k] = counts[k] + T::one();
    for (c, counts) in out.chunks_mut(3 * cols).enumerate() {
        for i in c * CLASS_COUNT_CHUNK..((c + 1) * CLASS_COUNT_CHUNK).min(rows) {
            let row = &p[i * cols..(i + 1) * cols];
            match threshold {
                Some(t) => {
                    for (k, (&v, &l)) in row.iter().zip(&labels[i * cols..(i + 1) * cols]).enumerate() {
                        match (v > T::c(t), l > T::c(0.5)) {
                            (true, true) => add(counts, k),
                            (true, false) => add(counts, cols + k),
                            (false, true) => add(counts, 2 * cols + k),
                            (false, false) => {}
                        }
                    }
                }
                None => {
                    let predicted = argmax(row);
                    let label = match sparse {
                        true => labels[i].to_usize().filter(|&l| l < cols),
                        false => Some(argmax(&labels[i * cols..(i + 1) * cols])),
                    };
                    if label == Some(predicted) {
                        add(counts, predicted);
                    } else {
                        add(counts, cols + predicted);
                        if let Some(l) = label {
                            add(counts, 2 * cols + l);
                        }
                    }
                }
            }
        }
    }
}
