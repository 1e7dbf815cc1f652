//! Compiled kernels, cached by name.
//!
//! Compiling WGSL to a pipeline costs milliseconds (on a software driver,
//! tens of them), so each kernel is compiled once per process. A kernel's
//! name includes any specialisation baked into its source (for example the
//! unrolled variant of a matmul), so variants get their own entry. The bind
//! group layout is taken from the shader itself (wgpu's automatic layout)
//! and cached beside the pipeline.

use std::collections::HashMap;
use std::sync::Arc;

/// A compiled compute pipeline and its bind group layout.
pub struct Kernel {
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) layout: wgpu::BindGroupLayout,
}

/// Kernels by name.
#[derive(Default)]
pub struct KernelCache {
    kernels: HashMap<String, Arc<Kernel>>,
}

/// Which of wgpu's injected checks the kernels keep.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Checks {
    /// Both the bounds checks and the loop bounding (BYOL_GPU_CHECKS=all).
    All,
    /// The bounds checks only (the default).
    Bounds,
    /// Neither (BYOL_GPU_CHECKS=off; for measuring).
    None,
}

/// The checks BYOL_GPU_CHECKS asks for (read once): by default wgpu's
/// bounds checks stay and its loop bounding goes. wgpu bounds every loop
/// of an untrusted shader with a counter, in case it never ends; on an
/// NVIDIA H200 that halved the rate of a kernel of multiply-add chains
/// (`byol bench`'s ceiling row) and took the ResNet-18 step at width 16
/// from 49 to 29 ms. Every loop of these kernels counts up to (or down
/// from) a bound from its parameters, all far below 2³² (buffers hold
/// under 2³⁰ floats), so each ends.
fn checks() -> Checks {
    static CHECKS: std::sync::OnceLock<Checks> = std::sync::OnceLock::new();
    *CHECKS.get_or_init(|| match std::env::var("BYOL_GPU_CHECKS").as_deref() {
        Ok("all") => Checks::All,
        Ok("off") => Checks::None,
        _ => Checks::Bounds,
    })
}

/// The helpers every kernel starts with.
const COMMON: &str = include_str!("common.wgsl");

impl KernelCache {
    /// The kernel called `name`, compiled from the source `build` makes
    /// (with the common helpers prepended) the first time it is asked for.
    pub fn get(
        &mut self,
        device: &wgpu::Device,
        name: &str,
        build: impl FnOnce() -> String,
    ) -> Arc<Kernel> {
        if let Some(k) = self.kernels.get(name) {
            return k.clone();
        }
        let code = format!("{COMMON}\n{}", build());
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(name),
            source: wgpu::ShaderSource::Wgsl(code.into()),
        };
        let module = match checks() {
            Checks::All => device.create_shader_module(desc),
            // SAFETY: every loop of these kernels ends (see `checks`);
            // with BYOL_GPU_CHECKS=off, bounds are left to the driver's
            // robust buffer access (a measuring aid, not the default).
            c => unsafe {
                device.create_shader_module_trusted(
                    desc,
                    wgpu::ShaderRuntimeChecks {
                        bounds_checks: c == Checks::Bounds,
                        force_loop_bounding: false,
                        ..wgpu::ShaderRuntimeChecks::checked()
                    },
                )
            },
        };
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(name),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let layout = pipeline.get_bind_group_layout(0);
        let k = Arc::new(Kernel { pipeline, layout });
        self.kernels.insert(name.to_string(), k.clone());
        k
    }
}
