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
//!
//! **Same-size stride-1 fast path.** Every 3x3 convolution of a ResNet
//! block but the first of a stage has stride 1 and padding 1, so the output
//! plane has the input's size. Then one row of `col` is the whole input
//! plane shifted by `d = (a - p_h)·W + (b - p_w)` elements:
//! `col[q] = x[q + d]`, flat index `q = i·W + j`. That is one long copy
//! instead of one short copy per output row (rows of 4 to 28 values in a
//! 28x28 ResNet, where the call overhead outweighed the copying), followed
//! by zeroing the positions whose source fell outside the image: the ends
//! of the plane, and the `|b - p_w|` columns at one side of each row, whose
//! shifted index wrapped into the neighbouring row.

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

/// Whether the same-size stride-1 fast path applies (see the module docs):
/// stride 1, output plane as large as the input, and padding smaller than
/// the plane so every shift leaves some overlap.
fn same_size_stride1(g: &ConvGeometry) -> bool {
    g.params.stride == [1, 1]
        && g.oh == g.h
        && g.ow == g.w
        && g.params.padding[0] < g.h
        && g.params.padding[1] < g.w
}

/// For kernel tap `(a, b)` on the same-size stride-1 path: the flat shift
/// `d`, the range `lo..hi` of flat output indices `q` whose `q + d` lies in
/// the plane, and the column shift `dc = b - p_w`.
fn shift(g: &ConvGeometry, a: usize, b: usize) -> (isize, usize, usize, isize) {
    let hw = (g.h * g.w) as isize;
    let dr = a as isize - g.params.padding[0] as isize;
    let dc = b as isize - g.params.padding[1] as isize;
    let d = dr * g.w as isize + dc;
    let lo = (-d).clamp(0, hw) as usize;
    let hi = (hw - d).clamp(lo as isize, hw) as usize;
    (d, lo, hi, dc)
}

/// Zeroes, in one row of `col` laid out as the `H x W` output plane, the
/// columns whose source column `j + dc` is outside `0..W`.
///
/// Column by column with a stride-`W` loop: these are one or two values
/// per line, and a slice `fill` per line became a `memset` call per value.
fn zero_wrapped_columns(row: &mut [f32], g: &ConvGeometry, dc: isize) {
    let w = g.w;
    let cols = if dc > 0 {
        w - dc as usize..w
    } else {
        0..(-dc) as usize
    };
    for j in cols {
        for v in row[j..].iter_mut().step_by(w) {
            *v = 0.0;
        }
    }
}

/// Fills `col` (`[C·KH·KW, OH·OW]`, rows `ld` elements apart) from one
/// image `x` (`[C, H, W]`).
///
/// `ld ≥ OH·OW` lets several images share one column matrix side by side
/// (`[C·KH·KW, G·OH·OW]`, image `g` starting at column `g·OH·OW`), so that
/// one GEMM covers a group of images.
pub fn im2col(x: &[f32], g: &ConvGeometry, col: &mut [f32], ld: usize) {
    if same_size_stride1(g) {
        im2col_same_size(x, g, col, ld);
    } else {
        im2col_general(x, g, col, ld);
    }
}

/// [`im2col`] on the same-size stride-1 path: a shifted copy per row.
fn im2col_same_size(x: &[f32], g: &ConvGeometry, col: &mut [f32], ld: usize) {
    let hw = g.h * g.w;
    for c in 0..g.c {
        let plane = &x[c * hw..(c + 1) * hw];
        for a in 0..g.kh {
            for b in 0..g.kw {
                let row_index = (c * g.kh + a) * g.kw + b;
                let row = &mut col[row_index * ld..row_index * ld + hw];
                let (d, lo, hi, dc) = shift(g, a, b);
                row[..lo].fill(0.0);
                row[hi..].fill(0.0);
                let from = (lo as isize + d) as usize;
                row[lo..hi].copy_from_slice(&plane[from..from + (hi - lo)]);
                zero_wrapped_columns(row, g, dc);
            }
        }
    }
}

/// [`im2col`] for any geometry: one slice per output row.
fn im2col_general(x: &[f32], g: &ConvGeometry, col: &mut [f32], ld: usize) {
    let (s, p) = (g.params.stride[1], g.params.padding[1]);
    let positions = g.positions();
    for c in 0..g.c {
        let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for a in 0..g.kh {
            for b in 0..g.kw {
                let row_index = (c * g.kh + a) * g.kw + b;
                let row = &mut col[row_index * ld..row_index * ld + positions];
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

/// Adds every element of `col` (`[C·KH·KW, OH·OW]`, rows `ld` elements
/// apart, as in [`im2col`]) onto the input position it was gathered from,
/// in `x` (`[C, H, W]`), which the caller zeroes.
///
/// `col` is scratch: the same-size path zeroes its entries that map
/// outside the image, so that each row is then added to the plane in one
/// contiguous, vectorised loop. Each input element still receives its
/// contributions in the same order, so the result is bit-identical to the
/// general path's.
pub fn col2im(col: &mut [f32], ld: usize, g: &ConvGeometry, x: &mut [f32]) {
    if same_size_stride1(g) {
        col2im_same_size(col, ld, g, x);
    } else {
        col2im_general(col, ld, g, x);
    }
}

/// [`col2im`] on the same-size stride-1 path: one shifted add per row.
fn col2im_same_size(col: &mut [f32], ld: usize, g: &ConvGeometry, x: &mut [f32]) {
    let hw = g.h * g.w;
    for c in 0..g.c {
        let plane = &mut x[c * hw..(c + 1) * hw];
        for a in 0..g.kh {
            for b in 0..g.kw {
                let row_index = (c * g.kh + a) * g.kw + b;
                let row = &mut col[row_index * ld..row_index * ld + hw];
                let (d, lo, hi, dc) = shift(g, a, b);
                zero_wrapped_columns(row, g, dc);
                let to = (lo as isize + d) as usize;
                for (dst, &v) in plane[to..to + (hi - lo)].iter_mut().zip(&row[lo..hi]) {
                    *dst += v;
                }
            }
        }
    }
}

/// [`col2im`] for any geometry: one slice per output row.
fn col2im_general(col: &[f32], ld: usize, g: &ConvGeometry, x: &mut [f32]) {
    let (s, p) = (g.params.stride[1], g.params.padding[1]);
    let positions = g.positions();
    for c in 0..g.c {
        let plane = &mut x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for a in 0..g.kh {
            for b in 0..g.kw {
                let row_index = (c * g.kh + a) * g.kw + b;
                let row = &col[row_index * ld..row_index * ld + positions];
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::conv2d::Conv2dParams;

    fn seq(len: usize) -> Vec<f32> {
        (0..len).map(|i| ((i * 7919) % 101) as f32 - 50.0).collect()
    }

    /// The same-size fast path against the general one, which the
    /// convolution tests check against the defining sum: equal bit for bit,
    /// both ways, on square and non-square planes and wide padding.
    #[test]
    fn same_size_path_matches_the_general_path() {
        let cases = [
            ([2, 3, 5, 5], [4, 3, 3, 3], 1),
            ([1, 2, 4, 7], [3, 2, 3, 3], 1),
            ([1, 2, 6, 5], [2, 2, 5, 5], 2),
            ([1, 1, 2, 2], [1, 1, 3, 3], 1),
            ([1, 2, 4, 4], [1, 2, 1, 1], 0),
        ];
        for (x_shape, w_shape, pad) in cases {
            let g = ConvGeometry::new(&x_shape, &w_shape, Conv2dParams::new(1, pad), "test");
            assert!(same_size_stride1(&g), "{x_shape:?} {w_shape:?}");
            let image = g.c * g.h * g.w;
            let x = seq(image);
            // Rows packed tight, and rows with a gap (a group's matrix).
            for ld in [g.positions(), g.positions() + 3] {
                let len = (g.col_rows() - 1) * ld + g.positions();
                let (mut fast, mut general) = (vec![-7.0; len], vec![-7.0; len]);
                im2col_same_size(&x, &g, &mut fast, ld);
                im2col_general(&x, &g, &mut general, ld);
                assert_eq!(fast, general, "im2col {x_shape:?} {w_shape:?} ld {ld}");

                let mut col = seq(len);
                let (mut fast, mut general) = (vec![0.0; image], vec![0.0; image]);
                col2im_general(&col, ld, &g, &mut general);
                col2im_same_size(&mut col, ld, &g, &mut fast);
                assert_eq!(fast, general, "col2im {x_shape:?} {w_shape:?} ld {ld}");
            }
        }
    }
}
