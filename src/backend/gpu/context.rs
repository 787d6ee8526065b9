//! Adapter discovery and device creation: instance from the environment (`WGPU_BACKEND`),
//! adapter summaries, a device with the adapter's full limits, and wgpu errors turned into
//! [`Error::Gpu`] (error scopes plus an uncaptured-error sink).
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// What kiln needs to know about one wgpu adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSummary {
    /// Position in [`adapters`] order (the index `GpuBackend::new(Some(i))` takes).
    pub index: usize,
    pub name: String,
    /// wgpu backend: "Vulkan", "Metal", "Dx12", "Gl", ...
    pub backend: String,
    /// "DiscreteGpu", "IntegratedGpu", "VirtualGpu", "Cpu", "Other".
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
    /// A software rasterizer (device type Cpu, e.g. lavapipe/llvmpipe).
    pub is_software: bool,
    /// SHADER_F16 is available.
    pub f16: bool,
    /// Subgroup size range (min, max) when SUBGROUP is available.
    pub subgroups: Option<(u32, u32)>,
    /// TIMESTAMP_QUERY is available.
    pub timestamps: bool,
    pub max_buffer_size: u64,
    pub max_storage_binding: u64,
    pub max_workgroup_invocations: u32,
    pub max_workgroup_storage: u32,
}

/// The instance built from the environment (`WGPU_BACKEND`, `WGPU_DEBUG`, ...).
fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

/// The backend the environment asks for, lower-cased ("" when unset).
fn requested_backends() -> String {
    std::env::var("WGPU_BACKEND").unwrap_or_default().to_lowercase()
}

/// The first name in a set `WGPU_BACKEND` that wgpu does not know (an empty value is one).
fn unknown_backend() -> Option<String> {
    let requested = std::env::var("WGPU_BACKEND").ok()?;
    let known = [
        "vulkan",
        "vk",
        "metal",
        "mtl",
        "dx12",
        "d3d12",
        "gl",
        "gles",
        "opengl",
        "webgpu",
        "primary",
        "secondary",
    ];
    requested.to_lowercase().split(',').map(str::trim).find(|b| !known.contains(b)).map(str::to_string)
}

/// Whether `WGPU_BACKEND` names a GL backend (gl, gles, opengl).
fn gl_requested() -> bool {
    requested_backends().split(',').any(|b| matches!(b.trim(), "gl" | "gles" | "opengl"))
}

/// Whether `WGPU_BACKEND` asks for exactly Vulkan.
fn vulkan_required() -> bool {
    matches!(requested_backends().trim(), "vulkan" | "vk")
}

/// Every usable adapter, in kiln's order, with its summary. GL adapters are skipped unless
/// `WGPU_BACKEND` names gl: the same device usually also shows up on Vulkan.
fn enumerate() -> Vec<(wgpu::Adapter, AdapterSummary)> {
    let instance = instance();
    let gl = gl_requested();
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .filter(|a| gl || a.get_info().backend != wgpu::Backend::Gl)
        .enumerate()
        .map(|(index, a)| {
            let s = summarize(index, &a);
            (a, s)
        })
        .collect()
}

fn summarize(index: usize, adapter: &wgpu::Adapter) -> AdapterSummary {
    let info = adapter.get_info();
    let features = adapter.features();
    let limits = adapter.limits();
    let driver = if info.driver_info.is_empty() {
        info.driver.clone()
    } else {
        format!("{} {}", info.driver, info.driver_info)
    };
    AdapterSummary {
        index,
        name: info.name.clone(),
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver,
        is_software: info.device_type == wgpu::DeviceType::Cpu,
        f16: features.contains(wgpu::Features::SHADER_F16),
        subgroups: features
            .contains(wgpu::Features::SUBGROUP)
            .then_some((info.subgroup_min_size, info.subgroup_max_size)),
        timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
        max_buffer_size: limits.max_buffer_size,
        max_storage_binding: limits.max_storage_buffer_binding_size,
        max_workgroup_invocations: limits.max_compute_invocations_per_workgroup,
        max_workgroup_storage: limits.max_compute_workgroup_storage_size,
    }
}

/// Every adapter wgpu finds on the backends the environment allows (GL only when
/// `WGPU_BACKEND` names it), in the order [`GpuBackend::new`](super::GpuBackend::new) indexes them.
pub fn adapters() -> Vec<AdapterSummary> {
    enumerate().into_iter().map(|(_, s)| s).collect()
}

/// Errors wgpu reported outside any error scope, kept until the next check.
#[derive(Clone, Default)]
pub(crate) struct ErrorSink(Arc<Mutex<Option<String>>>);

impl ErrorSink {
    fn store(&self, e: wgpu::Error) {
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert_with(|| e.to_string());
        }
    }

    /// The first uncaptured error since the last call, as [`Error::Gpu`].
    pub(crate) fn take(&self, context: &str) -> Result<()> {
        let pending = self.0.lock().ok().and_then(|mut s| s.take());
        match pending {
            Some(message) => Err(Error::Gpu { context: context.to_string(), message }),
            None => Ok(()),
        }
    }
}

/// An open device: adapter, device, queue, summary, uncaptured-error sink.
pub(crate) struct Context {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) summary: AdapterSummary,
    pub(crate) limits: wgpu::Limits,
    pub(crate) errors: ErrorSink,
}

/// Adapter `index` of [`adapters`], or (None) the first hardware adapter, else the first
/// software one.
pub(crate) fn pick_adapter(index: Option<usize>) -> Result<(wgpu::Adapter, AdapterSummary)> {
    let mut found = enumerate();
    let available = || {
        let names: Vec<String> =
            adapters().iter().map(|s| format!("{}: {} ({})", s.index, s.name, s.backend)).collect();
        if names.is_empty() { "none".to_string() } else { names.join(", ") }
    };
    let pick = match index {
        Some(i) if i < found.len() => i,
        Some(i) => {
            return Err(Error::NoAdapter(format!(
                "adapter index {i} does not exist; available: {}",
                available()
            )));
        }
        None => match found.iter().position(|(_, s)| !s.is_software) {
            Some(i) => i,
            None if !found.is_empty() => 0,
            None => {
                if let Some(unknown) = unknown_backend() {
                    return Err(Error::NoAdapter(format!(
                        "WGPU_BACKEND names {unknown:?}, not a backend (known: vulkan, metal, dx12, gl, \
                         primary, secondary, comma-separated; unset for all)"
                    )));
                }
                return Err(Error::NoAdapter(format!(
                    "wgpu found no adapter (WGPU_BACKEND={:?}); install a Vulkan driver \
                     (e.g. mesa-vulkan-drivers for the lavapipe software adapter) or set \
                     WGPU_BACKEND to a backend this machine has",
                    requested_backends()
                )));
            }
        },
    };
    let (adapter, summary) = found.swap_remove(pick);
    if vulkan_required() && adapter.get_info().backend != wgpu::Backend::Vulkan {
        return Err(Error::NoAdapter(format!(
            "WGPU_BACKEND=vulkan but the adapter found is {} on {}; is a Vulkan driver installed?",
            summary.name, summary.backend
        )));
    }
    Ok((adapter, summary))
}

impl Context {
    /// Open a device on an adapter from [`pick_adapter`].
    pub(crate) fn open(adapter: wgpu::Adapter, summary: AdapterSummary) -> Result<Context> {
        let wanted = wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP | wgpu::Features::TIMESTAMP_QUERY;
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor {
            label: Some("kiln device"),
            required_features: adapter.features() & wanted,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc)).map_err(|e| Error::Gpu {
            context: format!("opening device {}", summary.name),
            message: e.to_string(),
        })?;
        let errors = ErrorSink::default();
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| sink.store(e)));
        Ok(Context { device, queue, summary, limits, errors })
    }

    /// Run `f` inside validation and out-of-memory error scopes; any error wgpu reports (in a
    /// scope or uncaptured) becomes [`Error::Gpu`] naming `context`.
    pub(crate) fn scoped<T>(&self, context: &str, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        let v = pollster::block_on(validation.pop());
        let o = pollster::block_on(oom.pop());
        if let Some(e) = v.or(o) {
            return Err(Error::Gpu { context: context.to_string(), message: e.to_string() });
        }
        self.errors.take(context)?;
        Ok(value)
    }

    /// Block until all submitted work is done.
    pub(crate) fn wait(&self, context: &str) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu { context: context.to_string(), message: e.to_string() })?;
        self.errors.take(context)
    }
}
