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

/// The shortest part of a row one workgroup reduces when rows are cut.
const MIN_PART: usize = 4096;
/// Workgroups a reduction of few long rows is cut into, at most: enough
/// to keep every compute unit of a large GPU reading.
const TARGET_GROUPS: usize = 1024;

/// How many parts each of `rows` rows of `len` is reduced in: one, unless
/// the rows are too few to give [`TARGET_GROUPS`] workgroups and long
/// enough to cut into parts of at least [`MIN_PART`]. Argmax is never cut
/// (its partial results would need their indices carried along).
fn parts(rows: usize, len: usize, op: u32) -> usize {
    if op == ARGMAX || rows == 0 {
        return 1;
    }
    (len / MIN_PART).min(TARGET_GROUPS.div_ceil(rows)).max(1)
}

/// Reduces each row of `x` viewed as `[rows, len]` with the kernel's `op`:
/// in one dispatch, or, for few long rows, in parts whose results a second
/// dispatch reduces (a sum of squares then sums the partial sums).
fn reduce_rows(x: &Tensor, rows: usize, len: usize, op: u32) -> GpuBuffer {
    let xb = x.gpu_buffer("reduce");
    let ctx = xb.context();
    let parts = parts(rows, len, op);
    let part = len.div_ceil(parts).max(1);
    let out = GpuBuffer::new(ctx, rows * parts);
    if rows > 0 {
        let words = [rows, len, op as usize, parts, part].map(|v| v as u32);
        ctx.dispatch(
            "reduce_rows",
            SOURCE,
            &words,
            &[xb, &out],
            grid_for_groups(rows * parts),
        );
    }
    if parts == 1 {
        return out;
    }
    let partials = Tensor::gpu(out, &[rows, parts]);
    let then = if op == MAX { MAX } else { SUM };
    reduce_rows(&partials, rows, parts, then)
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

    /// Few long rows are cut into parts (whose last part is shorter, and
    /// whose rows do not start on a part boundary), then reduced again:
    /// the same sums, maxima and argmax as the CPU.
    #[test]
    fn long_rows_reduce_in_parts() {
        let Some(gpu) = gpu_device() else { return };
        assert_eq!(super::parts(1, 16 << 20, super::SUM), 1024);
        assert_eq!(super::parts(3, 9_001, super::MAX), 2);
        assert_eq!(super::parts(3, 9_001, super::ARGMAX), 1);
        assert_eq!(super::parts(2048, 100_000, super::SUM), 1);
        assert_eq!(super::parts(4, 4_095, super::SUM), 1);
        let x = Tensor::randn(&[3, 9_001], 0.5, 1.0, 6, &Device::Cpu);
        let g = x.to_device(&gpu);
        assert_close(&g.sum(&[1], false), &x.sum(&[1], false), 1e-2, 1e-5, "sum");
        assert_close(&g.max(&[1], false), &x.max(&[1], false), 0.0, 0.0, "max");
        let (gv, cv) = (g.var(&[1], true, false), x.var(&[1], true, false));
        assert_close(&gv, &cv, 1e-5, 1e-4, "var");
        assert_close(&g.argmax(1, false), &x.argmax(1, false), 0.0, 0.0, "argmax");
        // The columns' sums of a tall matrix: its transpose's long rows.
        let tall = Tensor::randn(&[20_000, 2], 0.0, 1.0, 7, &Device::Cpu);
        let gt = tall.to_device(&gpu);
        assert_close(
            &gt.sum(&[0], false),
            &tall.sum(&[0], false),
            1e-2,
            1e-5,
            "columns",
        );
        let big = Tensor::randn(&[1 << 20], 0.0, 1.0, 8, &Device::Cpu);
        let gb = big.to_device(&gpu);
        assert_close(&gb.norm_l2(), &big.norm_l2(), 1e-3, 1e-5, "norm of 2^20");
    }
}
