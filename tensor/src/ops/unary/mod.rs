//! Elementwise unary ops, `out[i] = f(x[i])`, including the ops that pair a
//! tensor with one scalar.
//!
//! | op | f(x) |
//! |---|---|
//! | `neg` | -x |
//! | `relu` | max(x, 0); a NaN stays NaN, as in PyTorch |
//! | `exp`, `log`, `sqrt`, `abs` | as named (natural log) |
//! | `rsqrt` | 1 / sqrt(x) |
//! | `square` | x² |
//! | `powf(p)` | x^p |
//! | `add_scalar(s)`, `sub_scalar(s)` | x + s, x - s |
//! | `mul_scalar(s)`, `div_scalar(s)` | x · s, x / s |
//! | `maximum_scalar(s)`, `minimum_scalar(s)` | max(x, s), min(x, s) |
//! | `gt_scalar(s)`, `ge_scalar(s)`, `eq_scalar(s)` | 1.0 if the relation holds, else 0.0 |

mod cpu;
mod gpu;

use crate::{Storage, Tensor};

/// Which function to apply to every element. Variants with a value carry
/// their scalar; the GPU kernel will switch on the same list.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `max(x, 0)`
    Relu,
    /// `e^x`
    Exp,
    /// `ln x`
    Log,
    /// `sqrt x`
    Sqrt,
    /// `1 / sqrt x`
    Rsqrt,
    /// `|x|`
    Abs,
    /// `x²`
    Square,
    /// `x^p`
    Powf(f32),
    /// `x + s`
    AddScalar(f32),
    /// `x · s`
    MulScalar(f32),
    /// `x / s`
    DivScalar(f32),
    /// `max(x, s)`
    MaxScalar(f32),
    /// `min(x, s)`
    MinScalar(f32),
    /// `1` if `x > s` else `0`
    GtScalar(f32),
    /// `1` if `x >= s` else `0`
    GeScalar(f32),
    /// `1` if `x == s` else `0`
    EqScalar(f32),
}

/// ReLU of one value, `max(x, 0)`, written so that a NaN stays NaN, as in
/// PyTorch: `x <= 0` is false for a NaN, which then passes through.
/// (`f32::max(x, 0)` would turn it into 0 and hide every NaN upstream of a
/// ReLU.) Compiles to a compare and a blend, as fast as `max`.
#[inline(always)]
pub fn relu(x: f32) -> f32 {
    if x <= 0.0 {
        0.0
    } else {
        x
    }
}

impl UnaryOp {
    /// The function on one element.
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            UnaryOp::Neg => -x,
            UnaryOp::Relu => relu(x),
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Rsqrt => 1.0 / x.sqrt(),
            UnaryOp::Abs => x.abs(),
            UnaryOp::Square => x * x,
            UnaryOp::Powf(p) => x.powf(p),
            UnaryOp::AddScalar(s) => x + s,
            UnaryOp::MulScalar(s) => x * s,
            UnaryOp::DivScalar(s) => x / s,
            UnaryOp::MaxScalar(s) => x.max(s),
            UnaryOp::MinScalar(s) => x.min(s),
            UnaryOp::GtScalar(s) => (x > s) as u8 as f32,
            UnaryOp::GeScalar(s) => (x >= s) as u8 as f32,
            UnaryOp::EqScalar(s) => (x == s) as u8 as f32,
        }
    }
}

impl Tensor {
    /// Applies `op` to every element. The named methods below are the usual
    /// way in.
    pub fn unary(&self, op: UnaryOp) -> Tensor {
        match self.storage() {
            Storage::Cpu(_) => Tensor::cpu(cpu::unary(self, op), self.shape()),
            Storage::Gpu(_) => Tensor::gpu(gpu::unary(self, op), self.shape()),
        }
    }

    /// `-x`
    pub fn neg(&self) -> Tensor {
        self.unary(UnaryOp::Neg)
    }
    /// `max(x, 0)`
    pub fn relu(&self) -> Tensor {
        self.unary(UnaryOp::Relu)
    }
    /// `e^x`
    pub fn exp(&self) -> Tensor {
        self.unary(UnaryOp::Exp)
    }
    /// Natural logarithm (`NaN` below 0, `-inf` at 0, as IEEE says).
    pub fn log(&self) -> Tensor {
        self.unary(UnaryOp::Log)
    }
    /// Square root.
    pub fn sqrt(&self) -> Tensor {
        self.unary(UnaryOp::Sqrt)
    }
    /// `1 / sqrt(x)`
    pub fn rsqrt(&self) -> Tensor {
        self.unary(UnaryOp::Rsqrt)
    }
    /// `|x|`
    pub fn abs(&self) -> Tensor {
        self.unary(UnaryOp::Abs)
    }
    /// `x²`
    pub fn square(&self) -> Tensor {
        self.unary(UnaryOp::Square)
    }
    /// `x^p`
    pub fn powf(&self, p: f32) -> Tensor {
        self.unary(UnaryOp::Powf(p))
    }
    /// `x + s`
    pub fn add_scalar(&self, s: f32) -> Tensor {
        self.unary(UnaryOp::AddScalar(s))
    }
    /// `x - s`
    pub fn sub_scalar(&self, s: f32) -> Tensor {
        self.unary(UnaryOp::AddScalar(-s))
    }
    /// `x · s`
    pub fn mul_scalar(&self, s: f32) -> Tensor {
        self.unary(UnaryOp::MulScalar(s))
    }
    /// `x / s`
    pub fn div_scalar(&self, s: f32) -> Tensor {
        self.unary(UnaryOp::DivScalar(s))
    }
    /// `max(x, s)`
    pub fn maximum_scalar(&self, s: f32) -> Tensor {
        self.unary(UnaryOp::MaxScalar(s))
    }
    /// `min(x, s)`
    pub fn minimum_scalar(&self, s: f32) -> Tensor {
        self.unary(UnaryOp::MinScalar(s))
    }
    /// Mask of `x > s`.
    pub fn gt_scalar(&self, s: f32) -> Tensor {
        self.unary(UnaryOp::GtScalar(s))
    }
    /// Mask of `x >= s`.
    pub fn ge_scalar(&self, s: f32) -> Tensor {
        self.unary(UnaryOp::GeScalar(s))
    }
    /// Mask of `x == s`.
    pub fn eq_scalar(&self, s: f32) -> Tensor {
        self.unary(UnaryOp::EqScalar(s))
    }
}
