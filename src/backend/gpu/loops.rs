//! llvmpipe's loop limit: an upper bound on the loop iterations of one invocation of each
//! kernel, which the host checks before running a step on llvmpipe (see `exec::step_launch`).
use crate::program::Kernel;

/// llvmpipe (Mesa's CPU driver behind lavapipe and the GL software adapter) silently ends a
/// shader invocation's loops after 65535 iterations in all (nested loops count together), so
/// a longer loop computes a wrong result without any error. Measured on Mesa 22.3: a matmul
/// with k = 100 000 on the direct kernel summed only the first ~65 530 products.
pub(crate) const LLVMPIPE_LOOP_LIMIT: u64 = 65_535;

/// An upper bound on the loop iterations one invocation of `launch` runs for `kernel`: what
/// has to stay under [`LLVMPIPE_LOOP_LIMIT`] on llvmpipe. Loops with constant trip counts
/// (4-wide register blocks, the 256-lane trees) are counted too, to stay on the safe side.
pub(crate) fn loop_iterations(kernel: &Kernel, entry: &str) -> u64 {
    use Kernel::*;
    let per_lane = |n: usize, lanes: usize| n.div_ceil(lanes) as u64;
    if let Some(loops) = super::metric_launch::loop_iterations(kernel) {
        return loops;
    }
    match *kernel {
        MatMul { k, trans_a, .. } | MatMulBiasAct { k, trans_a, .. } => {
            let k = k as u64;
            match entry {
                // Per 16-wide K step: the step, two tile-load loops of 4, the 16-step inner loop.
                "matmul" | "matmul_vec4_tiled" => k.div_ceil(16) * 25 + 16,
                // Four k per iteration: vec4 without A transposed; the direct kernel (unrolled),
                // plus up to 3 remainder iterations.
                "matmul_vec4" if !trans_a => k.div_ceil(4) + 16,
                "matmul_direct" => k / 4 + 3 + 16,
                // One iteration per k (vec4 with A transposed), plus the stores.
                _ => k + 16,
            }
        }
        SumRows { rows, .. } => per_lane(rows, 16) + 4,
        SumAll { len, .. }
        | MeanSquaredError { len, .. }
        | SigmoidBinaryCrossEntropy { len, .. }
        | Pointwise { len, .. } => per_lane(len, 256) + 8,
        // Four elements per iteration, at most three left over, then the 256-lane tree.
        SumSquares { len, .. } | WeightPenalty { len, .. } => per_lane(len, 1024) + 3 + 8,
        Softmax { cols, .. }
        | LogSoftmax { cols, .. }
        | SoftmaxGrad { cols, .. }
        | LogSoftmaxGrad { cols, .. }
        | SoftmaxCrossEntropyGrad { cols, .. } => 3 * cols as u64,
        SoftmaxCrossEntropy { rows, cols, .. } => per_lane(rows, 256) * (3 * cols as u64 + 1) + 8,
        // Gathers loop over the kernel taps; max-pool's gradient finds each window's maximum.
        Im2Col { .. } => 1,
        Col2Im { win } | MaxPool { win } | AvgPool { win } | AvgPoolGrad { win } => {
            let taps = (win.kernel.0 * win.kernel.1) as u64;
            2 * taps + (win.kernel.0 + win.kernel.1) as u64 + 4
        }
        MaxPoolGrad { win, .. } => {
            let taps = (win.kernel.0 * win.kernel.1) as u64;
            taps * (taps + win.kernel.0 as u64 + 1) + 4
        }
        // Passes over the rows of 16 columns per workgroup (16 lanes each), plus the trees.
        BatchMoments { rows, .. } => 2 * per_lane(rows, 16) + 8,
        BatchNormGradSums { rows, .. } => per_lane(rows, 16) + 8,
        // One element per invocation; Adam's β^t by binary exponentiation (≤ 32 steps).
        _ => 32,
    }
}
