//! The [`Tensor`] type: constructors, accessors and readback.
//!
//! The ops themselves are methods too, but each lives in its own folder under
//! `ops/`; this file holds only what every tensor has.

use crate::backend::gpu::GpuBuffer;
use crate::shape::numel;
use crate::{Device, Storage};
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use rng::Rng;
use std::fmt;
use std::sync::Arc;

/// An n-dimensional array of `f32`, stored contiguously in row-major order
/// on a [`Device`].
///
/// Cloning is cheap (the buffer is shared); every op returns a new tensor.
#[derive(Clone)]
pub struct Tensor {
    shape: Vec<usize>,
    storage: Storage,
}

impl Tensor {
    /// Wraps a storage whose length matches `shape`. Ops build their results
    /// through this.
    pub fn from_storage(storage: Storage, shape: &[usize]) -> Tensor {
        assert_eq!(
            storage.len(),
            numel(shape),
            "Tensor::from_storage: a buffer of {} elements cannot have shape {shape:?}",
            storage.len()
        );
        Tensor {
            shape: shape.to_vec(),
            storage,
        }
    }

    /// A CPU tensor from a row-major buffer; the crate's internal shortcut.
    pub(crate) fn cpu(data: Vec<f32>, shape: &[usize]) -> Tensor {
        Tensor::from_storage(Storage::Cpu(Arc::new(data)), shape)
    }

    /// A tensor holding `data` (row-major) with the given shape. Panics if
    /// the length does not match the shape.
    pub fn from_vec(data: Vec<f32>, shape: &[usize], device: &Device) -> Tensor {
        assert_eq!(
            data.len(),
            numel(shape),
            "Tensor::from_vec: {} values cannot fill shape {shape:?} ({} elements)",
            data.len(),
            numel(shape)
        );
        match device {
            Device::Cpu => Tensor::cpu(data, shape),
            Device::Gpu(ctx) => {
                let buf = ctx.upload(bytemuck::cast_slice(&data));
                Tensor::gpu(buf, shape)
            }
        }
    }

    /// A GPU tensor around a pooled buffer; the GPU kernels build their
    /// results through this.
    pub(crate) fn gpu(buf: GpuBuffer, shape: &[usize]) -> Tensor {
        Tensor::from_storage(Storage::Gpu(Arc::new(buf)), shape)
    }

    /// The same values on `device` (a copy when the device differs, a cheap
    /// clone when it is the same).
    pub fn to_device(&self, device: &Device) -> Tensor {
        if &self.device() == device {
            return self.clone();
        }
        Tensor::from_vec(self.to_vec(), &self.shape, device)
    }

    /// A tensor copied from an ndarray array of any layout.
    pub fn from_ndarray(array: &ArrayD<f32>, device: &Device) -> Tensor {
        let data: Vec<f32> = array.as_standard_layout().iter().copied().collect();
        Tensor::from_vec(data, array.shape(), device)
    }

    /// A tensor with every element `value`.
    pub fn full(shape: &[usize], value: f32, device: &Device) -> Tensor {
        Tensor::from_vec(vec![value; numel(shape)], shape, device)
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize], device: &Device) -> Tensor {
        Tensor::full(shape, 0.0, device)
    }

    /// A tensor of ones.
    pub fn ones(shape: &[usize], device: &Device) -> Tensor {
        Tensor::full(shape, 1.0, device)
    }

    /// A one-element tensor of shape `[]`.
    pub fn scalar(value: f32, device: &Device) -> Tensor {
        Tensor::full(&[], value, device)
    }

    /// Independent draws from the normal distribution N(`mean`, `std`²),
    /// fixed by `seed` (drawn with the workspace's generator, the `rng` crate).
    pub fn randn(shape: &[usize], mean: f32, std: f32, seed: u64, device: &Device) -> Tensor {
        let mut rng = Rng::from_seed(seed);
        let data = (0..numel(shape))
            .map(|_| mean + std * rng.normal())
            .collect();
        Tensor::from_vec(data, shape, device)
    }

    /// Independent draws from the uniform distribution on `[low, high)`,
    /// fixed by `seed`.
    pub fn rand_uniform(
        shape: &[usize],
        low: f32,
        high: f32,
        seed: u64,
        device: &Device,
    ) -> Tensor {
        let mut rng = Rng::from_seed(seed);
        let data = (0..numel(shape))
            .map(|_| low + (high - low) * rng.next_f32())
            .collect();
        Tensor::from_vec(data, shape, device)
    }

    /// The size of each axis.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of axes.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// The size of one axis. Panics if the axis is out of range.
    pub fn dim(&self, axis: usize) -> usize {
        crate::shape::check_axis(axis, &self.shape, "Tensor::dim");
        self.shape[axis]
    }

    /// The device that holds the data.
    pub fn device(&self) -> Device {
        self.storage.device()
    }

    /// The buffer behind this tensor.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Copies the elements out, in row-major order (on the GPU this is the
    /// one place a caller waits for the device).
    pub fn to_vec(&self) -> Vec<f32> {
        match &self.storage {
            Storage::Cpu(v) => v.as_ref().clone(),
            Storage::Gpu(b) => {
                let words = b.context().read(b);
                let mut v: Vec<f32> = bytemuck::cast_slice(&words).to_vec();
                v.truncate(self.numel());
                v
            }
        }
    }

    /// The value of a one-element tensor. Panics on any other size.
    pub fn item(&self) -> f32 {
        assert_eq!(
            self.numel(),
            1,
            "Tensor::item: needs exactly one element, shape is {:?}",
            self.shape
        );
        self.to_vec()[0]
    }

    /// Copies the elements into an owned ndarray array of the same shape.
    pub fn to_ndarray(&self) -> ArrayD<f32> {
        ArrayD::from_shape_vec(IxDyn(&self.shape), self.to_vec())
            .expect("a tensor's buffer always matches its shape")
    }

    /// The CPU buffer, for CPU kernels. Panics if the tensor lives
    /// elsewhere, naming `op`.
    pub(crate) fn cpu_slice(&self, op: &str) -> &[f32] {
        match &self.storage {
            Storage::Cpu(v) => v,
            Storage::Gpu(_) => panic!("{op}: internal error, a CPU kernel was given a GPU tensor"),
        }
    }

    /// The GPU buffer, for GPU kernels. Panics if the tensor lives
    /// elsewhere, naming `op`.
    pub(crate) fn gpu_buffer(&self, op: &str) -> &GpuBuffer {
        match &self.storage {
            Storage::Gpu(b) => b,
            Storage::Cpu(_) => panic!("{op}: internal error, a GPU kernel was given a CPU tensor"),
        }
    }

    /// A borrowed ndarray view of a CPU tensor, for the kernels that use
    /// ndarray's broadcasting and axis iteration.
    pub(crate) fn cpu_view(&self, op: &str) -> ArrayViewD<'_, f32> {
        ArrayViewD::from_shape(IxDyn(&self.shape), self.cpu_slice(op))
            .expect("a tensor's buffer always matches its shape")
    }

    /// Panics, naming `op`, unless `other` lives on the same device.
    pub(crate) fn same_device(&self, other: &Tensor, op: &str) {
        let (a, b) = (self.device(), other.device());
        assert!(
            a == b,
            "{op}: operands live on different devices ({a} and {b}); move one with to_device"
        );
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        let v = self.to_vec();
        write!(
            f,
            "Tensor(shape={:?}, device={}, data=",
            self.shape,
            self.device()
        )?;
        if v.len() <= SHOWN {
            write!(f, "{v:?})")
        } else {
            write!(f, "{:?} ... {} more)", &v[..SHOWN], v.len() - SHOWN)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_and_readback() {
        let d = Device::Cpu;
        let t = Tensor::from_vec((0..6).map(|i| i as f32).collect(), &[2, 3], &d);
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.numel(), 6);
        assert_eq!(t.to_ndarray()[[1, 2]], 5.0);
        let back = Tensor::from_ndarray(&t.to_ndarray(), &d);
        assert_eq!(back.to_vec(), t.to_vec());
        assert_eq!(Tensor::zeros(&[3], &d).to_vec(), vec![0.0; 3]);
        assert_eq!(Tensor::ones(&[1, 1], &d).to_vec(), vec![1.0]);
        assert_eq!(Tensor::full(&[2], 2.5, &d).to_vec(), vec![2.5, 2.5]);
        assert_eq!(Tensor::scalar(4.0, &d).item(), 4.0);
    }

    #[test]
    fn from_ndarray_of_a_transposed_array_is_row_major() {
        let a = ndarray::Array2::from_shape_vec((2, 3), vec![1., 2., 3., 4., 5., 6.])
            .unwrap()
            .reversed_axes()
            .into_dyn();
        let t = Tensor::from_ndarray(&a, &Device::Cpu);
        assert_eq!(t.shape(), &[3, 2]);
        assert_eq!(t.to_vec(), vec![1., 4., 2., 5., 3., 6.]);
    }

    #[test]
    fn seeded_random_is_reproducible_and_in_range() {
        let d = Device::Cpu;
        let a = Tensor::randn(&[33], 0.0, 1.0, 5, &d);
        let b = Tensor::randn(&[33], 0.0, 1.0, 5, &d);
        assert_eq!(a.to_vec(), b.to_vec());
        let u = Tensor::rand_uniform(&[1000], -2.0, 3.0, 9, &d).to_vec();
        assert!(u.iter().all(|&x| (-2.0..3.0).contains(&x)));
    }

    #[test]
    #[should_panic(expected = "Tensor::from_vec: 5 values cannot fill shape [2, 3]")]
    fn wrong_length_panics_with_shapes() {
        Tensor::from_vec(vec![0.0; 5], &[2, 3], &Device::Cpu);
    }
}
