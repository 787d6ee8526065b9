//! Optional GPU timestamps around a program's compute pass (needs `TIMESTAMP_QUERY`): a
//! two-entry query set written at the start and end of the pass, resolved into a buffer and
//! copied to a mappable one in the same submit. Used by benchmarks (`GpuBackend::run_timed`);
//! ordinary runs carry no queries.
use super::context::Context;
use super::exec::create_buffer;
use crate::error::{Error, Result};

/// Bytes of the two resolved u64 timestamps.
const BYTES: u64 = 16;

/// The query set and the buffers its two timestamps go through.
pub(crate) struct PassTimer {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    read: wgpu::Buffer,
}

impl PassTimer {
    /// A timer on `ctx`'s device, or None when the device has no `TIMESTAMP_QUERY`.
    pub(crate) fn new(ctx: &Context) -> Result<Option<PassTimer>> {
        if !ctx.device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Ok(None);
        }
        let set = ctx.scoped("creating a timestamp query set", || {
            ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("kiln pass timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            })
        })?;
        let usage = wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC;
        let resolve = create_buffer(ctx, "timestamp resolve", BYTES, usage)?;
        let usage = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
        let read = create_buffer(ctx, "timestamp readback", BYTES, usage)?;
        Ok(Some(PassTimer { set, resolve, read }))
    }

    /// The pass's timestamp writes: index 0 at its beginning, 1 at its end.
    pub(crate) fn writes(&self) -> wgpu::ComputePassTimestampWrites<'_> {
        wgpu::ComputePassTimestampWrites {
            query_set: &self.set,
            beginning_of_pass_write_index: Some(0),
            end_of_pass_write_index: Some(1),
        }
    }

    /// Record, after the pass, the resolve and the copy to the mappable buffer.
    pub(crate) fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.resolve_query_set(&self.set, 0..2, &self.resolve, 0);
        encoder.copy_buffer_to_buffer(&self.resolve, 0, &self.read, 0, BYTES);
    }

    /// Wait for the submit and return the pass's GPU time in seconds.
    pub(crate) fn read_seconds(&self, ctx: &Context) -> Result<f64> {
        let gpu_err = |message: String| Error::Gpu { context: "reading timestamps".into(), message };
        let slice = self.read.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        ctx.wait("waiting for timestamps")?;
        rx.recv().map_err(|e| gpu_err(e.to_string()))?.map_err(|e| gpu_err(e.to_string()))?;
        let ticks = {
            let view = slice.get_mapped_range().map_err(|e| gpu_err(e.to_string()))?;
            let tick = |i: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&view[8 * i..8 * i + 8]);
                u64::from_ne_bytes(b)
            };
            tick(1).wrapping_sub(tick(0))
        };
        self.read.unmap();
        // get_timestamp_period: nanoseconds per tick.
        Ok(ticks as f64 * f64::from(ctx.queue.get_timestamp_period()) * 1e-9)
    }
}
