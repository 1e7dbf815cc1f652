//! Gathering rows by index, and one-hot encoding.
//!
//! * `index_select(axis, idx)`: `out[.., j, ..] = x[.., idx[j], ..]` along
//!   `axis`; picks a minibatch out of a data set, or the rows of labels.
//! * `one_hot(labels, classes)`: `out[i, c] = 1` if `labels[i] == c` else 0.
//!
//! Indices come from the host as `usize`: they are chosen by the program
//! (batch order, labels read from a file), not computed on the device.

mod cpu;
mod gpu;

use crate::shape::check_axis;
use crate::{Device, Storage, Tensor};

impl Tensor {
    /// Gathers the slices at `indices` along `axis`. Panics, naming the
    /// index, if one is out of range.
    pub fn index_select(&self, axis: usize, indices: &[usize]) -> Tensor {
        check_axis(axis, self.shape(), "index_select");
        let len = self.shape()[axis];
        if let Some(bad) = indices.iter().find(|&&i| i >= len) {
            panic!(
                "index_select: index {bad} is out of range for axis {axis} of shape {:?}",
                self.shape()
            );
        }
        let mut shape = self.shape().to_vec();
        shape[axis] = indices.len();
        match self.storage() {
            Storage::Cpu(_) => Tensor::cpu(cpu::index_select(self, axis, indices), &shape),
            Storage::Gpu(_) => Tensor::gpu(gpu::index_select(self, axis, indices), &shape),
        }
    }

    /// A `[labels.len(), classes]` tensor with a 1 in each row's label
    /// column. Panics if a label is not below `classes`.
    pub fn one_hot(labels: &[usize], classes: usize, device: &Device) -> Tensor {
        if let Some(bad) = labels.iter().find(|&&l| l >= classes) {
            panic!("one_hot: label {bad} is not below the class count {classes}");
        }
        let mut data = vec![0.0f32; labels.len() * classes];
        for (row, &l) in labels.iter().enumerate() {
            data[row * classes + l] = 1.0;
        }
        Tensor::from_vec(data, &[labels.len(), classes], device)
    }
}
