//! Choosing where a model runs: `auto` means a hardware GPU when there is one, else the CPU.
//! Software adapters (lavapipe/llvmpipe) are used only when asked for explicitly.
use std::str::FromStr;

use crate::backend::Backend;
use crate::backend::cpu::CpuBackend;
use crate::backend::gpu::{self, GpuBackend};
use crate::error::{Error, Result};

/// Where to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// A hardware GPU if present, else the CPU (`KILN_DEVICE` overrides).
    #[default]
    Auto,
    /// The CPU backend.
    Cpu,
    /// A wgpu adapter: the first one (hardware preferred), or adapter N of `kiln devices`.
    Gpu(Option<usize>),
}

impl std::fmt::Display for Device {
    /// The flag spelling: auto, cpu, gpu, gpu:N.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Auto => write!(f, "auto"),
            Device::Cpu => write!(f, "cpu"),
            Device::Gpu(None) => write!(f, "gpu"),
            Device::Gpu(Some(i)) => write!(f, "gpu:{i}"),
        }
    }
}

impl FromStr for Device {
    type Err = Error;
    fn from_str(s: &str) -> Result<Device> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "gpu" => Ok(Device::Gpu(None)),
            _ => match s.strip_prefix("gpu:").map(|n| n.parse::<usize>()) {
                Some(Ok(n)) => Ok(Device::Gpu(Some(n))),
                _ => Err(Error::invalid("device", format!("'{s}' (expected auto, cpu, gpu or gpu:N)"))),
            },
        }
    }
}

/// A backend for `device` and a sentence saying why it was chosen.
pub fn open(device: Device) -> Result<(Box<dyn Backend>, String)> {
    match device {
        Device::Cpu => Ok((Box::new(CpuBackend::new()), "requested".into())),
        Device::Gpu(index) => {
            let b = GpuBackend::new(index)?;
            Ok((Box::new(b), "requested".into()))
        }
        Device::Auto => {
            let (device, reason) = resolve_auto(&gpu::adapters())?;
            let (backend, _) = open(device)?;
            Ok((backend, reason))
        }
    }
}

/// What `auto` means on this machine, and why: `KILN_DEVICE` when set, else the first hardware
/// adapter of `adapters`, else the CPU (software adapters only when asked for).
pub fn resolve_auto(adapters: &[gpu::AdapterSummary]) -> Result<(Device, String)> {
    if let Ok(env) = std::env::var("KILN_DEVICE") {
        let d: Device = env.parse()?;
        if d != Device::Auto {
            return Ok((d, format!("KILN_DEVICE={env}")));
        }
    }
    Ok(match adapters.iter().find(|a| !a.is_software) {
        Some(a) => (
            Device::Gpu(Some(a.index)),
            format!("auto: hardware GPU found ({}, {})", a.device_type, a.backend),
        ),
        None => (
            Device::Cpu,
            "auto: no hardware GPU adapter (software adapters are used only with --device gpu)".into(),
        ),
    })
}
