//! The weight gradient of a stride-1 layer read straight from the padded
//! image: dot products of rows over the padded width, no column matrix.
//!
//! **The sum.** With `x̃` the zero-padded input (rows of `W̃ = W + 2p_w`
//! values, planes of `(H + 2p_h)·W̃`),
//!
//! ```text
//! dWᵀ[(c, a, b), o] = Σ_n Σ_{i < OH, j < OW}  x̃_n[c, i + a, j + b] · dy_n[o, i, j]
//! ```
//!
//! **Positions along the padded rows.** Number the positions `t = i·W̃ + j`
//! with `j` running over the whole padded width, and widen `dy` to that
//! numbering with zeros in the columns `j ≥ OW` (`dỹ[o, t]`, `OH·W̃`
//! values per channel). Then the values tap `(c, a, b)` meets at the
//! positions, in order, are one contiguous run of the padded image,
//!
//! ```text
//! x̃[c·plane + a·W̃ + b + t],   t < OH·W̃
//! ```
//!
//! (the extra columns read the padding or the next row, and meet the zeros
//! of `dỹ`; an infinite input value met there gives `0·∞ = NaN` where the
//! defining sum would give `±∞`, a gradient lost either way). So one image adds the dot products of `C·KH·KW` rows of taps
//! (overlapping windows of the padded image, found by offset) with the `O`
//! rows of `dỹ`: the [`row_dots`](super::super::row_dots) kernels, on rows
//! of `OH·W̃` values. The im2col path writes the column matrix for this,
//! `KH·KW` times the image (451 KB per image on a 16-channel 28x28 layer),
//! and reads it back; here only the image (padded) and `dy` (widened) are
//! copied, at the price of the extra columns (28 -> 30 positions a row on
//! that layer).
//!
//! **Order.** Each thread sums its run of the batch image by image into its
//! own `[C·KH·KW, O]` accumulator; the runs' sums are added in order of the
//! run. Within an image the row dots' order holds (16 lane sums over `t`,
//! folded by [`fold16`](super::super::row_dots::fold16)).

use super::super::cpu::from_transposed;
use super::super::row_dots::{self, Rows};
use super::super::ConvGeometry;
use super::Plan;
use crate::backend::cpu::simd::{self, Isa};
use rayon::prelude::*;

/// Whether [`weight_gradient`] computes the weight gradient of `g`: the
/// CPU runs AVX2 and FMA or AVX-512 (at the `BYOL_CPU_SIMD` level), the
/// layer has stride 1.
pub fn weight_gradient_applies(g: &ConvGeometry) -> bool {
    cfg!(target_arch = "x86_64")
        && simd::active() >= Isa::Avx2
        && g.params.stride == [1, 1]
        && g.o > 0
        && g.c > 0
}

/// Whether [`super::super::CpuConv::for_weight_gradient`] takes it where
/// it [`weight_gradient_applies`]: with AVX-512, on layers of at most 16
/// output channels (where the row dots replace the GEMM on the im2col path
/// too) with a kernel wider than 1x1 (a 1x1 layer without padding has no
/// column matrix to save). From `conv_layers --width 16` (AMD EPYC Zen 5,
/// batch 256, 2 threads, fastest call): the 16-channel 28x28 layer, 3.18
/// ms on im2col and row dots, 2.41 here. With the AVX2 kernels
/// (`BYOL_CPU_SIMD=avx2` on that machine) it was the other way, 4.97
/// against 5.16, so an AVX2-only CPU keeps the im2col path (its `dw dir`
/// column of `conv_layers` says whether that holds there); on the
/// 32-channel 14x14 layer the GEMM on im2col is faster (2.33 against 3.11).
pub fn weight_gradient_pays(g: &ConvGeometry) -> bool {
    simd::active() >= Isa::Avx512 && g.o <= 16 && (g.kh > 1 || g.kw > 1)
}

/// The weight gradient of the stride-1 layer `g` (`[O, C, KH, KW]`) from
/// `dys` (`[N, O, OH, OW]`) and `xs` (`[N, C, H, W]`). Panics unless
/// [`weight_gradient_applies`].
pub fn weight_gradient(dys: &[f32], xs: &[f32], g: &ConvGeometry) -> Vec<f32> {
    assert!(
        weight_gradient_applies(g),
        "direct weight gradient: does not apply to {g:?}"
    );
    let p = Plan::new(g);
    let k = p.c * p.kh * p.kw;
    // Row (c, a, b) of the taps: its window's start in the padded image.
    let mut offsets = Vec::with_capacity(k);
    for c in 0..p.c {
        for a in 0..p.kh {
            for b in 0..p.kw {
                offsets.push(c * p.plane() + a * p.wp() + b);
            }
        }
    }
    let (image, per_image, len) = (p.c * p.h * p.w, p.o * p.oh * p.ow, p.oh * p.wp());
    let threads = rayon::current_num_threads();
    let per = g.n.div_ceil(threads).max(1);
    let partials: Vec<Vec<f32>> = (0..g.n.div_ceil(per))
        .into_par_iter()
        .map(|r| {
            let mut acc = vec![0.0f32; k * p.o];
            let mut padded = vec![0.0f32; p.padded_len()];
            let mut widened = vec![0.0f32; p.o * len];
            for i in r * per..((r + 1) * per).min(g.n) {
                p.pad(&xs[i * image..][..image], &mut padded);
                widen(&dys[i * per_image..][..per_image], &p, &mut widened);
                let taps = Rows::at(&padded, &offsets);
                let dy = Rows::strided(&widened, p.o, len);
                row_dots::add_row_dots(taps, dy, len, &mut acc, p.o);
            }
            acc
        })
        .collect();
    let mut dwt = vec![0.0f32; k * p.o];
    for part in &partials {
        dwt.iter_mut().zip(part).for_each(|(s, v)| *s += v);
    }
    from_transposed(&dwt, p.o, p.o, k)
}

/// `dy` (`[O, OH, OW]`) into `widened` (`[O, OH·W̃]`), row `i` of channel
/// `o` at `o·OH·W̃ + i·W̃`; the columns from `OW` on stay as they are (zero).
fn widen(dy: &[f32], p: &Plan, widened: &mut [f32]) {
    let wp = p.wp();
    for (o, plane) in dy.chunks_exact(p.oh * p.ow).enumerate() {
        for (i, row) in plane.chunks_exact(p.ow).enumerate() {
            widened[(o * p.oh + i) * wp..][..p.ow].copy_from_slice(row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::simd::forced;
    use crate::ops::conv2d::cpu::tests::reference as defining_sum;
    use crate::ops::conv2d::Conv2dParams;
    use crate::{Device, Tensor};

    fn values(n: usize, seed: u64) -> Vec<f32> {
        Tensor::randn(&[n], 0.0, 1.0, seed, &Device::Cpu).to_vec()
    }

    /// Against the defining sum (in `f64`) on shapes with padding 0, 1 and
    /// 2, a 5x5 and a 1x1 kernel, a 3x1 one, output channels that are not
    /// a multiple of the row-dot blocks, rows of positions shorter than a
    /// vector, and more images than threads.
    #[test]
    fn matches_the_defining_sum_at_every_kernel_level() {
        let shapes: [(usize, usize, usize, usize, [usize; 2], usize); 7] = [
            (5, 16, 28, 16, [3, 3], 1),
            (3, 3, 14, 32, [3, 3], 1),
            (2, 1, 9, 16, [3, 3], 1),
            (2, 4, 9, 7, [3, 3], 0),
            (2, 2, 11, 5, [5, 5], 2),
            (3, 6, 6, 16, [1, 1], 0),
            (2, 3, 7, 9, [3, 1], 1),
        ];
        let runs = forced::at_every_level(|| {
            if simd::active() < Isa::Avx2 {
                return None;
            }
            for (n, c, hw, o, [kh, kw], pad) in shapes {
                let g = ConvGeometry::new(
                    &[n, c, hw, hw],
                    &[o, c, kh, kw],
                    Conv2dParams::new(1, pad),
                    "t",
                );
                let x = values(n * c * hw * hw, 1);
                let w = values(o * c * kh * kw, 2);
                let dy = values(n * o * g.oh * g.ow, 3);
                let got = weight_gradient(&dy, &x, &g);
                let (_, _, want) = defining_sum(&x, &w, &dy, &g);
                let terms = (n * g.oh * g.ow) as f32;
                for (a, b) in got.iter().zip(&want) {
                    assert!(
                        (a - b).abs() <= 1e-6 * terms.sqrt() * (1.0 + b.abs()) * 4.0,
                        "{g:?}: {a} vs {b}"
                    );
                }
            }
            Some(())
        });
        let ran = runs.iter().filter(|(_, r)| r.is_some()).count();
        let has = [Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|l| l.supported())
            .count();
        assert_eq!(ran, has, "every kernel level this CPU has ran");
    }

    /// A value in the columns past the row's end (a large one, where the
    /// zeros of the widened `dy` must cancel it) leaves the gradient as
    /// the defining sum has it.
    #[test]
    fn the_extra_columns_meet_zeros() {
        if !Isa::Avx2.supported() {
            eprintln!("skipped: this CPU lacks AVX2");
            return;
        }
        // No padding: the extra columns of row i read row i + 1's start.
        let g = ConvGeometry::new(&[1, 1, 6, 6], &[16, 1, 3, 3], Conv2dParams::new(1, 0), "t");
        let mut x = vec![0.0f32; 36];
        x[6] = 1e6; // row 1, column 0: read by the extra columns of row 0
        x[20] = 1.0;
        let dy = values(16 * g.oh * g.ow, 4);
        let got = forced::at_every_level(|| {
            (simd::active() >= Isa::Avx2).then(|| weight_gradient(&dy, &x, &g))
        });
        let (_, _, want) = defining_sum(&x, &vec![0.0; 16 * 9], &dy, &g);
        for (_, got) in got {
            if let Some(got) = got {
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{a} vs {b}");
                }
            }
        }
    }
}
