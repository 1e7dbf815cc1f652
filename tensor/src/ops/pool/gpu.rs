//! GPU max-pool and its backward pass.
//!
//! - [`max_pool`]: one invocation per output element scans its window
//!   (`max_pool.wgsl`); values and `f32` indices match `cpu.rs` exactly.
//! - [`max_pool_backward`]: one invocation per input element sums the
//!   outputs whose window contains it and whose index names it
//!   (`max_pool_backward.wgsl`).
//!
//! Parameter layouts (`p[k]`, all `u32`):
//! - `max_pool.wgsl`, `max_pool_backward.wgsl`: p[0] = number of invocations
//!   (outputs, resp. inputs), p[1] = H, p[2] = W, p[3] = OH, p[4] = OW,
//!   p[5] = kh, p[6] = kw, p[7] = sh, p[8] = sw, p[9] = ph, p[10] = pw.

use super::Pool2dParams;
use crate::backend::gpu::{grid_1d, GpuBuffer};
use crate::Tensor;

const FORWARD: &str = include_str!("max_pool.wgsl");
const GATHER: &str = include_str!("max_pool_backward.wgsl");

/// The parameter block shared by the forward kernel and the gather: the
/// invocation count `n`, the input and output plane sizes, then the window.
fn window_params(n: usize, hw: [usize; 2], out_hw: [usize; 2], p: Pool2dParams) -> Vec<u32> {
    [
        n,
        hw[0],
        hw[1],
        out_hw[0],
        out_hw[1],
        p.kernel[0],
        p.kernel[1],
        p.stride[0],
        p.stride[1],
        p.padding[0],
        p.padding[1],
    ]
    .iter()
    .map(|&v| v as u32)
    .collect()
}

/// The pooled values and in-plane indices of an `[N, C, H, W]` tensor, each
/// `N·C·OH·OW` values.
pub fn max_pool(x: &Tensor, p: Pool2dParams, oh: usize, ow: usize) -> (GpuBuffer, GpuBuffer) {
    let xb = x.gpu_buffer("max_pool2d");
    let ctx = xb.context();
    let s = x.shape();
    let n = s[0] * s[1] * oh * ow;
    let y = GpuBuffer::new(ctx, n);
    let idx = GpuBuffer::new(ctx, n);
    if n > 0 {
        let params = window_params(n, [s[2], s[3]], [oh, ow], p);
        ctx.dispatch("max_pool2d", FORWARD, &params, &[xb, &y, &idx], grid_1d(n));
    }
    (y, idx)
}

/// The gradient of max-pool as a gather over the windows `p`: one
/// invocation per input element sums, in row-major order, the gradients of
/// the outputs whose window contains it and whose stored index names it.
/// No two invocations write the same element, so no atomics are needed,
/// and the sums are added in the CPU's order (bit-identical).
pub fn max_pool_backward(
    gy: &Tensor,
    indices: &Tensor,
    input_shape: &[usize],
    p: Pool2dParams,
) -> GpuBuffer {
    let gb = gy.gpu_buffer("max_pool2d_backward");
    let ib = indices.gpu_buffer("max_pool2d_backward");
    let ctx = gb.context();
    let n: usize = input_shape.iter().product();
    let dx = GpuBuffer::new(ctx, n);
    if n > 0 {
        let (gs, hw) = (gy.shape(), [input_shape[2], input_shape[3]]);
        let params = window_params(n, hw, [gs[2], gs[3]], p);
        ctx.dispatch(
            "max_pool2d_gather",
            GATHER,
            &params,
            &[gb, ib, &dx],
            grid_1d(n),
        );
    }
    dx
}

#[cfg(test)]
mod tests {
    use super::super::Pool2dParams;
    use crate::testing::{assert_close, gpu_device};
    use crate::{Device, Tensor};

    /// Shapes and windows: odd sizes, padding, overlapping windows
    /// (stride < kernel, so one input feeds several outputs), rectangular
    /// windows, and a 1x1 plane.
    fn cases() -> Vec<([usize; 4], Pool2dParams)> {
        vec![
            ([2, 3, 7, 7], Pool2dParams::new(3, 2, 1)),
            ([1, 1, 1, 1], Pool2dParams::new(1, 1, 0)),
            ([3, 2, 33, 9], Pool2dParams::new(2, 2, 0)),
            ([1, 3, 9, 7], Pool2dParams::new(3, 1, 1)),
            (
                [1, 2, 8, 5],
                Pool2dParams {
                    kernel: [3, 2],
                    stride: [1, 2],
                    padding: [1, 1],
                },
            ),
            ([2, 1, 17, 3], Pool2dParams::new(3, 3, 0)),
        ]
    }

    /// Forward values, indices, and both backward kernels against the CPU.
    /// Tolerance 0 throughout: the forward only compares and copies, and
    /// both backward kernels add the same values in the CPU's order.
    #[test]
    fn max_pool_and_backward_match_the_cpu() {
        let Some(gpu) = gpu_device() else { return };
        for (k, (shape, p)) in cases().into_iter().enumerate() {
            let what = format!("{shape:?} {p:?}");
            let x = Tensor::randn(&shape, 0.0, 1.0, 30 + k as u64, &Device::Cpu);
            let (y, ix) = x.max_pool2d(p);
            let (gy, gix) = x.to_device(&gpu).max_pool2d(p);
            assert_eq!(gy.device(), gpu);
            assert_close(&gy, &y, 0.0, 0.0, &format!("values {what}"));
            assert_close(&gix, &ix, 0.0, 0.0, &format!("indices {what}"));

            let dy = Tensor::randn(y.shape(), 0.0, 1.0, 60 + k as u64, &Device::Cpu);
            let want = dy.max_pool2d_backward(&ix, &shape, p);
            let g_dy = dy.to_device(&gpu);
            let got = g_dy.max_pool2d_backward(&gix, &shape, p);
            assert_close(&got, &want, 0.0, 0.0, &format!("backward {what}"));
        }
    }

    /// Ties take the first maximum in row-major window order, -inf inputs
    /// are still chosen over the padding, and a NaN wins (the first one), as
    /// on the CPU. Exact.
    #[test]
    fn ties_infinities_and_nan_follow_the_cpu() {
        let Some(gpu) = gpu_device() else { return };
        let inf = f32::INFINITY;
        #[rustfmt::skip]
        let data = vec![
            1.0, 5.0, 5.0, -inf,
            5.0, 2.0, -inf, -inf,
            0.0, f32::NAN, 3.0, f32::NAN,
        ];
        let x = Tensor::from_vec(data, &[1, 1, 3, 4], &Device::Cpu);
        for p in [
            Pool2dParams::new(2, 1, 1),
            Pool2dParams::new(2, 2, 0),
            Pool2dParams::new(3, 1, 1),
        ] {
            let (y, ix) = x.max_pool2d(p);
            let (gy, gix) = x.to_device(&gpu).max_pool2d(p);
            assert_close(&gy, &y, 0.0, 0.0, &format!("values {p:?}"));
            assert_close(&gix, &ix, 0.0, 0.0, &format!("indices {p:?}"));
        }
    }

    /// An empty batch gives empty outputs without a dispatch.
    #[test]
    fn empty_batch() {
        let Some(gpu) = gpu_device() else { return };
        let x = Tensor::zeros(&[0, 3, 5, 5], &gpu);
        let (y, ix) = x.max_pool2d(Pool2dParams::new(3, 2, 1));
        assert_eq!(y.shape(), &[0, 3, 3, 3]);
        let dx = y.max_pool2d_backward(&ix, &[0, 3, 5, 5], Pool2dParams::new(3, 2, 1));
        assert_eq!(dx.shape(), &[0, 3, 5, 5]);
        assert!(dx.to_vec().is_empty());
    }
}
