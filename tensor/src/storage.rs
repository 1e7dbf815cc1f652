//! The buffer behind a tensor, one variant per backend.
//!
//! Ops match on the storage of their inputs to pick the backend that runs
//! them. Buffers are shared behind an `Arc`: cloning a tensor shares its
//! buffer, and since no op writes into an input, sharing is always safe.
//! When the last tensor sharing a GPU buffer drops, the buffer returns to
//! the GPU's pool.

use crate::backend::gpu::GpuBuffer;
use crate::Device;
use std::sync::Arc;

/// A tensor's elements, in row-major order, wherever they live.
#[derive(Clone, Debug)]
pub enum Storage {
    /// A buffer in main memory.
    Cpu(Arc<Vec<f32>>),
    /// A buffer on the GPU, from its pool.
    Gpu(Arc<GpuBuffer>),
}

impl Storage {
    /// The device that holds this buffer.
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Gpu(b) => Device::Gpu(b.context().clone()),
        }
    }

    /// The number of `f32` elements in the buffer.
    pub fn len(&self) -> usize {
        match self {
            Storage::Cpu(v) => v.len(),
            Storage::Gpu(b) => b.len(),
        }
    }

    /// Whether the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
