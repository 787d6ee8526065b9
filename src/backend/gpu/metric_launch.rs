//! Launches of the metric counters in `shaders/loss.wgsl` (accuracy, top-k, binary and
//! per-class counts, ROC histograms) and their loop bounds for llvmpipe. Part of the kernel
//! table in `kernels.rs`, which delegates these kernels here.
use super::kernels::{Launch, Shader, StepParams, to_u32};
use crate::error::{Error, Result};
// Each of a workgroup's 256 threads owns up to 4 of the histogram's buckets.
use crate::metrics::MAX_AUC_THRESHOLDS;
use crate::program::{CLASS_COUNT_CHUNK, Kernel, ROC_CHUNK};

/// The launch of a metric `kernel` on a device allowing `max_groups` workgroups per
/// dimension; `None` for kernels that are not metric counters.
pub(crate) fn launch(kernel: &Kernel, max_groups: u32) -> Result<Option<Launch>> {
    use Kernel::*;
    // Params { rows, cols, sparse, len, threshold } of loss.wgsl.
    let params = |rows: usize, cols: usize, sparse: bool, len: usize, threshold: f32| -> Result<StepParams> {
        Ok(StepParams {
            u: [to_u32(rows)?, to_u32(cols)?, u32::from(sparse), to_u32(len)?],
            f: [threshold, 0.0, 0.0, 0.0],
            g: [0; 12],
        })
    };
    let groups = |what: &str, x: usize, y: usize| -> Result<[u32; 3]> {
        if x.max(y) > max_groups as usize {
            return Err(Error::invalid(
                "kernel size",
                format!("{what} needs {x}×{y} workgroups, more than {max_groups} per dimension"),
            ));
        }
        Ok([to_u32(x.max(1))?, to_u32(y.max(1))?, 1])
    };
    let launch =
        |entry, params, groups| Launch { shader: Shader::Loss, entry, constants: vec![], params, groups };
    Ok(Some(match *kernel {
        CountTopK { rows, cols, sparse, k } => {
            launch("count_top_k", params(rows, cols, sparse, k, 0.0)?, Some([1; 3]))
        }
        BinaryCounts { len, threshold } => {
            launch("binary_counts", params(0, 0, false, len, threshold)?, Some([1; 3]))
        }
        CountCorrect { rows, cols, sparse, threshold } => {
            launch("count_correct", params(rows, cols, sparse, 0, threshold)?, Some([1; 3]))
        }
        RocHistogram { rows, cols, sparse, thresholds } => {
            if !(2..=MAX_AUC_THRESHOLDS).contains(&thresholds) {
                return Err(Error::invalid(
                    "AUC",
                    format!("num_thresholds {thresholds} is not in 2..={MAX_AUC_THRESHOLDS}"),
                ));
            }
            let chunks = (rows * cols).div_ceil(ROC_CHUNK);
            let groups = groups("the ROC histogram", chunks, 1)?;
            launch(
                "roc_histogram",
                params(rows, cols, sparse, thresholds, 0.0)?,
                (chunks > 0).then_some(groups),
            )
        }
        ClassCounts { rows, cols, sparse, threshold } => {
            let (x, y) = (cols.div_ceil(256), rows.div_ceil(CLASS_COUNT_CHUNK));
            let groups = groups("the per-class counts", x, y)?;
            let params =
                params(rows, cols, sparse, usize::from(threshold.is_some()), threshold.unwrap_or(0.0))?;
            launch("class_counts", params, (x * y > 0).then_some(groups))
        }
        _ => return Ok(None),
    }))
}

/// An upper bound on the loop iterations of one invocation of a metric `kernel` (see
/// `loops::loop_iterations`); `None` for other kernels.
pub(crate) fn loop_iterations(kernel: &Kernel) -> Option<u64> {
    use Kernel::*;
    let per_lane = |n: usize, lanes: usize| n.div_ceil(lanes) as u64;
    Some(match *kernel {
        BinaryCounts { len, .. } => per_lane(len, 256) + 24,
        CountCorrect { rows, cols, .. } | CountTopK { rows, cols, .. } => {
            per_lane(rows, 256) * (3 * cols as u64 + 1) + 8
        }
        // Tiles of 256 elements, each scanned whole by every thread; then the 4 stores.
        RocHistogram { rows, cols, .. } => per_lane((rows * cols).min(ROC_CHUNK), 256) * 257 + 4,
        ClassCounts { rows, threshold: Some(_), .. } => rows.min(CLASS_COUNT_CHUNK) as u64,
        // Per tile: two argmax loops over the columns and the 256-entry scan.
        ClassCounts { rows, cols, .. } => {
            per_lane(rows.min(CLASS_COUNT_CHUNK), 256) * (2 * cols as u64 + 257)
        }
        _ => return None,
    })
}
