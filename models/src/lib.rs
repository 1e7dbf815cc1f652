//! # models: the networks BYOL trains
//!
//! This layer turns the differentiable ops of `autograd` into the networks
//! of the paper: a ResNet encoder and the MLP heads used as projector and
//! predictor.
//!
//! * [`Module`]: named parameters and buffers, a forward pass over
//!   [`autograd::Var`]s recorded on the step's [`autograd::Tape`], and a
//!   training / evaluation mode.
//! * [`layers`]: `Conv2d`, `BatchNorm` (1-d and 2-d), `Linear`; ReLU and
//!   pooling are plain ops on `Var`.
//! * [`ResNet`]: ResNet-18, -34, -50 with an ImageNet or CIFAR stem, any
//!   input channel count and base width, ending at global average pooling.
//! * [`MlpHead`]: Linear → BatchNorm1d → ReLU → Linear.
//! * [`weights`]: safetensors files with torchvision's names, so weights
//!   move to and from PyTorch with nothing renamed.
//!
//! ```
//! use autograd::{no_grad, Tape, Var};
//! use models::{Arch, Module, ResNet, ResNetConfig, Stem};
//! use tensor::{Device, Tensor};
//!
//! let dev = Device::Cpu;
//! let config = ResNetConfig { arch: Arch::ResNet18, stem: Stem::Cifar, in_channels: 1, width: 4 };
//! let encoder = ResNet::new(config, 0, &dev);
//! encoder.set_training(false);
//! let images = Var::constant(Tensor::randn(&[2, 1, 16, 16], 0.0, 1.0, 1, &dev));
//! let features = no_grad(|| encoder.forward(&Tape::new(), &images));
//! assert_eq!(features.shape(), &[2, encoder.feature_dim()]);
//! assert_eq!(encoder.parameters()[0].name(), "conv1.weight");
//! ```

#![warn(missing_docs)]

mod head;
pub mod init;
pub mod layers;
mod module;
mod resnet;
pub mod weights;

pub use head::MlpHead;
pub use module::{join, Module};
pub use resnet::{Arch, ResNet, ResNetConfig, Stem};
