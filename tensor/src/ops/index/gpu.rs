//! GPU `index_select`: the indices are uploaded as `u32` and one invocation
//! per output element gathers its value.

use crate::backend::gpu::{grid_1d, GpuBuffer};
use crate::Tensor;

const SOURCE: &str = include_str!("index_select.wgsl");

/// The slices of `x` at `indices` along `axis`.
pub fn index_select(x: &Tensor, axis: usize, indices: &[usize]) -> GpuBuffer {
    let xb = x.gpu_buffer("index_select");
    let ctx = xb.context();
    let shape = x.shape();
    let inner: usize = shape[axis + 1..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    let n = outer * indices.len() * inner;
    let out = GpuBuffer::new(ctx, n);
    if n > 0 {
        let idx: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
        let ib = ctx.upload(&idx);
        let params = [
            n as u32,
            inner as u32,
            shape[axis] as u32,
            indices.len() as u32,
        ];
        ctx.dispatch(
            "index_select",
            SOURCE,
            &params,
            &[xb, &ib, &out],
            grid_1d(n),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_close, gpu_device};
    use crate::{Device, Tensor};

    /// Gathering copies values: exact.
    #[test]
    fn matches_the_cpu_on_every_axis() {
        let Some(gpu) = gpu_device() else { return };
        let x = Tensor::randn(&[7, 3, 33], 0.0, 1.0, 1, &Device::Cpu);
        let g = x.to_device(&gpu);
        assert_close(
            &g.index_select(0, &[6, 0, 6, 2]),
            &x.index_select(0, &[6, 0, 6, 2]),
            0.0,
            0.0,
            "axis 0",
        );
        assert_close(
            &g.index_select(1, &[2, 1]),
            &x.index_select(1, &[2, 1]),
            0.0,
            0.0,
            "axis 1",
        );
        assert_close(
            &g.index_select(2, &[32, 0]),
            &x.index_select(2, &[32, 0]),
            0.0,
            0.0,
            "axis 2",
        );
        let oh = Tensor::one_hot(&[2, 0, 1], 3, &gpu);
        assert_eq!(oh.to_vec(), vec![0., 0., 1., 1., 0., 0., 0., 1., 0.]);
    }
}
