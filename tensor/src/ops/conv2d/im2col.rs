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
//!
//! **Strided layers through phase planes.** With stride `s`, output column
//! `j` of tap `b` reads input column `s·j + b - p_w`, a gather of every
//! `s`-th value: one short strided loop per output row and tap. Writing
//! `b - p_w = s·dc + pc` (with `0 ≤ pc < s`), that input column is column
//! `j + dc` of the *phase plane* `pc`, which holds the input columns
//! `pc, pc + s, pc + 2s, ...` (and likewise for rows). So the image is
//! first split once into its `s²` phase planes (for stride 2: even and odd
//! rows times even and odd columns), each the output's size when the
//! output has `⌈H/s⌉ x ⌈W/s⌉` positions, as in every strided layer of a
//! ResNet; a phase plane's positions past the image's edge are padding and
//! hold zero. Every tap's row of `col` is then a shifted copy of one phase
//! plane by `(dr, dc)`, done as on the same-size path: one long copy and a
//! few zeros. The strided reads happen once per input value instead of
//! once per tap.

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

/// For a shift by `(dr, dc)` of an `h x w` plane (`dst[q] = src[q + d]`
/// with flat indices `q = i·w + j`): the flat shift `d = dr·w + dc` and the
/// range `lo..hi` of destination indices whose `q + d` lies in the plane.
fn shift(h: usize, w: usize, dr: isize, dc: isize) -> (isize, usize, usize) {
    let hw = (h * w) as isize;
    let d = dr * w as isize + dc;
    let lo = (-d).clamp(0, hw) as usize;
    let hi = (hw - d).clamp(lo as isize, hw) as usize;
    (d, lo, hi)
}

/// The shift `(dr, dc)` of kernel tap `(a, b)` on the same-size stride-1
/// path: `(a - p_h, b - p_w)`.
fn tap_shift(g: &ConvGeometry, a: usize, b: usize) -> (isize, isize) {
    (
        a as isize - g.params.padding[0] as isize,
        b as isize - g.params.padding[1] as isize,
    )
}

/// Zeroes, in an `h x w` plane laid out row after row, the columns whose
/// source column `j + dc` is outside `0..w`.
///
/// Column by column with a stride-`w` loop: these are one or two values
/// per line, and a slice `fill` per line became a `memset` call per value.
fn zero_wrapped_columns(row: &mut [f32], w: usize, dc: isize) {
    let cols = if dc > 0 {
        w - (dc as usize).min(w)..w
    } else {
        0..(dc.unsigned_abs()).min(w)
    };
    for j in cols {
        for v in row[j..].iter_mut().step_by(w) {
            *v = 0.0;
        }
    }
}

/// `dst[i, j] = src[i + dr, j + dc]` for two `h x w` planes, zero where
/// that falls outside `src`: one long copy, then the ends and the wrapped
/// columns zeroed (see the module docs).
fn shifted_copy(src: &[f32], h: usize, w: usize, (dr, dc): (isize, isize), dst: &mut [f32]) {
    let (d, lo, hi) = shift(h, w, dr, dc);
    dst[..lo].fill(0.0);
    dst[hi..h * w].fill(0.0);
    let from = (lo as isize + d) as usize;
    dst[lo..hi].copy_from_slice(&src[from..from + (hi - lo)]);
    zero_wrapped_columns(&mut dst[..h * w], w, dc);
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
    } else if phase_planes_fit(g) {
        im2col_phases(x, g, col, ld);
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
                shifted_copy(plane, g.h, g.w, tap_shift(g, a, b), row);
            }
        }
    }
}

/// Kernel offset `t` at stride `s` and padding `p`, as a phase and a shift:
/// `t - p = s·shift + phase` with `0 ≤ phase < s`, so input index
/// `s·i + t - p` is index `i + shift` of phase plane `phase`.
fn phase_of(t: usize, s: usize, p: usize) -> (usize, isize) {
    let offset = t as isize - p as isize;
    let s = s as isize;
    (offset.rem_euclid(s) as usize, offset.div_euclid(s))
}

/// Whether the phase-plane path applies and pays (see the module docs): a
/// stride above 1, an output of `⌈H/s_h⌉ x ⌈W/s_w⌉` positions (the size of a
/// phase plane), no tap shifted a whole plane away, and a kernel at least
/// as large as the stride along each axis with more taps than phases (so
/// every phase plane is used, and some by several taps). A 1x1 stride-2
/// shortcut reads each of its values once anyway: splitting it would only
/// add a copy.
fn phase_planes_fit(g: &ConvGeometry) -> bool {
    let [sh, sw] = g.params.stride;
    let [ph, pw] = g.params.padding;
    let within = |k: usize, s: usize, p: usize, n: usize| {
        (0..k).all(|t| phase_of(t, s, p).1.unsigned_abs() < n)
    };
    (sh, sw) != (1, 1)
        && g.kh >= sh
        && g.kw >= sw
        && g.kh * g.kw > sh * sw
        && g.oh == g.h.div_ceil(sh)
        && g.ow == g.w.div_ceil(sw)
        && within(g.kh, sh, ph, g.oh)
        && within(g.kw, sw, pw, g.ow)
}

/// Splits one `H x W` plane into its `s_h·s_w` phase planes of
/// `OH x OW` values each, phase `(pr, pc)` at `(pr·s_w + pc)·OH·OW`:
/// `phases[pr, pc][i, j] = plane[s_h·i + pr, s_w·j + pc]`, zero past the
/// plane's edge.
fn split_phases(plane: &[f32], g: &ConvGeometry, phases: &mut [f32]) {
    let [sh, sw] = g.params.stride;
    let size = g.oh * g.ow;
    for pr in 0..sh {
        for pc in 0..sw {
            let out = &mut phases[(pr * sw + pc) * size..(pr * sw + pc + 1) * size];
            for (i, dst) in out.chunks_exact_mut(g.ow).enumerate() {
                let r = sh * i + pr;
                if r >= g.h {
                    dst.fill(0.0);
                    continue;
                }
                let src = &plane[r * g.w..(r + 1) * g.w];
                for (j, v) in dst.iter_mut().enumerate() {
                    *v = src.get(sw * j + pc).copied().unwrap_or(0.0);
                }
            }
        }
    }
}

/// [`im2col`] on the phase-plane path: each image channel split into its
/// phase planes once, then one shifted copy per tap.
fn im2col_phases(x: &[f32], g: &ConvGeometry, col: &mut [f32], ld: usize) {
    let [sh, sw] = g.params.stride;
    let (hw, size) = (g.h * g.w, g.oh * g.ow);
    let mut phases = vec![0.0f32; sh * sw * size];
    for c in 0..g.c {
        split_phases(&x[c * hw..(c + 1) * hw], g, &mut phases);
        for (tap, phase, shift) in phase_taps(g) {
            let row_index = c * g.kh * g.kw + tap;
            let row = &mut col[row_index * ld..row_index * ld + size];
            let phase = &phases[phase * size..(phase + 1) * size];
            shifted_copy(phase, g.oh, g.ow, shift, row);
        }
    }
}

/// Every kernel tap `a·KW + b` on the phase-plane path, with the phase
/// plane it reads (`pr·s_w + pc`) and its shift `(dr, dc)` there.
fn phase_taps(g: &ConvGeometry) -> impl Iterator<Item = (usize, usize, (isize, isize))> + '_ {
    let [sh, sw] = g.params.stride;
    let [ph, pw] = g.params.padding;
    (0..g.kh).flat_map(move |a| {
        let (pr, dr) = phase_of(a, sh, ph);
        (0..g.kw).map(move |b| {
            let (pc, dc) = phase_of(b, sw, pw);
            (a * g.kw + b, pr * sw + pc, (dr, dc))
        })
    })
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
    } else if phase_planes_fit(g) {
        col2im_phases(col, ld, g, x);
    } else {
        col2im_general(col, ld, g, x);
    }
}

/// The adjoint of [`shifted_copy`]: `dst[i + dr, j + dc] += src[i, j]`
/// for two `h x w` planes, dropping what falls outside `dst`. `src` is
/// scratch: its wrapped columns are zeroed so that the rest is one
/// contiguous add.
fn add_shifted(src: &mut [f32], h: usize, w: usize, (dr, dc): (isize, isize), dst: &mut [f32]) {
    let (d, lo, hi) = shift(h, w, dr, dc);
    zero_wrapped_columns(&mut src[..h * w], w, dc);
    let to = (lo as isize + d) as usize;
    for (out, &v) in dst[to..to + (hi - lo)].iter_mut().zip(&src[lo..hi]) {
        *out += v;
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
                add_shifted(row, g.h, g.w, tap_shift(g, a, b), plane);
            }
        }
    }
}

/// [`col2im`] on the phase-plane path: each tap's row added, shifted, onto
/// its phase plane, then the phase planes added back into the image
/// (positions of a phase plane past the image's edge are padding and are
/// dropped). Every input value belongs to one phase plane and receives its
/// contributions in the general path's order, so the result is bit for
/// bit the same.
fn col2im_phases(col: &mut [f32], ld: usize, g: &ConvGeometry, x: &mut [f32]) {
    let [sh, sw] = g.params.stride;
    let (hw, size) = (g.h * g.w, g.oh * g.ow);
    let mut phases = vec![0.0f32; sh * sw * size];
    for c in 0..g.c {
        phases.fill(0.0);
        for (tap, phase, shift) in phase_taps(g) {
            let row_index = c * g.kh * g.kw + tap;
            let row = &mut col[row_index * ld..row_index * ld + size];
            let phase = &mut phases[phase * size..(phase + 1) * size];
            add_shifted(row, g.oh, g.ow, shift, phase);
        }
        merge_phases(&phases, g, &mut x[c * hw..(c + 1) * hw]);
    }
}

/// The adjoint of [`split_phases`]: adds each phase plane's values back
/// onto the input positions they stand for, `plane[s_h·i + pr, s_w·j + pc]
/// += phases[pr, pc][i, j]`, skipping positions past the plane's edge.
fn merge_phases(phases: &[f32], g: &ConvGeometry, plane: &mut [f32]) {
    let [sh, sw] = g.params.stride;
    let size = g.oh * g.ow;
    for pr in 0..sh {
        for pc in 0..sw {
            let phase = &phases[(pr * sw + pc) * size..(pr * sw + pc + 1) * size];
            for (i, src) in phase.chunks_exact(g.ow).enumerate() {
                let r = sh * i + pr;
                if r >= g.h {
                    break;
                }
                let dst = &mut plane[r * g.w..(r + 1) * g.w];
                for (j, &v) in src.iter().enumerate() {
                    if let Some(out) = dst.get_mut(sw * j + pc) {
                        *out += v;
                    }
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

    /// The phase-plane path against the general one, both ways, bit for
    /// bit: the
    /// strided 3x3 layers of a ResNet on even and odd planes, a 7x7
    /// stride-2 stem, stride 3, and a stride along one axis only; rows
    /// packed tight and with a gap.
    #[test]
    fn phase_plane_path_matches_the_general_path() {
        let cases = [
            ([2, 3, 28, 28], [4, 3, 3, 3], [2, 2], [1, 1]),
            ([1, 2, 7, 7], [3, 2, 3, 3], [2, 2], [1, 1]),
            ([1, 2, 4, 4], [3, 2, 3, 3], [2, 2], [1, 1]),
            ([1, 2, 11, 13], [2, 2, 7, 7], [2, 2], [3, 3]),
            ([1, 2, 9, 9], [2, 2, 5, 5], [3, 3], [2, 2]),
            ([1, 2, 6, 5], [2, 2, 3, 3], [2, 1], [1, 1]),
        ];
        for (x_shape, w_shape, stride, padding) in cases {
            let params = Conv2dParams { stride, padding };
            let g = ConvGeometry::new(&x_shape, &w_shape, params, "test");
            assert!(phase_planes_fit(&g), "{x_shape:?} {w_shape:?} {params:?}");
            let x = seq(g.c * g.h * g.w);
            for ld in [g.positions(), g.positions() + 3] {
                let len = (g.col_rows() - 1) * ld + g.positions();
                let (mut fast, mut general) = (vec![-7.0; len], vec![-7.0; len]);
                im2col_phases(&x, &g, &mut fast, ld);
                im2col_general(&x, &g, &mut general, ld);
                assert_eq!(
                    fast, general,
                    "im2col {x_shape:?} {w_shape:?} {params:?} ld {ld}"
                );

                let mut col = seq(len);
                let image = g.c * g.h * g.w;
                let (mut fast, mut general) = (vec![0.0; image], vec![0.0; image]);
                col2im_general(&col, ld, &g, &mut general);
                col2im_phases(&mut col, ld, &g, &mut fast);
                assert_eq!(
                    fast, general,
                    "col2im {x_shape:?} {w_shape:?} {params:?} ld {ld}"
                );
            }
        }
        // The general path: an output smaller than the phase planes, a 1x1
        // stride-2 shortcut and a 3x3 stride-3 kernel (a tap per phase).
        for (w_shape, stride, pad) in [
            ([1, 1, 3, 3], 2, 0),
            ([1, 1, 1, 1], 2, 0),
            ([1, 1, 3, 3], 3, 1),
        ] {
            let params = Conv2dParams::new(stride, pad);
            let g = ConvGeometry::new(&[1, 1, 7, 7], &w_shape, params, "test");
            assert!(!phase_planes_fit(&g), "{w_shape:?} {params:?}");
        }
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
