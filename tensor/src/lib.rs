//! # tensor: the numeric base of the stack
//!
//! Every layer above this one (autograd, models, the BYOL trainer) talks in
//! [`Tensor`]s: a flat buffer of `f32`, a shape, and the [`Device`] that holds
//! the buffer. This crate knows nothing of gradients or networks; it only
//! computes, as fast as the hardware allows, the handful of array operations a
//! ResNet trained with BYOL needs.
//!
//! ## The ideas
//!
//! * **Contiguous and row-major, always.** A tensor's elements are stored in
//!   one buffer, the last axis varying fastest. An op that changes layout
//!   (transpose, permute, concat) writes a new buffer instead of keeping
//!   strides around. That costs a copy now and then, but every kernel can
//!   assume the simplest layout, and the CPU and GPU versions of an op stay
//!   easy to read side by side.
//! * **Immutable values.** Ops take tensors by reference and return new ones.
//!   Cloning a tensor is cheap: the buffer is shared behind an `Arc`.
//! * **One folder per op.** `ops/conv2d/` holds the public op with its shape
//!   checks and the math in its doc (`mod.rs`) and the CPU version (`cpu.rs`);
//!   the GPU version will sit beside them. The public method on `Tensor`
//!   checks shapes, then dispatches on where the data lives.
//! * **Shared machinery apart.** The GEMM (matrix product) and the rules for
//!   when to split work across threads live in [`backend::cpu`].
//!
//! ## Devices
//!
//! Today the only backend is the CPU one: ndarray for storage views and
//! broadcasting, rayon to spread work over cores, and the `gemm` crate (with
//! AVX-512 kernels chosen at run time) for matrix products and for
//! convolutions lowered to matrix products (im2col). The GPU backend
//! (wgpu compute shaders) is issue 3; the dispatch in each op is shaped for
//! it already.
//!
//! ## Errors
//!
//! A shape that does not fit an op (adding a `[2, 3]` to a `[4]`, an axis
//! out of range) is a programming error, so it panics with a message that
//! names the op and the shapes. Values a user supplies (files, flags) are
//! validated by the layers above before they reach these ops.
//!
//! ```
//! use tensor::{Device, Tensor};
//! let dev = Device::Cpu;
//! let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2], &dev);
//! let b = Tensor::ones(&[2], &dev);
//! let c = a.add(&b).matmul(&a); // broadcasting add, then a matrix product
//! assert_eq!(c.shape(), &[2, 2]);
//! assert_eq!(c.to_vec(), vec![11.0, 16.0, 19.0, 28.0]);
//! ```

pub mod backend;
mod device;
pub mod ops;
mod rng;
pub mod shape;
mod storage;
mod tensor;

pub use device::Device;
pub use ops::conv2d::Conv2dParams;
pub use ops::pool::Pool2dParams;
pub use rng::Rng;
pub use storage::Storage;
pub use tensor::Tensor;
