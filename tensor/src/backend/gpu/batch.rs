//! Recording dispatches and submitting them in batches; uploads and
//! readback.
//!
//! A [`Batch`] is the command encoder being filled plus the parameter
//! arena: one storage buffer holding the small parameter block of every
//! dispatch in the batch, each at an offset aligned as the adapter requires.
//! The arena's contents are written with one `write_buffer` just before the
//! batch is submitted (a queue write lands before the command buffer
//! submitted after it, and after every one submitted before it, so each
//! batch sees its own parameters).

use super::pool::GpuBuffer;
use super::GpuContext;
use std::sync::{mpsc, Arc};

/// Bytes of the parameter arena; a batch that fills it is submitted.
const ARENA_BYTES: usize = 1 << 16;

/// Dispatches recorded before a batch is submitted even if the arena has
/// room: enough to keep the GPU fed, few enough that it starts early.
const MAX_DISPATCHES: usize = 256;

/// The pending command encoder and its parameter arena.
pub struct Batch {
    encoder: Option<wgpu::CommandEncoder>,
    dispatches: usize,
    params: Vec<u8>,
    arena: wgpu::Buffer,
    align: usize,
    submitted: usize,
}

impl Batch {
    /// Drops the recorded work without running it.
    pub(crate) fn discard(&mut self) {
        self.encoder = None;
        self.params.clear();
        self.dispatches = 0;
    }

    pub(crate) fn new(device: &wgpu::Device, limits: &wgpu::Limits) -> Batch {
        Batch {
            encoder: None,
            dispatches: 0,
            params: Vec::with_capacity(ARENA_BYTES),
            arena: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("parameter arena"),
                size: ARENA_BYTES as u64,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            align: limits.min_storage_buffer_offset_alignment.max(4) as usize,
            submitted: 0,
        }
    }
}

impl GpuContext {
    /// Records one dispatch of the kernel `name` (compiled from `source` on
    /// first use) over a grid of `groups` workgroups, with `params` as its
    /// parameter block and `buffers` bound from binding 1 in order.
    pub fn dispatch(
        self: &Arc<Self>,
        name: &str,
        source: &str,
        params: &[u32],
        buffers: &[&GpuBuffer],
        groups: [u32; 3],
    ) {
        self.dispatch_built(name, || source.to_string(), params, buffers, groups);
    }

    /// [`GpuContext::dispatch`] of a kernel whose source `build` makes (a
    /// variant generated from a template), called only when the kernel is
    /// first compiled.
    pub fn dispatch_built(
        self: &Arc<Self>,
        name: &str,
        build: impl FnOnce() -> String,
        params: &[u32],
        buffers: &[&GpuBuffer],
        groups: [u32; 3],
    ) {
        let kernel =
            self.kernels
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&self.device, name, build);
        let mut batch = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        let words = params.len().max(1);
        let offset = batch.params.len().div_ceil(batch.align) * batch.align;
        if offset + 4 * words > ARENA_BYTES || batch.dispatches >= MAX_DISPATCHES {
            self.submit_locked(&mut batch);
        }
        let offset = batch.params.len().div_ceil(batch.align) * batch.align;
        batch.params.resize(offset, 0);
        if params.is_empty() {
            batch.params.extend_from_slice(&[0; 4]);
        } else {
            batch.params.extend_from_slice(bytemuck::cast_slice(params));
        }
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &batch.arena,
                offset: offset as u64,
                size: std::num::NonZeroU64::new(4 * words as u64),
            }),
        }];
        for (i, b) in buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: b.binding(),
            });
        }
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(name),
            layout: &kernel.layout,
            entries: &entries,
        });
        let device = &self.device;
        let encoder = batch.encoder.get_or_insert_with(|| {
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("batch"),
            })
        });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(name),
                timestamp_writes: None,
            });
            pass.set_pipeline(&kernel.pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        }
        batch.dispatches += 1;
    }

    /// Submits whatever has been recorded.
    pub fn flush(&self) {
        let mut batch = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        self.submit_locked(&mut batch);
    }

    fn submit_locked(&self, batch: &mut Batch) {
        let Some(encoder) = batch.encoder.take() else {
            return;
        };
        // After a failure the recorded work would compute with broken state
        // (a placeholder buffer, a lost device): it is dropped, not run.
        if self.failed() {
            drop(encoder);
            batch.discard();
            return;
        }
        if !batch.params.is_empty() {
            self.queue.write_buffer(&batch.arena, 0, &batch.params);
        }
        self.queue.submit([encoder.finish()]);
        batch.params.clear();
        batch.dispatches = 0;
        batch.submitted += 1;
    }

    /// Submits what is recorded and waits until the GPU has finished it
    /// (for benchmarks; ordinary code never needs to wait).
    pub fn synchronize(&self) {
        self.flush();
        if let Err(e) = self.device.poll(wgpu::PollType::wait_indefinitely()) {
            self.fail(format!("waiting for the GPU failed: {e}"));
        }
    }

    /// How many batches have been submitted (for the dispatch-overhead
    /// figures and tests).
    pub fn submissions(&self) -> usize {
        self.batch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .submitted
    }

    /// A new GPU buffer holding `data`.
    pub fn upload(self: &Arc<Self>, data: &[u32]) -> GpuBuffer {
        let buf = GpuBuffer::new(self, data.len());
        // A placeholder for a tensor too large for the adapter (its failure
        // is recorded) is not written.
        if !data.is_empty() && (data.len() as u64) * 4 <= buf.raw().size() {
            // The pooled buffer may still be read by a recorded dispatch of
            // its previous owner; queue writes run before the next
            // submission, so submit what is recorded first.
            self.flush();
            self.queue
                .write_buffer(buf.raw(), 0, bytemuck::cast_slice(data));
        }
        buf
    }

    /// Copies a buffer's values back to the host: submits the batch, copies
    /// into a mappable staging buffer, and waits. The only place a caller
    /// waits for the GPU. After a failure (recorded, see
    /// `GpuContext::take_failure`) it returns zeros instead of panicking:
    /// the values could not be trusted anyway.
    pub fn read(&self, buf: &GpuBuffer) -> Vec<u32> {
        let bytes = buf.len() as u64 * 4;
        if bytes == 0 {
            return Vec::new();
        }
        if self.failed() {
            return vec![0; buf.len()];
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        {
            let mut batch = self.batch.lock().unwrap_or_else(|e| e.into_inner());
            let device = &self.device;
            let encoder = batch.encoder.get_or_insert_with(|| {
                device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("batch"),
                })
            });
            encoder.copy_buffer_to_buffer(buf.raw(), 0, &staging, 0, bytes);
            self.submit_locked(&mut batch);
        }
        let (tx, rx) = mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        if let Err(e) = self.device.poll(wgpu::PollType::wait_indefinitely()) {
            self.fail(format!("waiting for the GPU failed: {e}"));
            return vec![0; buf.len()];
        }
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.fail(format!("reading a result back from the GPU failed: {e}"));
                return vec![0; buf.len()];
            }
            Err(_) => {
                self.fail("the GPU never answered a read-back".into());
                return vec![0; buf.len()];
            }
        }
        let data = match staging.get_mapped_range(..) {
            Ok(view) => bytemuck::cast_slice::<u8, u32>(&view).to_vec(),
            Err(e) => {
                self.fail(format!("reading a result back from the GPU failed: {e}"));
                return vec![0; buf.len()];
            }
        };
        staging.unmap();
        data
    }
}
