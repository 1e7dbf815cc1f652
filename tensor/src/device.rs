//! Where a tensor's data lives, and how a program picks it.
//!
//! A [`Device`] is a small handle that is cheap to clone and compare. Every
//! constructor takes one, and every op checks that its inputs share one.
//!
//! * [`Device::cpu()`]: main memory, ops on the CPU.
//! * [`Device::gpu()`]: the first GPU adapter wgpu finds (hardware preferred,
//!   a software one such as Mesa's llvmpipe otherwise), or an error that
//!   says how to get one.
//! * [`Device::auto()`]: a hardware GPU if there is one, else the CPU; a
//!   software adapter is slower than the CPU backend, so it is taken only
//!   when asked for ([`Device::auto_allow_software`]).
//! * [`Device::gpu_at`]: adapter number `N` of several (`gpu:N`).
//! * [`Device::from_name`] parses `cpu`, `gpu`, `gpu:N` or `auto`, and
//!   [`Device::from_env`] reads the `BYOL_DEVICE` variable: the CLI's
//!   `--device` flag and its default.

use crate::backend::gpu::{self, GpuContext};
use std::fmt;
use std::sync::Arc;

/// The place a tensor's buffer is stored and its ops run.
#[derive(Clone, Default)]
pub enum Device {
    /// Main memory; ops run on the CPU with rayon and a SIMD GEMM.
    #[default]
    Cpu,
    /// A GPU through wgpu; all GPU tensors share one context.
    Gpu(Arc<GpuContext>),
}

/// Why a device could not be had. The message names the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceError {
    /// No adapter was found where a GPU was asked for.
    NoAdapter,
    /// An adapter exists but would not open.
    OpenFailed(String),
    /// A device name that is not `cpu`, `gpu`, `gpu:N` or `auto`.
    UnknownName(String),
    /// An environment variable that tunes a backend holds a value it does
    /// not know (the message names the variable and the choices).
    Setting(String),
    /// `gpu:N` where the machine has fewer than `N + 1` adapters.
    NoAdapterAt {
        /// The number asked for.
        index: usize,
        /// How many adapters there are.
        found: usize,
    },
    /// Work on the device failed after it was opened: the device was lost,
    /// the driver reported an error, or a tensor was larger than the
    /// adapter allows (see [`Device::take_error`]).
    Failed(String),
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::NoAdapter => write!(
                f,
                "no GPU adapter found: use --device cpu (or BYOL_DEVICE=cpu), or install a \
                 Vulkan driver (on Debian: apt-get install mesa-vulkan-drivers, which also gives \
                 a software adapter)"
            ),
            DeviceError::OpenFailed(why) => write!(f, "{why}; use --device cpu to run on the CPU"),
            DeviceError::UnknownName(name) => write!(
                f,
                "unknown device '{name}': expected cpu, gpu, gpu:N (the Nth adapter of `byol \
                 devices`, from 0) or auto (in --device or BYOL_DEVICE)"
            ),
            DeviceError::Setting(why) => write!(f, "{why}"),
            DeviceError::NoAdapterAt { index, found } => write!(
                f,
                "no GPU adapter number {index}: this machine has {found} (numbered from 0; \
                 `byol devices` lists them)"
            ),
            DeviceError::Failed(what) => {
                write!(
                    f,
                    "{what}; the results since are not usable (the CPU can run it)"
                )
            }
        }
    }
}

impl std::error::Error for DeviceError {}

impl Device {
    /// The first failure of work on this device since the last call, if
    /// any (always `None` on the CPU).
    ///
    /// The GPU backend does not panic when the device is lost, the driver
    /// reports an error or a tensor is too large for the adapter: it records
    /// the failure, keeps running (values read back meanwhile are zeros),
    /// and reports it here. A program checks after reading results back,
    /// as `byol`'s training step and feature extraction do, and turns a
    /// failure into an error for its user.
    pub fn take_error(&self) -> Option<DeviceError> {
        match self {
            Device::Cpu => None,
            Device::Gpu(ctx) => ctx.take_failure().map(DeviceError::Failed),
        }
    }

    /// The CPU device.
    pub fn cpu() -> Device {
        Device::Cpu
    }

    /// The GPU: the first adapter found, hardware preferred. An error names
    /// the fix when there is none.
    pub fn gpu() -> Result<Device, DeviceError> {
        match gpu::context::shared(false) {
            Ok(Some(ctx)) => Ok(Device::Gpu(ctx)),
            Ok(None) => Err(DeviceError::NoAdapter),
            Err(why) => Err(DeviceError::OpenFailed(why)),
        }
    }

    /// GPU adapter number `index`, in the order `byol devices` lists them
    /// (hardware first, from 0); `gpu_at(0)` is [`Device::gpu`]. Each
    /// adapter has one context per process, so two calls with one index
    /// give the same device. For several GPUs in one machine, and one GPU
    /// per process of a data-parallel group.
    pub fn gpu_at(index: usize) -> Result<Device, DeviceError> {
        match gpu::context::shared_at(index, false) {
            Ok(Some(ctx)) => Ok(Device::Gpu(ctx)),
            Ok(None) => match gpu::context::adapter_count() {
                0 => Err(DeviceError::NoAdapter),
                found => Err(DeviceError::NoAdapterAt { index, found }),
            },
            Err(why) => Err(DeviceError::OpenFailed(why)),
        }
    }

    /// The device process number `local_rank` of several on one machine
    /// should use when all were told this one: the CPU stays the CPU; a GPU
    /// becomes adapter `local_rank` modulo the number of adapters of its
    /// kind (hardware or software), so 4 processes on a machine of 4 GPUs
    /// take one each, and 2 processes on one GPU share it.
    pub fn for_local_rank(&self, local_rank: usize) -> Result<Device, DeviceError> {
        let Device::Gpu(ctx) = self else {
            return Ok(Device::Cpu);
        };
        // Hardware adapters are numbered first; a software one is chosen
        // only when there is no hardware one, so either kind starts at 0.
        let hardware = ctx.is_hardware();
        let same_kind = gpu::adapters_summary()
            .iter()
            .filter(|a| a.hardware == hardware)
            .count()
            .max(1);
        Device::gpu_at(local_rank % same_kind)
    }

    /// A hardware GPU if there is one, else the CPU.
    pub fn auto() -> Device {
        match gpu::context::shared(true) {
            Ok(Some(ctx)) => Device::Gpu(ctx),
            _ => Device::Cpu,
        }
    }

    /// Any GPU, software adapters included, else the CPU.
    pub fn auto_allow_software() -> Device {
        Device::gpu().unwrap_or(Device::Cpu)
    }

    /// `cpu`, `gpu`, `gpu:N` (adapter number `N`, see [`Device::gpu_at`])
    /// or `auto` (case-insensitive).
    ///
    /// Also checks the CPU backend's `BYOL_CPU_CONV` and `BYOL_CPU_SIMD`
    /// settings, so that a mistyped value (or a vector level this CPU
    /// lacks) is an error here rather than a panic in the first kernel.
    pub fn from_name(name: &str) -> Result<Device, DeviceError> {
        Device::check_cpu_settings()?;
        let lower = name.trim().to_ascii_lowercase();
        match lower.as_str() {
            "cpu" => Ok(Device::Cpu),
            "gpu" => Device::gpu(),
            "auto" => Ok(Device::auto()),
            _ => match lower.strip_prefix("gpu:").map(|n| n.parse::<usize>()) {
                Some(Ok(index)) => Device::gpu_at(index),
                _ => Err(DeviceError::UnknownName(name.to_string())),
            },
        }
    }

    /// Checks the CPU backend's environment settings (`BYOL_CPU_CONV`,
    /// `BYOL_CPU_SIMD`): an error names the variable, its value and the
    /// choices. [`Device::from_name`] calls it; code that makes its devices
    /// directly calls it before the first kernel.
    pub fn check_cpu_settings() -> Result<(), DeviceError> {
        crate::ops::conv2d::check_setting().map_err(DeviceError::Setting)?;
        crate::backend::cpu::simd::check_setting().map_err(DeviceError::Setting)
    }

    /// The device `BYOL_DEVICE` names, `auto` when it is unset (checked
    /// as [`Device::from_name`]).
    pub fn from_env() -> Result<Device, DeviceError> {
        let name = std::env::var("BYOL_DEVICE").unwrap_or_else(|_| "auto".into());
        Device::from_name(&name)
    }

    /// A short name for messages and logs (`"cpu"` or `"gpu"`).
    pub fn name(&self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Gpu(_) => "gpu",
        }
    }

    /// Whether this is the GPU.
    pub fn is_gpu(&self) -> bool {
        matches!(self, Device::Gpu(_))
    }

    /// Waits until every op issued on this device has finished (a no-op on
    /// the CPU, whose ops finish before they return). For timing.
    pub fn synchronize(&self) {
        if let Device::Gpu(ctx) = self {
            ctx.synchronize();
        }
    }

    /// A longer description: the adapter's name for a GPU.
    pub fn describe(&self) -> String {
        match self {
            Device::Cpu => match rayon::current_num_threads() {
                1 => "cpu (1 thread)".to_string(),
                n => format!("cpu ({n} threads)"),
            },
            Device::Gpu(ctx) => format!("gpu: {}", ctx.describe()),
        }
    }
}

impl PartialEq for Device {
    fn eq(&self, other: &Device) -> bool {
        match (self, other) {
            (Device::Cpu, Device::Cpu) => true,
            (Device::Gpu(a), Device::Gpu(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Device {}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_bad_names_say_what_is_expected() {
        assert_eq!(Device::from_name("CPU").unwrap(), Device::Cpu);
        let err = Device::from_name("tpu").unwrap_err();
        assert_eq!(err, DeviceError::UnknownName("tpu".into()));
        assert!(err.to_string().contains("expected cpu, gpu, gpu:N"));
        for bad in ["gpu:", "gpu:x", "gpu:-1", "gpu 1"] {
            assert_eq!(
                Device::from_name(bad).unwrap_err(),
                DeviceError::UnknownName(bad.into()),
                "{bad}"
            );
        }
        assert!(DeviceError::NoAdapter.to_string().contains("--device cpu"));
        assert!(DeviceError::NoAdapter
            .to_string()
            .contains("mesa-vulkan-drivers"));
    }

    /// `gpu:N` is adapter N of the list `byol devices` prints: `gpu:0` is
    /// the device `gpu` names (the same context), and a number past the
    /// last adapter is an error that says how many there are.
    #[test]
    fn gpu_n_names_an_adapter_by_its_number() {
        let Some(gpu) = crate::testing::gpu_device() else {
            return;
        };
        assert_eq!(Device::from_name("gpu:0").unwrap(), gpu);
        assert_eq!(Device::from_name("GPU:0").unwrap(), gpu);
        let found = gpu::context::adapter_count();
        let last = Device::gpu_at(found - 1).unwrap();
        assert_eq!(
            Device::gpu_at(found - 1).unwrap(),
            last,
            "one context per adapter"
        );
        let x = crate::Tensor::from_vec(vec![1.0, 2.0], &[2], &last);
        assert_eq!(x.add_scalar(1.0).to_vec(), vec![2.0, 3.0]);
        let err = Device::from_name(&format!("gpu:{found}")).unwrap_err();
        assert_eq!(
            err,
            DeviceError::NoAdapterAt {
                index: found,
                found
            }
        );
        assert!(
            err.to_string()
                .contains(&format!("this machine has {found}")),
            "{err}"
        );
        // Processes on one machine spread over the adapters of the kind
        // they were given, and wrap around.
        let software = gpu::adapters_summary()
            .iter()
            .filter(|a| !a.hardware)
            .count();
        if software == found {
            assert_eq!(gpu.for_local_rank(found).unwrap(), gpu);
            assert_eq!(gpu.for_local_rank(found - 1).unwrap(), last);
        }
        assert_eq!(Device::Cpu.for_local_rank(3).unwrap(), Device::Cpu);
    }
}
