//! GPU reductions. Any set of axes is brought to the end by a permute (a
//! copy, skipped when they already are the last axes), which turns the
//! reduction into one over the rows of a `[rows, len]` matrix: one
//! workgroup per row in `reduce_rows.wgsl`.

use super::ReduceOp;
use crate::backend::gpu::{grid_for_groups, GpuBuffer};
use crate::Tensor;

const SOURCE: &str = include_str!("reduce_rows.wgsl");

/// Codes of `reduce_rows.wgsl`.
const SUM: u32 = 0;
const MAX: u32 = 1;
const ARGMAX: u32 = 2;
const SUM_SQUARES: u32 = 3;

/// Reduces each row of `x` viewed as `[rows, len]` with the kernel's `op`.
fn reduce_rows(x: &Tensor, rows: usize, len: usize, op: u32) -> GpuBuffer {
    let xb = x.gpu_buffer("reduce");
    let ctx = xb.context();
    let out = GpuBuffer::new(ctx, rows);
    if rows > 0 {
        ctx.dispatch(
            "reduce_rows",
            SOURCE,
            &[rows as u32, len as u32, op],
            &[xb, &out],
            grid_for_groups(rows),
        );
    }
    out
}

/// `x` with `axes` moved to the end (kept axes first, in order).
fn axes_last(x: &Tensor, axes: &[usize]) -> Tensor {
    let kept = (0..x.rank()).filter(|a| !axes.contains(a));
    let mut sorted = axes.to_vec();
    sorted.sort_unstable();
    let perm: Vec<usize> = kept.chain(sorted).collect();
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        x.clone()
    } else {
        x.permute(&perm)
    }
}

/// Sum or max over `axes`, row-major over the kept axes.
pub fn reduce(x: &Tensor, axes: &[usize], op: ReduceOp) -> GpuBuffer {
    let len: usize = axes.iter().map(|&a| x.shape()[a]).product();
    let rows: usize = (0..x.rank())
        .filter(|a| !axes.contains(a))
        .map(|a| x.shape()[a])
        .product();
    let code = match op {
        ReduceOp::Sum => SUM,
        ReduceOp::Max => MAX,
    };
    reduce_rows(&axes_last(x, axes), rows, len, code)
}

/// Index of the first maximum along `axis`.
pub fn argmax(x: &Tensor, axis: usize) -> GpuBuffer {
    let len = x.shape()[axis];
    reduce_rows(&axes_last(x, &[axis]), x.numel() / len, len, ARGMAX)
}

/// `Σ x` (or `Σ x²`) over the whole tensor, as a one-element buffer.
pub fn sum_all(x: &Tensor, squares: bool) -> GpuBuffer {
    reduce_rows(x, 1, x.numel(), if squares { SUM_SQUARES } else { SUM })
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_close, gpu_device};
    use crate::{Device, Tensor};

    /// Sums are added in a different order than on the CPU: 1e-5 relative
    /// (plus 1e-5 absolute for sums near zero). Max and argmax are exact.
    #[test]
    fn reductions_match_the_cpu() {
        let Some(gpu) = gpu_device() else { return };
        let x = Tensor::randn(&[3, 7, 1, 33], 0.0, 1.0, 4, &Device::Cpu);
        let g = x.to_device(&gpu);
        let axis_sets: &[&[usize]] = &[&[0], &[1], &[3], &[0, 2], &[1, 3], &[0, 1, 2, 3]];
        for &axes in axis_sets {
            assert_close(
                &g.sum(axes, true),
                &x.sum(axes, true),
                1e-5,
                1e-5,
                &format!("sum {axes:?}"),
            );
            assert_close(
                &g.mean(axes, false),
                &x.mean(axes, false),
                1e-5,
                1e-5,
                &format!("mean {axes:?}"),
            );
            assert_close(
                &g.max(axes, false),
                &x.max(axes, false),
                0.0,
                0.0,
                &format!("max {axes:?}"),
            );
            let (gv, cv) = (g.var(axes, true, false), x.var(axes, true, false));
            assert_close(&gv, &cv, 1e-5, 1e-4, &format!("var {axes:?}"));
        }
        for axis in 0..4 {
            assert_close(
                &g.argmax(axis, false),
                &x.argmax(axis, false),
                0.0,
                0.0,
                &format!("argmax {axis}"),
            );
        }
        let big = Tensor::randn(&[70_001], 0.5, 1.0, 5, &Device::Cpu);
        let gb = big.to_device(&gpu);
        assert_close(&gb.sum_all(), &big.sum_all(), 1e-2, 1e-5, "sum_all");
        assert_close(&gb.mean_all(), &big.mean_all(), 1e-6, 1e-5, "mean_all");
        assert_close(&gb.norm_l2(), &big.norm_l2(), 1e-4, 1e-5, "norm_l2");
        // Ties take the first maximum.
        let t = Tensor::from_vec(vec![1., 5., 5., 0.], &[1, 4], &gpu);
        assert_eq!(t.argmax(1, false).to_vec(), vec![1.0]);
    }
}
