//! The ops, one folder each.
//!
//! Every folder holds a `mod.rs` with the public methods on
//! [`Tensor`](crate::Tensor) (shape checks, the math in the doc comment, the
//! dispatch on the device) and a `cpu.rs` with the CPU kernel. Each CPU
//! kernel is tested against a plain loop that is obviously correct, on small
//! odd shapes, in a `tests` module at the bottom of its file.

pub mod batchnorm;
pub mod binary;
pub mod conv2d;
pub mod index;
pub mod layout;
pub mod matmul;
pub mod pool;
pub mod reduce;
pub mod select;
pub mod softmax;
pub mod unary;
