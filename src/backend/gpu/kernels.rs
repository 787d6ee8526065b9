//! The kernel table: for every [`Kernel`] the WGSL file, entry point, override constants,
//! per-step uniform parameters and workgroup counts; plus the pipeline cache, which compiles
//! each (shader, entry point, constants) pipeline once per device.
//!
//! Every pipeline shares one bind group layout: bindings 0..=3 (and 6, 7) are the step's args as
//! read-write storage (a slice of an arena buffer, or a small dummy buffer for args a kernel
//! lacks or that are empty), binding 4 the step's [`StepParams`] (uniform, 32 bytes at a
//! 256-byte-aligned offset of the program's parameter buffer), binding 5 the per-run
//! [`RunScalars`] (learning rate and step count).
use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::context::Context;
use crate::error::{Error, Result};
use crate::program::{Kernel, UnaryOp, Window2d};

/// Storage bindings per step (the most args any kernel takes).
pub(crate) const MAX_ARGS: usize = 6;

/// Binding number of step arg `j`: args 0..=3 at bindings 0..=3, args 4 and 5 (batch-norm
/// inference) at 6 and 7, after the two uniforms (which every shader has at 4 and 5).
pub(crate) fn arg_binding(j: usize) -> u32 {
    if j < 4 { j as u32 } else { j as u32 + 2 }
}
/// Binding of the per-step parameters.
pub(crate) const PARAMS_BINDING: u32 = 4;
/// Binding of the per-run scalars.
pub(crate) const SCALARS_BINDING: u32 = 5;
/// Byte stride of the per-step parameters in the program's uniform buffer.
pub(crate) const PARAMS_STRIDE: u64 = 256;

/// One WGSL file (a kernel family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Shader {
    Matmul,
    MatmulVec4,
    Elementwise,
    Softmax,
    Reduce,
    Loss,
    Optimizer,
    Conv,
    Norm,
    SplitK,
    Clip,
    Penalty,
}

impl Shader {
    fn file(self) -> &'static str {
        match self {
            Shader::Matmul => "matmul.wgsl",
            Shader::MatmulVec4 => "matmul_vec4.wgsl",
            Shader::Elementwise => "elementwise.wgsl",
            Shader::Softmax => "softmax.wgsl",
            Shader::Reduce => "reduce.wgsl",
            Shader::Loss => "loss.wgsl",
            Shader::Optimizer => "optimizer.wgsl",
            Shader::Conv => "conv.wgsl",
            Shader::Norm => "norm.wgsl",
            Shader::SplitK => "splitk.wgsl",
            Shader::Clip => "clip.wgsl",
            Shader::Penalty => "penalty.wgsl",
        }
    }

    /// The module's WGSL: shaders/common.wgsl, then the file.
    pub(crate) fn source(self) -> &'static str {
        macro_rules! with_common {
            ($file:literal) => {
                concat!(
                    include_str!("../../../shaders/common.wgsl"),
                    include_str!(concat!("../../../shaders/", $file))
                )
            };
        }
        match self {
            Shader::Matmul => with_common!("matmul.wgsl"),
            Shader::MatmulVec4 => with_common!("matmul_vec4.wgsl"),
            Shader::Elementwise => with_common!("elementwise.wgsl"),
            Shader::Softmax => with_common!("softmax.wgsl"),
            Shader::Reduce => with_common!("reduce.wgsl"),
            Shader::Loss => with_common!("loss.wgsl"),
            Shader::Optimizer => with_common!("optimizer.wgsl"),
            Shader::Conv => with_common!("conv.wgsl"),
            Shader::Norm => with_common!("norm.wgsl"),
            Shader::SplitK => with_common!("splitk.wgsl"),
            Shader::Clip => with_common!("clip.wgsl"),
            Shader::Penalty => with_common!("penalty.wgsl"),
        }
    }
}

/// Per-step kernel parameters (binding 4): four u32, four f32, then twelve u32 of window
/// geometry (only `shaders/conv.wgsl` declares those; the other files' `struct Params` covers
/// the first 32 bytes, which a larger binding allows).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct StepParams {
    pub u: [u32; 4],
    pub f: [f32; 4],
    pub g: [u32; 12],
}

/// Per-run values (binding 5): `struct RunScalars { lr: f32, t: u32 }`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct RunScalars {
    pub lr: f32,
    pub t: u32,
    pub pad: [u32; 2],
}

/// Which scalar matmul kernel to compile (both are in `shaders/matmul.wgsl`); vec4-aligned
/// shapes take `shaders/matmul_vec4.wgsl` instead (see `matmul_launch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatmulKernel {
    /// 64×64 workgroup tiles staged in workgroup memory, 4×4 per thread (hardware GPUs).
    Tiled,
    /// 32×32 tiles read straight from memory, 4×4 per thread (software adapters).
    Direct,
}

impl MatmulKernel {
    /// The better kernel for an adapter: `Direct` on software adapters, else `Tiled`.
    pub fn for_adapter(is_software: bool) -> MatmulKernel {
        if is_software { MatmulKernel::Direct } else { MatmulKernel::Tiled }
    }
}

/// How to launch one kernel.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Launch {
    pub shader: Shader,
    pub entry: &'static str,
    /// Pipeline override constants (name, value).
    pub constants: Vec<(&'static str, f64)>,
    pub params: StepParams,
    /// Workgroup counts; `None` when the kernel has no work (an empty output).
    pub groups: Option<[u32; 3]>,
}

pub(super) fn to_u32(x: usize) -> Result<u32> {
    u32::try_from(x).map_err(|_| {
        Error::invalid("kernel size", format!("{x} elements do not fit the GPU's 32-bit indices"))
    })
}

/// The code of `activation` in shaders/common.wgsl: 0 identity, 1 relu, 2 sigmoid, 3 tanh.
fn activation_code(op: Option<UnaryOp>) -> u32 {
    match op {
        None => 0,
        Some(UnaryOp::Relu) => 1,
        Some(UnaryOp::Sigmoid) => 2,
        Some(UnaryOp::Tanh) => 3,
    }
}

/// Workgroup grid covering `threads` threads in groups of `size`, folded into 2-D when the
/// count exceeds `max_per_dim` (the shaders flatten (x, y) back into one index).
pub(super) fn grid(threads: usize, size: usize, max_per_dim: u32) -> Result<Option<[u32; 3]>> {
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
    Ok(Some([to_u32(x)?, to_u32(y)?, 1]))
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
fn matmul_launch(
    m: usize,
    k: usize,
    n: usize,
    trans_a: bool,
    trans_b: bool,
    fused: Option<Option<UnaryOp>>,
    max_groups: u32,
    matmul: MatmulKernel,
    vec4: bool,
) -> Result<Launch> {
    let (shader, entry, tile) = match (vec4 && vec4_aligned(m, k, n, trans_a, trans_b), matmul) {
        (true, MatmulKernel::Tiled) => (Shader::MatmulVec4, "matmul_vec4_tiled", 64),
        (true, MatmulKernel::Direct) => (Shader::MatmulVec4, "matmul_vec4", 32),
        (false, MatmulKernel::Tiled) => (Shader::Matmul, "matmul", 64),
        (false, MatmulKernel::Direct) => (Shader::Matmul, "matmul_direct", 32),
    };
    let gx = n.div_ceil(tile);
    let gy = m.div_ceil(tile);
    if gx > max_groups as usize || gy > max_groups as usize {
        return Err(Error::invalid(
            "matmul size",
            format!("[{m}x{k}]·[{k}x{n}] needs a {gx}x{gy} grid, limit {max_groups}"),
        ));
    }
    let mut constants =
        vec![("TRANS_A", f64::from(u8::from(trans_a))), ("TRANS_B", f64::from(u8::from(trans_b)))];
    if let Some(act) = fused {
        constants.push(("FUSED", 1.0));
        constants.push(("ACT", f64::from(activation_code(act))));
    }
    Ok(Launch {
        shader,
        entry,
        constants,
        params: StepParams { u: [to_u32(m)?, to_u32(k)?, to_u32(n)?, 0], f: [0.0; 4], g: [0; 12] },
        groups: (m * n > 0).then_some([to_u32(gx)?, to_u32(gy)?, 1]),
    })
}

/// The shader entry point that runs `kernel` with scalar matmul kernel `matmul` and the vec4
/// path on or off (for tests: which matmul kernel a shape takes). Errors as [`launch`] does.
pub fn entry_point(kernel: &Kernel, matmul: MatmulKernel, vec4: bool) -> Result<&'static str> {
    launch(kernel, u32::MAX, matmul, vec4).map(|l| l.entry)
}

/// The launch of `kernel` on a device allowing `max_groups` workgroups per dimension.
pub(crate) fn launch(kernel: &Kernel, max_groups: u32, matmul: MatmulKernel, vec4: bool) -> Result<Launch> {
    use Kernel::*;
    let p = |ints: [usize; 4], f: [f32; 4]| -> Result<StepParams> {
        Ok(StepParams {
            u: [to_u32(ints[0])?, to_u32(ints[1])?, to_u32(ints[2])?, to_u32(ints[3])?],
            f,
            g: [0; 12],
        })
    };
    let elementwise = |entry, len: usize, cols: usize, op: u32, scale: f32| -> Result<Launch> {
        Ok(Launch {
            shader: Shader::Elementwise,
            entry,
            constants: vec![],
            params: p([len, cols, op as usize, 0], [scale, 0.0, 0.0, 0.0])?,
            groups: grid(len, 256, max_groups)?,
        })
    };
    let per_row = |shader, entry, rows: usize, cols: usize| -> Result<Launch> {
        Ok(Launch {
            shader,
            entry,
            constants: vec![],
            params: p([rows, cols, 0, 0], [0.0; 4])?,
            groups: grid(if cols == 0 { 0 } else { rows }, 64, max_groups)?,
        })
    };
    let single = |shader, entry, params: StepParams| Launch {
        shader,
        entry,
        constants: vec![],
        params,
        groups: Some([1, 1, 1]),
    };
    let loss = |rows: usize, cols: usize, sparse: bool, len: usize, threshold: f32| {
        p([rows, cols, sparse as usize, len], [threshold, 0.0, 0.0, 0.0])
    };
    // `Params.weighted` of shaders/loss.wgsl.
    let weigh = |mut params: StepParams, weighted: bool| {
        params.g[0] = u32::from(weighted);
        params
    };
    let window = |entry, len: usize, win: &Window2d| -> Result<Launch> {
        let u = |x: usize| to_u32(x);
        let g = [
            u(win.batch)?,
            u(win.height)?,
            u(win.width)?,
            u(win.channels)?,
            u(win.kernel.0)?,
            u(win.kernel.1)?,
            u(win.stride.0)?,
            u(win.stride.1)?,
            u(win.dilation.0)?,
            u(win.dilation.1)?,
            u(win.pad.0)?,
            u(win.pad.1)?,
        ];
        Ok(Launch {
            shader: Shader::Conv,
            entry,
            constants: vec![],
            params: StepParams { u: [u(len)?, u(win.out.0)?, u(win.out.1)?, 0], f: [0.0; 4], g },
            groups: grid(len, 256, max_groups)?,
        })
    };
    let norm = |entry, rows: usize, cols: usize, eps: f32, momentum: f32| -> Result<Launch> {
        Ok(Launch {
            shader: Shader::Norm,
            entry,
            constants: vec![],
            params: p([rows, cols, rows * cols, 0], [eps, momentum, 0.0, 0.0])?,
            // One workgroup per 16 columns.
            groups: grid(if rows == 0 { 0 } else { cols.div_ceil(16) * 256 }, 256, max_groups)?,
        })
    };
    Ok(match *kernel {
        BatchMoments { rows, cols } => norm("bn_moments", rows, cols, 0.0, 0.0)?,
        BatchNormTrain { rows, cols, eps } => {
            Launch { groups: grid(rows * cols, 256, max_groups)?, ..norm("bn_train", rows, cols, eps, 0.0)? }
        }
        BatchNormGradSums { rows, cols, eps } => norm("bn_grad_sums", rows, cols, eps, 0.0)?,
        BatchNormGrad { rows, cols, eps } => {
            Launch { groups: grid(rows * cols, 256, max_groups)?, ..norm("bn_grad", rows, cols, eps, 0.0)? }
        }
        Copy { len, offset } => elementwise("copy_range", len, offset, 0, 0.0)?,
        BatchNormMoving { cols, momentum } => {
            Launch { groups: grid(cols, 256, max_groups)?, ..norm("bn_moving", 1, cols, 0.0, momentum)? }
        }
        BatchNormInference { rows, cols, eps } => Launch {
            groups: grid(rows * cols, 256, max_groups)?,
            ..norm("bn_inference", rows, cols, eps, 0.0)?
        },
        Im2Col { win } => window("im2col", win.positions() * win.patch_len(), &win)?,
        Col2Im { win } => window("col2im", win.input_len(), &win)?,
        MaxPool { win } => window("max_pool", win.positions() * win.channels, &win)?,
        RandomFlip { win, seed } => {
            let mut l = window("random_flip", win.input_len(), &win)?;
            l.params.u[3] = seed;
            l
        }
        MaxPoolGrad { win, relu } => {
            let mut l = window("max_pool_grad", win.input_len(), &win)?;
            l.params.u[3] = u32::from(relu);
            l
        }
        AvgPool { win } => window("avg_pool", win.positions() * win.channels, &win)?,
        AvgPoolGrad { win } => window("avg_pool_grad", win.input_len(), &win)?,
        Dropout { len, seed, threshold, scale } => Launch {
            shader: Shader::Elementwise,
            entry: "dropout",
            constants: vec![],
            params: StepParams {
                u: [to_u32(len)?, threshold, seed, 0],
                f: [scale, 0.0, 0.0, 0.0],
                g: [0; 12],
            },
            groups: grid(len, 256, max_groups)?,
        },
        MatMul { m, k, n, trans_a, trans_b } => {
            matmul_launch(m, k, n, trans_a, trans_b, None, max_groups, matmul, vec4)?
        }
        MatMulBiasAct { m, k, n, trans_a, trans_b, act } => {
            matmul_launch(m, k, n, trans_a, trans_b, Some(act), max_groups, matmul, vec4)?
        }
        BiasAdd { rows, cols } => elementwise("bias_add", rows * cols, cols, 0, 0.0)?,
        Add { len } => elementwise("add", len, 0, 0, 0.0)?,
        Unary { op, len } => elementwise("unary", len, 0, activation_code(Some(op)), 0.0)?,
        Affine { len, scale, shift } => {
            let mut l = elementwise("affine", len, 0, 0, scale)?;
            l.params.f[1] = shift;
            l
        }
        UnaryGrad { op, len } => elementwise("unary_grad", len, 0, activation_code(Some(op)), 0.0)?,
        BroadcastRows { rows, cols } => elementwise("broadcast_rows", rows * cols, cols, 0, 0.0)?,
        BroadcastScalar { len, scale } => elementwise("broadcast_scalar", len, 0, 0, scale)?,
        Fill { len, value } => elementwise("fill", len, 0, 0, value)?,
        FirstNonFinite => single(Shader::Elementwise, "first_non_finite", p([1, 0, 0, 0], [0.0; 4])?),
        Accumulate { len, scale } => elementwise("accumulate", len, 0, 0, scale)?,
        Softmax { rows, cols } => per_row(Shader::Softmax, "softmax", rows, cols)?,
        LogSoftmax { rows, cols } => per_row(Shader::Softmax, "log_softmax", rows, cols)?,
        SoftmaxGrad { rows, cols } => per_row(Shader::Softmax, "softmax_grad", rows, cols)?,
        LogSoftmaxGrad { rows, cols } => per_row(Shader::Softmax, "log_softmax_grad", rows, cols)?,
        SumRows { rows, cols } => Launch {
            shader: Shader::Reduce,
            entry: "sum_rows",
            constants: vec![],
            params: p([rows, cols, 0, 0], [0.0; 4])?,
            // One workgroup per 16 columns.
            groups: grid(cols.div_ceil(16) * 256, 256, max_groups)?,
        },
        SumAll { len, scale } => {
            single(Shader::Reduce, "sum_all", p([0, 0, len, 0], [scale, 0.0, 0.0, 0.0])?)
        }
        // The losses: `weighted` (per-sample weights as arg 2) is read by the shader from
        // g[0] of the parameters; the elementwise ones take the rows in u[0].
        SoftmaxCrossEntropy { rows, cols, sparse, weighted } => {
            single(Shader::Loss, "softmax_cross_entropy", weigh(loss(rows, cols, sparse, 0, 0.0)?, weighted))
        }
        SoftmaxCrossEntropyGrad { rows, cols, sparse, weighted } => Launch {
            shader: Shader::Loss,
            entry: "softmax_cross_entropy_grad",
            constants: vec![],
            params: weigh(loss(rows, cols, sparse, 0, 0.0)?, weighted),
            groups: grid(if cols == 0 { 0 } else { rows }, 64, max_groups)?,
        },
        MeanSquaredError { len, rows, weighted } => {
            single(Shader::Loss, "mean_squared_error", weigh(loss(rows, 0, false, len, 0.0)?, weighted))
        }
        MeanSquaredErrorGrad { len, rows, weighted } => Launch {
            shader: Shader::Loss,
            entry: "mean_squared_error_grad",
            constants: vec![],
            params: weigh(loss(rows, 0, false, len, 0.0)?, weighted),
            groups: grid(len, 256, max_groups)?,
        },
        SigmoidBinaryCrossEntropy { len, rows, weighted } => {
            single(Shader::Loss, "sigmoid_bce", weigh(loss(rows, 0, false, len, 0.0)?, weighted))
        }
        SigmoidBinaryCrossEntropyGrad { len, rows, weighted } => Launch {
            shader: Shader::Loss,
            entry: "sigmoid_bce_grad",
            constants: vec![],
            params: weigh(loss(rows, 0, false, len, 0.0)?, weighted),
            groups: grid(len, 256, max_groups)?,
        },
        Pointwise { loss, len, rows, weighted } => {
            let (code, param) = loss.code();
            let params = p([rows, code as usize, 0, len], [0.0, param, 0.0, 0.0])?;
            single(Shader::Loss, "pointwise", weigh(params, weighted))
        }
        PointwiseGrad { loss, len, rows, weighted } => {
            let (code, param) = loss.code();
            Launch {
                shader: Shader::Loss,
                entry: "pointwise_grad",
                constants: vec![],
                params: weigh(p([rows, code as usize, 0, len], [0.0, param, 0.0, 0.0])?, weighted),
                groups: grid(len, 256, max_groups)?,
            }
        }
        CountTopK { .. }
        | BinaryCounts { .. }
        | CountCorrect { .. }
        | RocHistogram { .. }
        | ClassCounts { .. } => super::metric_launch::launch(kernel, max_groups)?
            .ok_or_else(|| Error::invalid("program", format!("{kernel:?} has no metric launch")))?,
        SgdUpdate { .. }
        | AdamUpdate { .. }
        | AdagradUpdate { .. }
        | RmspropUpdate { .. }
        | SumSquares { .. }
        | ClipByNorm { .. }
        | ClipByValue { .. }
        | WeightPenalty { .. }
        | WeightPenaltyGrad { .. } => super::optim_launch::launch(kernel, max_groups)?,
    })
}

/// Pipeline cache key: shader, entry point, override constants (as bits, for hashing).
type PipelineKey = (Shader, &'static str, Vec<(&'static str, u64)>);

/// Shader modules and compute pipelines of one device, each created once.
pub(crate) struct PipelineCache {
    pub(crate) bind_group_layout: wgpu::BindGroupLayout,
    layout: wgpu::PipelineLayout,
    modules: HashMap<Shader, wgpu::ShaderModule>,
    pipelines: HashMap<PipelineKey, wgpu::ComputePipeline>,
}

impl PipelineCache {
    pub(crate) fn new(ctx: &Context) -> Result<PipelineCache> {
        let storage = |binding: u32| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: false },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let uniform = |binding: u32| wgpu::BindGroupLayoutEntry {
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            ..storage(binding)
        };
        let mut entries: Vec<_> = (0..MAX_ARGS).map(|j| storage(arg_binding(j))).collect();
        entries.push(uniform(PARAMS_BINDING));
        entries.push(uniform(SCALARS_BINDING));
        ctx.scoped("creating the kernel bind group layout", || {
            let bind_group_layout = ctx.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("kiln step bindings"),
                entries: &entries,
            });
            let layout = ctx.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("kiln step layout"),
                bind_group_layouts: &[Some(&bind_group_layout)],
                immediate_size: 0,
            });
            PipelineCache { bind_group_layout, layout, modules: HashMap::new(), pipelines: HashMap::new() }
        })
    }

    /// Whether the pipeline for `launch` is already compiled.
    pub(crate) fn contains(&self, launch: &Launch) -> bool {
        self.pipelines.contains_key(&Self::key(launch))
    }

    fn key(launch: &Launch) -> PipelineKey {
        (launch.shader, launch.entry, launch.constants.iter().map(|&(n, v)| (n, v.to_bits())).collect())
    }

    /// The pipeline for `launch`, compiled on first use.
    pub(crate) fn pipeline(&mut self, ctx: &Context, launch: &Launch) -> Result<wgpu::ComputePipeline> {
        let key = Self::key(launch);
        if let Some(p) = self.pipelines.get(&key) {
            return Ok(p.clone());
        }
        let shader = launch.shader;
        let module = match self.modules.entry(shader) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let module = ctx.scoped(&format!("compiling shaders/{}", shader.file()), || {
                    ctx.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(shader.file()),
                        source: wgpu::ShaderSource::Wgsl(Cow::Borrowed(shader.source())),
                    })
                })?;
                e.insert(module)
            }
        };
        let context = format!("creating pipeline {}:{}", shader.file(), launch.entry);
        let pipeline = ctx.scoped(&context, || {
            ctx.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(launch.entry),
                layout: Some(&self.layout),
                module: &*module,
                entry_point: Some(launch.entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &launch.constants,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            })
        })?;
        self.pipelines.insert(key, pipeline.clone());
        Ok(pipeline)
    }
}
