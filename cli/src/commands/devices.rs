//! `byol devices`: the wgpu adapters this machine offers (hardware GPUs
//! and software rasterisers such as Mesa's llvmpipe), their limits, and
//! what `--device auto` would choose.

use crate::commands::{CmdResult, Outcome};
use tensor::backend::gpu::adapters_summary;
use tensor::Device;

/// Runs `byol devices`.
pub fn run() -> CmdResult {
    let adapters = adapters_summary();
    out!("{}", Device::Cpu.describe());
    if adapters.is_empty() {
        out!(
            "no GPU adapter found (Vulkan, Metal or DX12). On Debian, `apt-get install \
             mesa-vulkan-drivers` gives a software one; training runs on the CPU meanwhile."
        );
    }
    for (i, a) in adapters.iter().enumerate() {
        out!(
            "gpu {i}: {} [{}; {}; {}]",
            a.name,
            a.device_type,
            a.backend,
            if a.hardware { "hardware" } else { "software" }
        );
        out!(
            "       max storage binding {} MiB, max buffer {} MiB, {} invocations per workgroup",
            a.max_storage_binding >> 20,
            a.max_buffer >> 20,
            a.max_invocations
        );
    }
    out!("--device auto picks: {}", Device::auto().describe());
    Ok(Outcome::Done)
}
