//! Compilation and execution: a compiled program (its dispatches — steps, split kernels, batch
//! chunks — with per-dispatch uniform parameters, pipelines and bind groups, all created once)
//! and the single-submit `run`. The buffers themselves are in `buffers.rs`.
use std::num::NonZeroU64;

use super::context::Context;
use super::kernels::Shader;
use super::kernels::{
    self, MAX_ARGS, MatmulKernel, PARAMS_BINDING, PARAMS_STRIDE, PipelineCache, SCALARS_BINDING, arg_binding,
};
use super::launch::{self, LLVMPIPE_LOOP_LIMIT, Target};
use super::params::{PARAMS_BYTES, ReduceParams};
use super::timer::PassTimer;
use super::{chunk, splitk};
use crate::error::{Error, Result};
use crate::program::{Arena, BufRef, Program, Step, StepScalars};

pub(crate) use super::buffers::{ARENA_USAGE, Resident, Shared, arena_bytes, check_buffer, create_buffer};

/// Where one arg of a dispatch lives.
#[derive(Debug, Clone, Copy)]
enum Bind {
    /// A slice of an arena.
    Arena(BufRef),
    /// Elements of the program's chunk-output buffer (see `chunk.rs`).
    ChunkOut { offset: usize, len: usize },
}

/// One dispatch (a step, or one chunk of a step) ready to run.
struct CompiledStep {
    /// Index into `Program::steps` of the step it belongs to (for messages).
    index: usize,
    /// Its parameters sit at slot · 256 of the uniform buffer.
    slot: usize,
    args: Vec<Bind>,
    pipeline: wgpu::ComputePipeline,
    groups: [u32; 3],
    /// A second dispatch with the same bindings (a split kernel's in-order sum of its partials).
    then: Option<(wgpu::ComputePipeline, [u32; 3])>,
    /// Elements of the scratch buffer bound as arg 4 (a split kernel's partial results).
    scratch: Option<usize>,
}

/// How one step runs: one launch, or split (a matmul over K, a column sum over rows).
pub(crate) enum StepLaunch {
    Single(kernels::Launch),
    Split(splitk::SplitK),
}

/// The launch of step `index` on this device. On llvmpipe a vec4 matmul that would loop past
/// its limit takes the direct kernel, and a kernel that would still loop too long is refused
/// (its result would be silently wrong). Matmuls with a small C and a long K are split over K
/// on hardware GPUs (C's few tiles would leave most of the GPU idle) and wherever the regular
/// kernel would pass llvmpipe's limit; otherwise software adapters keep the register-blocked
/// kernels, which are faster there (lavapipe, conv2d backward at batch 32: 370 ms against
/// 657 ms split).
pub(crate) fn step_launch(
    ctx: &Context,
    step: &Step,
    index: usize,
    matmul: MatmulKernel,
    vec4: bool,
) -> Result<StepLaunch> {
    let kernel = &step.kernel;
    let max_groups = ctx.limits.max_compute_workgroups_per_dimension;
    let in_step = |e: Error| Error::invalid("program", format!("{}: {e}", step.describe(index)));
    let launch_with = |vec4| kernels::launch(kernel, &Target { max_groups, matmul, vec4 }).map_err(in_step);
    let llvmpipe = ctx.summary.name.contains("llvmpipe");
    let limit = LLVMPIPE_LOOP_LIMIT;
    // Reductions over many rows or elements split on every adapter (so lavapipe tests the
    // GPUs' path).
    let fits = |s: &splitk::SplitK| 4 * s.scratch_len as u64 <= ctx.limits.max_storage_buffer_binding_size;
    if let Some(split) = splitk::split_reduction(kernel, max_groups).map_err(in_step)?.filter(fits) {
        return Ok(StepLaunch::Split(split));
    }
    let mut launch = launch_with(vec4)?;
    if llvmpipe && vec4 && launch.loops > limit {
        // The vec4 kernel with A transposed takes one k per iteration, the scalar kernels four.
        launch = launch_with(false)?;
    }
    let loops = launch.loops;
    if matmul == MatmulKernel::Tiled || (llvmpipe && loops > limit) {
        let split = splitk::split_k(kernel, max_groups)
            .map_err(in_step)?
            .filter(|sk| fits(sk) && !(llvmpipe && sk.loops > limit));
        if let Some(sk) = split {
            return Ok(StepLaunch::Split(sk));
        }
    }
    if llvmpipe && loops > limit {
        return Err(Error::Gpu {
            context: format!("compiling {}", step.describe(index)),
            message: format!(
                "this kernel would loop up to {loops} times per invocation; llvmpipe (lavapipe) \
                 silently stops after {limit}, so its result would be wrong. Use --device cpu, \
                 or a hardware GPU, for tensors this large"
            ),
        });
    }
    Ok(StepLaunch::Single(launch))
}

/// A program compiled for one device.
pub(crate) struct Compiled {
    pub(crate) program: Program,
    /// Split-K partial products (shared by the program's split matmuls, which run in order).
    scratch: Option<wgpu::Buffer>,
    /// Per-chunk partial results of the steps run in batch chunks that sum over the batch.
    chunk_out: Option<wgpu::Buffer>,
    params: wgpu::Buffer,
    steps: Vec<CompiledStep>,
    /// One per entry of `steps`; `Err` when the resident arenas no longer fit the program.
    bind_groups: std::result::Result<Vec<wgpu::BindGroup>, String>,
}

/// A step's arg in words, for error messages: what the step computes when the arg is its
/// output, else which arg of the step it is and where it lives.
fn arg_name(program: &Program, i: usize, j: usize, b: &BufRef) -> String {
    let Some(step) = program.steps.get(i) else { return format!("step {i} arg {j}") };
    if step.kernel.signature().written(step.args.len()).contains(&j) {
        step.describe(i)
    } else {
        format!("arg {j} ({} elements of the {} arena) of {}", b.len, b.arena.name(), step.describe(i))
    }
}

/// The first arg of step `i` larger than one storage binding, as an out-of-device-memory
/// error; and an error for a slice that breaks the device's offset alignment.
fn check_bindings(ctx: &Context, program: &Program, i: usize) -> Result<()> {
    let align = u64::from(ctx.limits.min_storage_buffer_offset_alignment);
    let step = &program.steps[i];
    for (j, b) in step.args.iter().enumerate() {
        let bytes = 4 * b.len as u64;
        if bytes > ctx.limits.max_storage_buffer_binding_size {
            return Err(Error::OutOfDeviceMemory {
                buffer: arg_name(program, i, j, b),
                needed: bytes,
                limit_name: "max_storage_buffer_binding_size",
                limit: ctx.limits.max_storage_buffer_binding_size,
            });
        }
        if b.len > 0 && !(4 * b.offset as u64).is_multiple_of(align) {
            return Err(Error::invalid(
                "program",
                format!(
                    "{} starts at byte {}, not a multiple of the device's storage offset alignment {align}",
                    arg_name(program, i, j, b),
                    4 * b.offset
                ),
            ));
        }
    }
    Ok(())
}

/// The dispatches being built for a program: their steps, parameters and buffer sizes.
struct Dispatches<'a> {
    ctx: &'a Context,
    cache: &'a mut PipelineCache,
    matmul: MatmulKernel,
    vec4: bool,
    steps: Vec<CompiledStep>,
    params: Vec<u8>,
    scratch_len: usize,
}

impl Dispatches<'_> {
    /// Add the dispatch(es) of `step` (step `index` of the program, or a chunk of it) bound to
    /// `args`.
    fn add(&mut self, step: &Step, index: usize, args: Vec<Bind>) -> Result<()> {
        let launch = step_launch(self.ctx, step, index, self.matmul, self.vec4)?;
        let (first, then, scratch) = match launch {
            StepLaunch::Single(launch) => (launch, None, None),
            StepLaunch::Split(sk) => {
                let Some(reduce_groups) = sk.reduce.groups else { return Ok(()) };
                let reduce = self.cache.pipeline(self.ctx, &sk.reduce)?;
                self.scratch_len = self.scratch_len.max(sk.scratch_len);
                (sk.partial, Some((reduce, reduce_groups)), Some(sk.scratch_len))
            }
        };
        let Some(groups) = first.groups else { return Ok(()) };
        self.add_launch(&first, index, args, then, scratch, groups)
    }

    fn add_launch(
        &mut self,
        launch: &kernels::Launch,
        index: usize,
        args: Vec<Bind>,
        then: Option<(wgpu::ComputePipeline, [u32; 3])>,
        scratch: Option<usize>,
        groups: [u32; 3],
    ) -> Result<()> {
        let pipeline = self.cache.pipeline(self.ctx, launch)?;
        // A repeated launch (a time loop) is `repeat` dispatches, each with its own params.
        for step in 0..launch.repeat {
            let slot = self.steps.len();
            let params = if launch.repeat > 1 { launch.params.with_step(step) } else { launch.params };
            let bytes = bytemuck::bytes_of(&params);
            self.params.resize((slot + 1) * PARAMS_STRIDE as usize, 0);
            let at = slot * PARAMS_STRIDE as usize;
            self.params[at..at + bytes.len()].copy_from_slice(bytes);
            let (args, pipeline, then) = (args.clone(), pipeline.clone(), then.clone());
            self.steps.push(CompiledStep { index, slot, args, pipeline, groups, then, scratch });
        }
        Ok(())
    }
}

impl Compiled {
    /// Validate `program` against `resident`, check sizes, create pipelines (cached), the
    /// per-step parameter buffer and every bind group (over `work`, the model's shared Work
    /// arena, at least `program.work_len` elements).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        ctx: &Context,
        cache: &mut PipelineCache,
        shared: &Shared,
        resident: &Resident,
        work: &wgpu::Buffer,
        program: &Program,
        matmul: MatmulKernel,
        vec4: bool,
        binding_limit: Option<u64>,
    ) -> Result<Compiled> {
        crate::backend::cpu::validate(program, &resident.layout)?;
        let mut d =
            Dispatches { ctx, cache, matmul, vec4, steps: Vec::new(), params: Vec::new(), scratch_len: 0 };
        let device_binding = ctx.limits.max_storage_buffer_binding_size;
        let max_binding = binding_limit.map_or(device_binding, |b| b.min(device_binding));
        let align_elems = (ctx.limits.min_storage_buffer_offset_alignment as usize / 4).max(1);
        let mut chunk_out_len = 0;
        for (index, step) in program.steps.iter().enumerate() {
            let too_large = step.args.iter().any(|b| 4 * b.len as u64 > max_binding);
            let plan = if too_large { chunk::plan(step, max_binding, align_elems) } else { None };
            let Some(plan) = plan else {
                check_bindings(ctx, program, index)?;
                d.add(step, index, step.args.iter().map(|&b| Bind::Arena(b)).collect())?;
                continue;
            };
            let chunks = plan.chunks.len();
            for c in &plan.chunks {
                let mut args: Vec<Bind> = c.step.args.iter().map(|&b| Bind::Arena(b)).collect();
                if let (Some(j), Some(last)) = (c.out_slot, args.last_mut()) {
                    *last = Bind::ChunkOut { offset: j * plan.slot_len, len: plan.out.len };
                }
                d.add(&c.step, index, args)?;
            }
            if plan.slot_len > 0 {
                // The partial results in chunk order into the real output.
                chunk_out_len = chunk_out_len.max(chunks * plan.slot_len);
                let params = ReduceParams {
                    rows: launch::u(chunks)?,
                    cols: launch::u(plan.slot_len)?,
                    len: launch::u(plan.out.len)?,
                    ..Default::default()
                };
                let max_groups = ctx.limits.max_compute_workgroups_per_dimension;
                let groups = launch::grid(plan.out.len, 256, max_groups)?;
                let sum = kernels::Launch::new(Shader::Reduce, "sum_slices", &params, groups, chunks as u64);
                let args =
                    vec![Bind::ChunkOut { offset: 0, len: chunks * plan.slot_len }, Bind::Arena(plan.out)];
                if let Some(groups) = groups {
                    d.add_launch(&sum, index, args, None, None, groups)?;
                }
            }
        }
        let Dispatches { steps, mut params, scratch_len, .. } = d;
        if params.is_empty() {
            params.resize(PARAMS_STRIDE as usize, 0);
        }
        let scratch = if scratch_len > 0 {
            Some(create_buffer(ctx, "split kernels' partial results", arena_bytes(scratch_len), ARENA_USAGE)?)
        } else {
            None
        };
        let chunk_out = if chunk_out_len > 0 {
            Some(create_buffer(
                ctx,
                "batch chunks' partial results",
                arena_bytes(chunk_out_len),
                ARENA_USAGE,
            )?)
        } else {
            None
        };
        let params_buf = create_buffer(
            ctx,
            "step parameters",
            params.len() as u64,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        )?;
        ctx.queue.write_buffer(&params_buf, 0, &params);
        let mut compiled = Compiled {
            program: program.clone(),
            scratch,
            chunk_out,
            params: params_buf,
            steps,
            bind_groups: Err("not bound yet".into()),
        };
        compiled.bind(ctx, cache, shared, resident, work)?;
        Ok(compiled)
    }

    /// (Re)create the bind groups against the current resident arenas and Work buffer.
    pub(crate) fn bind(
        &mut self,
        ctx: &Context,
        cache: &PipelineCache,
        shared: &Shared,
        resident: &Resident,
        work: &wgpu::Buffer,
    ) -> Result<()> {
        self.bind_groups = Err("the resident arenas changed and no longer fit".into());
        crate::backend::cpu::validate(&self.program, &resident.layout)?;
        let mut groups = Vec::with_capacity(self.steps.len());
        for s in &self.steps {
            let mut entries = Vec::with_capacity(MAX_ARGS + 2);
            for j in 0..MAX_ARGS {
                let binding = match (s.args.get(j), j, s.scratch, &self.scratch) {
                    // A split kernel's partial results, after its args (at most three).
                    (_, 4, Some(len), Some(buffer)) => wgpu::BufferBinding {
                        buffer,
                        offset: 0,
                        size: NonZeroU64::new(4 * len.max(1) as u64),
                    },
                    (Some(Bind::ChunkOut { offset, len }), ..) => {
                        let Some(buffer) = &self.chunk_out else {
                            return Err(Error::invalid(
                                "program",
                                "a chunked step has no partial-results buffer",
                            ));
                        };
                        wgpu::BufferBinding {
                            buffer,
                            offset: 4 * *offset as u64,
                            size: NonZeroU64::new(4 * (*len).max(1) as u64),
                        }
                    }
                    (Some(Bind::Arena(b)), ..) if b.len > 0 => {
                        let buffer = match b.arena {
                            Arena::Work => Some(work),
                            a => resident.buffer(a),
                        };
                        let Some(buffer) = buffer else {
                            return Err(Error::invalid(
                                "program",
                                format!("{} names a missing arena", arg_name(&self.program, s.index, j, b)),
                            ));
                        };
                        wgpu::BufferBinding {
                            buffer,
                            offset: 4 * b.offset as u64,
                            size: NonZeroU64::new(4 * b.len as u64),
                        }
                    }
                    _ => shared.dummy.as_entire_buffer_binding(),
                };
                entries.push(wgpu::BindGroupEntry {
                    binding: arg_binding(j),
                    resource: wgpu::BindingResource::Buffer(binding),
                });
            }
            entries.push(wgpu::BindGroupEntry {
                binding: PARAMS_BINDING,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &self.params,
                    offset: s.slot as u64 * PARAMS_STRIDE,
                    size: NonZeroU64::new(PARAMS_BYTES as u64),
                }),
            });
            entries.push(wgpu::BindGroupEntry {
                binding: SCALARS_BINDING,
                resource: shared.scalars.as_entire_binding(),
            });
            let context = format!("binding {}", self.program.steps[s.index].describe(s.index));
            groups.push(ctx.scoped(&context, || {
                ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("kiln step"),
                    layout: &cache.bind_group_layout,
                    entries: &entries,
                })
            })?);
        }
        self.bind_groups = Ok(groups);
        Ok(())
    }

    /// Upload inputs and scalars, record every step into one compute pass, submit once. With a
    /// `timer`, the pass writes its start and end timestamps (read them with the timer).
    /// Compute dispatches per run (two for a split kernel).
    pub(crate) fn dispatches(&self) -> usize {
        self.steps.iter().map(|s| 1 + usize::from(s.then.is_some())).sum()
    }

    /// With `copy` = (slice of Work, destination buffer, byte offset there), the slice is
    /// copied there after the pass, in the same submit.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run(
        &self,
        ctx: &Context,
        shared: &Shared,
        work: &wgpu::Buffer,
        inputs: &[&[f32]],
        scalars: StepScalars,
        timer: Option<&PassTimer>,
        copy: Option<(BufRef, &wgpu::Buffer, u64)>,
    ) -> Result<()> {
        let groups = self
            .bind_groups
            .as_ref()
            .map_err(|m| Error::NotReady(format!("compiled program: {m}; compile it again")))?;
        let program = &self.program;
        if inputs.len() != program.inputs.len() {
            return Err(Error::invalid(
                "program inputs",
                format!("{} given, {} expected", inputs.len(), program.inputs.len()),
            ));
        }
        for ((name, b), data) in program.inputs.iter().zip(inputs) {
            if data.len() != b.len {
                return Err(Error::shape(format!("input '{name}'"), &[b.len], &[data.len()]));
            }
        }
        for ((_, b), data) in program.inputs.iter().zip(inputs) {
            if !data.is_empty() {
                ctx.queue.write_buffer(work, 4 * b.offset as u64, bytemuck::cast_slice(data));
            }
        }
        let run = kernels::RunScalars { lr: scalars.lr, t: scalars.t, pad: [0; 2] };
        ctx.queue.write_buffer(&shared.scalars, 0, bytemuck::bytes_of(&run));
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("kiln program") });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("kiln program"),
                timestamp_writes: timer.map(PassTimer::writes),
            });
            for (s, bg) in self.steps.iter().zip(groups) {
                pass.set_pipeline(&s.pipeline);
                pass.set_bind_group(0, bg, &[]);
                pass.dispatch_workgroups(s.groups[0], s.groups[1], s.groups[2]);
                if let Some((pipeline, g)) = &s.then {
                    pass.set_pipeline(pipeline);
                    pass.dispatch_workgroups(g[0], g[1], g[2]);
                }
            }
        }
        if let Some(t) = timer {
            t.resolve(&mut encoder);
        }
        if let Some((src, dst, at)) = copy
            && src.len > 0
        {
            encoder.copy_buffer_to_buffer(work, 4 * src.offset as u64, dst, at, 4 * src.len as u64);
        }
        ctx.scoped("running a program", || {
            ctx.queue.submit([encoder.finish()]);
        })
    }
}
