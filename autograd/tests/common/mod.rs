//! Helpers shared by the integration tests: the devices to run on, and a
//! tolerance check that names the failing element.

use tensor::testing::gpu_device;
use tensor::{Device, Tensor};

/// The devices the tests run on: the CPU, and the GPU when an adapter is
/// found. Without one, `gpu_device` prints that the GPU part was skipped
/// (and fails instead when `BYOL_REQUIRE_GPU=1`, as in CI).
pub fn devices() -> Vec<Device> {
    let mut d = vec![Device::Cpu];
    d.extend(gpu_device());
    d
}

/// Asserts equal shapes and `|got - want| <= abs + rel·|want|` elementwise.
pub fn assert_close(got: &Tensor, want: &Tensor, abs: f32, rel: f32, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes differ");
    for (i, (g, w)) in got.to_vec().iter().zip(want.to_vec()).enumerate() {
        assert!(
            (g - w).abs() <= abs + rel * w.abs(),
            "{what}[{i}]: got {g}, want {w} (tolerance {abs} + {rel}·|want|)"
        );
    }
}
