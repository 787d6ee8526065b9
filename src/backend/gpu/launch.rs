//! The launch families the kernel table (`program/table.rs`) builds GPU launches with: each
//! helper picks the shader, grid and loop bound of one kind of kernel (elementwise, one row per
//! thread, one workgroup, window gathers, batch-norm columns, matmuls). The table gives the
//! entry point and the typed parameters.
pub(crate) use super::kernels::{Launch, Shader};
pub(crate) use super::params::ElementwiseParams;

use super::kernels::MatmulKernel;
use super::params::{
    ClipParams, ColumnsParams, ConvGemmParams, ConvParams, LossParams, MatmulParams, NormParams,
    OptimizerParams, PenaltyParams, RecurrentParams, ReduceParams, ShaderParams, SoftmaxParams,
};
use crate::error::{Error, Result};
// Each of a workgroup's 256 threads owns up to 4 of the ROC histogram's buckets.
use crate::metrics::MAX_AUC_THRESHOLDS;
use crate::program::{
    CLASS_COUNT_CHUNK, PointwiseLoss, ROC_CHUNK, Recurrence, SequencePart, UnaryOp, Window2d,
};

/// llvmpipe (Mesa's CPU driver behind lavapipe and the GL software adapter) silently ends a
/// shader invocation's loops after 65535 iterations in all (nested loops count together), so
/// a longer loop computes a wrong result without any error. Measured on Mesa 22.3: a matmul
/// with k = 100 000 on the direct kernel summed only the first ~65 530 products. Every
/// [`Launch`] states its bound (`loops`), which the host checks before running on llvmpipe.
pub(crate) const LLVMPIPE_LOOP_LIMIT: u64 = 65_535;

/// What a launch depends on besides its kernel: the device's grid limit and matmul choice.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    /// `max_compute_workgroups_per_dimension`.
    pub max_groups: u32,
    pub matmul: MatmulKernel,
    /// Whether vec4-aligned matmuls take `shaders/matmul_vec4.wgsl`.
    pub vec4: bool,
}

/// `x` as a shader's u32, or an error when it does not fit.
pub(crate) fn u(x: usize) -> Result<u32> {
    u32::try_from(x).map_err(|_| {
        Error::invalid("kernel size", format!("{x} elements do not fit the GPU's 32-bit indices"))
    })
}

/// Loop iterations per lane when `lanes` lanes share `n` items.
pub(crate) fn per_lane(n: usize, lanes: usize) -> u64 {
    n.div_ceil(lanes) as u64
}

/// Workgroup grid covering `threads` threads in groups of `size`, folded into 2-D when the
/// count exceeds `max_per_dim` (the shaders flatten (x, y) back into one index).
pub(crate) fn grid(threads: usize, size: usize, max_per_dim: u32) -> Result<Option<[u32; 3]>> {
    if threads == 0 {
        return Ok(None);
    }
    let groups = threads.div_ceil(size);
    let max = max_per_dim.max(1) as usize;
    let x = groups.min(max);
    let y = groups.div_ceil(x);
    if y > max {
        return Err(Error::invalid(
            "kernel size",
            format!("{threads} threads need {groups} workgroups, more than {max}²"),
        ));
    }
    Ok(Some([u(x)?, u(y)?, 1]))
}

/// An explicit (x, y) grid, at least one workgroup each way; an error past the device limit.
pub(crate) fn groups_2d(what: &str, x: usize, y: usize, max_groups: u32) -> Result<[u32; 3]> {
    if x.max(y) > max_groups as usize {
        return Err(Error::invalid(
            "kernel size",
            format!("{what} needs {x}×{y} workgroups, more than {max_groups} per dimension"),
        ));
    }
    Ok([u(x.max(1))?, u(y.max(1))?, 1])
}

pub(crate) use crate::program::unary::activation_code;

/// One thread per element (`threads` of them) in workgroups of 256, no data-sized loop.
pub(crate) fn per_element<P: ShaderParams>(
    d: &Target,
    shader: Shader,
    entry: &'static str,
    params: P,
    threads: usize,
) -> Result<Launch> {
    Ok(Launch::new(shader, entry, &params, grid(threads, 256, d.max_groups)?, 1))
}

/// `shaders/elementwise.wgsl`: one thread per element of `params.len`.
pub(crate) fn elementwise(d: &Target, entry: &'static str, params: ElementwiseParams) -> Result<Launch> {
    per_element(d, Shader::Elementwise, entry, params, params.len as usize)
}

/// The elementwise parameters of `len` elements, row length `cols`, activation `op`, `scale`.
pub(crate) fn ew(len: usize, cols: usize, op: u32, scale: f32) -> Result<ElementwiseParams> {
    Ok(ElementwiseParams { len: u(len)?, cols: u(cols)?, op, scale, ..Default::default() })
}

/// One workgroup; its invocations loop at most `loops` times.
pub(crate) fn one_workgroup<P: ShaderParams>(
    shader: Shader,
    entry: &'static str,
    params: P,
    loops: u64,
) -> Launch {
    Launch::new(shader, entry, &params, Some([1, 1, 1]), loops)
}

/// `shaders/softmax.wgsl`: one thread per row (64 per workgroup), three passes over the row.
pub(crate) fn per_row(d: &Target, entry: &'static str, rows: usize, cols: usize) -> Result<Launch> {
    let params = SoftmaxParams { rows: u(rows)?, cols: u(cols)?, ..Default::default() };
    let groups = grid(if cols == 0 { 0 } else { rows }, 64, d.max_groups)?;
    Ok(Launch::new(Shader::Softmax, entry, &params, groups, 3 * cols as u64))
}

/// The `shaders/loss.wgsl` parameters.
pub(crate) fn loss_params(
    rows: usize,
    cols: usize,
    sparse: bool,
    len: usize,
    threshold: f32,
    weighted: bool,
) -> Result<LossParams> {
    Ok(LossParams {
        rows: u(rows)?,
        cols: u(cols)?,
        sparse: u32::from(sparse),
        len: u(len)?,
        threshold,
        weighted: u32::from(weighted),
        ..Default::default()
    })
}

/// A loss over `len` elements in one 256-lane workgroup (a strided pass, then the tree).
pub(crate) fn loss_total(entry: &'static str, params: LossParams, len: usize) -> Launch {
    one_workgroup(Shader::Loss, entry, params, per_lane(len, 256) + 8)
}

/// The geometry of a window kernel in `shaders/conv.wgsl`, `len` output elements.
pub(crate) fn conv_params(len: usize, win: &Window2d, flag: u32) -> Result<ConvParams> {
    Ok(ConvParams {
        len: u(len)?,
        oh: u(win.out.0)?,
        ow: u(win.out.1)?,
        flag,
        batch: u(win.batch)?,
        height: u(win.height)?,
        width: u(win.width)?,
        channels: u(win.channels)?,
        kh: u(win.kernel.0)?,
        kw: u(win.kernel.1)?,
        sh: u(win.stride.0)?,
        sw: u(win.stride.1)?,
        dh: u(win.dilation.0)?,
        dw: u(win.dilation.1)?,
        pt: u(win.pad.0)?,
        pl: u(win.pad.1)?,
    })
}

/// A window kernel of `shaders/conv.wgsl`: one thread per output element, looping `loops`
/// times (over the window's taps).
pub(crate) fn window(
    d: &Target,
    entry: &'static str,
    len: usize,
    win: &Window2d,
    flag: u32,
    loops: u64,
) -> Result<Launch> {
    let params = conv_params(len, win, flag)?;
    Ok(Launch::new(Shader::Conv, entry, &params, grid(len, 256, d.max_groups)?, loops))
}

/// Loops of a gather over a window's taps (col2im, pooling): each tap's bounds test and read.
pub(crate) fn tap_loops(win: &Window2d) -> u64 {
    let taps = (win.kernel.0 * win.kernel.1) as u64;
    2 * taps + (win.kernel.0 + win.kernel.1) as u64 + 4
}

/// The `shaders/norm.wgsl` parameters.
pub(crate) fn norm_params(rows: usize, cols: usize, eps: f32, momentum: f32) -> Result<NormParams> {
    Ok(NormParams {
        rows: u(rows)?,
        cols: u(cols)?,
        len: u(rows * cols)?,
        eps,
        momentum,
        ..Default::default()
    })
}

/// A column kernel of `shaders/norm.wgsl`: one workgroup per 16 columns (16 lanes per column
/// walk the rows), `loops` per invocation.
pub(crate) fn norm_columns(
    d: &Target,
    entry: &'static str,
    params: NormParams,
    loops: u64,
) -> Result<Launch> {
    let (rows, cols) = (params.rows as usize, params.cols as usize);
    let groups = grid(if rows == 0 { 0 } else { cols.div_ceil(16) * 256 }, 256, d.max_groups)?;
    Ok(Launch::new(Shader::Norm, entry, &params, groups, loops))
}

/// Whether `op(A)[m,k] · op(B)[k,n]` can take the vec4 path (`shaders/matmul_vec4.wgsl`):
/// C's rows are whole vec4s (n % 4 == 0) and so is the contiguous axis of each stored operand
/// (k for A [m,k], m for Aᵀ stored [k,m], n for B [k,n], k for Bᵀ stored [n,k]). Slice starts
/// are multiples of 64 elements, hence vec4-aligned.
pub(crate) fn vec4_aligned(m: usize, k: usize, n: usize, trans_a: bool, trans_b: bool) -> bool {
    let a_contiguous = if trans_a { m } else { k };
    let b_contiguous = if trans_b { k } else { n };
    n.is_multiple_of(4) && a_contiguous.is_multiple_of(4) && b_contiguous.is_multiple_of(4)
}

/// A matmul launch; `fused` = Some(activation) for the bias + activation epilogue.
///
/// Kernel choice: with `vec4` (the default, see [`super::GpuBackend::set_matmul_vec4`]),
/// vec4-aligned shapes ([`vec4_aligned`]) take `shaders/matmul_vec4.wgsl` (`matmul_vec4_tiled`
/// on Tiled adapters, `matmul_vec4` on Direct ones); every other shape takes the adapter's
/// scalar kernel in `shaders/matmul.wgsl` (`matmul` Tiled, `matmul_direct` Direct).
///
/// Measured on lavapipe (llvmpipe, Mesa 22.3.6, 2-core machine shared with other work,
/// `examples/gpu_bench.rs`, two runs): 512³ `matmul_vec4` 9.6–10.1 GFLOP/s, `matmul_vec4_tiled`
/// 5.5–5.9, `matmul_direct` 5.3, `matmul` 2.4–2.5; so the vec4 path is ~2× either scalar
/// kernel of the same family, and Direct adapters (software) keep the direct family. Tiled
/// (hardware) adapters take `matmul_vec4_tiled`, the workgroup-memory design the scalar
/// `matmul` already used there, not yet timed on a hardware GPU. MLP training step (batch 16,
/// launch-bound, noisy): 1.0–1.4 ms with the vec4 path, 1.1–1.3 ms without.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    d: &Target,
    m: usize,
    k: usize,
    n: usize,
    trans_a: bool,
    trans_b: bool,
    fused: Option<Option<UnaryOp>>,
) -> Result<Launch> {
    let (shader, entry, tile) = match (d.vec4 && vec4_aligned(m, k, n, trans_a, trans_b), d.matmul) {
        (true, MatmulKernel::Tiled) => (Shader::MatmulVec4, "matmul_vec4_tiled", 64),
        (true, MatmulKernel::Direct) => (Shader::MatmulVec4, "matmul_vec4", 32),
        (false, MatmulKernel::Tiled) => (Shader::Matmul, "matmul", 64),
        (false, MatmulKernel::Direct) => (Shader::Matmul, "matmul_direct", 32),
    };
    let (gx, gy) = (n.div_ceil(tile), m.div_ceil(tile));
    if gx > d.max_groups as usize || gy > d.max_groups as usize {
        return Err(Error::invalid(
            "matmul size",
            format!("[{m}x{k}]·[{k}x{n}] needs a {gx}x{gy} grid, limit {}", d.max_groups),
        ));
    }
    let mut constants =
        vec![("TRANS_A", f64::from(u8::from(trans_a))), ("TRANS_B", f64::from(u8::from(trans_b)))];
    if let Some(act) = fused {
        constants.push(("FUSED", 1.0));
        constants.push(("ACT", f64::from(activation_code(act))));
    }
    let k64 = k as u64;
    let loops = match entry {
        // Per 16-wide K step: the step, two tile-load loops of 4, the 16-step inner loop.
        "matmul" | "matmul_vec4_tiled" => k64.div_ceil(16) * 25 + 16,
        // Four k per iteration: vec4 without A transposed; the direct kernel (unrolled), plus
        // up to 3 remainder iterations.
        "matmul_vec4" if !trans_a => k64.div_ceil(4) + 16,
        "matmul_direct" => k64 / 4 + 3 + 16,
        // One iteration per k (vec4 with A transposed), plus the stores.
        _ => k64 + 16,
    };
    let params = MatmulParams { m: u(m)?, k: u(k)?, n: u(n)?, _pad: 0 };
    let groups = (m * n > 0).then_some([u(gx)?, u(gy)?, 1]);
    let mut launch = Launch::new(shader, entry, &params, groups, loops);
    launch.constants = constants;
    Ok(launch)
}

/// An optimizer update of `shaders/optimizer.wgsl`, one thread per element: Adam's β^t by
/// binary exponentiation (at most 32 steps) is its only loop.
pub(crate) fn optimizer(d: &Target, entry: &'static str, params: OptimizerParams) -> Result<Launch> {
    Ok(Launch::new(Shader::Optimizer, entry, &params, grid(params.len as usize, 256, d.max_groups)?, 32))
}

/// The `shaders/optimizer.wgsl` parameters: `len` elements, a flag and four hyperparameters.
pub(crate) fn optimizer_params(len: usize, flag: bool, f: [f32; 4]) -> Result<OptimizerParams> {
    let [f0, f1, f2, f3] = f;
    Ok(OptimizerParams { len: u(len)?, flag: u32::from(flag), f0, f1, f2, f3, ..Default::default() })
}

/// `shaders/reduce.wgsl` `sum_rows`: one workgroup per 16 columns, 16 lanes per column.
pub(crate) fn sum_rows(d: &Target, rows: usize, cols: usize) -> Result<Launch> {
    let params = ReduceParams { rows: u(rows)?, cols: u(cols)?, ..Default::default() };
    let groups = grid(cols.div_ceil(16) * 256, 256, d.max_groups)?;
    Ok(Launch::new(Shader::Reduce, "sum_rows", &params, groups, per_lane(rows, 16) + 4))
}

/// `shaders/reduce.wgsl` `sum_all`: scale · Σ of `len` elements in one workgroup.
pub(crate) fn sum_all(len: usize, scale: f32) -> Result<Launch> {
    let params = ReduceParams { len: u(len)?, scale, ..Default::default() };
    Ok(one_workgroup(Shader::Reduce, "sum_all", params, per_lane(len, 256) + 8))
}

/// The softmax cross-entropy in one workgroup: each lane's rows, three passes per row.
pub(crate) fn softmax_cross_entropy(
    rows: usize,
    cols: usize,
    sparse: bool,
    weighted: bool,
) -> Result<Launch> {
    let params = loss_params(rows, cols, sparse, 0, 0.0, weighted)?;
    let loops = per_lane(rows, 256) * (3 * cols as u64 + 1) + 8;
    Ok(one_workgroup(Shader::Loss, "softmax_cross_entropy", params, loops))
}

/// Its gradient: one thread per row (64 per workgroup), three passes over the row.
pub(crate) fn softmax_cross_entropy_grad(
    d: &Target,
    rows: usize,
    cols: usize,
    sparse: bool,
    weighted: bool,
) -> Result<Launch> {
    let params = loss_params(rows, cols, sparse, 0, 0.0, weighted)?;
    let groups = grid(if cols == 0 { 0 } else { rows }, 64, d.max_groups)?;
    Ok(Launch::new(Shader::Loss, "softmax_cross_entropy_grad", &params, groups, 3 * cols as u64))
}

/// The parameters of a pointwise loss: `cols` selects it, `param` is its parameter.
pub(crate) fn pointwise_params(
    loss: PointwiseLoss,
    len: usize,
    rows: usize,
    weighted: bool,
) -> Result<LossParams> {
    let (code, param) = loss.code();
    Ok(LossParams { cols: code, param, ..loss_params(rows, 0, false, len, 0.0, weighted)? })
}

/// A per-row metric counter (accuracy, top-k) in one workgroup: each lane's rows, up to three
/// passes per row.
pub(crate) fn row_counter(entry: &'static str, params: LossParams) -> Launch {
    let (rows, cols) = (params.rows as usize, params.cols as u64);
    one_workgroup(Shader::Loss, entry, params, per_lane(rows, 256) * (3 * cols + 1) + 8)
}

/// The ROC histograms: one workgroup per [`ROC_CHUNK`] elements, tiles of 256 elements each
/// scanned whole by every thread, then the 4 stores.
pub(crate) fn roc_histogram(
    d: &Target,
    rows: usize,
    cols: usize,
    sparse: bool,
    thresholds: usize,
) -> Result<Launch> {
    if !(2..=MAX_AUC_THRESHOLDS).contains(&thresholds) {
        return Err(Error::invalid(
            "AUC",
            format!("num_thresholds {thresholds} is not in 2..={MAX_AUC_THRESHOLDS}"),
        ));
    }
    let chunks = (rows * cols).div_ceil(ROC_CHUNK);
    let groups = groups_2d("the ROC histogram", chunks, 1, d.max_groups)?;
    let params = loss_params(rows, cols, sparse, thresholds, 0.0, false)?;
    let loops = per_lane((rows * cols).min(ROC_CHUNK), 256) * 257 + 4;
    Ok(Launch::new(Shader::Loss, "roc_histogram", &params, (chunks > 0).then_some(groups), loops))
}

/// The per-class counts: (column blocks of 256) × (row chunks of [`CLASS_COUNT_CHUNK`]).
pub(crate) fn class_counts(
    d: &Target,
    rows: usize,
    cols: usize,
    sparse: bool,
    threshold: Option<f32>,
) -> Result<Launch> {
    let (x, y) = (cols.div_ceil(256), rows.div_ceil(CLASS_COUNT_CHUNK));
    let groups = groups_2d("the per-class counts", x, y, d.max_groups)?;
    let params =
        loss_params(rows, cols, sparse, usize::from(threshold.is_some()), threshold.unwrap_or(0.0), false)?;
    let chunk_rows = rows.min(CLASS_COUNT_CHUNK);
    let loops = match threshold {
        Some(_) => chunk_rows as u64,
        // Per tile: two argmax loops over the columns and the 256-entry scan.
        None => per_lane(chunk_rows, 256) * (2 * cols as u64 + 257),
    };
    Ok(Launch::new(Shader::Loss, "class_counts", &params, (x * y > 0).then_some(groups), loops))
}

/// The `shaders/clip.wgsl` parameters.
pub(crate) fn clip_params(len: usize, accumulate: bool, clip: f32) -> Result<ClipParams> {
    Ok(ClipParams { len: u(len)?, accumulate: u32::from(accumulate), clip, ..Default::default() })
}

/// The `shaders/penalty.wgsl` parameters.
pub(crate) fn penalty_params(len: usize, l1: f32, l2: f32) -> Result<PenaltyParams> {
    Ok(PenaltyParams { len: u(len)?, l1, l2, ..Default::default() })
}

/// The `shaders/conv_gemm.wgsl` parameters of window `win` with `filters` outputs and `chunk`
/// positions per split of the filter gradient.
pub(crate) fn conv_gemm_params(win: &Window2d, filters: usize, chunk: usize) -> Result<ConvGemmParams> {
    Ok(ConvGemmParams {
        batch: u(win.batch)?,
        height: u(win.height)?,
        width: u(win.width)?,
        channels: u(win.channels)?,
        kh: u(win.kernel.0)?,
        kw: u(win.kernel.1)?,
        sh: u(win.stride.0)?,
        sw: u(win.stride.1)?,
        dh: u(win.dilation.0)?,
        dw: u(win.dilation.1)?,
        pt: u(win.pad.0)?,
        pl: u(win.pad.1)?,
        oh: u(win.out.0)?,
        ow: u(win.out.1)?,
        filters: u(filters)?,
        chunk: u(chunk.max(1))?,
    })
}

/// The grid of a `conv_gemm.wgsl` kernel: 32×32 outputs per workgroup of its `rows` × `cols`
/// matrix, `splits` deep; None when the matrix is empty.
pub(crate) fn gemm_grid(
    max_groups: u32,
    what: &str,
    rows: usize,
    cols: usize,
    splits: usize,
) -> Result<Option<[u32; 3]>> {
    if rows == 0 || cols == 0 {
        return Ok(None);
    }
    let [x, y, _] = groups_2d(what, cols.div_ceil(32), rows.div_ceil(32), max_groups)?;
    Ok(Some([x, y, u(splits)?]))
}

/// `conv2d`: the implicit-GEMM convolution, one loop step per patch column.
pub(crate) fn conv2d(
    d: &Target,
    win: &Window2d,
    filters: usize,
    bias: bool,
    act: Option<UnaryOp>,
) -> Result<Launch> {
    let params = conv_gemm_params(win, filters, 1)?;
    let groups = gemm_grid(d.max_groups, "the convolution", win.positions(), filters, 1)?;
    // The tap loops (kh + kh·kw) and the channel loop (patch_len in all), then the stores.
    let loops = (win.patch_len() + win.kernel.0 * (win.kernel.1 + 1)) as u64 + 20;
    let mut launch = Launch::new(Shader::ConvGemm, "conv2d", &params, groups, loops);
    launch.constants =
        vec![("HAS_BIAS", f64::from(u8::from(bias))), ("ACT", f64::from(activation_code(act)))];
    Ok(launch)
}

/// `conv2d_filter_grad` in one pass over all positions (a long loop: llvmpipe and GPUs take
/// the split plan of `splitk::split_conv_filter` instead when there are many positions).
pub(crate) fn conv2d_filter_grad(d: &Target, win: &Window2d, filters: usize) -> Result<Launch> {
    let params = conv_gemm_params(win, filters, win.positions())?;
    let groups = gemm_grid(d.max_groups, "the filter gradient", win.patch_len(), filters, 1)?;
    Ok(Launch::new(Shader::ConvGemm, "conv2d_filter_grad", &params, groups, win.positions() as u64 + 20))
}

/// `conv2d_input_grad`: per input pixel, every tap's window and its filters.
pub(crate) fn conv2d_input_grad(d: &Target, win: &Window2d, filters: usize) -> Result<Launch> {
    let params = conv_gemm_params(win, filters, 1)?;
    let rows = win.batch * win.height * win.width;
    let groups = gemm_grid(d.max_groups, "the input gradient", rows, win.channels, 1)?;
    let (kh, taps) = (win.kernel.0 as u64, (win.kernel.0 * win.kernel.1) as u64);
    let loops = taps * (filters as u64 + 2) + kh + 24;
    Ok(Launch::new(Shader::ConvGemm, "conv2d_input_grad", &params, groups, loops))
}

/// `shaders/recurrent.wgsl`: a time loop's step kernels (`part` None: `forward_step` /
/// `backward_step`, one thread per (sample, unit), dispatched `repeat` times, once per step)
/// or a gather / scatter of `part` (one thread per output element).
pub(crate) fn recurrent(
    d: &Target,
    entry: &'static str,
    rec: &Recurrence,
    part: Option<SequencePart>,
    repeat: usize,
) -> Result<Launch> {
    let from_input = rec.activation().is_some_and(|op| op.grad_source() == crate::program::GradSource::Input);
    let (threads, len, loops) = match part {
        None if entry == "gate_grad" => (rec.z_len(), rec.z_len(), 1),
        None => (rec.batch * rec.units, 0, (rec.gates() * rec.units) as u64),
        Some(part) => {
            let len = if entry == "scatter" { rec.state_len() } else { rec.part_len(part) };
            (len, len, 1)
        }
    };
    let params = RecurrentParams {
        batch: u(rec.batch)?,
        steps: u(rec.steps)?,
        units: u(rec.units)?,
        width: u(rec.width())?,
        backwards: u32::from(rec.go_backwards),
        act: activation_code(rec.activation()),
        from_input: u32::from(from_input),
        part: part.map_or(0, |p| p as u32),
        len: u(len)?,
        cell: rec.cell_code(),
        masked: u32::from(rec.masked),
        dropped: u32::from(rec.recurrent_dropout),
        ..Default::default()
    };
    let groups = if rec.steps == 0 { None } else { grid(threads, 256, d.max_groups)? };
    Ok(Launch::new(Shader::Recurrent, entry, &params, groups, loops).repeated::<RecurrentParams>(u(repeat)?))
}

/// `shaders/recurrent.wgsl` `sequence_mask`: one thread per (sample, step), a loop over the
/// features.
pub(crate) fn sequence_mask(d: &Target, rows: usize, features: usize, value: f32) -> Result<Launch> {
    let params = RecurrentParams { len: u(rows)?, units: u(features)?, value, ..Default::default() };
    Ok(Launch::new(
        Shader::Recurrent,
        "sequence_mask",
        &params,
        grid(rows, 256, d.max_groups)?,
        features as u64,
    ))
}

/// `shaders/columns.wgsl`: one thread per element of a `[rows, out_cols]` output, from inputs of
/// `in_cols` (and `b_cols`) columns; `start`: a slice's first column.
pub(crate) fn columns(
    d: &Target,
    entry: &'static str,
    rows: usize,
    [in_cols, b_cols, start, out_cols]: [usize; 4],
) -> Result<Launch> {
    let len = rows * out_cols;
    let params = ColumnsParams {
        len: u(len)?,
        in_cols: u(in_cols)?,
        b_cols: u(b_cols)?,
        start: u(start)?,
        out_cols: u(out_cols)?,
        ..Default::default()
    };
    Ok(Launch::new(Shader::Columns, entry, &params, grid(len, 256, d.max_groups)?, 1))
}

/// `shaders/columns.wgsl` `embedding` (one thread per output element) and `embedding_grad`
/// (one per table element, a loop over the ids).
pub(crate) fn embedding(
    d: &Target,
    entry: &'static str,
    ids: usize,
    vocab: usize,
    dim: usize,
) -> Result<Launch> {
    let grad = entry == "embedding_grad";
    let len = if grad { vocab * dim } else { ids * dim };
    let params = ColumnsParams {
        len: u(len)?,
        out_cols: u(dim)?,
        ids: u(ids)?,
        vocab: u(vocab)?,
        ..Default::default()
    };
    let loops = if grad { ids as u64 } else { 1 };
    Ok(Launch::new(Shader::Columns, entry, &params, grid(len, 256, d.max_groups)?, loops))
}
