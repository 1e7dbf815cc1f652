//! The GPU backend's shared machinery: one wgpu device per process, a pool of
//! buffers, a cache of compiled kernels, and a batch of recorded dispatches.
//!
//! How a GPU op runs, end to end:
//!
//! 1. The op (in its own folder, `ops/<name>/gpu.rs`) takes an output
//!    buffer from the [`pool`](pool::BufferPool): a buffer of the right size
//!    class that an earlier, dropped tensor gave back, or a new one.
//! 2. It asks the [`GpuContext`] to *dispatch* its kernel (a WGSL compute
//!    shader beside it, compiled once and cached by name) with its small
//!    parameters (sizes, strides, scalars) and its buffers.
//! 3. The dispatch is only *recorded* into a command encoder; nothing waits.
//!    The parameters are appended to an arena that is uploaded in one write.
//! 4. The batch is submitted to the GPU when it holds enough dispatches, or
//!    when the program needs a result on the host (reading a tensor back),
//!    or before an upload that could reuse a buffer a recorded dispatch
//!    still reads.
//!
//! So a training step records hundreds of dispatches and waits once, to read
//! the loss.
//!
//! Kernel conventions: binding 0 of group 0 is the parameter block,
//! `var<storage, read> p: array<u32>` (floats travel as their bits); the
//! tensors follow from binding 1 in the order the launcher passes them, the
//! output last. Every kernel starts from the helpers in `common.wgsl`.

mod batch;
pub(crate) mod context;
mod kernel;
pub mod pool;
pub mod probe;

pub use context::{adapters_summary, AdapterSummary, GpuContext, KernelSet};
pub use pool::{GpuBuffer, PoolStats};

/// Workgroup size of the one-dimensional (elementwise) kernels.
pub const WG: u32 = 256;

/// The workgroup grid for `n` independent invocations of a kernel with
/// workgroups of [`WG`] threads: a grid `[x, y, 1]` with `x <= 65535`
/// (WebGPU's per-dimension limit), read back in the kernel by
/// `flat_id` of `common.wgsl`.
pub fn grid_1d(n: usize) -> [u32; 3] {
    grid_for_groups(n.div_ceil(WG as usize))
}

/// A grid of at least `groups` workgroups, folded into two dimensions when
/// one would exceed the 65535 limit.
pub fn grid_for_groups(groups: usize) -> [u32; 3] {
    const MAX: usize = 65535;
    if groups <= MAX {
        [groups.max(1) as u32, 1, 1]
    } else {
        let y = groups.div_ceil(MAX);
        [MAX as u32, y as u32, 1]
    }
}
