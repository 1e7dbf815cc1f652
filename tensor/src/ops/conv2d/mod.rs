//! 2-D convolution (cross-correlation, as in every deep-learning library) on
//! NCHW tensors, without bias, and the two ops its backward pass needs.
//!
//! For input `x` of shape `[N, C, H, W]` and weight `w` of shape
//! `[O, C, KH, KW]`, with stride `s` and zero padding `p`:
//!
//! ```text
//! y[n, o, i, j] = Σ_c Σ_a Σ_b  w[o, c, a, b] · x[n, c, i·s_h + a - p_h, j·s_w + b - p_w]
//! OH = (H + 2 p_h - KH) / s_h + 1,   OW = (W + 2 p_w - KW) / s_w + 1
//! ```
//!
//! (terms whose input position falls in the padding count as zero).
//!
//! **im2col + GEMM.** Gather, for each output position, the `C·KH·KW` input
//! values its kernel window sees into one column of a matrix `X_col` of shape
//! `[C·KH·KW, OH·OW]` ([`im2col`]). The whole convolution of one image is then
//! one matrix product, `Y = W · X_col`, with `W` the weight viewed as
//! `[O, C·KH·KW]`. The backward ops are products too:
//!
//! * gradient w.r.t. the input: `dX_col = Wᵀ · dY`, then `col2im` adds each
//!   column back onto the input positions it came from (the adjoint of
//!   im2col);
//! * gradient w.r.t. the weight: `dW = Σ_n dY_n · X_colᵀ_n`.
//!
//! Images of a batch are independent, so the CPU runs one image per thread.

mod cpu;
mod gpu;
pub mod im2col;
pub mod winograd;

use crate::{Storage, Tensor};

/// Stride and zero padding of a convolution, per spatial axis `[h, w]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Step between neighbouring windows, `[s_h, s_w]`.
    pub stride: [usize; 2],
    /// Zeros added on each side of the input, `[p_h, p_w]`.
    pub padding: [usize; 2],
}

impl Conv2dParams {
    /// The same stride and padding along both axes.
    pub fn new(stride: usize, padding: usize) -> Conv2dParams {
        Conv2dParams {
            stride: [stride, stride],
            padding: [padding, padding],
        }
    }
}

/// Every size involved in one convolution, checked once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Batch size N.
    pub n: usize,
    /// Input channels C.
    pub c: usize,
    /// Input height H.
    pub h: usize,
    /// Input width W.
    pub w: usize,
    /// Output channels O.
    pub o: usize,
    /// Kernel height KH.
    pub kh: usize,
    /// Kernel width KW.
    pub kw: usize,
    /// Output height OH.
    pub oh: usize,
    /// Output width OW.
    pub ow: usize,
    /// Stride and padding.
    pub params: Conv2dParams,
}

impl ConvGeometry {
    /// Checks an input shape `[N, C, H, W]` against a weight shape
    /// `[O, C, KH, KW]` and works out the output size. Panics naming `op`
    /// and both shapes when they do not fit.
    pub fn new(input: &[usize], weight: &[usize], params: Conv2dParams, op: &str) -> ConvGeometry {
        assert!(
            input.len() == 4 && weight.len() == 4,
            "{op}: needs input [N, C, H, W] and weight [O, C, KH, KW], got {input:?} and {weight:?}"
        );
        assert!(
            input[1] == weight[1],
            "{op}: input {input:?} has {} channels, weight {weight:?} expects {}",
            input[1],
            weight[1]
        );
        let [sh, sw] = params.stride;
        let [ph, pw] = params.padding;
        assert!(
            sh > 0 && sw > 0,
            "{op}: stride {:?} must be positive",
            params.stride
        );
        let (h, w, kh, kw) = (input[2], input[3], weight[2], weight[3]);
        assert!(
            h + 2 * ph >= kh && w + 2 * pw >= kw && kh > 0 && kw > 0,
            "{op}: kernel {kh}x{kw} does not fit input {input:?} with padding {:?}",
            params.padding
        );
        ConvGeometry {
            n: input[0],
            c: input[1],
            h,
            w,
            o: weight[0],
            kh,
            kw,
            oh: (h + 2 * ph - kh) / sh + 1,
            ow: (w + 2 * pw - kw) / sw + 1,
            params,
        }
    }

    /// Rows of the im2col matrix: `C·KH·KW`.
    pub fn col_rows(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Output positions per image: `OH·OW`.
    pub fn positions(&self) -> usize {
        self.oh * self.ow
    }

    /// Whether im2col is the identity (1x1 kernel, stride 1, no padding),
    /// so the input can be used as the column matrix directly.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.params == Conv2dParams::new(1, 0)
    }

    /// Multiply-adds of the forward pass, times two: its FLOP count.
    pub fn flops(&self) -> f64 {
        2.0 * (self.n * self.o * self.positions() * self.col_rows()) as f64
    }
}

/// How the CPU computes a convolution and its two gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuConv {
    /// im2col (or col2im) and one GEMM per image or group of images.
    Im2col,
    /// Winograd F(2x2, 3x3), for 3x3 stride-1 layers ([`winograd`]).
    Winograd,
}

impl CpuConv {
    /// The algorithm [`Tensor::conv2d`] and its two gradients use for a
    /// layer: Winograd where [`winograd::chosen`] says it pays, else im2col.
    pub fn for_layer(g: &ConvGeometry) -> CpuConv {
        if winograd::chosen(g) {
            CpuConv::Winograd
        } else {
            CpuConv::Im2col
        }
    }
}

/// [`Tensor::conv2d`] on the CPU with the algorithm named, whatever
/// [`CpuConv::for_layer`] would choose: for benchmarks and tests that
/// compare the two. Panics for a GPU tensor or when Winograd does not
/// [`winograd::applies`] to the layer.
pub fn conv2d_cpu_with(x: &Tensor, w: &Tensor, params: Conv2dParams, algorithm: CpuConv) -> Tensor {
    let g = ConvGeometry::new(x.shape(), w.shape(), params, "conv2d");
    check_cpu_algorithm(&g, algorithm);
    let y = cpu::forward(x, w, &g, algorithm);
    Tensor::cpu(y, &[g.n, g.o, g.oh, g.ow])
}

/// [`Tensor::conv2d_backward_input`] on the CPU with the algorithm named
/// (see [`conv2d_cpu_with`]).
pub fn conv2d_backward_input_cpu_with(
    dy: &Tensor,
    w: &Tensor,
    input_shape: &[usize],
    params: Conv2dParams,
    algorithm: CpuConv,
) -> Tensor {
    let g = ConvGeometry::new(input_shape, w.shape(), params, "conv2d_backward_input");
    dy.check_grad_shape(&g, "conv2d_backward_input");
    check_cpu_algorithm(&g, algorithm);
    Tensor::cpu(cpu::backward_input(dy, w, &g, algorithm), input_shape)
}

/// [`Tensor::conv2d_backward_weight`] on the CPU with the algorithm named
/// (see [`conv2d_cpu_with`]).
pub fn conv2d_backward_weight_cpu_with(
    dy: &Tensor,
    x: &Tensor,
    weight_shape: &[usize],
    params: Conv2dParams,
    algorithm: CpuConv,
) -> Tensor {
    let g = ConvGeometry::new(x.shape(), weight_shape, params, "conv2d_backward_weight");
    dy.check_grad_shape(&g, "conv2d_backward_weight");
    check_cpu_algorithm(&g, algorithm);
    Tensor::cpu(cpu::backward_weight(dy, x, &g, algorithm), weight_shape)
}

fn check_cpu_algorithm(g: &ConvGeometry, algorithm: CpuConv) {
    assert!(
        algorithm == CpuConv::Im2col || winograd::applies(g),
        "conv2d: Winograd F(2x2, 3x3) needs a 3x3 kernel, stride 1 and padding at most 2, \
         got {}x{} stride {:?} padding {:?}",
        g.kh,
        g.kw,
        g.params.stride,
        g.params.padding
    );
}

impl Tensor {
    /// The convolution of `self` (`[N, C, H, W]`) with `weight`
    /// (`[O, C, KH, KW]`): a `[N, O, OH, OW]` tensor.
    pub fn conv2d(&self, weight: &Tensor, params: Conv2dParams) -> Tensor {
        self.same_device(weight, "conv2d");
        let g = ConvGeometry::new(self.shape(), weight.shape(), params, "conv2d");
        let shape = [g.n, g.o, g.oh, g.ow];
        match self.storage() {
            Storage::Cpu(_) => {
                let algorithm = CpuConv::for_layer(&g);
                Tensor::cpu(cpu::forward(self, weight, &g, algorithm), &shape)
            }
            Storage::Gpu(_) => Tensor::gpu(gpu::forward(self, weight, &g), &shape),
        }
    }

    /// The gradient of a convolution with respect to its input: given
    /// `self` = dL/dy (`[N, O, OH, OW]`) and the weight, returns dL/dx of
    /// shape `input_shape`.
    pub fn conv2d_backward_input(
        &self,
        weight: &Tensor,
        input_shape: &[usize],
        params: Conv2dParams,
    ) -> Tensor {
        self.same_device(weight, "conv2d_backward_input");
        let g = ConvGeometry::new(input_shape, weight.shape(), params, "conv2d_backward_input");
        self.check_grad_shape(&g, "conv2d_backward_input");
        match self.storage() {
            Storage::Cpu(_) => {
                let algorithm = CpuConv::for_layer(&g);
                Tensor::cpu(
                    cpu::backward_input(self, weight, &g, algorithm),
                    input_shape,
                )
            }
            Storage::Gpu(_) => Tensor::gpu(gpu::backward_input(self, weight, &g), input_shape),
        }
    }

    /// The gradient of a convolution with respect to its weight: given
    /// `self` = dL/dy (`[N, O, OH, OW]`) and the forward input, returns
    /// dL/dw of shape `weight_shape`.
    pub fn conv2d_backward_weight(
        &self,
        input: &Tensor,
        weight_shape: &[usize],
        params: Conv2dParams,
    ) -> Tensor {
        self.same_device(input, "conv2d_backward_weight");
        let g = ConvGeometry::new(
            input.shape(),
            weight_shape,
            params,
            "conv2d_backward_weight",
        );
        self.check_grad_shape(&g, "conv2d_backward_weight");
        match self.storage() {
            Storage::Cpu(_) => {
                let algorithm = CpuConv::for_layer(&g);
                Tensor::cpu(
                    cpu::backward_weight(self, input, &g, algorithm),
                    weight_shape,
                )
            }
            Storage::Gpu(_) => gpu::backward_weight(self, input, &g),
        }
    }

    fn check_grad_shape(&self, g: &ConvGeometry, op: &str) {
        assert_eq!(
            self.shape(),
            &[g.n, g.o, g.oh, g.ow],
            "{op}: output gradient has shape {:?}, the convolution gives [{}, {}, {}, {}]",
            self.shape(),
            g.n,
            g.o,
            g.oh,
            g.ow
        );
    }
}
