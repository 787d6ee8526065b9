//! Kernels split into partial results over many workgroups, then an in-order sum, instead of
//! the few workgroups their output would give a GPU: split-K matmuls (`shaders/splitk.wgsl`;
//! a small C over a long K, a convolution's filter gradient) and split-row column reductions
//! (`*_partial` / `*_reduce` in `shaders/reduce.wgsl` and `shaders/norm.wgsl`; a few columns
//! over many rows: a convolution's bias gradient, batch-norm statistics and gradient sums). Both orders are fixed: the same bits on every run.
use super::kernels::{Launch, Shader};
use super::launch::{grid, u};
use super::params::{ClipParams, NormParams, PenaltyParams, ReduceParams, SplitKParams};
use crate::error::Result;
use crate::program::Kernel;

/// A matmul split over K (`shaders/splitk.wgsl`): the partial products, their in-order sum,
/// and the scratch they share (bound as arg 4).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SplitK {
    pub partial: Launch,
    pub reduce: Launch,
    /// Elements of the partial products: splits · m · n.
    pub scratch_len: usize,
    /// Loop iterations of one partial invocation (for llvmpipe's limit).
    pub loops: u64,
}

/// K per split: short enough for llvmpipe's loop limit (25 loop steps per k with the 4×4
/// register block) and long enough to amortise the partial products.
const SPLIT_K_CHUNK: usize = 2048;

/// The split-K plan of `kernel`, for a plain matmul whose C has few 64×64 tiles (too few
/// workgroups for a GPU) and a long K — a convolution's filter gradient, [patch, filters]
/// over K = batch × positions. None for every other kernel.
pub(crate) fn split_k(kernel: &Kernel, max_groups: u32) -> Result<Option<SplitK>> {
    let Kernel::MatMul { m, k, n, trans_a, trans_b } = *kernel else { return Ok(None) };
    let tiles = m.div_ceil(64) * n.div_ceil(64);
    if k < 2 * SPLIT_K_CHUNK || tiles >= 16 || m * n == 0 {
        return Ok(None);
    }
    let splits = k.div_ceil(SPLIT_K_CHUNK).min(512);
    let chunk = k.div_ceil(splits);
    let params = SplitKParams {
        m: u(m)?,
        k: u(k)?,
        n: u(n)?,
        splits: u(splits)?,
        trans_a: u32::from(trans_a),
        trans_b: u32::from(trans_b),
        chunk: u(chunk)?,
        _pad: 0,
    };
    let (gx, gy) = (n.div_ceil(4).div_ceil(16), m.div_ceil(4).div_ceil(16));
    if gx.max(gy).max(splits) > max_groups as usize {
        return Ok(None);
    }
    let loops = chunk as u64 * 25 + 32;
    let partial =
        Launch::new(Shader::SplitK, "matmul_partial", &params, Some([u(gx)?, u(gy)?, u(splits)?]), loops);
    // The in-order sum loops over the splits.
    let reduce =
        Launch::new(Shader::SplitK, "splitk_reduce", &params, grid(m * n, 256, max_groups)?, splits as u64);
    Ok(Some(SplitK { partial, reduce, scratch_len: splits * m * n, loops }))
}

/// Rows per chunk of the split column kernels (`SPLIT_ROWS` in shaders/reduce.wgsl and
/// shaders/norm.wgsl): 64 rows per lane.
const SPLIT_ROWS: usize = 1024;

/// The split-row plan of a column reduction over many rows and few columns (fewer than 32
/// groups of 16 columns: a workgroup per group would leave a GPU idle while each lane walks
/// rows/16 rows) — `SumRows`, `BatchMoments`, `BatchNormGradSums`: partial results per chunk
/// of [`SPLIT_ROWS`] rows on (column groups × chunks) workgroups, then an in-order combination
/// per output. None for every other kernel.
pub(crate) fn split_columns(kernel: &Kernel, max_groups: u32) -> Result<Option<SplitK>> {
    // (shader, partial and reduce entries, rows, cols, partial values per chunk and column,
    // reduce threads, eps)
    let (shader, partial_entry, reduce_entry, rows, cols, per_col, outputs, eps) = match *kernel {
        Kernel::SumRows { rows, cols } => {
            (Shader::Reduce, "sum_rows_partial", "sum_rows_reduce", rows, cols, 1, cols, 0.0)
        }
        Kernel::BatchMoments { rows, cols } => {
            (Shader::Norm, "bn_moments_partial", "bn_moments_reduce", rows, cols, 2, cols, 0.0)
        }
        Kernel::BatchNormGradSums { rows, cols, eps } => {
            (Shader::Norm, "bn_grad_sums_partial", "bn_sums_reduce", rows, cols, 2, 2 * cols, eps)
        }
        _ => return Ok(None),
    };
    let (groups, chunks) = (cols.div_ceil(16), rows.div_ceil(SPLIT_ROWS));
    if rows < 8 * SPLIT_ROWS || groups >= 32 || cols == 0 || chunks > max_groups as usize {
        return Ok(None);
    }
    // Loops per invocation: two passes over the chunk's rows per lane and the lane trees; the
    // reduce's chunks.
    let loops = (2 * SPLIT_ROWS / 16 + 16).max(chunks) as u64;
    let (partial_groups, reduce_groups) =
        (Some([u(groups)?, u(chunks)?, 1]), grid(outputs, 256, max_groups)?);
    // reduce.wgsl { rows, cols, len = chunks }, norm.wgsl { rows, cols, len, chunks, eps }.
    let (partial, reduce) = if shader == Shader::Reduce {
        let params = ReduceParams { rows: u(rows)?, cols: u(cols)?, len: u(chunks)?, ..Default::default() };
        (
            Launch::new(shader, partial_entry, &params, partial_groups, loops),
            Launch::new(shader, reduce_entry, &params, reduce_groups, loops),
        )
    } else {
        let params = NormParams {
            rows: u(rows)?,
            cols: u(cols)?,
            len: u(rows * cols)?,
            chunks: u(chunks)?,
            eps,
            ..Default::default()
        };
        (
            Launch::new(shader, partial_entry, &params, partial_groups, loops),
            Launch::new(shader, reduce_entry, &params, reduce_groups, loops),
        )
    };
    Ok(Some(SplitK { partial, reduce, scratch_len: chunks * per_col * cols, loops }))
}

/// Elements per workgroup of a split total (`SPLIT_ELEMS` in shaders/clip.wgsl and
/// shaders/penalty.wgsl): 64 per thread.
const SPLIT_ELEMS: usize = 16384;

/// The split plan of a one-workgroup total over many elements — `SumSquares` (gradient
/// clipping) and `WeightPenalty` over a large parameter: partial totals per chunk of
/// [`SPLIT_ELEMS`] on many workgroups, then one thread adds them in order. None for other
/// kernels and for short totals.
pub(crate) fn split_total(kernel: &Kernel, max_groups: u32) -> Result<Option<SplitK>> {
    let (shader, partial_entry, reduce_entry, len, flag, f) = match *kernel {
        Kernel::SumSquares { len, accumulate } => {
            (Shader::Clip, "sum_squares_partial", "sum_squares_reduce", len, accumulate, [0.0; 4])
        }
        Kernel::WeightPenalty { len, l1, l2 } => (
            Shader::Penalty,
            "weight_penalty_partial",
            "weight_penalty_reduce",
            len,
            false,
            [l1, l2, 0.0, 0.0],
        ),
        _ => return Ok(None),
    };
    let chunks = len.div_ceil(SPLIT_ELEMS);
    if len < 4 * SPLIT_ELEMS || chunks > max_groups as usize {
        return Ok(None);
    }
    let loops = (SPLIT_ELEMS / 1024 + 3 + 8).max(chunks) as u64;
    let groups = (Some([u(chunks)?, 1, 1]), Some([1, 1, 1]));
    let (partial, reduce) = if shader == Shader::Clip {
        let params = ClipParams {
            len: u(len)?,
            accumulate: u32::from(flag),
            chunks: u(chunks)?,
            ..Default::default()
        };
        (
            Launch::new(shader, partial_entry, &params, groups.0, loops),
            Launch::new(shader, reduce_entry, &params, groups.1, loops),
        )
    } else {
        let params =
            PenaltyParams { len: u(len)?, chunks: u(chunks)?, l1: f[0], l2: f[1], ..Default::default() };
        (
            Launch::new(shader, partial_entry, &params, groups.0, loops),
            Launch::new(shader, reduce_entry, &params, groups.1, loops),
        )
    };
    Ok(Some(SplitK { partial, reduce, scratch_len: chunks, loops }))
}

/// Positions per split of a convolution's filter gradient.
const CONV_FILTER_CHUNK: usize = 2048;

/// The split plan of `Conv2dFilterGrad` over many positions: partial gradients per chunk of
/// [`CONV_FILTER_CHUNK`] positions (`conv2d_filter_partial`, one grid layer per chunk), then
/// their in-order sum (`conv2d_filter_reduce`). None for other kernels and few positions.
pub(crate) fn split_conv_filter(kernel: &Kernel, max_groups: u32) -> Result<Option<SplitK>> {
    let Kernel::Conv2dFilterGrad { win, filters } = *kernel else { return Ok(None) };
    let positions = win.positions();
    if positions < 2 * CONV_FILTER_CHUNK {
        return Ok(None);
    }
    let splits = positions.div_ceil(CONV_FILTER_CHUNK);
    let Some(groups) =
        super::launch::gemm_grid(max_groups, "the filter gradient", win.patch_len(), filters, splits)?
    else {
        return Ok(None);
    };
    if splits > max_groups as usize {
        return Ok(None);
    }
    let params = super::launch::conv_gemm_params(&win, filters, CONV_FILTER_CHUNK)?;
    let loops = CONV_FILTER_CHUNK as u64 + 20;
    let partial = Launch::new(Shader::ConvGemm, "conv2d_filter_partial", &params, Some(groups), loops);
    let outputs = win.patch_len() * filters;
    let reduce = Launch::new(
        Shader::ConvGemm,
        "conv2d_filter_reduce",
        &params,
        grid(outputs, 256, max_groups)?,
        splits as u64,
    );
    Ok(Some(SplitK { partial, reduce, scratch_len: splits * outputs, loops: loops.max(splits as u64) }))
}

/// A reduction split over chunks ([`split_columns`], [`split_total`] or
/// [`split_conv_filter`]), or None.
pub(crate) fn split_reduction(kernel: &Kernel, max_groups: u32) -> Result<Option<SplitK>> {
    if let Some(split) = split_columns(kernel, max_groups)? {
        return Ok(Some(split));
    }
    if let Some(split) = split_conv_filter(kernel, max_groups)? {
        return Ok(Some(split));
    }
    split_total(kernel, max_groups)
}

/// Whether the GPU runs `kernel` split over chunks of rows or elements (for tests and
/// benchmarks).
pub fn splits_rows(kernel: &Kernel) -> bool {
    matches!(split_reduction(kernel, u32::MAX), Ok(Some(_)))
}

/// Whether the GPU runs `kernel` as a split-K matmul (for tests and benchmarks).
pub fn splits_k(kernel: &Kernel) -> bool {
    matches!(split_k(kernel, u32::MAX), Ok(Some(_)))
}
