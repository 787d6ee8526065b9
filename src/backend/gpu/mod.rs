//! GPU backend (wgpu): placeholder until the real backend lands.
use crate::backend::{Backend, DeviceKind, ProgramId};
use crate::error::{Error, Result};
use crate::program::{Arena, BufRef, Program, ResidentLayout, StepScalars};

/// Summary of one adapter.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    pub index: usize,
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub is_software: bool,
    pub f16: bool,
    pub subgroups: Option<(u32, u32)>,
    pub timestamps: bool,
    pub max_buffer_size: u64,
    pub max_storage_binding: u64,
    pub max_workgroup_invocations: u32,
    pub max_workgroup_storage: u32,
}

/// Adapters.
pub fn adapters() -> Vec<AdapterSummary> {
    vec![]
}

/// GPU backend.
pub struct GpuBackend {
    info: AdapterSummary,
}

impl GpuBackend {
    /// Open an adapter.
    pub fn new(_index: Option<usize>) -> Result<GpuBackend> {
        Err(Error::NoAdapter("not built yet".into()))
    }
    /// Info.
    pub fn info(&self) -> &AdapterSummary {
        &self.info
    }
}

impl Backend for GpuBackend {
    fn name(&self) -> String {
        self.info.name.clone()
    }
    fn kind(&self) -> DeviceKind {
        DeviceKind::Cpu
    }
    fn alloc_resident(&mut self, _layout: &ResidentLayout) -> Result<()> {
        Ok(())
    }
    fn write(&mut self, _arena: Arena, _offset: usize, _data: &[f32]) -> Result<()> {
        Ok(())
    }
    fn read(&mut self, _arena: Arena, _offset: usize, _len: usize) -> Result<Vec<f32>> {
        Ok(vec![])
    }
    fn compile(&mut self, _program: &Program) -> Result<ProgramId> {
        Ok(ProgramId(0))
    }
    fn run(&mut self, _id: ProgramId, _inputs: &[&[f32]], _scalars: StepScalars) -> Result<()> {
        Ok(())
    }
    fn read_work(&mut self, _id: ProgramId, _buf: BufRef) -> Result<Vec<f32>> {
        Ok(vec![])
    }
}
