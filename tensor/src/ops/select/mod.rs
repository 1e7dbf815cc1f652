//! `where`: pick elements from one of two tensors by a mask,
//! `out[i] = cond[i] != 0 ? a[i] : b[i]`, all three broadcast together.
//!
//! With the comparison masks (`gt`, `ge`, `eq`) this expresses any piecewise
//! function; autograd uses it to route gradients (relu, max).

mod cpu;
mod gpu;

use crate::shape::broadcast_shape;
use crate::{Storage, Tensor};

impl Tensor {
    /// Elements of `a` where `self` (the mask) is non-zero, of `b`
    /// elsewhere; the three shapes broadcast together.
    pub fn select(&self, a: &Tensor, b: &Tensor) -> Tensor {
        self.same_device(a, "select");
        self.same_device(b, "select");
        let shape = broadcast_shape(
            &broadcast_shape(self.shape(), a.shape(), "select"),
            b.shape(),
            "select",
        );
        match self.storage() {
            Storage::Cpu(_) => Tensor::cpu(cpu::select(self, a, b, &shape), &shape),
            Storage::Gpu(_) => Tensor::gpu(gpu::select(self, a, b, &shape), &shape),
        }
    }
}
