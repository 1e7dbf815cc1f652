//! GPU launcher of `select`: one invocation per output element, each of the
//! three operands read through broadcast strides.

use crate::backend::gpu::{grid_1d, GpuBuffer};
use crate::shape::{broadcast_strides, numel};
use crate::Tensor;

const SOURCE: &str = include_str!("select.wgsl");

/// `cond ? a : b` broadcast to `shape`.
pub fn select(cond: &Tensor, a: &Tensor, b: &Tensor, shape: &[usize]) -> GpuBuffer {
    let cb = cond.gpu_buffer("select");
    let ctx = cb.context();
    let n = numel(shape);
    let out = GpuBuffer::new(ctx, n);
    if n > 0 {
        let mut params = vec![n as u32, shape.len() as u32];
        params.extend(shape.iter().map(|&d| d as u32));
        for t in [cond, a, b] {
            params.extend(
                broadcast_strides(t.shape(), shape)
                    .iter()
                    .map(|&s| s as u32),
            );
        }
        let (ab, bb) = (a.gpu_buffer("select"), b.gpu_buffer("select"));
        ctx.dispatch("select", SOURCE, &params, &[cb, ab, bb, &out], grid_1d(n));
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_close, gpu_device};
    use crate::{Device, Tensor};

    /// Selection copies values: exact.
    #[test]
    fn matches_the_cpu_with_broadcasting() {
        let Some(gpu) = gpu_device() else { return };
        let cpu = Device::Cpu;
        let x = Tensor::randn(&[7, 33], 0.0, 1.0, 1, &cpu);
        let mask = Tensor::randn(&[7, 1], 0.0, 1.0, 2, &cpu).gt_scalar(0.0);
        let b = Tensor::randn(&[33], 0.0, 1.0, 3, &cpu);
        let want = mask.select(&x, &b);
        let got = mask
            .to_device(&gpu)
            .select(&x.to_device(&gpu), &b.to_device(&gpu));
        assert_close(&got, &want, 0.0, 0.0, "select");
    }
}
