//! `im2col` and its adjoint `col2im`, for one image.
//!
//! `col[(c·KH + a)·KW + b, i·OW + j] = x[c, i·s_h + a - p_h, j·s_w + b - p_w]`
//! (zero where that falls in the padding). `col2im` adds every element of a
//! column matrix back onto the input position it was read from, which is
//! exactly the transpose of `im2col` as a linear map: that is why it computes
//! the input gradient.
//!
//! Both walk one (channel, kernel row, kernel column) triple at a time; for
//! each output row they find the range of output columns whose input
//! position is inside the image, so the inner loop has no bounds tests (and
//! with stride 1 it is a plain slice copy).

use super::ConvGeometry;

/// The output columns `lo..hi` whose input column `j·s + b - p` lies in
/// `0..w`.
fn valid_cols(g: &ConvGeometry, b: usize) -> (usize, usize) {
    let (s, p) = (g.params.stride[1], g.params.padding[1]);
    let lo = if b >= p { 0 } else { (p - b).div_ceil(s) };
    let hi = if g.w + p > b {
        ((g.w + p - b - 1) / s + 1).min(g.ow)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// The input row read by output row `i` at kernel row `a`, if inside.
fn input_row(g: &ConvGeometry, i: usize, a: usize) -> Option<usize> {
    let r = (i * g.params.stride[0] + a) as isize - g.params.padding[0] as isize;
    (r >= 0 && (r as usize) < g.h).then_some(r as usize)
}

/// Fills `col` (`[C·KH·KW, OH·OW]`) from one image `x` (`[C, H, W]`).
pub fn im2col(x: &[f32], g: &ConvGeometry, col: &mut [f32]) {
    let (s, p) = (g.params.stride[1], g.params.padding[1]);
    let positions = g.positions();
    for c in 0..g.c {
        let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for a in 0..g.kh {
            for b in 0..g.kw {
                let row_index = (c * g.kh + a) * g.kw + b;
                let row = &mut col[row_index * positions..(row_index + 1) * positions];
                let (lo, hi) = valid_cols(g, b);
                for i in 0..g.oh {
                    let dst = &mut row[i * g.ow..(i + 1) * g.ow];
                    let Some(r) = input_row(g, i, a) else {
                        dst.fill(0.0);
                        continue;
                    };
                    let src = &plane[r * g.w..(r + 1) * g.w];
                    dst[..lo].fill(0.0);
                    dst[hi..].fill(0.0);
                    if s == 1 {
                        dst[lo..hi].copy_from_slice(&src[lo + b - p..hi + b - p]);
                    } else {
                        for j in lo..hi {
                            dst[j] = src[j * s + b - p];
                        }
                    }
                }
            }
        }
    }
}

/// Adds every element of `col` (`[C·KH·KW, OH·OW]`) onto the input position
/// it was gathered from, in `x` (`[C, H, W]`), which the caller zeroes.
pub fn col2im(col: &[f32], g: &ConvGeometry, x: &mut [f32]) {
    let (s, p) = (g.params.stride[1], g.params.padding[1]);
    let positions = g.positions();
    for c in 0..g.c {
        let plane = &mut x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for a in 0..g.kh {
            for b in 0..g.kw {
                let row_index = (c * g.kh + a) * g.kw + b;
                let row = &col[row_index * positions..(row_index + 1) * positions];
                let (lo, hi) = valid_cols(g, b);
                for i in 0..g.oh {
                    let Some(r) = input_row(g, i, a) else {
                        continue;
                    };
                    let src = &row[i * g.ow..(i + 1) * g.ow];
                    let dst = &mut plane[r * g.w..(r + 1) * g.w];
                    if s == 1 {
                        for (d, &v) in dst[lo + b - p..hi + b - p].iter_mut().zip(&src[lo..hi]) {
                            *d += v;
                        }
                    } else {
                        for j in lo..hi {
                            dst[j * s + b - p] += src[j];
                        }
                    }
                }
            }
        }
    }
}
