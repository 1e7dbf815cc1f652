//! Where a tensor's data lives.
//!
//! A [`Device`] is a small handle that is cheap to clone and compare. Every
//! constructor takes one, and every op checks that its inputs share one. The
//! CPU is the only device today; the GPU backend (issue 3) adds a `Gpu`
//! variant that holds the wgpu device and queue shared by all its tensors.

use std::fmt;

/// The place a tensor's buffer is stored and its ops run.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Device {
    /// Main memory; ops run on the CPU with rayon and a SIMD GEMM.
    #[default]
    Cpu,
}

impl Device {
    /// The CPU device.
    pub fn cpu() -> Device {
        Device::Cpu
    }

    /// A short name for messages and logs (`"cpu"`).
    pub fn name(&self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
