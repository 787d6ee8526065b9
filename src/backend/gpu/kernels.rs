//! GPU launches: the shader files, the [`Launch`] of every [`Kernel`] (the `gpu` column of the
//! kernel table in `program/table.rs`, built with the families in `launch.rs`), and the
//! pipeline cache, which compiles each (shader, entry point, constants) pipeline once per
//! device.
//!
//! Every pipeline shares one bind group layout: bindings 0..=3 (and 6, 7) are the step's args as
//! read-write storage (a slice of an arena buffer, or a small dummy buffer for args a kernel
//! lacks or that are empty), binding 4 the step's parameters (uniform, `params::PARAMS_BYTES` at a
//! 256-byte-aligned offset of the program's parameter buffer), binding 5 the per-run
//! [`RunScalars`] (learning rate and step count).
use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::OnceLock;

use super::context::Context;
use super::launch::Target;
use super::params::{ShaderParams, StepParams};
use crate::error::Result;
use crate::program::{BinaryOp, Kernel, UnaryOp};

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
    ConvGemm,
    Norm,
    SplitK,
    Clip,
    Penalty,
    Recurrent,
    Columns,
}

impl Shader {
    /// Every shader file.
    pub(crate) const ALL: [Shader; 15] = [
        Shader::Matmul,
        Shader::MatmulVec4,
        Shader::Elementwise,
        Shader::Softmax,
        Shader::Reduce,
        Shader::Loss,
        Shader::Optimizer,
        Shader::Conv,
        Shader::ConvGemm,
        Shader::Norm,
        Shader::SplitK,
        Shader::Clip,
        Shader::Penalty,
        Shader::Recurrent,
        Shader::Columns,
    ];

    /// The file's name in shaders/.
    pub(crate) fn file(self) -> &'static str {
        match self {
            Shader::Matmul => "matmul.wgsl",
            Shader::MatmulVec4 => "matmul_vec4.wgsl",
            Shader::Elementwise => "elementwise.wgsl",
            Shader::Softmax => "softmax.wgsl",
            Shader::Reduce => "reduce.wgsl",
            Shader::Loss => "loss.wgsl",
            Shader::Optimizer => "optimizer.wgsl",
            Shader::Conv => "conv.wgsl",
            Shader::ConvGemm => "conv_gemm.wgsl",
            Shader::Norm => "norm.wgsl",
            Shader::SplitK => "splitk.wgsl",
            Shader::Clip => "clip.wgsl",
            Shader::Penalty => "penalty.wgsl",
            Shader::Recurrent => "recurrent.wgsl",
            Shader::Columns => "columns.wgsl",
        }
    }

    /// The file's own WGSL.
    fn file_source(self) -> &'static str {
        macro_rules! file {
            ($file:literal) => {
                include_str!(concat!("../../../shaders/", $file))
            };
        }
        match self {
            Shader::Matmul => file!("matmul.wgsl"),
            Shader::MatmulVec4 => file!("matmul_vec4.wgsl"),
            Shader::Elementwise => file!("elementwise.wgsl"),
            Shader::Softmax => file!("softmax.wgsl"),
            Shader::Reduce => file!("reduce.wgsl"),
            Shader::Loss => file!("loss.wgsl"),
            Shader::Optimizer => file!("optimizer.wgsl"),
            Shader::Conv => file!("conv.wgsl"),
            Shader::ConvGemm => file!("conv_gemm.wgsl"),
            Shader::Norm => file!("norm.wgsl"),
            Shader::SplitK => file!("splitk.wgsl"),
            Shader::Clip => file!("clip.wgsl"),
            Shader::Penalty => file!("penalty.wgsl"),
            Shader::Recurrent => file!("recurrent.wgsl"),
            Shader::Columns => file!("columns.wgsl"),
        }
    }

    /// The module's WGSL: shaders/common.wgsl, the functions generated from the activation
    /// and binary tables, then the file (built once per shader).
    pub(crate) fn source(self) -> &'static str {
        const COUNT: usize = Shader::ALL.len();
        static SOURCES: [OnceLock<String>; COUNT] = [const { OnceLock::new() }; COUNT];
        // `Shader::ALL` lists the variants in declaration order (a test checks it).
        SOURCES[self as usize].get_or_init(|| {
            let common = include_str!("../../../shaders/common.wgsl");
            let (unary, binary) = (UnaryOp::wgsl_functions(), BinaryOp::wgsl_functions());
            format!("{common}\n{unary}\n{binary}{}", self.file_source())
        })
    }
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
/// shapes take `shaders/matmul_vec4.wgsl` instead (see `launch::matmul`).
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
    /// An upper bound on the loop iterations of one invocation, constant trip counts
    /// included (checked against llvmpipe's limit, `launch::LLVMPIPE_LOOP_LIMIT`).
    pub loops: u64,
    /// Dispatches in a row (a time loop: one per step), each with its index in the params'
    /// first word (`step`); 1 for an ordinary launch.
    pub repeat: u32,
}

impl Launch {
    /// A launch of `entry` in `shader` with `params` (the shader family's struct).
    pub(crate) fn new<P: ShaderParams>(
        shader: Shader,
        entry: &'static str,
        params: &P,
        groups: Option<[u32; 3]>,
        loops: u64,
    ) -> Launch {
        debug_assert!(P::SHADERS.contains(&shader), "{} is not the Params of {shader:?}", P::NAME);
        Launch {
            shader,
            entry,
            constants: Vec::new(),
            params: StepParams::of(params),
            groups,
            loops,
            repeat: 1,
        }
    }

    /// The launch dispatched `count` times in a row, dispatch i with `step` = i: its params'
    /// first field must be `step: u32`.
    pub(crate) fn repeated<P: ShaderParams>(mut self, count: u32) -> Launch {
        debug_assert!(P::fields().first().is_some_and(|f| f.name == "step" && f.offset == 0));
        self.repeat = count;
        self
    }
}

/// The shader entry point that runs `kernel` with scalar matmul kernel `matmul` and the vec4
/// path on or off (for tests: which matmul kernel a shape takes). Errors as [`launch`] does.
pub fn entry_point(kernel: &Kernel, matmul: MatmulKernel, vec4: bool) -> Result<&'static str> {
    launch(kernel, &Target { max_groups: u32::MAX, matmul, vec4 }).map(|l| l.entry)
}

/// Expands the kernel table (`program/table.rs`) into [`launch`].
macro_rules! gpu_launch {
    ($($name:ident { $($field:tt)* } => {
        args: $args:expr,
        $(writes: $writes:expr,)?
        cpu($v:ident, $sc:ident): $cpu:expr,
        gpu($d:ident): $gpu:expr $(,)?
    })*) => {
        /// The launch of `kernel` on `target`: the `gpu` column of the kernel table.
        #[allow(unused_variables)]
        pub(crate) fn launch(kernel: &Kernel, target: &Target) -> Result<Launch> {
            use super::launch as gpu;
            match *kernel {
                $(Kernel::$name { $($field)* } => {
                    let $d = target;
                    $gpu
                })*
            }
        }
    };
}
crate::program::table::kernel_table!(gpu_launch);

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

#[cfg(test)]
mod tests {
    use super::Shader;

    #[test]
    fn shader_list_is_in_declaration_order() {
        for (i, s) in Shader::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i, "{s:?}");
        }
    }
}
