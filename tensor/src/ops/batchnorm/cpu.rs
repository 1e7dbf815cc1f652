//! CPU batch-norm kernels. A tensor `[N, C, rest..]` is a run of N·C
//! contiguous planes of `L = Π rest` values; channel `c` owns planes
//! `c, C + c, 2C + c, ...`.

use crate::backend::cpu::fill_pieces;
use crate::Tensor;
use rayon::prelude::*;

/// `(N, C, L)`: the batch, channel and plane sizes of `x`.
fn dims(x: &Tensor) -> (usize, usize, usize) {
    let s = x.shape();
    (s[0], s[1], s[2..].iter().product())
}

/// Independent partial sums per reduction: a sum kept in one accumulator
/// is a chain of dependent additions the compiler may not reorder (float
/// addition is not associative), so it cannot vectorise; eight lanes are
/// two SSE registers (the baseline x86-64 code is built for) or one AVX
/// register of separate sums, added together at the end.
const LANES: usize = 8;

/// `(Σ f(a_i, b_i), Σ g(a_i, b_i))` over two equally long slices, in `LANES`
/// interleaved partial sums.
#[inline(always)]
fn lane_sums2(
    a: &[f32],
    b: &[f32],
    f: impl Fn(f32, f32) -> f32,
    g: impl Fn(f32, f32) -> f32,
) -> (f32, f32) {
    let (mut sf, mut sg) = ([0.0f32; LANES], [0.0f32; LANES]);
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for k in 0..LANES {
            sf[k] += f(x[k], y[k]);
            sg[k] += g(x[k], y[k]);
        }
    }
    let (mut tf, mut tg) = (sf.iter().sum::<f32>(), sg.iter().sum::<f32>());
    for (&x, &y) in ar.iter().zip(br) {
        tf += f(x, y);
        tg += g(x, y);
    }
    (tf, tg)
}

/// `Σ f(a_i)` in `LANES` interleaved partial sums.
#[inline(always)]
fn lane_sum(a: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    lane_sums2(a, a, |x, _| f(x), |_, _| 0.0).0
}

/// Per-channel mean and biased variance.
///
/// Each plane (one image's `L` values of the channel) is reduced while it
/// sits in the L1 cache: its mean, then the sum of squared deviations from
/// that mean (two passes over the plane, one over memory; no `E[x²] - E[x]²`
/// cancellation). The planes' `(count, mean, M2)` triples are then merged
/// in `f64` with Chan et al.'s pairwise update
/// `M2 = M2_a + M2_b + δ² · n_a n_b / (n_a + n_b)`, `δ = mean_b - mean_a`.
/// With planes of a single value (`[N, C]` inputs) that update is just
/// Welford's algorithm.
pub fn channel_stats(x: &Tensor) -> (Vec<f32>, Vec<f32>) {
    let (n, c, l) = dims(x);
    let xs = x.cpu_slice("channel_stats");
    let stats: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let (mut count, mut mean, mut m2) = (0.0f64, 0.0f64, 0.0f64);
            for b in 0..n {
                let plane = &xs[(b * c + ch) * l..(b * c + ch + 1) * l];
                let plane_mean = lane_sum(plane, |v| v) / l as f32;
                let plane_m2 = lane_sum(plane, |v| (v - plane_mean) * (v - plane_mean));
                let (nb, total) = (l as f64, count + l as f64);
                let delta = plane_mean as f64 - mean;
                mean += delta * nb / total;
                m2 += plane_m2 as f64 + delta * delta * count * nb / total;
                count = total;
            }
            (mean as f32, (m2 / count.max(1.0)) as f32)
        })
        .collect();
    stats.into_iter().unzip()
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
    // SAFETY: each plane is zipped with the input plane of the same length,
    // so every element is written.
    unsafe {
        fill_pieces(xs.len(), l, |plane, out| {
            let (s, t) = (scale[plane % c], shift[plane % c]);
            for (y, &v) in out.iter_mut().zip(&xs[plane * l..(plane + 1) * l]) {
                y.write(then(v * s + t));
            }
        })
    }
}

/// `(dx, dγ, dβ)` in two passes: per channel the sums `Σ dy` and
/// `Σ dy·(x - μ)` (channels in parallel, each plane in `LANES` partial
/// sums, planes added in `f64`), then `dx` plane by plane.
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
    let sums: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let mu = mean[ch];
            let (mut sdy, mut sdyx) = (0.0f64, 0.0f64);
            for b in 0..n {
                let at = (b * c + ch) * l;
                let (g, xp) = (&gs[at..at + l], &xs[at..at + l]);
                let (a, bsum) = lane_sums2(g, xp, |gv, _| gv, |gv, xv| gv * (xv - mu));
                sdy += a as f64;
                sdyx += bsum as f64;
            }
            (sdy as f32, (sdyx * r[ch] as f64) as f32)
        })
        .collect();
    let (dbeta, dgamma): (Vec<f32>, Vec<f32>) = sums.into_iter().unzip();
    let m = (n * l) as f32;
    // SAFETY: each plane is zipped with input planes of the same length, so
    // every element is written.
    let dx = unsafe {
        fill_pieces(xs.len(), l, |plane, out| {
            let ch = plane % c;
            let at = plane * l;
            let coeff = w[ch] * r[ch] / m;
            let (db, dg, mu, rr) = (dbeta[ch], dgamma[ch], mean[ch], r[ch]);
            for ((o, &gv), &xv) in out.iter_mut().zip(&gs[at..at + l]).zip(&xs[at..at + l]) {
                let x_hat = (xv - mu) * rr;
                o.write(coeff * (m * gv - db - x_hat * dg));
            }
        })
    };
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
