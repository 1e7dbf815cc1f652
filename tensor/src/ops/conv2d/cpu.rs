//! CPU convolution: im2col into a per-thread scratch buffer, then GEMMs.
//!
//! Parallelism: with at least as many images as threads, each thread takes
//! a contiguous run of images and runs single-threaded GEMMs (no
//! synchronisation inside a product). With fewer images, images run one
//! after another and each GEMM uses every thread.
//!
//! **Image groups.** The GEMM's kernels fill tiles 64 values long along the
//! output's contiguous axis, which for an NCHW output is one image's
//! `OH·OW` positions. Deep layers have few positions (7x7 = 49 and
//! 4x4 = 16 for 28x28 inputs), so most of each tile stayed empty and the
//! products ran the narrow edge kernels at about half speed. When an image
//! has fewer than [`GROUP_POSITIONS`] positions, a group of `G` images goes
//! through one product instead: their column matrices side by side,
//! `[C·KH·KW, G·OH·OW]`, giving `[O, G·OH·OW]`, which is then copied out
//! image by image (for the input gradient, `dY` is first gathered into that
//! layout).

use super::direct;
use super::im2col::{col2im, im2col};
use super::packed;
use super::row_dots::{self, Rows};
use super::winograd::Winograd;
use super::{ConvGeometry, CpuConv};
use crate::backend::cpu::gemm::{matmul_into, MatRef};
use crate::backend::cpu::zeroed_pieces_with;
use crate::Tensor;
use rayon::prelude::*;

/// Images with fewer output positions than this are batched into groups
/// whose positions together reach it (see the module docs).
const GROUP_POSITIONS: usize = 256;

/// Whether to spread the images of a batch over threads (else the GEMM of
/// each image uses all threads).
fn per_image_threads(g: &ConvGeometry) -> bool {
    g.n >= rayon::current_num_threads()
}

/// How many images share one product (1: each image alone).
fn group_size(g: &ConvGeometry) -> usize {
    let p = g.positions();
    if g.is_pointwise() || p == 0 || p >= GROUP_POSITIONS {
        1
    } else {
        GROUP_POSITIONS.div_ceil(p)
    }
}

/// Scratch a thread needs for one group: the column matrix, plus for
/// groups of several images the `[O, G·OH·OW]` staging matrix.
fn scratch_len(g: &ConvGeometry) -> usize {
    let group = group_size(g);
    let cols = if g.is_pointwise() {
        0
    } else {
        g.col_rows() * group * g.positions()
    };
    let staging = if group > 1 {
        g.o * group * g.positions()
    } else {
        0
    };
    cols + staging
}

/// The column matrices of images `first..first + count` of `xs` side by
/// side in `cols` (`[C·KH·KW, count·OH·OW]`, row length `count·OH·OW`).
fn im2col_group(xs: &[f32], first: usize, count: usize, g: &ConvGeometry, cols: &mut [f32]) {
    let (p, image) = (g.positions(), g.c * g.h * g.w);
    for j in 0..count {
        let xi = &xs[(first + j) * image..(first + j + 1) * image];
        im2col(xi, g, &mut cols[j * p..], count * p);
    }
}

/// A group's `dY` (`[count, O, OH·OW]`) laid out as the product's
/// `[O, count·OH·OW]`: `staging[o, j·P + q] = dy[j, o, q]`.
fn gather_group(dys: &[f32], g: &ConvGeometry, staging: &mut [f32]) {
    let p = g.positions();
    let width = dys.len() / g.o;
    for (j, dyj) in dys.chunks_exact(g.o * p).enumerate() {
        for (o, row) in dyj.chunks_exact(p).enumerate() {
            staging[o * width + j * p..o * width + (j + 1) * p].copy_from_slice(row);
        }
    }
}

/// A new `[N, per_image]` buffer, zeroed, filled by
/// `f(first_image, out_chunk, scratch, parallel_gemm)` for every group of
/// `group` images, each thread with `scratch` values of scratch, where
/// `out_chunk` is the part of the buffer that belongs to the group's images
/// (the last group of a thread's run may be short).
///
/// The batch is split into one contiguous run of images per thread, each
/// with a single scratch buffer. (Letting rayon split the batch adaptively
/// would allocate a fresh multi-megabyte scratch for every piece, and the
/// page faults of those allocations cost more than the arithmetic.) Each
/// thread zeroes its own run ([`zeroed_pieces_with`]): `col2im` adds onto
/// the zeros, and no thread waits while the calling one clears the whole
/// buffer.
fn for_each_group(
    g: &ConvGeometry,
    per_image: usize,
    (group, scratch): (usize, usize),
    f: impl Fn(usize, &mut [f32], &mut [f32], bool) + Sync + Send,
) -> Vec<f32> {
    let len = g.n * per_image;
    if len == 0 {
        return Vec::new();
    }
    if per_image_threads(g) {
        let per = g.n.div_ceil(rayon::current_num_threads());
        zeroed_pieces_with(
            len,
            per_image * per,
            || (),
            |_, t, run| {
                let mut buf = vec![0.0f32; scratch];
                for (j, o) in run.chunks_mut(per_image * group).enumerate() {
                    f(t * per + j * group, o, &mut buf, false);
                }
            },
        )
    } else {
        // Zeroed by writing, not `vec![0.0; len]`: that is `calloc`, whose
        // fresh pages, unwritten, col2im's first `+=` would read and then
        // write, faulting each page twice.
        let mut out = Vec::with_capacity(len);
        out.resize(len, 0.0f32);
        let mut buf = vec![0.0f32; scratch];
        for (j, o) in out.chunks_mut(per_image * group).enumerate() {
            f(j * group, o, &mut buf, true);
        }
        out
    }
}

/// `y_n = W · im2col(x_n)` for every image (a group's images in one
/// product), or Winograd's `Aᵀ[U ⊙ V]A`, or the packed implicit GEMM, where
/// `algorithm` says so.
pub fn forward(x: &Tensor, w: &Tensor, g: &ConvGeometry, algorithm: CpuConv) -> Vec<f32> {
    let (xs, ws) = (x.cpu_slice("conv2d"), w.cpu_slice("conv2d"));
    if algorithm == CpuConv::Packed {
        return packed::forward(xs, ws, g);
    }
    if algorithm == CpuConv::Winograd4 {
        return packed::winograd::forward(xs, ws, g);
    }
    if algorithm == CpuConv::Direct {
        return direct::forward(xs, ws, g);
    }
    let (k, p) = (g.col_rows(), g.positions());
    let image = g.c * g.h * g.w;
    let group = group_size(g);
    if algorithm == CpuConv::Winograd {
        let wg = Winograd::forward(g, ws);
        let sizes = (wg.group_size(), wg.scratch_len());
        return for_each_group(g, g.o * p, sizes, |first, y, scratch, parallel| {
            let count = y.len() / (g.o * p);
            let xg = &xs[first * image..(first + count) * image];
            wg.run_group(xg, y, scratch, parallel);
        });
    }
    let wm = MatRef::row_major(ws, k);
    let sizes = (group, scratch_len(g));
    for_each_group(g, g.o * p, sizes, |first, y, scratch, parallel| {
        if group == 1 {
            let xi = &xs[first * image..(first + 1) * image];
            let cols: &[f32] = if g.is_pointwise() {
                xi
            } else {
                im2col(xi, g, scratch, p);
                scratch
            };
            matmul_into(
                g.o,
                p,
                k,
                wm,
                MatRef::row_major(cols, p),
                y,
                false,
                parallel,
            );
            return;
        }
        let count = y.len() / (g.o * p);
        let width = count * p;
        let (cols, staging) = scratch.split_at_mut(k * group * p);
        let (cols, staging) = (&mut cols[..k * width], &mut staging[..g.o * width]);
        im2col_group(xs, first, count, g, cols);
        let cm = MatRef::row_major(cols, width);
        matmul_into(g.o, width, k, wm, cm, staging, false, parallel);
        // staging[o, j·P + q] -> y[j, o, q]
        for (j, yj) in y.chunks_exact_mut(g.o * p).enumerate() {
            for (o, row) in yj.chunks_exact_mut(p).enumerate() {
                row.copy_from_slice(&staging[o * width + j * p..o * width + (j + 1) * p]);
            }
        }
    })
}

/// `dx_n = col2im(Wᵀ · dy_n)` for every image (a group's images in one
/// product), or with Winograd where `algorithm` says so, or (packed, stride
/// 1) as the forward convolution of `dy` with the turned kernel.
pub fn backward_input(gy: &Tensor, w: &Tensor, g: &ConvGeometry, algorithm: CpuConv) -> Vec<f32> {
    let (gys, ws) = (
        gy.cpu_slice("conv2d_backward_input"),
        w.cpu_slice("conv2d_backward_input"),
    );
    if algorithm == CpuConv::Packed {
        if let Some(dx) = packed::input_gradient(gys, ws, g) {
            return dx;
        }
    }
    if algorithm == CpuConv::Winograd4 {
        if let Some(dx) = packed::winograd::input_gradient(gys, ws, g) {
            return dx;
        }
    }
    if algorithm == CpuConv::Direct {
        if let Some(dx) = direct::input_gradient(gys, ws, g) {
            return dx;
        }
    }
    let (k, p) = (g.col_rows(), g.positions());
    let image = g.c * g.h * g.w;
    let group = group_size(g);
    if algorithm == CpuConv::Winograd {
        let wg = Winograd::input_gradient(g, ws);
        let sizes = (wg.group_size(), wg.scratch_len());
        let dy_image = g.o * p;
        return for_each_group(g, image, sizes, |first, dx, scratch, parallel| {
            let count = dx.len() / image;
            let dys = &gys[first * dy_image..(first + count) * dy_image];
            wg.run_group(dys, dx, scratch, parallel);
        });
    }
    let wt = MatRef::transposed(ws, k);
    let sizes = (group, scratch_len(g));
    // Zeroed by the threads that fill it: col2im adds onto the zeros.
    for_each_group(g, image, sizes, |first, dx, scratch, parallel| {
        let count = dx.len() / image;
        let dys = &gys[first * g.o * p..(first + count) * g.o * p];
        if group == 1 {
            let dy = MatRef::row_major(dys, p);
            if g.is_pointwise() {
                matmul_into(k, p, g.o, wt, dy, dx, false, parallel);
            } else {
                matmul_into(k, p, g.o, wt, dy, scratch, false, parallel);
                col2im(scratch, p, g, dx);
            }
            return;
        }
        let width = count * p;
        let (cols, staging) = scratch.split_at_mut(k * group * p);
        let (cols, staging) = (&mut cols[..k * width], &mut staging[..g.o * width]);
        gather_group(dys, g, staging);
        let dym = MatRef::row_major(staging, width);
        matmul_into(k, width, g.o, wt, dym, cols, false, parallel);
        for (j, dxj) in dx.chunks_exact_mut(image).enumerate() {
            col2im(&mut cols[j * p..], width, g, dxj);
        }
    })
}

/// `dW = Σ_n dy_n · im2col(x_n)ᵀ`.
///
/// The sum is accumulated transposed, `dWᵀ = Σ_n im2col(x_n) · dy_nᵀ`, and
/// transposed once at the end: in that orientation both GEMM operands are
/// read along their contiguous rows, which measured about three times
/// faster (192 vs 62 GFLOP/s on one core for a 64-channel 3x3 layer; for
/// 16 and 32 channels too, 10-40% faster).
///
/// Small-plane images go in groups here as well: the reduction runs over
/// `G·OH·OW` positions per product instead of 16 or 49, so each product
/// reads and writes the `dWᵀ` accumulator once per group rather than once
/// per image (the weight gradients of a width-16 ResNet-18 on 28x28 inputs:
/// 21.0 -> 19.3 ms per batch of 256).
///
/// Layers of at most 16 output channels take the product as dot products
/// of rows instead of a GEMM ([`row_dots`]: the GEMM's tiles would be one
/// vector tall).
///
/// With Winograd (`algorithm`), the sum runs in the transformed domain
/// instead (see [`Winograd::add_weight_gradient`]; F(4x4, 3x3):
/// `packed::winograd::weight_gradient`); packed, on the gathered panels of
/// the implicit GEMM (`packed::weight_gradient`).
pub fn backward_weight(gy: &Tensor, x: &Tensor, g: &ConvGeometry, algorithm: CpuConv) -> Vec<f32> {
    let (gys, xs) = (
        gy.cpu_slice("conv2d_backward_weight"),
        x.cpu_slice("conv2d_backward_weight"),
    );
    let (k, p) = (g.col_rows(), g.positions());
    let image = g.c * g.h * g.w;
    if algorithm == CpuConv::Packed {
        return packed::weight_gradient(gys, xs, g);
    }
    if algorithm == CpuConv::Winograd4 {
        return packed::winograd::weight_gradient(gys, xs, g);
    }
    if algorithm == CpuConv::Direct && direct::weight_gradient_applies(g) {
        return direct::weight_gradient(gys, xs, g);
    }
    if algorithm == CpuConv::Winograd {
        let wg = Winograd::weight_gradient(g);
        let sizes = (wg.group_size(), wg.scratch_len());
        let dut = sum_over_groups(
            g,
            16 * g.c * g.o,
            sizes,
            |first, count, acc, scratch, par| {
                let xg = &xs[first * image..(first + count) * image];
                let dyg = &gys[first * g.o * p..(first + count) * g.o * p];
                wg.add_weight_gradient(xg, dyg, acc, scratch, par);
            },
        );
        return wg.finish_weight_gradient(&dut);
    }
    let group = group_size(g);
    // Adds the contribution of images first..first+count into `dwt`
    // (`[C·KH·KW, O]`): a group's column matrices side by side times its
    // gathered `dY`, transposed.
    let add_group =
        |first: usize, count: usize, dwt: &mut [f32], scratch: &mut [f32], parallel: bool| {
            let width = count * p;
            let dys = &gys[first * g.o * p..(first + count) * g.o * p];
            let (cols, staging): (&[f32], &[f32]) = if group == 1 {
                let xi = &xs[first * image..(first + 1) * image];
                if g.is_pointwise() {
                    (xi, dys)
                } else {
                    im2col(xi, g, scratch, p);
                    (&scratch[..k * p], dys)
                }
            } else {
                let (cols, staging) = scratch.split_at_mut(k * group * p);
                let (cols, staging) = (&mut cols[..k * width], &mut staging[..g.o * width]);
                im2col_group(xs, first, count, g, cols);
                gather_group(dys, g, staging);
                (cols, staging)
            };
            if !parallel && row_dots::pays(g.o) {
                let cols = Rows::strided(cols, k, width);
                let dys = Rows::strided(staging, g.o, width);
                row_dots::add_row_dots(cols, dys, width, dwt, g.o);
                return;
            }
            matmul_into(
                k,
                g.o,
                width,
                MatRef::row_major(cols, width),
                MatRef::transposed(staging, width),
                dwt,
                true,
                parallel,
            );
        };
    let dwt = sum_over_groups(g, k * g.o, (group, scratch_len(g)), add_group);
    from_transposed(&dwt, g.o, g.o, k)
}

/// `dW[o, r] = dWᵀ[r, o]`: the `[O, K]` weight gradient from its transpose
/// `dwt`, `K` rows of `ld ≥ O` values (the columns past `O` are dropped).
pub(super) fn from_transposed(dwt: &[f32], ld: usize, o: usize, k: usize) -> Vec<f32> {
    let mut dw = vec![0.0f32; o * k];
    for (r, row) in dwt.chunks_exact(ld).take(k).enumerate() {
        for (oi, &v) in row[..o].iter().enumerate() {
            dw[oi * k + r] = v;
        }
    }
    dw
}

/// The sum over the batch of what `add(first, count, acc, scratch,
/// parallel_gemm)` adds into an accumulator of `len` values for each group
/// of at most `group` images (each thread with `scratch` values of
/// scratch). With at least as many images as threads, each thread sums its
/// run of the batch into its own accumulator and the partial sums are added
/// at the end; otherwise the groups run one after another with parallel
/// GEMMs.
pub(super) fn sum_over_groups(
    g: &ConvGeometry,
    len: usize,
    (group, scratch): (usize, usize),
    add: impl Fn(usize, usize, &mut [f32], &mut [f32], bool) + Sync,
) -> Vec<f32> {
    let run = |first: usize, end: usize, parallel: bool| {
        let mut acc = vec![0.0f32; len];
        let mut buf = vec![0.0f32; scratch];
        let mut first = first;
        while first < end {
            let count = group.min(end - first);
            add(first, count, &mut acc, &mut buf, parallel);
            first += count;
        }
        acc
    };
    if !per_image_threads(g) {
        return run(0, g.n, true);
    }
    let threads = rayon::current_num_threads();
    let per = g.n.div_ceil(threads);
    (0..threads)
        .into_par_iter()
        .map(|t| run(t * per, ((t + 1) * per).min(g.n), false))
        .reduce_with(|mut a, b| {
            a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
            a
        })
        .unwrap_or_else(|| vec![0.0; len])
}

#[cfg(test)]
pub(super) mod tests {
    use crate::ops::conv2d::{Conv2dParams, ConvGeometry};
    use crate::{Device, Tensor};
    use approx::assert_abs_diff_eq;

    /// The defining sum, written out: returns y and, for a given dy, the
    /// gradients dx and dw.
    pub(in crate::ops::conv2d) fn reference(
        x: &[f32],
        w: &[f32],
        dy: &[f32],
        g: &ConvGeometry,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut y = vec![0.0f64; g.n * g.o * g.oh * g.ow];
        let mut dx = vec![0.0f64; x.len()];
        let mut dw = vec![0.0f64; w.len()];
        let [sh, sw] = g.params.stride;
        let [ph, pw] = g.params.padding;
        for n in 0..g.n {
            for o in 0..g.o {
                for i in 0..g.oh {
                    for j in 0..g.ow {
                        let yi = ((n * g.o + o) * g.oh + i) * g.ow + j;
                        for c in 0..g.c {
                            for a in 0..g.kh {
                                for b in 0..g.kw {
                                    let r = (i * sh + a) as isize - ph as isize;
                                    let q = (j * sw + b) as isize - pw as isize;
                                    if r < 0 || q < 0 || r as usize >= g.h || q as usize >= g.w {
                                        continue;
                                    }
                                    let xi = ((n * g.c + c) * g.h + r as usize) * g.w + q as usize;
                                    let wi = ((o * g.c + c) * g.kh + a) * g.kw + b;
                                    y[yi] += x[xi] as f64 * w[wi] as f64;
                                    dx[xi] += dy[yi] as f64 * w[wi] as f64;
                                    dw[wi] += dy[yi] as f64 * x[xi] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        let f = |v: Vec<f64>| v.into_iter().map(|a| a as f32).collect();
        (f(y), f(dx), f(dw))
    }

    fn check(x_shape: [usize; 4], w_shape: [usize; 4], params: Conv2dParams) {
        let d = Device::Cpu;
        let x = Tensor::randn(&x_shape, 0.0, 1.0, 1, &d);
        let w = Tensor::randn(&w_shape, 0.0, 1.0, 2, &d);
        let g = ConvGeometry::new(&x_shape, &w_shape, params, "test");
        let dy = Tensor::randn(&[g.n, g.o, g.oh, g.ow], 0.0, 1.0, 3, &d);
        let (y, dx, dw) = reference(&x.to_vec(), &w.to_vec(), &dy.to_vec(), &g);
        let got_y = x.conv2d(&w, params);
        let got_dx = dy.conv2d_backward_input(&w, &x_shape, params);
        let got_dw = dy.conv2d_backward_weight(&x, &w_shape, params);
        assert_eq!(got_y.shape(), &[g.n, g.o, g.oh, g.ow]);
        // Sums of up to a few hundred products of N(0,1) values, in f32.
        let tol = 1e-4 * ((g.col_rows() * g.n * g.positions()) as f32).sqrt();
        for (a, b) in got_y.to_vec().iter().zip(&y) {
            assert_abs_diff_eq!(a, b, epsilon = tol);
        }
        for (a, b) in got_dx.to_vec().iter().zip(&dx) {
            assert_abs_diff_eq!(a, b, epsilon = tol);
        }
        for (a, b) in got_dw.to_vec().iter().zip(&dw) {
            assert_abs_diff_eq!(a, b, epsilon = tol);
        }
    }

    #[test]
    fn forward_and_both_gradients_match_the_defining_sum() {
        check([1, 1, 1, 1], [1, 1, 1, 1], Conv2dParams::new(1, 0));
        check([3, 3, 7, 7], [5, 3, 3, 3], Conv2dParams::new(1, 1));
        check([3, 3, 7, 7], [5, 3, 3, 3], Conv2dParams::new(2, 1));
        check([2, 7, 9, 5], [3, 7, 1, 1], Conv2dParams::new(1, 0));
        check([2, 7, 9, 5], [3, 7, 1, 1], Conv2dParams::new(2, 0));
        check([3, 2, 11, 13], [4, 2, 7, 7], Conv2dParams::new(2, 3));
        // 16 positions: groups of 8 images, full and partial ones.
        check([19, 3, 4, 4], [6, 3, 3, 3], Conv2dParams::new(1, 1));
        check(
            [1, 3, 8, 33],
            [2, 3, 2, 5],
            Conv2dParams {
                stride: [1, 3],
                padding: [0, 2],
            },
        );
        check([5, 4, 6, 6], [3, 4, 3, 3], Conv2dParams::new(3, 2));
    }

    #[test]
    fn winograd_and_im2col_agree_through_the_batch_split() {
        use crate::ops::conv2d::{
            conv2d_backward_input_cpu_with, conv2d_backward_weight_cpu_with, conv2d_cpu_with,
            CpuConv,
        };
        let d = Device::Cpu;
        // One image (each GEMM on every thread), a batch split over the
        // threads in single groups, and 40 images of 16 tiles (groups of
        // 16: full and short groups within a thread's run); every padding.
        for (shape, p) in [
            ([1, 8, 9, 9], 1),
            ([5, 8, 9, 9], 0),
            ([5, 8, 9, 9], 2),
            ([40, 3, 7, 7], 1),
        ] {
            let params = Conv2dParams::new(1, p);
            let x = Tensor::randn(&shape, 0.0, 1.0, 1, &d);
            let w = Tensor::randn(&[6, shape[1], 3, 3], 0.0, 1.0, 2, &d);
            let y = conv2d_cpu_with(&x, &w, params, CpuConv::Im2col);
            let dy = Tensor::randn(y.shape(), 0.0, 1.0, 3, &d);
            let yw = conv2d_cpu_with(&x, &w, params, CpuConv::Winograd);
            assert_eq!(yw.shape(), y.shape());
            for (a, b) in yw.to_vec().iter().zip(&y.to_vec()) {
                assert_abs_diff_eq!(a, b, epsilon = 1e-4 * (1.0 + b.abs()));
            }
            let dx = |a| conv2d_backward_input_cpu_with(&dy, &w, &shape, params, a).to_vec();
            for (a, b) in dx(CpuConv::Winograd).iter().zip(&dx(CpuConv::Im2col)) {
                assert_abs_diff_eq!(a, b, epsilon = 1e-4 * (1.0 + b.abs()));
            }
            let dw = |a| conv2d_backward_weight_cpu_with(&dy, &x, w.shape(), params, a).to_vec();
            for (a, b) in dw(CpuConv::Winograd).iter().zip(&dw(CpuConv::Im2col)) {
                assert_abs_diff_eq!(a, b, epsilon = 1e-4 * (1.0 + b.abs()));
            }
        }
    }

    #[test]
    #[should_panic(expected = "Winograd F(2x2, 3x3) needs a 3x3 kernel, stride 1")]
    fn winograd_refuses_a_strided_layer() {
        use crate::ops::conv2d::{conv2d_cpu_with, CpuConv};
        let d = Device::Cpu;
        let x = Tensor::zeros(&[1, 2, 8, 8], &d);
        let w = Tensor::zeros(&[2, 2, 3, 3], &d);
        conv2d_cpu_with(&x, &w, Conv2dParams::new(2, 1), CpuConv::Winograd);
    }

    #[test]
    #[should_panic(
        expected = "conv2d: input [2, 3, 8, 8] has 3 channels, weight [4, 2, 3, 3] expects 2"
    )]
    fn channel_mismatch_panics() {
        let d = Device::Cpu;
        Tensor::zeros(&[2, 3, 8, 8], &d)
            .conv2d(&Tensor::zeros(&[4, 2, 3, 3], &d), Conv2dParams::new(1, 1));
    }
}
