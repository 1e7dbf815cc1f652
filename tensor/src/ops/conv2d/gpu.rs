//! GPU convolution: im2col into a column buffer, then the register-blocked
//! matmul kernel, over runs of images small enough that the column buffer
//! stays within the adapter's binding limit (and 256 MiB).
//!
//! * forward: `Y_n = W · col_n`, one batched product per run with the
//!   weight shared (batch stride 0), written straight into the output;
//! * input gradient: `dcol_n = Wᵀ · dY_n`, then `col2im.wgsl` gathers each
//!   input element's gradient;
//! * weight gradient: `dWᵀ += col' · dY'` with `col'` laid out
//!   `[C·KH·KW, g·OH·OW]` and `dY'` the run's output gradient as
//!   `[g·OH·OW, O]`: one long product per run, accumulated over runs, and
//!   transposed at the end.
//!
//! With the hardware kernels (a hardware GPU) the forward pass and the
//! weight gradient are implicit GEMMs instead: the tiled matmul kernel
//! gathers the column matrix from the images as it loads its tiles
//! (`loads_gather_*.wgsl`, `im2col_index.wgsl`), so no column buffer is
//! written or read back; and the input gradient gathers the output
//! gradient the same way (`dy_index.wgsl`), with no col2im.
//!
//! Every product is arranged so both operands are row-major (transposing
//! the small weight, permuting the output gradient), which lets the vec4
//! matmul kernel run: measured on llvmpipe it is about twice as fast as the
//! strided one.

use super::ConvGeometry;
use crate::backend::gpu::KernelSet;
use crate::backend::gpu::{grid_1d, GpuBuffer, GpuContext};
use crate::ops::matmul::gpu::{gemm, tiled, tiled_source, GpuMat, TiledKernel};
use crate::ops::matmul::MatmulDims;
use crate::Tensor;
use std::sync::{Arc, LazyLock};

const IM2COL: &str = include_str!("im2col.wgsl");
const COL2IM: &str = include_str!("col2im.wgsl");
const IM2COL_INDEX: &str = include_str!("im2col_index.wgsl");

/// The tiled kernel gathering its B operand from the images (forward).
static GATHER_B: LazyLock<String> = LazyLock::new(|| {
    tiled_source(&format!(
        "{IM2COL_INDEX}\n{}",
        include_str!("loads_gather_b.wgsl")
    ))
});
/// The tiled kernel gathering its A operand from the images (weight
/// gradient).
static GATHER_A: LazyLock<String> = LazyLock::new(|| {
    tiled_source(&format!(
        "{IM2COL_INDEX}\n{}",
        include_str!("loads_gather_a.wgsl")
    ))
});

/// The tiled kernel gathering its B operand from the output gradient
/// (input gradient).
static GATHER_DY: LazyLock<String> = LazyLock::new(|| {
    tiled_source(&format!(
        "{}\n{}",
        include_str!("dy_index.wgsl"),
        include_str!("loads_gather_dy.wgsl")
    ))
});

/// An operand the tiled kernel gathers from the images `buf`, images
/// `batch_stride` apart. Its loads ignore the strides, except that the
/// kernel's choice of which invocation loads what follows `col_stride == 1`:
/// neighbouring invocations then take neighbouring positions (q), which lie
/// side by side in the images.
fn gathered(buf: &GpuBuffer, batch_stride: usize) -> GpuMat<'_> {
    GpuMat {
        buf,
        offset: 0,
        row_stride: 0,
        col_stride: 1,
        batch_stride,
    }
}

/// Most bytes one column buffer may take.
const COL_BUDGET: u64 = 256 << 20;

/// How many images one run holds.
fn run_length(ctx: &GpuContext, g: &ConvGeometry) -> usize {
    let per_image = (g.col_rows() * g.positions() * 4).max(1) as u64;
    let budget = COL_BUDGET.min(ctx.limits().max_storage_buffer_binding_size);
    ((budget / per_image) as usize).clamp(1, g.n.max(1))
}

/// The geometry words shared by im2col and col2im: `C, H, W, KH, KW, OH,
/// OW, s_h, s_w, p_h, p_w`.
fn geometry_words(g: &ConvGeometry) -> [u32; 11] {
    [
        g.c,
        g.h,
        g.w,
        g.kh,
        g.kw,
        g.oh,
        g.ow,
        g.params.stride[0],
        g.params.stride[1],
        g.params.padding[0],
        g.params.padding[1],
    ]
    .map(|v| v as u32)
}

/// Records im2col of images `n0 .. n0 + count` of `x` into `col`, with
/// the given image and row strides in `col`.
fn im2col(
    ctx: &Arc<GpuContext>,
    x: &GpuBuffer,
    g: &ConvGeometry,
    n0: usize,
    count: usize,
    col: &GpuBuffer,
    strides: (usize, usize),
) {
    let total = count * g.col_rows() * g.positions();
    let mut params = vec![total as u32];
    params.extend(geometry_words(g));
    params.extend([
        (n0 * g.c * g.h * g.w) as u32,
        strides.0 as u32,
        strides.1 as u32,
    ]);
    ctx.dispatch("im2col", IM2COL, &params, &[x, col], grid_1d(total));
}

/// `y = conv2d(x, w)`.
pub fn forward(x: &Tensor, w: &Tensor, g: &ConvGeometry) -> GpuBuffer {
    let (xb, wb) = (x.gpu_buffer("conv2d"), w.gpu_buffer("conv2d"));
    let ctx = xb.context();
    let (k, p) = (g.col_rows(), g.positions());
    let out = GpuBuffer::new(ctx, g.n * g.o * p);
    let weight = GpuMat::row_major(wb, k);
    if ctx.kernel_set() == KernelSet::Hardware {
        // Implicit GEMM: Y_n = W · col_n with col_n gathered from image n
        // by the kernel itself, every image one product of the batch.
        let d = MatmulDims {
            batch: g.n,
            m: g.o,
            k,
            n: p,
        };
        let kernel = TiledKernel {
            name: "conv_forward_tiled",
            source: &GATHER_B,
            extra: &geometry_words(g),
        };
        let images = gathered(xb, g.c * g.h * g.w);
        tiled(d, weight, images, &out, 0, false, kernel);
        return out;
    }
    let run = run_length(ctx, g);
    let col = (!g.is_pointwise()).then(|| GpuBuffer::new(ctx, run * k * p));
    for n0 in (0..g.n).step_by(run) {
        let count = run.min(g.n - n0);
        let cols = match &col {
            Some(col) => {
                im2col(ctx, xb, g, n0, count, col, (k * p, p));
                GpuMat {
                    buf: col,
                    offset: 0,
                    row_stride: p,
                    col_stride: 1,
                    batch_stride: k * p,
                }
            }
            None => GpuMat {
                buf: xb,
                offset: n0 * k * p,
                row_stride: p,
                col_stride: 1,
                batch_stride: k * p,
            },
        };
        let d = MatmulDims {
            batch: count,
            m: g.o,
            k,
            n: p,
        };
        gemm(d, weight, cols, &out, n0 * g.o * p, false);
    }
    out
}

/// `dx = col2im(Wᵀ · dy)`.
pub fn backward_input(gy: &Tensor, w: &Tensor, g: &ConvGeometry) -> GpuBuffer {
    let gyb = gy.gpu_buffer("conv2d_backward_input");
    let ctx = gyb.context();
    let (k, p) = (g.col_rows(), g.positions());
    let image = g.c * g.h * g.w;
    let dx = GpuBuffer::new(ctx, g.n * image);
    if ctx.kernel_set() == KernelSet::Hardware {
        // Implicit GEMM: dx_n = W' · B_n, W' the weight as [C, O·KH·KW]
        // (a small copy) and B_n gathered from image n's output gradient
        // by the kernel (dy_index.wgsl): no column buffer, no col2im.
        let wt = w.permute(&[1, 0, 2, 3]).reshape(&[g.c, g.o * g.kh * g.kw]);
        let weight_t = GpuMat::row_major(wt.gpu_buffer("conv2d_backward_input"), g.o * g.kh * g.kw);
        let d = MatmulDims {
            batch: g.n,
            m: g.c,
            k: g.o * g.kh * g.kw,
            n: g.h * g.w,
        };
        let kernel = TiledKernel {
            name: "conv_input_grad_tiled",
            source: &GATHER_DY,
            extra: &geometry_words(g),
        };
        tiled(d, weight_t, gathered(gyb, g.o * p), &dx, 0, false, kernel);
        return dx;
    }
    let run = run_length(ctx, g);
    let gcol = (!g.is_pointwise()).then(|| GpuBuffer::new(ctx, run * k * p));
    // Wᵀ materialised row-major ([C·KH·KW, O], a small copy), so that both
    // operands of the product are row-major and the vec4 kernel applies.
    let wt = w.reshape(&[g.o, k]).t();
    let weight_t = GpuMat::row_major(wt.gpu_buffer("conv2d_backward_input"), g.o);
    for n0 in (0..g.n).step_by(run) {
        let count = run.min(g.n - n0);
        let dy = GpuMat {
            buf: gyb,
            offset: n0 * g.o * p,
            row_stride: p,
            col_stride: 1,
            batch_stride: g.o * p,
        };
        let d = MatmulDims {
            batch: count,
            m: k,
            k: g.o,
            n: p,
        };
        match &gcol {
            Some(gcol) => {
                gemm(d, weight_t, dy, gcol, 0, false);
                let total = count * image;
                let mut params = vec![total as u32];
                params.extend(geometry_words(g));
                params.push((n0 * image) as u32);
                ctx.dispatch("col2im", COL2IM, &params, &[gcol, &dx], grid_1d(total));
            }
            None => gemm(d, weight_t, dy, &dx, n0 * image, false),
        }
    }
    dx
}

/// `dW = Σ_n dy_n · col_nᵀ`.
pub fn backward_weight(gy: &Tensor, x: &Tensor, g: &ConvGeometry) -> Tensor {
    let xb = x.gpu_buffer("conv2d_backward_weight");
    let ctx = xb.context();
    let (k, p) = (g.col_rows(), g.positions());
    if g.n == 0 || p == 0 {
        return Tensor::zeros(&[g.o, g.c, g.kh, g.kw], &x.device());
    }
    // dWᵀ ([C·KH·KW, O]) is accumulated, then transposed once: in that
    // orientation both operands are row-major.
    let dwt = GpuBuffer::new(ctx, k * g.o);
    // (The gather's index over all the images is an i32: -1 marks padding.)
    let indexable = g.n * g.c * g.h * g.w <= i32::MAX as usize;
    if ctx.kernel_set() == KernelSet::Hardware && indexable {
        // Implicit GEMM: dWᵀ = col' · dY', col' gathered from all the
        // images by the kernel (its inner index runs over every position
        // of every image, split over workgroups by split-k), dY' the
        // output gradient as [N·OH·OW, O].
        let dy = gy.reshape(&[g.n, g.o, p]).permute(&[0, 2, 1]);
        let d = MatmulDims {
            batch: 1,
            m: k,
            k: g.n * p,
            n: g.o,
        };
        let b = GpuMat::row_major(dy.gpu_buffer("conv2d_backward_weight"), g.o);
        let kernel = TiledKernel {
            name: "conv_weight_grad_tiled",
            source: &GATHER_A,
            extra: &geometry_words(g),
        };
        tiled(d, gathered(xb, 0), b, &dwt, 0, false, kernel);
        return untranspose(dwt, g);
    }
    let run = run_length(ctx, g);
    let col = GpuBuffer::new(ctx, run * k * p);
    for n0 in (0..g.n).step_by(run) {
        let count = run.min(g.n - n0);
        // The run's output gradient as [count·P, O]: [count, O, P] -> [count, P, O].
        let dy = gy
            .narrow(0, n0, count)
            .reshape(&[count, g.o, p])
            .permute(&[0, 2, 1]);
        // col' as [C·KH·KW, count·P]: image stride P, row stride count·P.
        im2col(ctx, xb, g, n0, count, &col, (p, count * p));
        let d = MatmulDims {
            batch: 1,
            m: k,
            k: count * p,
            n: g.o,
        };
        let a = GpuMat::row_major(&col, count * p);
        let b = GpuMat::row_major(dy.gpu_buffer("conv2d_backward_weight"), g.o);
        gemm(d, a, b, &dwt, 0, n0 > 0);
    }
    untranspose(dwt, g)
}

/// `dW` (`[O, C, KH, KW]`) from the accumulated `dWᵀ` (`[C·KH·KW, O]`).
fn untranspose(dwt: GpuBuffer, g: &ConvGeometry) -> Tensor {
    Tensor::gpu(dwt, &[g.col_rows(), g.o])
        .t()
        .reshape(&[g.o, g.c, g.kh, g.kw])
}

#[cfg(test)]
mod tests {
    use crate::backend::gpu::KernelSet;
    use crate::ops::conv2d::{Conv2dParams, ConvGeometry};
    use crate::testing::{assert_close, gpu_device_with};
    use crate::{Device, Tensor};

    /// The odd shapes of [`check`] with the software kernels.
    #[test]
    fn forward_and_gradients_match_the_cpu_with_the_software_kernels() {
        let Some(gpu) = gpu_device_with(KernelSet::Software) else {
            return;
        };
        check(&gpu, &odd_cases());
    }

    /// The same with the hardware kernels, plus a batch whose weight
    /// gradient sums over 16,384 positions (split-k).
    #[test]
    fn forward_and_gradients_match_the_cpu_with_the_hardware_kernels() {
        let Some(gpu) = gpu_device_with(KernelSet::Hardware) else {
            return;
        };
        let mut cases = odd_cases();
        // Split-k in each product: the weight gradient (16,384 positions),
        // the forward pass (576 = 64·3·3 inputs per output), the input
        // gradient (648 = 72·3·3 outputs per input, and 72 output channels:
        // two tile rows forward).
        cases.push(([64, 3, 16, 16], [8, 3, 3, 3], Conv2dParams::new(1, 1)));
        cases.push(([1, 64, 4, 4], [8, 64, 3, 3], Conv2dParams::new(1, 1)));
        cases.push(([1, 8, 8, 8], [72, 8, 3, 3], Conv2dParams::new(1, 1)));
        check(&gpu, &cases);
    }

    type Case = ([usize; 4], [usize; 4], Conv2dParams);

    /// Every stride and padding the ResNets use plus unusual ones.
    fn odd_cases() -> Vec<Case> {
        vec![
            ([1, 1, 1, 1], [1, 1, 1, 1], Conv2dParams::new(1, 0)),
            ([3, 3, 7, 7], [5, 3, 3, 3], Conv2dParams::new(1, 1)),
            ([3, 3, 7, 7], [5, 3, 3, 3], Conv2dParams::new(2, 1)),
            ([2, 7, 9, 5], [3, 7, 1, 1], Conv2dParams::new(1, 0)),
            ([2, 7, 9, 5], [3, 7, 1, 1], Conv2dParams::new(2, 0)),
            ([2, 2, 11, 13], [4, 2, 7, 7], Conv2dParams::new(2, 3)),
            (
                [1, 3, 8, 33],
                [2, 3, 2, 5],
                Conv2dParams {
                    stride: [1, 3],
                    padding: [0, 2],
                },
            ),
        ]
    }

    /// Forward and both gradients against the CPU. Sums of up to a few
    /// hundred N(0,1) products: 1e-4 absolute, 1e-4 relative.
    fn check(gpu: &Device, cases: &[Case]) {
        for &(xs, ws, params) in cases {
            let cpu = Device::Cpu;
            let x = Tensor::randn(&xs, 0.0, 1.0, 1, &cpu);
            let w = Tensor::randn(&ws, 0.0, 1.0, 2, &cpu);
            let g = ConvGeometry::new(&xs, &ws, params, "test");
            let gy = Tensor::randn(&[g.n, g.o, g.oh, g.ow], 0.0, 1.0, 3, &cpu);
            let (gx, gw, ggy) = (x.to_device(gpu), w.to_device(gpu), gy.to_device(gpu));
            let what = format!("{xs:?} * {ws:?} {params:?}");
            assert_close(
                &gx.conv2d(&gw, params),
                &x.conv2d(&w, params),
                1e-4,
                1e-4,
                &format!("y {what}"),
            );
            assert_close(
                &ggy.conv2d_backward_input(&gw, &xs, params),
                &gy.conv2d_backward_input(&w, &xs, params),
                1e-4,
                1e-4,
                &format!("dx {what}"),
            );
            assert_close(
                &ggy.conv2d_backward_weight(&gx, &ws, params),
                &gy.conv2d_backward_weight(&x, &ws, params),
                1e-4,
                1e-4,
                &format!("dw {what}"),
            );
        }
    }
}
