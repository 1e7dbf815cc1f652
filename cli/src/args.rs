//! Flags several commands share: the device, and parsing helpers that turn
//! a bad value into a message naming the flag and the fix.

use clap::Args;
use tensor::Device;

/// `--device cpu|gpu|auto`.
#[derive(Args, Clone, Debug, Default)]
pub struct DeviceArgs {
    /// Where to compute: `cpu`, `gpu` (a wgpu adapter; a software one such
    /// as Mesa's llvmpipe counts) or `auto` (a hardware GPU when there is
    /// one, else the CPU). Default: the BYOL_DEVICE environment variable,
    /// else `auto`.
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,
}

impl DeviceArgs {
    /// Opens the device asked for, or says why it cannot.
    pub fn open(&self) -> Result<Device, String> {
        let result = match &self.device {
            Some(name) => Device::from_name(name),
            None => Device::from_env(),
        };
        result.map_err(|e| format!("--device: {e}"))
    }
}

/// Errors unless `value` lies in `(0, 1]`; `flag` names it in the message.
pub fn check_fraction(flag: &str, value: f64) -> Result<(), String> {
    if value > 0.0 && value <= 1.0 {
        Ok(())
    } else {
        Err(format!(
            "{flag} {value}: must be a fraction in (0, 1], e.g. 0.01 or 0.1"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_outside_zero_one_are_named() {
        assert!(check_fraction("--label-fraction", 0.1).is_ok());
        assert!(check_fraction("--label-fraction", 1.0).is_ok());
        let e = check_fraction("--label-fraction", 0.0).unwrap_err();
        assert!(e.contains("--label-fraction 0"), "{e}");
        assert!(check_fraction("--label-fraction", 1.5).is_err());
    }

    #[test]
    fn an_unknown_device_is_named() {
        let e = DeviceArgs {
            device: Some("tpu".into()),
        }
        .open()
        .unwrap_err();
        assert!(e.contains("--device") && e.contains("tpu"), "{e}");
    }
}
