//! A size-bucketed pool of GPU buffers.
//!
//! Creating a GPU buffer is slow (a driver call, and memory the driver must
//! find), and a training step makes the same tensors of the same sizes every
//! time. So buffers are never freed while the program runs: when a tensor's
//! last handle drops, its buffer goes back to the pool, filed under its size
//! class (the next power of two of its byte length, at least 256 bytes), and
//! the next request of that class takes it. After the first step of a
//! training loop, no new buffer is created.
//!
//! Reuse is safe even while recorded dispatches still read the old tensor:
//! the GPU runs dispatches in the order they were recorded, with barriers
//! between them, so a later dispatch that overwrites the buffer runs after
//! the earlier reads. Uploads from the host go around that order, which is
//! why the batch is submitted before every upload (see `batch.rs`).

use super::GpuContext;
use std::collections::HashMap;
use std::sync::Arc;

/// Smallest size class, in bytes.
const MIN_CLASS: u64 = 256;

/// Counts that show whether the pool is bounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Buffers created so far and still owned by the pool or a tensor.
    pub allocated: usize,
    /// Of those, the ones held by live tensors.
    pub in_use: usize,
    /// Total bytes of all allocated buffers.
    pub bytes: u64,
}

/// Free buffers by size class.
#[derive(Default)]
pub struct BufferPool {
    free: HashMap<u64, Vec<wgpu::Buffer>>,
    stats: PoolStats,
}

/// The size class of a request: the next power of two, at least 256 bytes.
pub fn size_class(bytes: u64) -> u64 {
    bytes.max(MIN_CLASS).next_power_of_two()
}

impl BufferPool {
    /// The current counts.
    pub fn stats(&self) -> PoolStats {
        self.stats
    }
}

/// A pooled GPU buffer holding `len` `f32` values (or `u32` words). It goes
/// back to the pool when dropped.
pub struct GpuBuffer {
    buffer: Option<wgpu::Buffer>,
    len: usize,
    ctx: Arc<GpuContext>,
}

impl GpuBuffer {
    /// Takes a buffer for `len` 4-byte values from the pool (or creates
    /// one). Its contents are whatever the last user left: every kernel
    /// writes each element of its output.
    ///
    /// If `len` values exceed the largest buffer a kernel may bind on this
    /// adapter, the context records the failure (naming the limit; see
    /// `Device::take_error`) and the tensor gets a minimal buffer: the
    /// kernels run on without crashing, and the results read back are zeros
    /// until the failure is taken.
    pub fn new(ctx: &Arc<GpuContext>, len: usize) -> GpuBuffer {
        let bytes = (len as u64).saturating_mul(4);
        let limit = ctx
            .limits()
            .max_storage_buffer_binding_size
            .min(ctx.limits().max_buffer_size);
        let bytes = if bytes > limit {
            ctx.fail(format!(
                "a tensor of {len} values ({bytes} bytes) is larger than this GPU's largest \
                 storage buffer ({limit} bytes); use a smaller batch or image size"
            ));
            4
        } else {
            bytes
        };
        // The size class, or the limit itself for the largest requests.
        let class = size_class(bytes).min(limit);
        let mut pool = ctx.pool.lock().unwrap_or_else(|e| e.into_inner());
        let reused = pool.free.get_mut(&class).and_then(|v| v.pop());
        let buffer = reused.unwrap_or_else(|| {
            pool.stats.allocated += 1;
            pool.stats.bytes += class;
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tensor"),
                size: class,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        pool.stats.in_use += 1;
        GpuBuffer {
            buffer: Some(buffer),
            len,
            ctx: ctx.clone(),
        }
    }

    /// The wgpu buffer (larger than needed: its size class).
    pub fn raw(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("present until drop")
    }

    /// The number of 4-byte values it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no values.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The context it belongs to.
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// The binding covering the values (at least 4 bytes: WebGPU forbids
    /// empty bindings).
    pub(crate) fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.raw(),
            offset: 0,
            size: std::num::NonZeroU64::new((self.len as u64 * 4).max(4)),
        })
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            let mut pool = self.ctx.pool.lock().unwrap_or_else(|e| e.into_inner());
            pool.stats.in_use -= 1;
            pool.free.entry(buffer.size()).or_default().push(buffer);
        }
    }
}

impl std::fmt::Debug for GpuBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuBuffer({} values)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes_are_powers_of_two_from_256() {
        assert_eq!(size_class(0), 256);
        assert_eq!(size_class(256), 256);
        assert_eq!(size_class(257), 512);
        assert_eq!(size_class(4 * 1000), 4096);
    }
}
