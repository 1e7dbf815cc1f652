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
//!   checks and the math in its doc (`mod.rs`), the CPU version (`cpu.rs`),
//!   the GPU launcher (`gpu.rs`) and its WGSL kernels (`*.wgsl`), so one op
//!   reads whole in one place. The public method on `Tensor` checks shapes,
//!   then dispatches on where the data lives.
//! * **Shared machinery apart.** The GEMM and the threading policy of the
//!   CPU live in [`backend::cpu`]; the GPU context, buffer pool, kernel cache
//!   and batched submission in [`backend::gpu`].
//!
//! ## Devices
//!
//! * **CPU**: ndarray for views and broadcasting, rayon to spread work over
//!   cores, and the `gemm` crate (AVX-512 kernels chosen at run time) for
//!   matrix products and for convolutions lowered to products (im2col, or
//!   Winograd F(2x2, 3x3) for wide 3x3 stride-1 layers:
//!   [`ops::conv2d::winograd`]).
//! * **GPU**: wgpu compute shaders written in WGSL, on Vulkan, Metal or
//!   DX12, and on machines without a GPU through a software Vulkan driver
//!   (Mesa's llvmpipe). Ops are recorded and submitted in batches; the only
//!   wait is reading a tensor back ([`Tensor::to_vec`]). Buffers come from a
//!   pool, so a training loop stops allocating after its first step.
//!
//! [`Device::from_name`] and [`Device::from_env`] (`BYOL_DEVICE`) pick one;
//! [`Tensor::to_device`] moves data between them.
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

#![warn(missing_docs)]

pub mod backend;
mod device;
pub mod ops;
pub mod shape;
mod storage;
mod tensor;
pub mod testing;

pub use backend::cpu::alloc::reuse_freed_memory;
pub use device::{Device, DeviceError};
pub use ops::conv2d::Conv2dParams;
pub use ops::pool::Pool2dParams;
pub use storage::Storage;
pub use tensor::Tensor;
