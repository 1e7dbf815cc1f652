//! Finding a GPU and opening it: the process-wide [`GpuContext`].
//!
//! All tensors on the GPU share one wgpu device and queue, opened the first
//! time a GPU is asked for and kept for the life of the process. We request
//! the adapter's *real* limits (largest storage binding, buffer size,
//! workgroup sizes) instead of WebGPU's conservative defaults, so large
//! tensors fit where the hardware allows.

use super::batch::Batch;
use super::kernel::KernelCache;
use super::pool::BufferPool;
use std::sync::{Arc, Mutex, OnceLock};

/// Which family of kernels a context runs where a op has two: the
/// products (matmul, and through it the convolutions) differ.
///
/// * `Software`: a 4x4 register-blocked matmul that reads straight from
///   device memory; best where "device memory" is the CPU's cache and a
///   workgroup barrier is a costly software emulation (llvmpipe).
/// * `Hardware`: a matmul tiled through workgroup (shared) memory, with the
///   inner dimension split over several workgroups (split-k) when the
///   output alone would leave most of a GPU idle; what a real GPU's
///   memory hierarchy and thousands of lanes want.
///
/// A context takes `Hardware` on a hardware adapter and `Software` on a
/// software one; the environment variable `BYOL_GPU_KERNELS=hardware` or
/// `=software` overrides that (to measure one against the other, or to
/// test the hardware kernels on a software adapter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelSet {
    /// Register-blocked kernels without workgroup memory.
    Software,
    /// Shared-memory tiled kernels with split-k.
    Hardware,
}

impl KernelSet {
    /// The set for an adapter, unless `BYOL_GPU_KERNELS` says otherwise;
    /// an unknown value of that variable is an error naming it.
    fn for_adapter(hardware: bool) -> Result<KernelSet, String> {
        let setting = std::env::var("BYOL_GPU_KERNELS").ok();
        KernelSet::from_setting(setting.as_deref(), hardware)
    }

    /// The set `setting` (the variable's value, if set) asks for on an
    /// adapter that is or is not hardware.
    fn from_setting(setting: Option<&str>, hardware: bool) -> Result<KernelSet, String> {
        match setting {
            // Set but empty (`BYOL_GPU_KERNELS= cmd`) reads as unset.
            None => Ok(KernelSet::default_for(hardware)),
            Some(v) if v.trim().is_empty() => Ok(KernelSet::default_for(hardware)),
            Some(v) => KernelSet::parse(v).ok_or_else(|| {
                format!(
                    "BYOL_GPU_KERNELS={v:?}: expected 'hardware' or 'software' (or unset it to \
                     choose by the adapter)"
                )
            }),
        }
    }

    /// The set an adapter gets by default.
    pub fn default_for(hardware: bool) -> KernelSet {
        if hardware {
            KernelSet::Hardware
        } else {
            KernelSet::Software
        }
    }

    /// `hardware` or `software` (any case, surrounding spaces ignored).
    pub fn parse(word: &str) -> Option<KernelSet> {
        match word.trim().to_ascii_lowercase().as_str() {
            "hardware" => Some(KernelSet::Hardware),
            "software" => Some(KernelSet::Software),
            _ => None,
        }
    }

    /// The word `BYOL_GPU_KERNELS` takes.
    pub fn name(self) -> &'static str {
        match self {
            KernelSet::Software => "software",
            KernelSet::Hardware => "hardware",
        }
    }
}

/// The opened GPU: device, queue, and the machinery ops share.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    /// The kernels this context runs.
    kernel_set: KernelSet,
    pub(crate) pool: Mutex<BufferPool>,
    pub(crate) kernels: Mutex<KernelCache>,
    pub(crate) batch: Mutex<Batch>,
    /// The first failure since it was last taken: a validation or
    /// out-of-memory error of wgpu, a lost device, a tensor too large for
    /// the adapter. Recorded here instead of panicking; see
    /// [`GpuContext::take_failure`].
    failure: Arc<Mutex<Option<String>>>,
}

/// One adapter as `byol devices` shows it.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    /// The adapter's name, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub name: String,
    /// `DiscreteGpu`, `IntegratedGpu`, `VirtualGpu`, `Cpu` (a software
    /// rasteriser) or `Other`.
    pub device_type: String,
    /// The graphics API behind it (Vulkan, Metal, Dx12).
    pub backend: String,
    /// Whether it is real hardware (not a software implementation).
    pub hardware: bool,
    /// Largest buffer that one kernel binding may cover, in bytes.
    pub max_storage_binding: u64,
    /// Largest buffer, in bytes.
    pub max_buffer: u64,
    /// Most invocations in one workgroup.
    pub max_invocations: u32,
}

fn instance() -> &'static wgpu::Instance {
    static INSTANCE: OnceLock<wgpu::Instance> = OnceLock::new();
    INSTANCE.get_or_init(|| {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
        wgpu::Instance::new(desc)
    })
}

fn is_hardware(info: &wgpu::AdapterInfo) -> bool {
    !matches!(
        info.device_type,
        wgpu::DeviceType::Cpu | wgpu::DeviceType::Other
    )
}

/// Every adapter wgpu finds, hardware first.
fn adapters() -> Vec<wgpu::Adapter> {
    let mut found = pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()));
    found.sort_by_key(|a| !is_hardware(&a.get_info()));
    found
}

/// A summary of every adapter found (for `byol devices`).
pub fn adapters_summary() -> Vec<AdapterSummary> {
    adapters()
        .iter()
        .map(|a| {
            let (info, limits) = (a.get_info(), a.limits());
            AdapterSummary {
                name: info.name.clone(),
                device_type: format!("{:?}", info.device_type),
                backend: format!("{:?}", info.backend),
                hardware: is_hardware(&info),
                max_storage_binding: limits.max_storage_buffer_binding_size,
                max_buffer: limits.max_buffer_size,
                max_invocations: limits.max_compute_invocations_per_workgroup,
            }
        })
        .collect()
}

/// The shared context of the first adapter (hardware first), opened on
/// first use. `Ok(None)` when no adapter exists (or, with `hardware_only`,
/// no hardware adapter); `Err` when one exists but could not be opened.
pub(crate) fn shared(hardware_only: bool) -> Result<Option<Arc<GpuContext>>, String> {
    shared_at(0, hardware_only)
}

/// The shared context of adapter number `index` in the order
/// [`adapters_summary`] lists them (hardware first), opened on first use:
/// one context per adapter for the whole process. `Ok(None)` when there is
/// no such adapter (or, with `hardware_only`, it is a software one).
pub(crate) fn shared_at(
    index: usize,
    hardware_only: bool,
) -> Result<Option<Arc<GpuContext>>, String> {
    static SHARED: OnceLock<Mutex<Vec<Option<Arc<GpuContext>>>>> = OnceLock::new();
    let cell = SHARED.get_or_init(|| Mutex::new(Vec::new()));
    let mut slots = cell.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(Some(ctx)) = slots.get(index) {
        if !hardware_only || is_hardware(&ctx.info) {
            return Ok(Some(ctx.clone()));
        }
        return Ok(None);
    }
    let Some(adapter) = adapters().into_iter().nth(index) else {
        return Ok(None);
    };
    if hardware_only && !is_hardware(&adapter.get_info()) {
        return Ok(None);
    }
    let set = KernelSet::for_adapter(is_hardware(&adapter.get_info()))?;
    let ctx = Arc::new(GpuContext::open(adapter, set)?);
    if slots.len() <= index {
        slots.resize(index + 1, None);
    }
    slots[index] = Some(ctx.clone());
    Ok(Some(ctx))
}

/// How many adapters wgpu finds.
pub(crate) fn adapter_count() -> usize {
    adapters().len()
}

/// A context of the caller's own on the first adapter, not the shared one:
/// for tests that make the device fail, so that the failure they record
/// cannot be taken by another test using the shared context meanwhile.
/// `Ok(None)` when no adapter exists.
pub(crate) fn own() -> Result<Option<Arc<GpuContext>>, String> {
    match adapters().into_iter().next() {
        Some(adapter) => {
            let set = KernelSet::for_adapter(is_hardware(&adapter.get_info()))?;
            Ok(Some(Arc::new(GpuContext::open(adapter, set)?)))
        }
        None => Ok(None),
    }
}

/// A context of the caller's own on the first adapter running `set`
/// whatever the adapter is: for tests of one kernel family on any adapter.
pub(crate) fn own_with(set: KernelSet) -> Result<Option<Arc<GpuContext>>, String> {
    match adapters().into_iter().next() {
        Some(adapter) => Ok(Some(Arc::new(GpuContext::open(adapter, set)?))),
        None => Ok(None),
    }
}

impl GpuContext {
    fn open(adapter: wgpu::Adapter, kernel_set: KernelSet) -> Result<GpuContext, String> {
        let info = adapter.get_info();
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor {
            label: Some("byol tensor device"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            memory_hints: wgpu::MemoryHints::Performance,
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| format!("the GPU adapter '{}' refused to open: {e}", info.name))?;
        // wgpu's default answer to an error is a panic inside its own code.
        // Errors are recorded instead, and reported where a program reads
        // results back (Device::take_error).
        let failure = Arc::new(Mutex::new(None));
        let record = |failure: &Arc<Mutex<Option<String>>>, what: String| {
            let mut slot = failure.lock().unwrap_or_else(|e| e.into_inner());
            slot.get_or_insert(what);
        };
        let on_error = failure.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            record(&on_error, format!("the GPU reported an error: {e}"))
        }));
        let on_lost = failure.clone();
        device.set_device_lost_callback(move |reason, message| {
            record(
                &on_lost,
                format!("the GPU device was lost ({reason:?}): {message}"),
            )
        });
        let batch = Batch::new(&device, &limits);
        Ok(GpuContext {
            device,
            queue,
            info,
            limits,
            kernel_set,
            pool: Mutex::new(BufferPool::default()),
            kernels: Mutex::new(KernelCache::default()),
            batch: Mutex::new(batch),
            failure,
        })
    }

    /// Records `what` as a failure (the first one is kept until taken).
    pub(crate) fn fail(&self, what: String) {
        let mut slot = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(what);
    }

    /// Whether a failure is recorded and not yet taken.
    pub(crate) fn failed(&self) -> bool {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// The first failure since the last call, if any: after one, the
    /// values read back since are not to be trusted (they read as zeros).
    pub fn take_failure(&self) -> Option<String> {
        let taken = self
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if taken.is_some() {
            // Work recorded during the failure is dropped unsubmitted (it
            // would fail again, or compute with a broken buffer).
            self.batch
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .discard();
        }
        taken
    }

    /// The adapter's name and kind, and the kernels it runs when they are
    /// not its default, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Cpu,
    /// Vulkan)`.
    pub fn describe(&self) -> String {
        let set = if self.kernel_set == KernelSet::default_for(self.is_hardware()) {
            String::new()
        } else {
            format!(", {} kernels", self.kernel_set.name())
        };
        format!(
            "{} ({:?}, {:?}{set})",
            self.info.name, self.info.device_type, self.info.backend
        )
    }

    /// The kernels this context runs.
    pub fn kernel_set(&self) -> KernelSet {
        self.kernel_set
    }

    /// Whether this is real hardware rather than a software adapter.
    pub fn is_hardware(&self) -> bool {
        is_hardware(&self.info)
    }

    /// The buffer pool's counts: buffers created, in use, and their bytes.
    pub fn pool_stats(&self) -> super::PoolStats {
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).stats()
    }

    /// The limits the device was opened with (the adapter's own).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Device, DeviceError, Tensor};

    /// A tensor larger than the adapter's largest storage buffer is not a
    /// panic: the failure is recorded and reported by `take_error`, values
    /// read meanwhile are zeros, and the device works again afterwards.
    #[test]
    fn a_tensor_too_large_for_the_adapter_is_an_error_not_a_panic() {
        let Some(gpu) = crate::testing::own_gpu_device() else {
            return;
        };
        let Device::Gpu(ctx) = &gpu else {
            unreachable!("gpu_device gives a GPU")
        };
        let limit = ctx.limits().max_storage_buffer_binding_size;
        if limit > 1 << 30 {
            eprintln!("skipped: this adapter binds {limit} bytes; the test would need more memory");
            return;
        }
        assert_eq!(gpu.take_error(), None);
        let len = (limit / 4 + 1) as usize;
        let big = Tensor::ones(&[len], &gpu);
        let sum = big.sum_all().item();
        match gpu.take_error() {
            Some(DeviceError::Failed(what)) => {
                assert!(what.contains("larger than this GPU's largest"), "{what}");
                assert!(what.contains(&(len * 4).to_string()), "{what}");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        assert!(sum.is_finite());
        drop(big);
        // Taken: the device computes again.
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3], &gpu);
        assert_eq!(x.mul_scalar(2.0).to_vec(), vec![2.0, 4.0, 6.0]);
        assert_eq!(gpu.take_error(), None);
    }

    /// The adapter decides unless the variable says otherwise; a value it
    /// does not know is an error naming it and the choices.
    #[test]
    fn the_kernel_set_follows_the_adapter_unless_overridden() {
        assert_eq!(KernelSet::from_setting(None, true), Ok(KernelSet::Hardware));
        assert_eq!(
            KernelSet::from_setting(Some(" "), true),
            Ok(KernelSet::Hardware)
        );
        assert_eq!(
            KernelSet::from_setting(None, false),
            Ok(KernelSet::Software)
        );
        assert_eq!(
            KernelSet::from_setting(Some(" Hardware "), false),
            Ok(KernelSet::Hardware)
        );
        assert_eq!(
            KernelSet::from_setting(Some("software"), true),
            Ok(KernelSet::Software)
        );
        let e = KernelSet::from_setting(Some("fast"), true).unwrap_err();
        assert!(
            e.contains("BYOL_GPU_KERNELS=\"fast\"") && e.contains("'hardware' or 'software'"),
            "{e}"
        );
        for set in [KernelSet::Hardware, KernelSet::Software] {
            assert_eq!(KernelSet::parse(set.name()), Some(set));
        }
    }

    /// A lost device (destroyed here, on a context of the test's own) is
    /// recorded and reported, not a panic.
    #[test]
    fn a_lost_device_is_an_error_not_a_panic() {
        if crate::testing::gpu_device().is_none() {
            return;
        }
        let Some(adapter) = adapters().into_iter().next() else {
            return;
        };
        let ctx =
            Arc::new(GpuContext::open(adapter, KernelSet::Software).expect("the adapter opens"));
        let gpu = Device::Gpu(ctx.clone());
        let x = Tensor::from_vec(vec![1.0, 2.0], &[2], &gpu);
        assert_eq!(x.add_scalar(1.0).to_vec(), vec![2.0, 3.0]);
        ctx.device.destroy();
        let y = x.add_scalar(1.0).to_vec();
        assert_eq!(y.len(), 2);
        match gpu.take_error() {
            Some(DeviceError::Failed(what)) => assert!(!what.is_empty()),
            other => panic!("expected a failure, got {other:?}"),
        }
    }
}
