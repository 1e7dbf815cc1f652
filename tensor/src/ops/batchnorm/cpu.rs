//! CPU batch-norm kernels. A tensor `[N, C, rest..]` is N rows of `C·L`
//! values (`L = Π rest`): channel `c` owns columns `c·L..(c+1)·L` of every
//! row, a plane of `L` values per image (`L = 1` for the `[N, C]` inputs of
//! the projector and predictor).
//!
//! **Sums by column.** A channel's statistics are sums over its columns of
//! every row. They are computed column-wise: a slab of consecutive
//! channels' columns, each row of it added into one accumulator per column
//! ([`channel_sums`]), so the inner loop runs along contiguous memory and
//! vectorises whatever the plane size. (Reducing plane by plane, as this
//! module first did, pays a horizontal sum and an `f64` merge for every
//! plane: at `L = 16` or `L = 1` that overhead was the whole cost, 8 ms for
//! the statistics of a `[512, 4096]` layer.) A slab is sized to stay in the
//! L2 cache, so the variance's second pass over it, after the mean, reads
//! the cache and not memory.
//!
//! **Precision.** Rows are added in `f32` in blocks of [`ROW_BLOCK`], each
//! block's column sums then added into `f64`, and a channel's columns are
//! summed in `f64`: an `f32` rounding error grows with at most `ROW_BLOCK`
//! terms. The variance is the mean of squared deviations from the mean (two
//! passes, no `E[x²] - E[x]²` cancellation).
//!
//! **Elementwise passes** (the normalisation and `dx`) go row by row: with
//! `L = 1` the inner loop runs across channels, each with its own
//! coefficients, else along each plane with the channel's coefficients.

use crate::backend::cpu::fill_pieces;
use crate::backend::cpu::simd::vectorised;
use crate::Tensor;
use rayon::prelude::*;

/// `(N, C, L)`: the batch, channel and plane sizes of `x`.
fn dims(x: &Tensor) -> (usize, usize, usize) {
    let s = x.shape();
    (s[0], s[1], s[2..].iter().product())
}

/// Rows added in `f32` before their column sums go into the `f64` totals.
const ROW_BLOCK: usize = 64;

/// Bytes of one input a reduction slab may span (its rows times its
/// columns): small enough to stay in a core's L2 cache between the two
/// passes of the variance.
const SLAB_BYTES: usize = 256 * 1024;

/// Channels per reduction slab for `N` rows of planes of `L` values: as
/// many as fit in [`SLAB_BYTES`], at least one.
fn channels_per_slab(n: usize, c: usize, l: usize) -> usize {
    let columns = SLAB_BYTES / (4 * n.max(1));
    (columns / l.max(1)).clamp(1, c.max(1))
}

/// Per channel, `(Σ f(a, b, m_c).0, Σ f(a, b, m_c).1)` over the channel's
/// values `a` and the values `b` at the same places (all rows, all its
/// columns), with `m_c = m[c]`; `a` and `b` are `[N, C·L]`. Without `TWO`
/// only the first sum is made (the second is 0).
///
/// Slabs of channels run in parallel; within one, rows are added four at
/// a time into `f32` column accumulators (one load and store of the
/// accumulator per four rows), flushed into `f64` every [`ROW_BLOCK`] rows,
/// at the widest vector level of the CPU.
fn channel_sums<const TWO: bool>(
    a: &[f32],
    b: &[f32],
    (n, c, l): (usize, usize, usize),
    m: &[f32],
    f: impl Fn(f32, f32, f32) -> (f32, f32) + Sync,
) -> Vec<(f64, f64)> {
    let per = channels_per_slab(n, c, l);
    let slab = |first: usize| {
        let channels = first..(first + per).min(c);
        vectorised(
            #[inline(always)]
            || slab_sums::<TWO>(a, b, (n, c, l), m, channels, &f),
        )
    };
    let firsts: Vec<usize> = (0..c).step_by(per).collect();
    if crate::backend::cpu::go_parallel(a.len()) {
        firsts.into_par_iter().flat_map_iter(slab).collect()
    } else {
        firsts.into_iter().flat_map(slab).collect()
    }
}

/// [`channel_sums`] for one slab of consecutive `channels`. Always inlined,
/// so that the copy [`vectorised`] picks compiles the loops with its
/// instructions (a closure this size was not inlined there).
#[inline(always)]
fn slab_sums<const TWO: bool>(
    a: &[f32],
    b: &[f32],
    (n, c, l): (usize, usize, usize),
    m: &[f32],
    channels: std::ops::Range<usize>,
    f: &impl Fn(f32, f32, f32) -> (f32, f32),
) -> Vec<(f64, f64)> {
    let (first, end) = (channels.start, channels.end);
    let row = c * l;
    let (lo, hi) = (first * l, end * l);
    let w = hi - lo;
    // The subtrahend of every column: its channel's m.
    let mc: Vec<f32> = (first..end)
        .flat_map(|ch| std::iter::repeat_n(m[ch], l))
        .collect();
    let (mut t1, mut t2) = (vec![0.0f64; w], vec![0.0f64; w]);
    let (mut s1, mut s2) = (vec![0.0f32; w], vec![0.0f32; w]);
    let cols = |r: usize| {
        (
            &a[r * row + lo..r * row + hi],
            &b[r * row + lo..r * row + hi],
        )
    };
    for block in (0..n).step_by(ROW_BLOCK) {
        let block_end = (block + ROW_BLOCK).min(n);
        s1.fill(0.0);
        s2.fill(0.0);
        let mut r = block;
        while r + 4 <= block_end {
            let [(a0, b0), (a1, b1), (a2, b2), (a3, b3)] = [0, 1, 2, 3].map(|i| cols(r + i));
            for j in 0..w {
                let mj = mc[j];
                let (p0, q0) = f(a0[j], b0[j], mj);
                let (p1, q1) = f(a1[j], b1[j], mj);
                let (p2, q2) = f(a2[j], b2[j], mj);
                let (p3, q3) = f(a3[j], b3[j], mj);
                s1[j] += (p0 + p1) + (p2 + p3);
                if TWO {
                    s2[j] += (q0 + q1) + (q2 + q3);
                }
            }
            r += 4;
        }
        for r in r..block_end {
            let (ar, br) = cols(r);
            for j in 0..w {
                let (p, q) = f(ar[j], br[j], mc[j]);
                s1[j] += p;
                if TWO {
                    s2[j] += q;
                }
            }
        }
        for j in 0..w {
            t1[j] += s1[j] as f64;
            if TWO {
                t2[j] += s2[j] as f64;
            }
        }
    }
    (0..end - first)
        .map(|k| {
            let cols = k * l..(k + 1) * l;
            (t1[cols.clone()].iter().sum(), t2[cols].iter().sum())
        })
        .collect()
}

/// Per-channel mean and biased variance: the mean from the column sums,
/// then the mean of squared deviations from it (see the module docs).
pub fn channel_stats(x: &Tensor) -> (Vec<f32>, Vec<f32>) {
    let (n, c, l) = dims(x);
    let xs = x.cpu_slice("channel_stats");
    let count = (n * l).max(1) as f64;
    let zeros = vec![0.0f32; c];
    let sums = channel_sums::<false>(xs, xs, (n, c, l), &zeros, |v, _, _| (v, 0.0));
    let mean: Vec<f32> = sums.iter().map(|s| (s.0 / count) as f32).collect();
    let squares = channel_sums::<false>(xs, xs, (n, c, l), &mean, |v, _, mu| {
        let d = v - mu;
        (d * d, 0.0)
    });
    let var = squares.iter().map(|s| (s.0 / count) as f32).collect();
    (mean, var)
}

/// A fresh `[N, C·L]` buffer with `out = f(a, b, [p0, p1, p2, p3])` at
/// every place, `a` and `b` the inputs at that place and `p0..p3` its
/// channel's entries of `params`, in pieces of whole rows (in parallel when
/// large).
fn map_by_channel(
    a: &[f32],
    b: &[f32],
    (c, l): (usize, usize),
    params: [&[f32]; 4],
    f: impl Fn(f32, f32, [f32; 4]) -> f32 + Sync,
) -> Vec<f32> {
    let row = c * l;
    if row == 0 {
        return Vec::new();
    }
    let rows_per_piece = (16 * 1024 / row).max(1);
    let [p0, p1, p2, p3] = params;
    // SAFETY: every row of every piece is written: with L = 1 by the zip
    // of the row with the inputs and parameters (all C long), else plane by
    // plane by the zip of each plane with the inputs (all L long).
    unsafe {
        fill_pieces(
            a.len(),
            row * rows_per_piece,
            #[inline(always)]
            |piece, out| {
                let at = piece * row * rows_per_piece;
                for (r, out_row) in out.chunks_mut(row).enumerate() {
                    let (ar, br) = (&a[at + r * row..][..row], &b[at + r * row..][..row]);
                    if l == 1 {
                        let ps = p0.iter().zip(p1).zip(p2.iter().zip(p3));
                        for ((o, (&x, &y)), ((&k0, &k1), (&k2, &k3))) in
                            out_row.iter_mut().zip(ar.iter().zip(br)).zip(ps)
                        {
                            o.write(f(x, y, [k0, k1, k2, k3]));
                        }
                        continue;
                    }
                    for (ch, plane) in out_row.chunks_mut(l).enumerate() {
                        let k = [p0[ch], p1[ch], p2[ch], p3[ch]];
                        let (ap, bp) = (&ar[ch * l..(ch + 1) * l], &br[ch * l..(ch + 1) * l]);
                        for (o, (&x, &y)) in plane.iter_mut().zip(ap.iter().zip(bp)) {
                            o.write(f(x, y, k));
                        }
                    }
                }
            },
        )
    }
}

/// `y = x · scale[c] + shift[c]` with `scale = w / sqrt(var + eps)` and
/// `shift = b - mean · scale`; `max(y, 0)` when `relu`.
pub fn normalize(
    x: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    w: &Tensor,
    b: &Tensor,
    eps: f32,
    relu: bool,
) -> Vec<f32> {
    if relu {
        normalize_then(x, mean, var, w, b, eps, crate::ops::unary::relu)
    } else {
        normalize_then(x, mean, var, w, b, eps, |y| y)
    }
}

/// [`normalize`] with `then` applied to each output (a closure of its own
/// per call site, so each loop is compiled straight through).
fn normalize_then(
    x: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    w: &Tensor,
    b: &Tensor,
    eps: f32,
    then: impl Fn(f32) -> f32 + Sync,
) -> Vec<f32> {
    let (_, c, l) = dims(x);
    let op = "normalize_scale_shift";
    let (mean, var, w, b) = (
        mean.cpu_slice(op),
        var.cpu_slice(op),
        w.cpu_slice(op),
        b.cpu_slice(op),
    );
    let scale: Vec<f32> = (0..c).map(|ch| w[ch] / (var[ch] + eps).sqrt()).collect();
    let shift: Vec<f32> = (0..c).map(|ch| b[ch] - mean[ch] * scale[ch]).collect();
    let xs = x.cpu_slice(op);
    let p = [&scale[..], &shift, &shift, &shift];
    map_by_channel(xs, xs, (c, l), p, |v, _, [s, t, _, _]| then(v * s + t))
}

/// `(dx, dγ, dβ)` in two passes: per channel the sums `dβ = Σ dy` and
/// `dγ = r · Σ dy·(x - μ)` (column sums, see the module docs), then
///
/// `dx = γ·r/M · (M·dy - dβ - x̂·dγ)`, `x̂ = (x - μ)·r`, `M = N·L`,
///
/// computed as `dx = k·(dy - (x - μ)·k_x - k_1)` with the per-channel
/// `k = γ·r`, `k_x = r·dγ/M` and `k_1 = dβ/M`. (Folding `μ` into a
/// constant term, `a·dy + b·x + d`, saves a subtraction but cancels `b·x`
/// against `b·μ` when the mean is large beside the spread: that form moved
/// the 200-step LARS run of `byol/tests/trajectory.rs` off PyTorch's.)
pub fn batch_norm_backward(
    dy: &Tensor,
    x: &Tensor,
    mean: &Tensor,
    inv_std: &Tensor,
    w: &Tensor,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (n, c, l) = dims(x);
    let op = "batch_norm_backward";
    let (gs, xs) = (dy.cpu_slice(op), x.cpu_slice(op));
    let (mean, r, w) = (mean.cpu_slice(op), inv_std.cpu_slice(op), w.cpu_slice(op));
    let sums = channel_sums::<true>(gs, xs, (n, c, l), mean, |g, v, mu| (g, g * (v - mu)));
    let dbeta: Vec<f32> = sums.iter().map(|s| s.0 as f32).collect();
    let dgamma: Vec<f32> = sums
        .iter()
        .zip(r)
        .map(|(s, &rc)| (s.1 * rc as f64) as f32)
        .collect();
    let m = (n * l) as f32;
    let k: Vec<f32> = (0..c).map(|ch| w[ch] * r[ch]).collect();
    let k_x: Vec<f32> = (0..c).map(|ch| r[ch] * dgamma[ch] / m).collect();
    let k_1: Vec<f32> = dbeta.iter().map(|&db| db / m).collect();
    let p = [&k[..], mean, &k_x, &k_1];
    let dx = map_by_channel(gs, xs, (c, l), p, |g, v, [k, mu, kx, k1]| {
        k * (g - (v - mu) * kx - k1)
    });
    (dx, dgamma, dbeta)
}

#[cfg(test)]
mod tests {
    use crate::{Device, Tensor};
    use approx::assert_relative_eq;

    #[test]
    fn stats_and_normalisation_match_the_formulas() {
        let d = Device::Cpu;
        for shape in [vec![7, 3], vec![3, 5, 7, 1], vec![2, 3, 3, 33], vec![1, 1]] {
            let x = Tensor::randn(&shape, 0.5, 2.0, 11, &d);
            let c = shape[1];
            let (mean, var) = x.channel_stats();
            // Reference: the tensor crate's general reductions over all but axis 1.
            let axes: Vec<usize> = (0..shape.len()).filter(|&a| a != 1).collect();
            let want_m = x.mean(&axes, false).to_vec();
            let want_v = x.var(&axes, false, false).to_vec();
            for ch in 0..c {
                assert_relative_eq!(
                    mean.to_vec()[ch],
                    want_m[ch],
                    epsilon = 1e-5,
                    max_relative = 1e-5
                );
                assert_relative_eq!(
                    var.to_vec()[ch],
                    want_v[ch],
                    epsilon = 1e-5,
                    max_relative = 1e-4
                );
            }
            let w = Tensor::randn(&[c], 1.0, 0.5, 12, &d);
            let b = Tensor::randn(&[c], 0.0, 0.5, 13, &d);
            let y = x.normalize_scale_shift(&mean, &var, &w, &b, 1e-5).to_vec();
            let l: usize = shape[2..].iter().product();
            let (mv, vv, wv, bv) = (mean.to_vec(), var.to_vec(), w.to_vec(), b.to_vec());
            for (i, &v) in x.to_vec().iter().enumerate() {
                let ch = (i / l) % c;
                let want = (v - mv[ch]) / (vv[ch] + 1e-5).sqrt() * wv[ch] + bv[ch];
                assert_relative_eq!(y[i], want, epsilon = 1e-4, max_relative = 1e-4);
            }
        }
    }

    /// The two-pass kernel against the same formula written with general
    /// tensor ops. Sums in another order: 1e-4 absolute and relative.
    #[test]
    fn fused_backward_matches_the_composed_formula() {
        let d = Device::Cpu;
        for shape in [vec![7, 3], vec![3, 5, 7, 1], vec![2, 3, 3, 33]] {
            let x = Tensor::randn(&shape, 0.5, 2.0, 1, &d);
            let dy = Tensor::randn(&shape, 0.0, 1.0, 2, &d);
            let c = shape[1];
            let w = Tensor::randn(&[c], 1.0, 0.3, 3, &d);
            let (mean, var) = x.channel_stats();
            let r = var.add_scalar(1e-5).rsqrt();
            let got = dy.batch_norm_backward(&x, &mean, &r, &w);
            let want = super::super::batch_norm_backward_composed(&dy, &x, &mean, &r, &w);
            crate::testing::assert_close(&got.0, &want.0, 1e-4, 1e-4, "dx");
            crate::testing::assert_close(&got.1, &want.1, 1e-4, 1e-4, "dgamma");
            crate::testing::assert_close(&got.2, &want.2, 1e-4, 1e-4, "dbeta");
        }
    }

    /// The fused forward does the same arithmetic as the separate ops, so
    /// it agrees with `relu(normalize(x))` bit for bit; the backward is
    /// `where_positive` then `batch_norm_backward` by construction, and the
    /// check here is that it masks by `z` (its arguments in their places).
    #[test]
    fn relu_fusions_equal_the_separate_ops() {
        let d = Device::Cpu;
        for shape in [vec![7, 3], vec![3, 5, 7, 1], vec![2, 3, 3, 33]] {
            let c = shape[1];
            let x = Tensor::randn(&shape, 0.5, 2.0, 4, &d);
            let dz = Tensor::randn(&shape, 0.0, 1.0, 5, &d);
            let w = Tensor::randn(&[c], 1.0, 0.3, 6, &d);
            let b = Tensor::randn(&[c], 0.0, 0.5, 7, &d);
            let (mean, var) = x.channel_stats();
            let z = x.normalize_scale_shift_relu(&mean, &var, &w, &b, 1e-5);
            let separate = x.normalize_scale_shift(&mean, &var, &w, &b, 1e-5).relu();
            assert_eq!(z.to_vec(), separate.to_vec());
            assert!(z.to_vec().contains(&0.0), "the test should mask something");
            let r = var.add_scalar(1e-5).rsqrt();
            let fused = dz.batch_norm_relu_backward(&z, &x, &mean, &r, &w);
            let apart = dz.where_positive(&z).batch_norm_backward(&x, &mean, &r, &w);
            assert_eq!(fused.0.to_vec(), apart.0.to_vec(), "dx {shape:?}");
            assert_eq!(fused.1.to_vec(), apart.1.to_vec(), "dgamma {shape:?}");
            assert_eq!(fused.2.to_vec(), apart.2.to_vec(), "dbeta {shape:?}");
        }
    }

    /// Shapes that take every branch of the column sums: several slabs
    /// (`[130, 4096]`: 504 channels a slab; `[70, 7, 30, 30]`: one), row
    /// counts that leave a short block and rows outside the groups of four,
    /// and inputs large enough to run on several threads; plus a mean far
    /// from zero, which a one-pass `E[x²] - E[x]²` would cancel away. Checked
    /// against sums in `f64` written out here, and the backward against the
    /// composed formula.
    #[test]
    fn sums_by_column_cover_every_slab_block_and_thread() {
        let d = Device::Cpu;
        for (shape, offset) in [
            (vec![130, 4096], 0.5),
            (vec![70, 7, 30, 30], 0.5),
            (vec![67, 5, 9, 11], 1000.0),
            (vec![5, 3, 4, 4], -300.0),
        ] {
            let x = Tensor::randn(&shape, offset, 2.0, 21, &d);
            let (n, c) = (shape[0], shape[1]);
            let l: usize = shape[2..].iter().product();
            let xs = x.to_vec();
            let (mean, var) = x.channel_stats();
            let (mean, var) = (mean.to_vec(), var.to_vec());
            for ch in 0..c {
                let values = (0..n).flat_map(|b| &xs[(b * c + ch) * l..(b * c + ch + 1) * l]);
                let values: Vec<f64> = values.map(|&v| v as f64).collect();
                let m = values.iter().sum::<f64>() / values.len() as f64;
                let v = values.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / values.len() as f64;
                // f32 sums of values of size |offset| + 2.
                let scale = 1.0 + offset.abs() as f64;
                assert_relative_eq!(mean[ch] as f64, m, epsilon = 1e-6 * scale);
                assert_relative_eq!(var[ch] as f64, v, max_relative = 1e-4);
            }
            let dy = Tensor::randn(&shape, 0.0, 1.0, 22, &d);
            let w = Tensor::randn(&[c], 1.0, 0.3, 23, &d);
            let (mean, var) = x.channel_stats();
            let r = var.add_scalar(1e-5).rsqrt();
            let got = dy.batch_norm_backward(&x, &mean, &r, &w);
            let want = super::super::batch_norm_backward_composed(&dy, &x, &mean, &r, &w);
            crate::testing::assert_close(&got.0, &want.0, 1e-4, 1e-3, "dx");
            crate::testing::assert_close(&got.1, &want.1, 1e-3, 1e-3, "dgamma");
            crate::testing::assert_close(&got.2, &want.2, 1e-3, 1e-3, "dbeta");
        }
    }

    /// Every vector level this CPU has gives the baseline's bits, for the
    /// statistics (one and two sums), the normalisation and `dx`, on
    /// planes of one value (vectorised across channels) and of many.
    #[test]
    fn every_vector_level_gives_the_baseline_bits() {
        use crate::backend::cpu::simd::forced;
        let d = Device::Cpu;
        for shape in [vec![67, 300], vec![70, 7, 30, 30], vec![9, 5, 3, 3]] {
            let c = shape[1];
            let x = Tensor::randn(&shape, 0.3, 2.0, 31, &d);
            let dy = Tensor::randn(&shape, 0.0, 1.0, 32, &d);
            let w = Tensor::randn(&[c], 1.0, 0.3, 33, &d);
            let b = Tensor::randn(&[c], 0.0, 0.3, 34, &d);
            let runs = forced::at_every_level(|| {
                let (mean, var) = x.channel_stats();
                let y = x.normalize_scale_shift_relu(&mean, &var, &w, &b, 1e-5);
                let r = var.add_scalar(1e-5).rsqrt();
                let (dx, dg, db) = dy.batch_norm_backward(&x, &mean, &r, &w);
                [mean, var, y, dx, dg, db].map(|t| t.to_vec())
            });
            for (isa, got) in &runs[1..] {
                assert!(
                    got == &runs[0].1,
                    "{isa:?} differs from the baseline at {shape:?}"
                );
            }
        }
    }

    /// Planes of no values: empty outputs and zero parameter gradients.
    #[test]
    fn empty_planes_give_empty_outputs() {
        let d = Device::Cpu;
        let x = Tensor::zeros(&[2, 3, 0], &d);
        let c = Tensor::ones(&[3], &d);
        assert!(x
            .normalize_scale_shift(&c, &c, &c, &c, 1e-5)
            .to_vec()
            .is_empty());
        assert!(x
            .normalize_scale_shift_relu(&c, &c, &c, &c, 1e-5)
            .to_vec()
            .is_empty());
        let (dx, dg, db) = x.batch_norm_backward(&x, &c, &c, &c);
        assert_eq!(dx.shape(), &[2, 3, 0]);
        assert_eq!((dg.to_vec(), db.to_vec()), (vec![0.0; 3], vec![0.0; 3]));
    }

    #[test]
    #[should_panic(expected = "normalize_scale_shift: bias has shape [2], input [4, 3] needs [3]")]
    fn wrong_parameter_shape_panics() {
        let d = Device::Cpu;
        let x = Tensor::zeros(&[4, 3], &d);
        let c = Tensor::zeros(&[3], &d);
        x.normalize_scale_shift(&c, &c, &c, &Tensor::zeros(&[2], &d), 1e-5);
    }
}
