//! GPU softmax and log-softmax over the last axis: one workgroup per row
//! finds the row maximum and the sum of the shifted exponentials with two
//! workgroup reductions, then writes the row (`softmax.wgsl`).
//!
//! Parameter layout (`p[k]`): p[0] = rows, p[1] = n (row length),
//! p[2] = 1 for log-softmax, 0 for softmax.

use crate::backend::gpu::{grid_for_groups, GpuBuffer};
use crate::Tensor;

const SOURCE: &str = include_str!("softmax.wgsl");

/// Softmax (or log-softmax when `log`) of every row of length `n`.
pub fn softmax(x: &Tensor, n: usize, log: bool) -> GpuBuffer {
    let xb = x.gpu_buffer(if log { "log_softmax" } else { "softmax" });
    let ctx = xb.context();
    let out = GpuBuffer::new(ctx, x.numel());
    // `Tensor::softmax` has checked n > 0; rows may still be 0.
    let rows = x.numel() / n;
    if rows > 0 {
        let params = [rows as u32, n as u32, log as u32];
        ctx.dispatch(
            "softmax",
            SOURCE,
            &params,
            &[xb, &out],
            grid_for_groups(rows),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_close, gpu_device};
    use crate::{Device, Tensor};

    /// Softmax and log-softmax against the CPU, on rows shorter and longer
    /// than a workgroup (257 > 256 threads) and a single row. WGSL's exp is
    /// accurate to a few ulps (more for large |x|), and the sums are added
    /// in another order: 1e-5 relative, plus 1e-7 absolute for the tiny
    /// probabilities (softmax) and 1e-5 for log-softmax values near zero.
    #[test]
    fn softmax_and_log_softmax_match_the_cpu() {
        let Some(gpu) = gpu_device() else { return };
        let shapes: &[&[usize]] = &[
            &[1],
            &[7],
            &[3, 7],
            &[2, 3, 33],
            &[33, 10],
            &[3, 257],
            &[2, 1],
            &[1, 1000],
        ];
        for (k, &shape) in shapes.iter().enumerate() {
            let x = Tensor::randn(shape, 0.0, 3.0, 100 + k as u64, &Device::Cpu);
            let g = x.to_device(&gpu);
            let got = g.softmax();
            assert_eq!(got.device(), gpu);
            assert_close(
                &got,
                &x.softmax(),
                1e-7,
                1e-5,
                &format!("softmax {shape:?}"),
            );
            assert_close(
                &g.log_softmax(),
                &x.log_softmax(),
                1e-5,
                1e-5,
                &format!("log_softmax {shape:?}"),
            );
        }
    }

    /// Large logits do not overflow (the row maximum is subtracted first).
    #[test]
    fn large_inputs_do_not_overflow() {
        let Some(gpu) = gpu_device() else { return };
        let x = Tensor::from_vec(
            vec![1000.0, 1001.0, 999.0, -1000.0, 0.0, 88.0],
            &[2, 3],
            &Device::Cpu,
        );
        let g = x.to_device(&gpu);
        assert_close(&g.softmax(), &x.softmax(), 1e-7, 1e-5, "softmax");
        assert_close(
            &g.log_softmax(),
            &x.log_softmax(),
            1e-5,
            1e-5,
            "log_softmax",
        );
    }

    /// No rows: an empty output without a dispatch.
    #[test]
    fn no_rows() {
        let Some(gpu) = gpu_device() else { return };
        let x = Tensor::zeros(&[0, 5], &gpu);
        assert_eq!(x.softmax().shape(), &[0, 5]);
        assert!(x.log_softmax().to_vec().is_empty());
    }
}
