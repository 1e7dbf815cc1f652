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

/// The helpers every kernel starts with.
const COMMON: &str = include_str!("common.wgsl");

impl KernelCache {
    /// The kernel called `name`, compiled from `source` (with the common
    /// helpers prepended) the first time it is asked for.
    pub fn get(&mut self, device: &wgpu::Device, name: &str, source: &str) -> Arc<Kernel> {
        if let Some(k) = self.kernels.get(name) {
            return k.clone();
        }
        let code = format!("{COMMON}\n{source}");
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(name),
            source: wgpu::ShaderSource::Wgsl(code.into()),
        });
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
