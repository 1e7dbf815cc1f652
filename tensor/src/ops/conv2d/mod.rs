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
pub mod direct;
mod gpu;
pub mod im2col;
#[cfg(target_arch = "x86_64")]
mod lanes16;
pub mod packed;
pub mod row_dots;
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

/// A rule on a layer's shape: whether an algorithm applies, or pays.
type ShapeRule = fn(&ConvGeometry) -> bool;

/// How the CPU computes a convolution and its two gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuConv {
    /// im2col (or col2im) and one GEMM per image or group of images.
    Im2col,
    /// Winograd F(2x2, 3x3), for 3x3 stride-1 layers ([`winograd`]).
    Winograd,
    /// The implicit GEMM of [`packed`] (AVX2 or AVX-512): the forward pass, the
    /// input gradient of stride-1 layers (col2im for the others) and the
    /// weight gradient.
    Packed,
    /// Winograd F(4x4, 3x3) on the packed kernels (AVX2 or AVX-512), for
    /// 3x3 stride-1 layers ([`packed::winograd`]).
    Winograd4,
    /// The direct convolution of [`direct`] (AVX2 or AVX-512), for layers of
    /// stride 1 or 2 whose output channels come in sixteens: the forward
    /// pass, and the input gradient of stride-1 layers whose input channels
    /// do too (col2im otherwise);
    /// the weight gradient of any stride-1 layer as row dots over the padded
    /// image ([`direct::weight_gradient`]).
    Direct,
}

impl CpuConv {
    /// The algorithm [`Tensor::conv2d`] and its input gradient use for a
    /// layer: Winograd F(4x4, 3x3) where it applies and
    /// [`packed::winograd::pays`], else F(2x2, 3x3) where it applies and
    /// [`winograd::pays`], else the direct kernel where it applies and
    /// [`direct::pays`], else the packed implicit GEMM where it applies
    /// and [`packed::pays`], else im2col (the rules fit the `conv_layers`
    /// benchmark). `BYOL_CPU_CONV` forces one on every layer it applies to
    /// (im2col elsewhere).
    pub fn for_layer(g: &ConvGeometry) -> CpuConv {
        CpuConv::choose(
            g,
            packed::pays,
            packed::winograd::pays,
            (direct::applies, direct::pays),
        )
    }

    /// The algorithm [`Tensor::conv2d_backward_weight`] uses: as
    /// [`CpuConv::for_layer`], except that F(4x4, 3x3), the packed and the
    /// direct weight gradient have their own rules,
    /// [`packed::winograd::weight_gradient_pays`],
    /// [`packed::weight_gradient_pays`] and [`direct::weight_gradient_pays`]
    /// (where [`direct::weight_gradient_applies`]).
    pub fn for_weight_gradient(g: &ConvGeometry) -> CpuConv {
        CpuConv::choose(
            g,
            packed::weight_gradient_pays,
            packed::winograd::weight_gradient_pays,
            (
                direct::weight_gradient_applies,
                direct::weight_gradient_pays,
            ),
        )
    }

    /// The choice for a layer, given where the packed path and F(4x4, 3x3)
    /// pay, and where the direct kernel of this pass applies and pays.
    fn choose(
        g: &ConvGeometry,
        packed_pays: ShapeRule,
        winograd4_pays: ShapeRule,
        (direct_applies, direct_pays): (ShapeRule, ShapeRule),
    ) -> CpuConv {
        let forced = setting().as_ref().unwrap_or_else(|why| panic!("{why}"));
        let by_shape = (
            winograd::applies(g) && winograd::pays(g),
            packed::winograd::applies(g) && winograd4_pays(g),
            packed::applies(g) && packed_pays(g),
            direct_applies(g) && direct_pays(g),
        );
        let (winograd, winograd4, packed, direct) = match forced {
            Some(CpuConv::Im2col) => (false, false, false, false),
            Some(CpuConv::Winograd) => (winograd::applies(g), false, false, false),
            Some(CpuConv::Packed) => (false, false, packed::applies(g), false),
            Some(CpuConv::Winograd4) => (false, packed::winograd::applies(g), false, false),
            Some(CpuConv::Direct) => (false, false, false, direct_applies(g)),
            None => by_shape,
        };
        if winograd4 {
            CpuConv::Winograd4
        } else if winograd {
            CpuConv::Winograd
        } else if direct {
            CpuConv::Direct
        } else if packed {
            CpuConv::Packed
        } else {
            CpuConv::Im2col
        }
    }
}

/// What a value of `BYOL_CPU_CONV` asks for: `Some(algorithm)`, or `None`
/// (unset, empty or `auto`) to choose by shape; an unknown value is an
/// error naming the variable and the choices, and so is `packed`,
/// `winograd4` or `direct` on a CPU (or a `BYOL_CPU_SIMD` level) without
/// AVX2.
fn parse_setting(value: Option<&str>, simd: bool) -> Result<Option<CpuConv>, String> {
    match value.map(str::trim) {
        None | Some("") | Some("auto") => Ok(None),
        Some("winograd") => Ok(Some(CpuConv::Winograd)),
        Some("im2col") => Ok(Some(CpuConv::Im2col)),
        Some("packed") if simd => Ok(Some(CpuConv::Packed)),
        Some("winograd4") if simd => Ok(Some(CpuConv::Winograd4)),
        Some("direct") if simd => Ok(Some(CpuConv::Direct)),
        Some(v @ ("packed" | "winograd4" | "direct")) => Err(format!(
            "BYOL_CPU_CONV={v:?}: the packed and direct kernels need AVX2 (or AVX-512), \
             which this CPU (or the BYOL_CPU_SIMD level) does not give; ask for 'im2col', \
             'winograd' or 'auto', or unset it"
        )),
        Some(v) => Err(format!(
            "BYOL_CPU_CONV={v:?}: expected 'winograd', 'winograd4', 'im2col', 'packed', \
             'direct' or 'auto' (or unset it to choose by layer shape)"
        )),
    }
}

/// `BYOL_CPU_CONV`, read and checked once.
fn setting() -> &'static Result<Option<CpuConv>, String> {
    static SETTING: std::sync::OnceLock<Result<Option<CpuConv>, String>> =
        std::sync::OnceLock::new();
    SETTING.get_or_init(|| {
        let value = std::env::var("BYOL_CPU_CONV").ok();
        let simd = crate::backend::cpu::simd::check_setting().is_ok() && packed::available();
        parse_setting(value.as_deref(), simd)
    })
}

/// Whether `BYOL_CPU_CONV` holds a value this CPU can honour; the error
/// names the variable and the choices. [`crate::Device::from_name`] checks
/// it, so a program that opens its device that way reports a typo before
/// any work (a convolution run without that check panics with the same
/// message).
pub fn check_setting() -> Result<(), String> {
    setting().as_ref().map(|_| ()).map_err(Clone::clone)
}

/// [`Tensor::conv2d`] on the CPU with the algorithm named, whatever
/// [`CpuConv::for_layer`] would choose: for benchmarks and tests that
/// compare them. Panics for a GPU tensor or when the algorithm does not
/// apply to the layer ([`winograd::applies`], [`packed::applies`]).
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
        algorithm != CpuConv::Packed || packed::applies(g),
        "conv2d: the packed convolution needs AVX2 or AVX-512 (BYOL_CPU_SIMD not at \
         'baseline') and a \
         layer that is not 1x1 stride 1, got {}x{} stride {:?}",
        g.kh,
        g.kw,
        g.params.stride
    );
    assert!(
        algorithm != CpuConv::Winograd4 || packed::winograd::applies(g),
        "conv2d: Winograd F(4x4, 3x3) needs AVX2 or AVX-512 (BYOL_CPU_SIMD not at \
         'baseline'), a 3x3 kernel, stride 1 and padding at most 2, got {}x{} stride {:?} \
         padding {:?}",
        g.kh,
        g.kw,
        g.params.stride,
        g.params.padding
    );
    assert!(
        algorithm != CpuConv::Direct || direct::applies(g),
        "conv2d: the direct convolution needs AVX2 or AVX-512 (BYOL_CPU_SIMD not at \
         'baseline'), stride 1 or 2 and output channels in sixteens, got stride {:?} and {} \
         outputs",
        g.params.stride,
        g.o
    );
    assert!(
        algorithm != CpuConv::Winograd || winograd::applies(g),
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
                let algorithm = CpuConv::for_weight_gradient(&g);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_accepts_the_six_choices_and_names_a_typo() {
        assert_eq!(parse_setting(None, true), Ok(None));
        assert_eq!(parse_setting(Some(" "), true), Ok(None));
        assert_eq!(parse_setting(Some("auto"), false), Ok(None));
        assert_eq!(
            parse_setting(Some("winograd"), false),
            Ok(Some(CpuConv::Winograd))
        );
        assert_eq!(
            parse_setting(Some("im2col "), false),
            Ok(Some(CpuConv::Im2col))
        );
        assert_eq!(
            parse_setting(Some("packed"), true),
            Ok(Some(CpuConv::Packed))
        );
        assert_eq!(
            parse_setting(Some("winograd4"), true),
            Ok(Some(CpuConv::Winograd4))
        );
        for value in ["packed", "winograd4", "direct"] {
            let why = parse_setting(Some(value), false).unwrap_err();
            assert!(
                why.contains(&format!("={value:?}"))
                    && why.contains("kernels need AVX2 (or AVX-512)")
                    && why.contains("'auto'"),
                "{why}"
            );
        }
        assert_eq!(
            parse_setting(Some("direct"), true),
            Ok(Some(CpuConv::Direct))
        );
        let why = parse_setting(Some("wingrad"), true).unwrap_err();
        assert!(why.starts_with(
            "BYOL_CPU_CONV=\"wingrad\": expected 'winograd', 'winograd4', 'im2col', 'packed', \
             'direct'"
        ));
    }

    /// Unforced, where the CPU has AVX2: the layers of 64 channels and more
    /// run F(4x4, 3x3), a 16- or 32-channel one im2col (with AVX-512 the
    /// direct kernel); so do their weight gradients, but for the
    /// 512-channel 4x4 layer's (F(2x2, 3x3)) and the narrow layers' (im2col).
    /// Without AVX2 the packed kernels give way to im2col, F(4x4, 3x3) to
    /// F(2x2, 3x3) where that pays (64 channels on 8x8 planes and more, or
    /// 256 channels).
    #[test]
    fn each_layer_gets_the_algorithm_its_shape_calls_for() {
        if setting() != &Ok(None) {
            eprintln!("skipped: BYOL_CPU_CONV is set");
            return;
        }
        let g = |c: usize, side: usize| {
            ConvGeometry::new(
                &[2, c, side, side],
                &[c, c, 3, 3],
                Conv2dParams::new(1, 1),
                "t",
            )
        };
        let simd = packed::available();
        let wide = if simd {
            CpuConv::Winograd4
        } else {
            CpuConv::Winograd
        };
        let small_plane = if simd {
            CpuConv::Winograd4
        } else {
            CpuConv::Im2col
        };
        assert_eq!(CpuConv::for_layer(&g(128, 4)), small_plane);
        assert_eq!(CpuConv::for_layer(&g(64, 7)), small_plane);
        assert_eq!(CpuConv::for_layer(&g(64, 14)), wide);
        assert_eq!(CpuConv::for_layer(&g(256, 7)), wide);
        assert_eq!(CpuConv::for_layer(&g(512, 4)), wide);
        // The 16- and 32-channel layers on 28x28 and 14x14: the direct
        // kernel with AVX-512.
        let narrow = if direct::applies(&g(16, 28)) && direct::pays(&g(16, 28)) {
            CpuConv::Direct
        } else {
            CpuConv::Im2col
        };
        assert_eq!(CpuConv::for_layer(&g(16, 28)), narrow);
        assert_eq!(CpuConv::for_layer(&g(32, 14)), narrow);
        // The weight gradient.
        assert_eq!(CpuConv::for_weight_gradient(&g(128, 4)), small_plane);
        assert_eq!(CpuConv::for_weight_gradient(&g(256, 7)), wide);
        assert_eq!(CpuConv::for_weight_gradient(&g(128, 14)), wide);
        assert_eq!(CpuConv::for_weight_gradient(&g(512, 4)), CpuConv::Winograd);
        assert_eq!(CpuConv::for_weight_gradient(&g(64, 7)), small_plane);
        assert_eq!(CpuConv::for_weight_gradient(&g(64, 14)), wide);
        assert_eq!(CpuConv::for_weight_gradient(&g(32, 14)), CpuConv::Im2col);
        // The 16-channel weight gradient: row dots over the padded image
        // with AVX-512.
        let narrow_dw = if direct::weight_gradient_applies(&g(16, 28))
            && direct::weight_gradient_pays(&g(16, 28))
        {
            CpuConv::Direct
        } else {
            CpuConv::Im2col
        };
        assert_eq!(CpuConv::for_weight_gradient(&g(16, 28)), narrow_dw);
        // Stride 2: the 3x3 transitions onto 14x14 and 7x7 take the direct
        // kernel with AVX-512, the one onto 4x4 and the 1x1 shortcuts not.
        let s2 = |c: usize, hw: usize, k: usize| {
            ConvGeometry::new(
                &[256, c, hw, hw],
                &[2 * c, c, k, k],
                Conv2dParams::new(2, k / 2),
                "t",
            )
        };
        let avx512 = direct::applies(&s2(16, 28, 3)) && direct::pays(&g(16, 28));
        assert_eq!(
            CpuConv::for_layer(&s2(16, 28, 3)) == CpuConv::Direct,
            avx512
        );
        assert_eq!(
            CpuConv::for_layer(&s2(32, 14, 3)) == CpuConv::Direct,
            avx512
        );
        assert_ne!(CpuConv::for_layer(&s2(64, 7, 3)), CpuConv::Direct);
        assert_ne!(CpuConv::for_layer(&s2(32, 14, 1)), CpuConv::Direct);
    }
}
