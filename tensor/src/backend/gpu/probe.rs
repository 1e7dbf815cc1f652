//! A ceiling for the GPU kernels: the f32 multiply-add rate a plain WGSL
//! kernel reaches on this adapter through wgpu (its compiler, its
//! checks), to set beside a kernel's measured rate. An adapter's datasheet
//! peak assumes every lane multiply-adds every cycle at the boost clock;
//! this is what arrives through this stack.

use super::{grid_for_groups, GpuBuffer};
use crate::{Device, Tensor};
use std::time::Instant;

const SOURCE: &str = include_str!("fma_probe.wgsl");
/// Workgroups of 256 invocations: enough to fill a large GPU many times.
const GROUPS: usize = 2048;
/// Steps of each invocation's loop (256 flops each) on a hardware GPU
/// (a few milliseconds on a large one); a software adapter runs 64 (a
/// CPU does about 1/500 of the work per second).
const STEPS: u32 = 4096;

/// A kernel doing only independent f32 multiply-adds on `device`: its
/// median time in seconds over `reps` timed runs (after one untimed run
/// that compiles it) and the flops it does; `None` on the CPU.
pub fn fma_probe(device: &Device, reps: usize) -> Option<(f64, f64)> {
    let Device::Gpu(ctx) = device else {
        return None;
    };
    let threads = GROUPS * 256;
    let steps = if ctx.is_hardware() { STEPS } else { 64 };
    let params = [0.9999f32.to_bits(), 1e-4f32.to_bits(), steps];
    let run = || {
        let out = GpuBuffer::new(ctx, threads);
        ctx.dispatch(
            "fma_probe",
            SOURCE,
            &params,
            &[&out],
            grid_for_groups(GROUPS),
        );
        // Reading one number back waits for the kernel.
        Tensor::gpu(out, &[threads]).sum_all().item()
    };
    run();
    let mut secs: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .collect();
    secs.sort_by(|a, b| a.total_cmp(b));
    let flops = threads as f64 * steps as f64 * 256.0;
    Some((secs[secs.len() / 2], flops))
}

#[cfg(test)]
mod tests {
    use crate::testing::gpu_device;
    use crate::Device;

    /// A positive time and the flops of 2048·256 invocations of 64 or 4096
    /// steps on a GPU; nothing on the CPU.
    #[test]
    fn the_probe_times_a_gpu_only() {
        assert_eq!(super::fma_probe(&Device::Cpu, 1), None);
        let Some(gpu) = gpu_device() else { return };
        let (secs, flops) = super::fma_probe(&gpu, 1).expect("a time on the GPU");
        assert!(secs.is_finite() && secs > 0.0, "{secs}");
        let per_step = 2048.0 * 256.0 * 256.0;
        assert!(
            flops == per_step * 64.0 || flops == per_step * 4096.0,
            "{flops}"
        );
    }
}
