//! Backends execute planned [`Program`]s. The trait is narrow on purpose: allocate the
//! resident arenas, compile a program once, run it many times, move data in and out.
pub mod cpu;
pub mod gpu;

use crate::error::Result;
use crate::program::{Arena, BufRef, Program, ResidentLayout, StepScalars};

/// Handle of a compiled program within one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProgramId(pub usize);

/// What kind of device a backend runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceKind {
    Cpu,
    /// A wgpu adapter: backend ("Vulkan", "Gl", ...) and device type ("DiscreteGpu", "Cpu", ...).
    Gpu {
        backend: String,
        device_type: String,
    },
}

/// A device that executes programs.
pub trait Backend {
    /// Human-readable device name (adapter name, or "cpu (N threads)").
    fn name(&self) -> String;
    /// The kind of device.
    fn kind(&self) -> DeviceKind;
    /// (Re)allocate the resident arenas (zero-filled), dropping compiled programs' bindings to
    /// the old ones.
    fn alloc_resident(&mut self, layout: &ResidentLayout) -> Result<()>;
    /// Write `data` into a resident arena at `offset` (elements).
    fn write(&mut self, arena: Arena, offset: usize, data: &[f32]) -> Result<()>;
    /// Read `len` elements of a resident arena at `offset`.
    fn read(&mut self, arena: Arena, offset: usize, len: usize) -> Result<Vec<f32>>;
    /// Prepare a program (pipelines, work arena, bindings) for repeated runs.
    fn compile(&mut self, program: &Program) -> Result<ProgramId>;
    /// Run a compiled program once: `inputs` in `program.inputs` order, each exactly as long
    /// as its slice. The GPU backend records the whole program into one submit.
    fn run(&mut self, id: ProgramId, inputs: &[&[f32]], scalars: StepScalars) -> Result<()>;
    /// Read a slice of the program's work arena (an output) after `run`.
    fn read_work(&mut self, id: ProgramId, buf: BufRef) -> Result<Vec<f32>>;
    /// Run `id` (no per-run scalars) and keep a copy of its output `out`: on a GPU the copy
    /// stays on the device, in the same submit, so a loop of runs (`predict`'s batches) is not
    /// a device sync per run. [`Backend::take_collected`] reads the copies back.
    fn run_collect(&mut self, id: ProgramId, inputs: &[&[f32]], out: BufRef) -> Result<()>;
    /// Every output kept by `run_collect` since the last call, concatenated in run order.
    fn take_collected(&mut self) -> Result<Vec<f32>>;
}
