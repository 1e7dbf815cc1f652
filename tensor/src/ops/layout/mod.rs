//! Ops that move elements without computing new values: reshape,
//! transpose / permute, concat and split.
//!
//! `reshape` keeps the buffer (row-major order does not change) and so is
//! free. The others write a new contiguous buffer: a permuted tensor `y =
//! x.permute(p)` has `y.shape[i] = x.shape[p[i]]` and `y[j_0, .., j_r] = x[i]`
//! where `i[p[a]] = j_a`.

mod cpu;
mod gpu;

use crate::shape::{check_axis, numel, split_ranges};
use crate::{Storage, Tensor};

impl Tensor {
    /// The same elements with a new shape of the same element count (no
    /// copy).
    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        assert_eq!(
            numel(shape),
            self.numel(),
            "reshape: cannot reshape {:?} ({} elements) to {shape:?} ({} elements)",
            self.shape(),
            self.numel(),
            numel(shape)
        );
        Tensor::from_storage(self.storage().clone(), shape)
    }

    /// Reorders the axes: axis `i` of the result is axis `perm[i]` of
    /// `self`. Writes a new contiguous buffer.
    pub fn permute(&self, perm: &[usize]) -> Tensor {
        let r = self.rank();
        let mut seen = vec![false; r];
        let valid = perm.len() == r
            && perm
                .iter()
                .all(|&p| p < r && !std::mem::replace(&mut seen[p], true));
        assert!(
            valid,
            "permute: {perm:?} is not a permutation of the axes of shape {:?}",
            self.shape()
        );
        let shape: Vec<usize> = perm.iter().map(|&p| self.shape()[p]).collect();
        match self.storage() {
            Storage::Cpu(_) => Tensor::cpu(cpu::permute(self, perm), &shape),
            Storage::Gpu(_) => Tensor::gpu(gpu::permute(self, perm), &shape),
        }
    }

    /// Swaps two axes (materialised).
    pub fn transpose(&self, a: usize, b: usize) -> Tensor {
        check_axis(a, self.shape(), "transpose");
        check_axis(b, self.shape(), "transpose");
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// The transpose of a 2-D tensor.
    pub fn t(&self) -> Tensor {
        assert_eq!(
            self.rank(),
            2,
            "t: needs a 2-D tensor, got shape {:?}",
            self.shape()
        );
        self.transpose(0, 1)
    }

    /// Joins tensors along `axis`; all other sizes must agree.
    pub fn concat(parts: &[&Tensor], axis: usize) -> Tensor {
        assert!(!parts.is_empty(), "concat: needs at least one tensor");
        let first = parts[0];
        check_axis(axis, first.shape(), "concat");
        let mut shape = first.shape().to_vec();
        shape[axis] = 0;
        for p in parts {
            first.same_device(p, "concat");
            let same_rest = p.rank() == first.rank()
                && (0..first.rank()).all(|i| i == axis || p.shape()[i] == first.shape()[i]);
            assert!(
                same_rest,
                "concat: shape {:?} does not fit {:?} along axis {axis}",
                p.shape(),
                first.shape()
            );
            shape[axis] += p.shape()[axis];
        }
        match first.storage() {
            Storage::Cpu(_) => Tensor::cpu(cpu::concat(parts, axis), &shape),
            Storage::Gpu(_) => Tensor::gpu(gpu::concat(parts, axis), &shape),
        }
    }

    /// Splits along `axis` into pieces of the given sizes, which must add up
    /// to the axis length.
    pub fn split(&self, sizes: &[usize], axis: usize) -> Vec<Tensor> {
        split_ranges(self.shape(), sizes, axis, "split")
            .into_iter()
            .map(|(start, len)| self.narrow(axis, start, len))
            .collect()
    }

    /// The slice `start..start + len` along `axis` (materialised).
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Tensor {
        check_axis(axis, self.shape(), "narrow");
        assert!(
            start + len <= self.shape()[axis],
            "narrow: range {start}..{} is outside axis {axis} of shape {:?}",
            start + len,
            self.shape()
        );
        let mut shape = self.shape().to_vec();
        shape[axis] = len;
        match self.storage() {
            Storage::Cpu(_) => Tensor::cpu(cpu::narrow(self, axis, start, len), &shape),
            Storage::Gpu(_) => Tensor::gpu(gpu::narrow(self, axis, start, len), &shape),
        }
    }
}
