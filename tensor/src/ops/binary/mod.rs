//! Elementwise binary ops with NumPy broadcasting: `out[i] = f(a[i'], b[i''])`.
//!
//! The two shapes are aligned at their last axis; along every axis the sizes
//! must match or one of them be 1, in which case that operand repeats along
//! the axis (see [`broadcast_shape`]). `[N, C] + [C]` adds a
//! bias to every row; `[N, C, H, W] * [1, C, 1, 1]` scales every channel.
//!
//! The comparison ops return masks: 1.0 where the relation holds, else 0.0.

mod cpu;
mod gpu;

use crate::shape::broadcast_shape;
use crate::{Storage, Tensor};

/// Which binary function to apply. The GPU kernel will switch on the same
/// list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `max(a, b)`
    Maximum,
    /// `min(a, b)`
    Minimum,
    /// `1` if `a > b` else `0`
    Gt,
    /// `1` if `a >= b` else `0`
    Ge,
    /// `1` if `a == b` else `0`
    Eq,
    /// `a` where `b > 0`, else `0`: ReLU's backward rule, with `a` the
    /// incoming gradient and `b` ReLU's output (a select, not a product, so
    /// a non-finite `a` where `b ≤ 0` still gives 0, as in PyTorch).
    WherePositive,
    /// `max(a + b, 0)`: a residual connection's sum and the ReLU after it,
    /// in one pass.
    AddRelu,
}

impl BinaryOp {
    /// The op's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::Gt => "gt",
            BinaryOp::Ge => "ge",
            BinaryOp::Eq => "eq",
            BinaryOp::WherePositive => "where_positive",
            BinaryOp::AddRelu => "add_relu",
        }
    }

    /// The function on one pair of elements.
    #[inline(always)]
    pub fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Maximum => a.max(b),
            BinaryOp::Minimum => a.min(b),
            BinaryOp::Gt => (a > b) as u8 as f32,
            BinaryOp::Ge => (a >= b) as u8 as f32,
            BinaryOp::Eq => (a == b) as u8 as f32,
            BinaryOp::WherePositive => {
                if b > 0.0 {
                    a
                } else {
                    0.0
                }
            }
            BinaryOp::AddRelu => crate::ops::unary::relu(a + b),
        }
    }
}

impl Tensor {
    /// Applies `op` elementwise with broadcasting. The named methods below
    /// are the usual way in.
    pub fn binary(&self, other: &Tensor, op: BinaryOp) -> Tensor {
        self.same_device(other, op.name());
        let shape = broadcast_shape(self.shape(), other.shape(), op.name());
        match (self.storage(), other.storage()) {
            (Storage::Cpu(_), Storage::Cpu(_)) => {
                Tensor::cpu(cpu::binary(self, other, &shape, op), &shape)
            }
            _ => Tensor::gpu(gpu::binary(self, other, &shape, op), &shape),
        }
    }

    /// `self + other`, broadcasting.
    pub fn add(&self, other: &Tensor) -> Tensor {
        self.binary(other, BinaryOp::Add)
    }

    /// `self - other`, broadcasting.
    pub fn sub(&self, other: &Tensor) -> Tensor {
        self.binary(other, BinaryOp::Sub)
    }

    /// `self * other` elementwise, broadcasting.
    pub fn mul(&self, other: &Tensor) -> Tensor {
        self.binary(other, BinaryOp::Mul)
    }

    /// `self / other` elementwise, broadcasting.
    pub fn div(&self, other: &Tensor) -> Tensor {
        self.binary(other, BinaryOp::Div)
    }

    /// `max(self, other)` elementwise, broadcasting.
    pub fn maximum(&self, other: &Tensor) -> Tensor {
        self.binary(other, BinaryOp::Maximum)
    }

    /// `min(self, other)` elementwise, broadcasting.
    pub fn minimum(&self, other: &Tensor) -> Tensor {
        self.binary(other, BinaryOp::Minimum)
    }

    /// Mask of `self > other` (1.0 or 0.0), broadcasting.
    pub fn gt(&self, other: &Tensor) -> Tensor {
        self.binary(other, BinaryOp::Gt)
    }

    /// Mask of `self >= other` (1.0 or 0.0), broadcasting.
    pub fn ge(&self, other: &Tensor) -> Tensor {
        self.binary(other, BinaryOp::Ge)
    }

    /// Mask of `self == other` (1.0 or 0.0), broadcasting.
    pub fn eq(&self, other: &Tensor) -> Tensor {
        self.binary(other, BinaryOp::Eq)
    }

    /// `self` where `other > 0`, else 0, broadcasting: the backward rule of
    /// ReLU (`dx = dz` where the output `z` is positive) in one pass.
    pub fn where_positive(&self, other: &Tensor) -> Tensor {
        self.binary(other, BinaryOp::WherePositive)
    }

    /// `max(self + other, 0)`, broadcasting: the sum and ReLU at the end of
    /// a residual block without writing the sum.
    pub fn add_relu(&self, other: &Tensor) -> Tensor {
        self.binary(other, BinaryOp::AddRelu)
    }
}
