//! The layers a ResNet and its heads are built from. Each owns its
//! parameters (named from a prefix) and implements [`Module`](crate::Module).
//! ReLU, max-pooling and global average pooling have no parameters: they
//! are plain ops on [`Var`](autograd::Var) (`relu`, `max_pool2d`,
//! `global_avg_pool2d`).

mod batchnorm;
mod conv;
mod linear;

pub use batchnorm::BatchNorm;
pub use conv::Conv2d;
pub use linear::Linear;
