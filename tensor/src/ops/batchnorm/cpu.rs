//! CPU batch-norm kernels. A tensor `[N, C, rest..]` is a run of N·C
//! contiguous planes of `L = Π rest` values; channel `c` owns planes
//! `c, C + c, 2C + c, ...`.

use crate::Tensor;
use rayon::prelude::*;

/// `(N, C, L)`: the batch, channel and plane sizes of `x`.
fn dims(x: &Tensor) -> (usize, usize, usize) {
    let s = x.shape();
    (s[0], s[1], s[2..].iter().product())
}

/// Per-channel mean and biased variance, accumulated in `f64` (two passes:
/// the mean, then the squared deviations, which avoids the cancellation of
/// `E[x²] - E[x]²`).
pub fn channel_stats(x: &Tensor) -> (Vec<f32>, Vec<f32>) {
    let (n, c, l) = dims(x);
    let xs = x.cpu_slice("channel_stats");
    let m = (n * l) as f64;
    let stats: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let planes = || (0..n).map(move |b| &xs[(b * c + ch) * l..(b * c + ch + 1) * l]);
            let mean = planes()
                .flat_map(|p| p.iter())
                .map(|&v| v as f64)
                .sum::<f64>()
                / m;
            let var = planes()
                .flat_map(|p| p.iter())
                .map(|&v| (v as f64 - mean) * (v as f64 - mean))
                .sum::<f64>()
                / m;
            (mean as f32, var as f32)
        })
        .collect();
    stats.into_iter().unzip()
}

/// `y = x · scale[c] + shift[c]` with `scale = w / sqrt(var + eps)` and
/// `shift = b - mean · scale`.
pub fn normalize(
    x: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    w: &Tensor,
    b: &Tensor,
    eps: f32,
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
    let mut out = vec![0.0f32; xs.len()];
    if out.is_empty() || l == 0 {
        return out;
    }
    out.par_chunks_mut(l)
        .zip(xs.par_chunks(l))
        .enumerate()
        .for_each(|(plane, (o, xp))| {
            let ch = plane % c;
            let (s, t) = (scale[ch], shift[ch]);
            for (y, &v) in o.iter_mut().zip(xp) {
                *y = v * s + t;
            }
        });
    out
}

/// `(dx, dγ, dβ)` in two passes: per channel the sums `Σ dy` and
/// `Σ dy·x̂` (channels in parallel), then `dx` plane by plane.
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
            let (mut sdy, mut sdyx) = (0.0f64, 0.0f64);
            for b in 0..n {
                let at = (b * c + ch) * l;
                let (g, xp) = (&gs[at..at + l], &xs[at..at + l]);
                let (mut a, mut bsum) = (0.0f32, 0.0f32);
                for (&gv, &xv) in g.iter().zip(xp) {
                    a += gv;
                    bsum += gv * (xv - mean[ch]);
                }
                sdy += a as f64;
                sdyx += bsum as f64;
            }
            (sdy as f32, (sdyx * r[ch] as f64) as f32)
        })
        .collect();
    let (dbeta, dgamma): (Vec<f32>, Vec<f32>) = sums.into_iter().unzip();
    let m = (n * l) as f32;
    let mut dx = vec![0.0f32; xs.len()];
    if l > 0 {
        dx.par_chunks_mut(l).enumerate().for_each(|(plane, out)| {
            let ch = plane % c;
            let at = plane * l;
            let coeff = w[ch] * r[ch] / m;
            let (db, dg, mu, rr) = (dbeta[ch], dgamma[ch], mean[ch], r[ch]);
            for ((o, &gv), &xv) in out.iter_mut().zip(&gs[at..at + l]).zip(&xs[at..at + l]) {
                let x_hat = (xv - mu) * rr;
                *o = coeff * (m * gv - db - x_hat * dg);
            }
        });
    }
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

    #[test]
    #[should_panic(expected = "normalize_scale_shift: bias has shape [2], input [4, 3] needs [3]")]
    fn wrong_parameter_shape_panics() {
        let d = Device::Cpu;
        let x = Tensor::zeros(&[4, 3], &d);
        let c = Tensor::zeros(&[3], &d);
        x.normalize_scale_shift(&c, &c, &c, &Tensor::zeros(&[2], &d), 1e-5);
    }
}
