//! GPU backend: executes [`Program`]s as WGSL compute kernels through wgpu (Vulkan, Metal,
//! DX12, GL; lavapipe in CI). Resident arenas are one buffer each, a compiled program owns its
//! work buffer, pipelines and bind groups, and `run` is one command buffer, one submit.
//!
//! - `context`: adapters, device, error capture.
//! - `kernels`: shader files, the launch of every Kernel (from the kernel table in
//!   `program/table.rs`) and the pipeline cache; `launch`: the launch families (grids, loop
//!   bounds); `params`: the typed per-shader parameter structs.
//! - `exec`: buffers, compile, run, readback.
//! - `timer`: optional timestamp queries around a run's pass (benchmarks).
mod buffers;
mod chunk;
mod context;
mod exec;
mod kernels;
mod launch;
mod params;
mod splitk;
mod timer;

pub use context::{AdapterSummary, adapters};
pub use kernels::{MatmulKernel, entry_point};
pub use params::{FieldLayout, params_layouts, shader_source};
pub use splitk::{splits_k, splits_rows};

use std::sync::{Arc, Mutex, OnceLock, Weak};

use context::Context;
use exec::{Compiled, Resident, Shared};
use kernels::PipelineCache;
use timer::PassTimer;

use crate::backend::{Backend, DeviceKind, ProgramId};
use crate::error::{Error, Result};
use crate::program::{Arena, BufRef, Program, ResidentLayout, StepScalars};

/// One open device and its pipeline cache, shared by every backend (model) on the same
/// adapter in this process: the device is opened once and each pipeline compiled once.
struct SharedDevice {
    ctx: Context,
    cache: Mutex<PipelineCache>,
}

/// Open devices by adapter key ("index|name|backend").
type OpenDevices = Mutex<Vec<(String, Weak<SharedDevice>)>>;

/// The devices open in this process; an entry lives while some backend holds it.
fn open_devices() -> &'static OpenDevices {
    static OPEN: OnceLock<OpenDevices> = OnceLock::new();
    OPEN.get_or_init(|| Mutex::new(Vec::new()))
}

/// The shared device on adapter `index` (see [`GpuBackend::new`]), opened on first use.
fn shared_device(index: Option<usize>) -> Result<Arc<SharedDevice>> {
    let (adapter, summary) = context::pick_adapter(index)?;
    let key = format!("{}|{}|{}", summary.index, summary.name, summary.backend);
    let mut open = open_devices().lock().unwrap_or_else(|e| e.into_inner());
    open.retain(|(_, weak)| weak.strong_count() > 0);
    if let Some(dev) = open.iter().find(|(k, _)| *k == key).and_then(|(_, weak)| weak.upgrade()) {
        return Ok(dev);
    }
    let ctx = Context::open(adapter, summary)?;
    let cache = Mutex::new(PipelineCache::new(&ctx)?);
    let dev = Arc::new(SharedDevice { ctx, cache });
    open.push((key, Arc::downgrade(&dev)));
    Ok(dev)
}

/// The wgpu backend on one adapter.
pub struct GpuBackend {
    dev: Arc<SharedDevice>,
    shared: Shared,
    resident: Resident,
    programs: Vec<Compiled>,
    matmul: MatmulKernel,
    matmul_vec4: bool,
    /// A binding limit below the adapter's (tests of the chunked path).
    binding_limit: Option<u64>,
    /// The Work arena every program of this backend (model) shares: as large as the largest
    /// program's, grown (and every program rebound) when a larger one is compiled.
    work: wgpu::Buffer,
    /// Elements `work` holds.
    work_len: usize,
    /// The program run last: the Work arena holds its results.
    last_run: Option<ProgramId>,
    /// `run_collect`'s device copies (buffer, capacity in elements, elements used) and the
    /// ones already read back.
    collect: Option<(wgpu::Buffer, usize, usize)>,
    collected: Vec<f32>,
    /// Created by the first `run_timed` (None inside when the device has no timestamps).
    timer: Option<Option<PassTimer>>,
}

impl GpuBackend {
    /// Open adapter `index` of [`adapters`] (None: the first hardware adapter, else the first
    /// software one). Fails with [`Error::NoAdapter`] when there is none, or when
    /// `WGPU_BACKEND=vulkan` and the adapter is not on Vulkan.
    pub fn new(index: Option<usize>) -> Result<GpuBackend> {
        let dev = shared_device(index)?;
        let shared = Shared::new(&dev.ctx)?;
        let resident = Resident::new(&dev.ctx, &ResidentLayout::default())?;
        let matmul = MatmulKernel::for_adapter(dev.ctx.summary.is_software);
        let work = exec::create_buffer(&dev.ctx, "Work arena", exec::arena_bytes(0), exec::ARENA_USAGE)?;
        Ok(GpuBackend {
            matmul,
            matmul_vec4: true,
            binding_limit: None,
            work,
            work_len: 0,
            last_run: None,
            collect: None,
            collected: Vec::new(),
            dev,
            shared,
            resident,
            programs: Vec::new(),
            timer: None,
        })
    }

    /// How many of `program`'s kernels would need a pipeline compiled: the cache is shared by
    /// every backend on this adapter, so a program another model compiled needs none.
    pub fn pipelines_to_compile(&self, program: &Program) -> Result<usize> {
        let cache = self.dev.cache.lock().unwrap_or_else(|e| e.into_inner());
        let mut missing = 0;
        for (index, step) in program.steps.iter().enumerate() {
            missing += match exec::step_launch(&self.dev.ctx, step, index, self.matmul, self.matmul_vec4)? {
                exec::StepLaunch::Split(sk) => {
                    usize::from(!cache.contains(&sk.partial)) + usize::from(!cache.contains(&sk.reduce))
                }
                exec::StepLaunch::Single(l) => usize::from(l.groups.is_some() && !cache.contains(&l)),
            };
        }
        Ok(missing)
    }

    /// The adapter this backend runs on.
    pub fn info(&self) -> &AdapterSummary {
        &self.dev.ctx.summary
    }

    /// The matmul kernel programs compiled from now on use.
    pub fn matmul_kernel(&self) -> MatmulKernel {
        self.matmul
    }

    /// Choose the matmul kernel for programs compiled from now on (default: the adapter's
    /// best, [`MatmulKernel::for_adapter`]).
    pub fn set_matmul_kernel(&mut self, kernel: MatmulKernel) {
        self.matmul = kernel;
    }

    /// Whether programs compiled from now on run vec4-aligned matmuls through the vec4 kernel
    /// (`shaders/matmul_vec4.wgsl`; default on). Off: every matmul takes the scalar kernel of
    /// [`GpuBackend::matmul_kernel`] (for benchmarks and tests).
    pub fn set_matmul_vec4(&mut self, enabled: bool) {
        self.matmul_vec4 = enabled;
    }

    /// Compute dispatches per run of compiled program `id` (a step run in batch chunks or split
    /// counts several); None for an unknown id.
    pub fn dispatches(&self, id: ProgramId) -> Option<usize> {
        self.programs.get(id.0).map(|p| p.dispatches())
    }

    /// The largest storage binding, in bytes, programs compiled from now on may use: steps
    /// with larger args run in batch chunks (see `chunk.rs`). Default (None): the adapter's
    /// `max_storage_buffer_binding_size`; a smaller value is for tests of the chunked path.
    pub fn set_binding_limit(&mut self, bytes: Option<u64>) {
        self.binding_limit = bytes;
    }

    /// Run a compiled program as [`Backend::run`] does and wait until it has finished. Returns
    /// the GPU time of its compute pass in seconds from timestamp queries, or None when the
    /// device has no `TIMESTAMP_QUERY` (time the call instead).
    pub fn run_timed(
        &mut self,
        id: ProgramId,
        inputs: &[&[f32]],
        scalars: StepScalars,
    ) -> Result<Option<f64>> {
        if self.timer.is_none() {
            self.timer = Some(PassTimer::new(&self.dev.ctx)?);
        }
        let timer = self.timer.as_ref().and_then(Option::as_ref);
        let ctx = &self.dev.ctx;
        self.last_run = None;
        self.program(id)?.run(ctx, &self.shared, &self.work, inputs, scalars, timer, None)?;
        self.last_run = Some(id);
        match timer {
            Some(t) => t.read_seconds(ctx).map(Some),
            None => ctx.wait("waiting for a run").map(|()| None),
        }
    }

    fn program(&self, id: ProgramId) -> Result<&Compiled> {
        self.programs
            .get(id.0)
            .ok_or_else(|| Error::invalid("program id", format!("{} was not compiled on this backend", id.0)))
    }

    fn check_range(&self, arena: Arena, offset: usize, len: usize) -> Result<()> {
        let have = self.resident.len(arena);
        if arena == Arena::Work || offset + len > have {
            return Err(Error::invalid(
                "arena access",
                format!(
                    "{}[{offset}..{}] is outside its {have} resident elements",
                    arena.name(),
                    offset + len
                ),
            ));
        }
        Ok(())
    }
}

impl Backend for GpuBackend {
    fn name(&self) -> String {
        self.dev.ctx.summary.name.clone()
    }

    fn kind(&self) -> DeviceKind {
        DeviceKind::Gpu {
            backend: self.dev.ctx.summary.backend.clone(),
            device_type: self.dev.ctx.summary.device_type.clone(),
        }
    }

    fn alloc_resident(&mut self, layout: &ResidentLayout) -> Result<()> {
        self.resident = Resident::new(&self.dev.ctx, layout)?;
        let cache = self.dev.cache.lock().unwrap_or_else(|e| e.into_inner());
        for p in &mut self.programs {
            // A program that no longer fits keeps an error and reports it when run.
            let _ = p.bind(&self.dev.ctx, &cache, &self.shared, &self.resident, &self.work);
        }
        Ok(())
    }

    fn write(&mut self, arena: Arena, offset: usize, data: &[f32]) -> Result<()> {
        self.check_range(arena, offset, data.len())?;
        if let (Some(buffer), false) = (self.resident.buffer(arena), data.is_empty()) {
            self.dev.ctx.queue.write_buffer(buffer, 4 * offset as u64, bytemuck::cast_slice(data));
        }
        self.dev.ctx.errors.take("writing a resident arena")
    }

    fn read(&mut self, arena: Arena, offset: usize, len: usize) -> Result<Vec<f32>> {
        self.check_range(arena, offset, len)?;
        match self.resident.buffer(arena) {
            Some(buffer) => self.shared.read_buffer(&self.dev.ctx, buffer, offset, len),
            None => Ok(Vec::new()),
        }
    }

    fn compile(&mut self, program: &Program) -> Result<ProgramId> {
        let mut cache = self.dev.cache.lock().unwrap_or_else(|e| e.into_inner());
        let ctx = &self.dev.ctx;
        if program.work_len > self.work_len {
            // One Work arena for all programs: grow it, and bind the earlier programs to it.
            let bytes = exec::arena_bytes(program.work_len);
            exec::check_buffer(ctx, "the Work arena (the activations and gradients of one step)", bytes)?;
            self.work = exec::create_buffer(ctx, "Work arena", bytes, exec::ARENA_USAGE)?;
            self.work_len = program.work_len;
            self.last_run = None;
            for p in &mut self.programs {
                let _ = p.bind(ctx, &cache, &self.shared, &self.resident, &self.work);
            }
        }
        let compiled = Compiled::new(
            &self.dev.ctx,
            &mut cache,
            &self.shared,
            &self.resident,
            &self.work,
            program,
            self.matmul,
            self.matmul_vec4,
            self.binding_limit,
        )?;
        self.programs.push(compiled);
        Ok(ProgramId(self.programs.len() - 1))
    }

    fn run(&mut self, id: ProgramId, inputs: &[&[f32]], scalars: StepScalars) -> Result<()> {
        self.last_run = None;
        self.program(id)?.run(&self.dev.ctx, &self.shared, &self.work, inputs, scalars, None, None)?;
        self.last_run = Some(id);
        Ok(())
    }

    fn read_work(&mut self, id: ProgramId, buf: BufRef) -> Result<Vec<f32>> {
        if buf.arena != Arena::Work {
            return self.read(buf.arena, buf.offset, buf.len);
        }
        let p = self.program(id)?;
        if self.last_run != Some(id) {
            return Err(Error::NotReady(format!(
                "the Work arena holds another program's results; run program {} again before reading it",
                id.0
            )));
        }
        if buf.offset + buf.len > p.program.work_len {
            return Err(Error::invalid(
                "arena access",
                format!(
                    "Work[{}..{}] is outside its {} elements",
                    buf.offset,
                    buf.offset + buf.len,
                    p.program.work_len
                ),
            ));
        }
        self.shared.read_buffer(&self.dev.ctx, &self.work, buf.offset, buf.len)
    }

    fn run_collect(&mut self, id: ProgramId, inputs: &[&[f32]], out: BufRef) -> Result<()> {
        let p = self.program(id)?;
        if out.arena != Arena::Work || out.offset + out.len > p.program.work_len {
            return Err(Error::invalid(
                "run_collect",
                "the collected output must be a slice of the program's Work",
            ));
        }
        let used = self.collect.as_ref().map_or(0, |c| c.2);
        let capacity = self.collect.as_ref().map_or(0, |c| c.1);
        if used + out.len > capacity {
            self.flush_collected()?;
            if out.len > capacity {
                // Room for many runs' outputs: 16 MiB, or one output, within the device limit.
                let limit = (self.dev.ctx.limits.max_buffer_size / 4) as usize;
                let elems = out.len.max(COLLECT_ELEMS.min(limit));
                let usage = wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
                let buffer =
                    exec::create_buffer(&self.dev.ctx, "collected outputs", 4 * elems as u64, usage)?;
                self.collect = Some((buffer, elems, 0));
            }
        }
        let Some((buffer, _, used)) = &self.collect else {
            return Err(Error::invalid("run_collect", "no collection buffer"));
        };
        self.last_run = None;
        let copy = Some((out, buffer, 4 * *used as u64));
        self.program(id)?.run(
            &self.dev.ctx,
            &self.shared,
            &self.work,
            inputs,
            StepScalars::default(),
            None,
            copy,
        )?;
        self.last_run = Some(id);
        if let Some(c) = self.collect.as_mut() {
            c.2 += out.len;
        }
        Ok(())
    }

    fn take_collected(&mut self) -> Result<Vec<f32>> {
        self.flush_collected()?;
        Ok(std::mem::take(&mut self.collected))
    }
}

/// Elements of the device buffer `run_collect` copies outputs into (16 MiB).
const COLLECT_ELEMS: usize = 4 << 20;

impl GpuBackend {
    /// Read the device copies of `run_collect` back (one readback) and empty the buffer.
    fn flush_collected(&mut self) -> Result<()> {
        if let Some((buffer, _, used)) = self.collect.as_mut()
            && *used > 0
        {
            let values = self.shared.read_buffer(&self.dev.ctx, buffer, 0, *used)?;
            self.collected.extend(values);
            *used = 0;
        }
        Ok(())
    }
}
