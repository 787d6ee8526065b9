//! Device buffers: the arena buffers (sizes, usage, creation inside an error scope with the
//! limits checked first), the resident arenas, the buffers shared by a backend's programs and
//! the readback through a kept staging buffer.
use super::context::Context;
use super::kernels;
use crate::error::{Error, Result};
use crate::program::{Arena, ResidentLayout, align};

/// Usage of every arena buffer: bound as storage, written by the queue, read back by copies.
pub(crate) const ARENA_USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_DST).union(wgpu::BufferUsages::COPY_SRC);

/// Bytes of an arena buffer holding `len` elements (at least one aligned block).
pub(crate) fn arena_bytes(len: usize) -> u64 {
    4 * align(len.max(1)) as u64
}

/// Fail with [`Error::OutOfDeviceMemory`] when a buffer of `bytes` exceeds `max_buffer_size`.
pub(crate) fn check_buffer(ctx: &Context, buffer: &str, bytes: u64) -> Result<()> {
    if bytes > ctx.limits.max_buffer_size {
        return Err(Error::OutOfDeviceMemory {
            buffer: buffer.to_string(),
            needed: bytes,
            limit_name: "max_buffer_size",
            limit: ctx.limits.max_buffer_size,
        });
    }
    Ok(())
}

/// A zero-filled buffer, created inside an error scope.
pub(crate) fn create_buffer(
    ctx: &Context,
    label: &str,
    bytes: u64,
    usage: wgpu::BufferUsages,
) -> Result<wgpu::Buffer> {
    check_buffer(ctx, label, bytes)?;
    ctx.scoped(&format!("allocating {label} ({bytes} bytes)"), || {
        ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage,
            mapped_at_creation: false,
        })
    })
}

/// The resident arenas: params, grads, optimizer slots, accumulators.
pub(crate) struct Resident {
    pub(crate) layout: ResidentLayout,
    params: wgpu::Buffer,
    grads: wgpu::Buffer,
    slots: Vec<wgpu::Buffer>,
    accum: wgpu::Buffer,
}

impl Resident {
    /// Allocate (zero-filled) buffers for `layout`, checking every size first.
    pub(crate) fn new(ctx: &Context, layout: &ResidentLayout) -> Result<Resident> {
        let p = arena_bytes(layout.params_len);
        check_buffer(ctx, "Params arena", p)?;
        check_buffer(ctx, "Accum arena", arena_bytes(layout.accum_len))?;
        let params = create_buffer(ctx, "Params arena", p, ARENA_USAGE)?;
        let grads = create_buffer(ctx, "Grads arena", p, ARENA_USAGE)?;
        let slots = (0..layout.slots)
            .map(|k| create_buffer(ctx, &format!("Slot({k}) arena"), p, ARENA_USAGE))
            .collect::<Result<Vec<_>>>()?;
        let accum = create_buffer(ctx, "Accum arena", arena_bytes(layout.accum_len), ARENA_USAGE)?;
        Ok(Resident { layout: *layout, params, grads, slots, accum })
    }

    /// Elements in arena `a` (0 for a slot that does not exist; Work is per program).
    pub(crate) fn len(&self, a: Arena) -> usize {
        match a {
            Arena::Params | Arena::Grads => self.layout.params_len,
            Arena::Slot(k) if (k as usize) < self.layout.slots => self.layout.params_len,
            Arena::Slot(_) | Arena::Work => 0,
            Arena::Accum => self.layout.accum_len,
        }
    }

    /// The buffer of a resident arena.
    pub(crate) fn buffer(&self, a: Arena) -> Option<&wgpu::Buffer> {
        match a {
            Arena::Params => Some(&self.params),
            Arena::Grads => Some(&self.grads),
            Arena::Slot(k) => self.slots.get(k as usize),
            Arena::Accum => Some(&self.accum),
            Arena::Work => None,
        }
    }
}

/// Buffers shared by every program of a backend.
pub(crate) struct Shared {
    /// Bound to storage bindings a kernel does not use or whose slice is empty.
    pub(crate) dummy: wgpu::Buffer,
    /// Per-run [`kernels::RunScalars`] (binding 5).
    pub(crate) scalars: wgpu::Buffer,
    /// The readback staging buffer, kept between readbacks and grown to the largest one (a
    /// power of two of at least [`MIN_STAGING_BYTES`]).
    staging: Option<wgpu::Buffer>,
}

/// The smallest staging buffer: a per-epoch metrics readback or a predict batch fits.
const MIN_STAGING_BYTES: u64 = 1 << 20;

impl Shared {
    pub(crate) fn new(ctx: &Context) -> Result<Shared> {
        Ok(Shared {
            dummy: create_buffer(ctx, "dummy binding", 256, wgpu::BufferUsages::STORAGE)?,
            scalars: create_buffer(
                ctx,
                "run scalars",
                std::mem::size_of::<kernels::RunScalars>() as u64,
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            )?,
            staging: None,
        })
    }

    /// Copy `len` elements at `offset` of `buffer` to the host (waits for the queue), through
    /// the kept staging buffer.
    pub(crate) fn read_buffer(
        &mut self,
        ctx: &Context,
        buffer: &wgpu::Buffer,
        offset: usize,
        len: usize,
    ) -> Result<Vec<f32>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let bytes = 4 * len as u64;
        let kept = &mut self.staging;
        if kept.as_ref().is_none_or(|b| b.size() < bytes) {
            // Grow to a power of two (fewer reallocations), but never past the device limit.
            let size =
                bytes.next_power_of_two().max(MIN_STAGING_BYTES).min(ctx.limits.max_buffer_size).max(bytes);
            *kept = Some(create_buffer(
                ctx,
                "readback staging",
                size,
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            )?);
        }
        let Some(staging) = kept.as_ref() else { return Ok(Vec::new()) };
        read_through(ctx, staging, buffer, offset, bytes)
    }
}

/// Copy `bytes` at element `offset` of `buffer` into `staging` and read them back.
fn read_through(
    ctx: &Context,
    staging: &wgpu::Buffer,
    buffer: &wgpu::Buffer,
    offset: usize,
    bytes: u64,
) -> Result<Vec<f32>> {
    let mut encoder =
        ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("kiln readback") });
    encoder.copy_buffer_to_buffer(buffer, 4 * offset as u64, staging, 0, bytes);
    ctx.scoped("reading back", || ctx.queue.submit([encoder.finish()]))?;
    let slice = staging.slice(..bytes);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    ctx.wait("waiting for a readback")?;
    let gpu_err = |message: String| Error::Gpu { context: "mapping a readback buffer".into(), message };
    rx.recv().map_err(|e| gpu_err(e.to_string()))?.map_err(|e| gpu_err(e.to_string()))?;
    let out = {
        let view = slice.get_mapped_range().map_err(|e| gpu_err(e.to_string()))?;
        bytemuck::cast_slice::<u8, f32>(&view).to_vec()
    };
    staging.unmap();
    Ok(out)
}
