//! Reductions: collapse chosen axes with sum, mean, max, argmax or variance.
//!
//! For `x` of shape `[2, 3, 4]`, `x.sum(&[1], false)` has shape `[2, 4]`
//! with `out[i, k] = Σ_j x[i, j, k]`; with `keep_dims` it has shape
//! `[2, 1, 4]`, which broadcasts back against `x` (how a mean is
//! subtracted). Several axes may be reduced at once.
//!
//! * mean = sum / n, n the number of elements reduced over;
//! * variance = Σ (x - mean)² / (n - ddof), `ddof` 0 (biased, the
//!   normalisation batch norm uses) or 1 (unbiased, its running estimate);
//! * argmax returns the index (as `f32`) of the first maximum along one
//!   axis; NaNs are skipped.
//!
//! The whole-tensor forms (`sum_all`, `mean_all`, `norm_l2`) accumulate in
//! `f64` and return a one-element tensor on the same device, so a loss can
//! stay on the GPU until it is read.

mod cpu;
mod gpu;

use crate::shape::{check_axis, numel, reduced_shape};
use crate::{Storage, Tensor};

/// How a reduction combines elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// `Σ x`
    Sum,
    /// `max x`
    Max,
}

impl Tensor {
    fn reduce(&self, axes: &[usize], keep_dims: bool, op: ReduceOp, name: &str) -> Tensor {
        let shape = reduced_shape(self.shape(), axes, keep_dims, name);
        assert!(
            op != ReduceOp::Max || axes.iter().all(|&a| self.shape()[a] > 0),
            "{name}: cannot take the max over an empty axis of shape {:?}",
            self.shape()
        );
        match self.storage() {
            Storage::Cpu(_) => Tensor::cpu(cpu::reduce(self, axes, op), &shape),
            Storage::Gpu(_) => Tensor::gpu(gpu::reduce(self, axes, op), &shape),
        }
    }

    /// Sum over `axes`.
    pub fn sum(&self, axes: &[usize], keep_dims: bool) -> Tensor {
        self.reduce(axes, keep_dims, ReduceOp::Sum, "sum")
    }

    /// Mean over `axes`.
    pub fn mean(&self, axes: &[usize], keep_dims: bool) -> Tensor {
        let n: usize = axes.iter().map(|&a| self.dim(a)).product();
        self.sum(axes, keep_dims).div_scalar(n as f32)
    }

    /// Maximum over `axes`.
    pub fn max(&self, axes: &[usize], keep_dims: bool) -> Tensor {
        self.reduce(axes, keep_dims, ReduceOp::Max, "max")
    }

    /// Variance over `axes`: biased (divide by n) or `unbiased` (by n - 1).
    pub fn var(&self, axes: &[usize], unbiased: bool, keep_dims: bool) -> Tensor {
        let n: usize = axes.iter().map(|&a| self.dim(a)).product();
        let ddof = if unbiased { 1 } else { 0 };
        assert!(
            n > ddof,
            "var: {n} element(s) over axes {axes:?} of shape {:?} is too few (unbiased: {unbiased})",
            self.shape()
        );
        let centred = self.sub(&self.mean(axes, true));
        centred
            .square()
            .sum(axes, keep_dims)
            .div_scalar((n - ddof) as f32)
    }

    /// Index of the first maximum along `axis`, as `f32`.
    pub fn argmax(&self, axis: usize, keep_dims: bool) -> Tensor {
        check_axis(axis, self.shape(), "argmax");
        assert!(
            self.shape()[axis] > 0,
            "argmax: axis {axis} of shape {:?} is empty",
            self.shape()
        );
        let shape = reduced_shape(self.shape(), &[axis], keep_dims, "argmax");
        match self.storage() {
            Storage::Cpu(_) => Tensor::cpu(cpu::argmax(self, axis), &shape),
            Storage::Gpu(_) => Tensor::gpu(gpu::argmax(self, axis), &shape),
        }
    }

    /// Sum of every element, as a one-element tensor of shape `[]`.
    pub fn sum_all(&self) -> Tensor {
        match self.storage() {
            Storage::Cpu(_) => Tensor::cpu(vec![cpu::sum_all(self, false) as f32], &[]),
            Storage::Gpu(_) => Tensor::gpu(gpu::sum_all(self, false), &[]),
        }
    }

    /// Mean of every element, shape `[]`.
    pub fn mean_all(&self) -> Tensor {
        assert!(self.numel() > 0, "mean_all: the tensor is empty");
        let n = numel(self.shape()) as f64;
        match self.storage() {
            Storage::Cpu(_) => Tensor::cpu(vec![(cpu::sum_all(self, false) / n) as f32], &[]),
            Storage::Gpu(_) => self.sum_all().div_scalar(n as f32),
        }
    }

    /// Euclidean norm of all elements, `sqrt(Σ x²)`, shape `[]`.
    pub fn norm_l2(&self) -> Tensor {
        match self.storage() {
            Storage::Cpu(_) => Tensor::cpu(vec![cpu::sum_all(self, true).sqrt() as f32], &[]),
            Storage::Gpu(_) => Tensor::gpu(gpu::sum_all(self, true), &[]).sqrt(),
        }
    }
}
