//! Helpers for tests that compare the GPU backend with the CPU one, here and
//! in the crates above.
//!
//! GPU tests ask [`gpu_device`] for the GPU. On a machine without an adapter
//! they print that they skipped and pass, unless `BYOL_REQUIRE_GPU=1` is set
//! (as CI sets it, with Mesa's software adapter installed), in which case a
//! missing adapter fails them.

use crate::{Device, Tensor};

/// The GPU for a test, or `None` (after printing why) when there is none
/// and `BYOL_REQUIRE_GPU` is not `1`. Panics when it is required and
/// missing.
pub fn gpu_device() -> Option<Device> {
    match Device::gpu() {
        Ok(d) => Some(d),
        Err(e) => {
            let required = std::env::var("BYOL_REQUIRE_GPU").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "BYOL_REQUIRE_GPU=1 but the GPU is unavailable: {e}"
            );
            eprintln!("skipped: GPU test ({e})");
            None
        }
    }
}

/// Like [`gpu_device`], but a GPU context of the test's own rather than the
/// process's shared one: for tests that make the device fail on purpose.
/// A device's failure is recorded for the whole context until someone takes
/// it, so on the shared context a test running at the same time could take
/// (and trip over) another test's provoked failure.
pub fn own_gpu_device() -> Option<Device> {
    gpu_device()?;
    match crate::backend::gpu::context::own() {
        Ok(Some(ctx)) => Some(Device::Gpu(ctx)),
        Ok(None) => None,
        Err(e) => panic!("the GPU adapter did not open a second context: {e}"),
    }
}

/// Like [`own_gpu_device`], running the kernels of `set` whatever the
/// adapter: so the hardware kernels are tested on the software adapter.
pub fn gpu_device_with(set: crate::backend::gpu::KernelSet) -> Option<Device> {
    gpu_device()?;
    match crate::backend::gpu::context::own_with(set) {
        Ok(Some(ctx)) => Some(Device::Gpu(ctx)),
        Ok(None) => None,
        Err(e) => panic!("the GPU adapter did not open a second context: {e}"),
    }
}

/// Asserts two tensors have the same shape and that every pair of elements
/// satisfies `|a - b| <= abs + rel * |b|`; the message names `what` and the
/// first element that does not.
pub fn assert_close(got: &Tensor, want: &Tensor, abs: f32, rel: f32, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes differ");
    let (g, w) = (got.to_vec(), want.to_vec());
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let same_nan = a.is_nan() && b.is_nan();
        let same_inf = a.is_infinite() && a == b;
        assert!(
            same_nan || same_inf || (a - b).abs() <= abs + rel * b.abs(),
            "{what}: element {i} is {a}, expected {b} (tolerance {abs} + {rel}·|expected|)"
        );
    }
}
