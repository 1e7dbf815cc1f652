//! ResNet-18, -34 and -50 encoders (He et al. 2016), laid out and named as
//! torchvision's, without the final classifier: the encoder ends at global
//! average pooling and returns `[N, feature_dim]` features.
//!
//! ```text
//! stem      imagenet: conv1 7x7 stride 2 → bn1 → relu → max-pool 3x3 stride 2
//!           cifar:    conv1 3x3 stride 1 → bn1 → relu           (small images)
//! layer1..4 blocks at widths w, 2w, 4w, 8w; the first block of layers 2-4
//!           halves the resolution (stride 2)
//! avgpool   global average → [N, 8w] (basic blocks) or [N, 32w] (bottlenecks)
//! ```
//!
//! * A **basic block** (ResNet-18/34): `relu(bn2(conv2(relu(bn1(conv1(x))))) + x)`
//!   with two 3x3 convolutions.
//! * A **bottleneck** (ResNet-50): 1x1 down to the block's width, 3x3 at
//!   that width (carrying the stride, as torchvision does), 1x1 up to four
//!   times it, then the same residual sum.
//! * Where the stride or the channel count changes, the shortcut `x` goes
//!   through `downsample` (a 1x1 convolution with the stride, then batch
//!   norm), named `layerK.0.downsample.0` and `.1`.
//!
//! `w` (the base width) is 64 in the paper; smaller widths make CPU runs
//! practical.

use crate::init::Seeds;
use crate::layers::{BatchNorm, Conv2d};
use crate::module::{join, Module};
use autograd::{Param, Tape, Var};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use tensor::{Device, Pool2dParams, Tensor};

/// Which ResNet. Written as `resnet18`, `resnet34`, `resnet50`, and read
/// (JSON, TOML, flags) in any case, as settings before the enum were.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Arch {
    /// Basic blocks [2, 2, 2, 2].
    #[cfg_attr(feature = "clap", value(name = "resnet18"))]
    ResNet18,
    /// Basic blocks [3, 4, 6, 3].
    #[cfg_attr(feature = "clap", value(name = "resnet34"))]
    ResNet34,
    /// Bottleneck blocks [3, 4, 6, 3].
    #[cfg_attr(feature = "clap", value(name = "resnet50"))]
    ResNet50,
}

impl Arch {
    /// `resnet18`, `resnet34` or `resnet50`; `None` otherwise.
    pub fn from_name(name: &str) -> Option<Arch> {
        match name.to_ascii_lowercase().as_str() {
            "resnet18" => Some(Arch::ResNet18),
            "resnet34" => Some(Arch::ResNet34),
            "resnet50" => Some(Arch::ResNet50),
            _ => None,
        }
    }

    /// Blocks per stage.
    fn blocks(self) -> [usize; 4] {
        match self {
            Arch::ResNet18 => [2, 2, 2, 2],
            Arch::ResNet34 | Arch::ResNet50 => [3, 4, 6, 3],
        }
    }

    /// Output channels of a block relative to its width (4 for bottlenecks).
    fn expansion(self) -> usize {
        match self {
            Arch::ResNet50 => 4,
            _ => 1,
        }
    }
}

impl TryFrom<String> for Arch {
    type Error = String;

    /// [`Arch::from_name`], with serde's wording for an unknown name.
    fn try_from(name: String) -> Result<Arch, String> {
        Arch::from_name(&name).ok_or_else(|| {
            format!("unknown variant `{name}`, expected one of `resnet18`, `resnet34`, `resnet50`")
        })
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arch::ResNet18 => "resnet18",
            Arch::ResNet34 => "resnet34",
            Arch::ResNet50 => "resnet50",
        })
    }
}

/// The first layers, by image size. Written as `imagenet`, `cifar`, and
/// read in any case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Stem {
    /// 7x7 stride-2 convolution and a 3x3 stride-2 max-pool (224x224 images).
    #[cfg_attr(feature = "clap", value(name = "imagenet"))]
    ImageNet,
    /// 3x3 stride-1 convolution, no pooling (32x32 and 28x28 images).
    #[cfg_attr(feature = "clap", value(name = "cifar"))]
    Cifar,
}

impl Stem {
    /// `imagenet` or `cifar`; `None` otherwise.
    pub fn from_name(name: &str) -> Option<Stem> {
        match name.to_ascii_lowercase().as_str() {
            "imagenet" => Some(Stem::ImageNet),
            "cifar" => Some(Stem::Cifar),
            _ => None,
        }
    }
}

impl TryFrom<String> for Stem {
    type Error = String;

    /// [`Stem::from_name`], with serde's wording for an unknown name.
    fn try_from(name: String) -> Result<Stem, String> {
        Stem::from_name(&name)
            .ok_or_else(|| format!("unknown variant `{name}`, expected `imagenet` or `cifar`"))
    }
}

impl fmt::Display for Stem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stem::ImageNet => "imagenet",
            Stem::Cifar => "cifar",
        })
    }
}

/// The settings of an encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResNetConfig {
    /// ResNet-18, -34 or -50.
    pub arch: Arch,
    /// ImageNet or CIFAR stem.
    pub stem: Stem,
    /// Channels of the input images (1 for gray, 3 for RGB).
    pub in_channels: usize,
    /// Base width `w` (64 in torchvision).
    pub width: usize,
}

impl ResNetConfig {
    /// The settings of the ResNet whose torchvision-named tensors these are
    /// (a state dict, as `byol export` or PyTorch's safetensors write it), or
    /// `None` when they hold no usable 4-dimensional `conv1.weight`, or not
    /// the last block's convolution of the shape those settings give.
    ///
    /// A state dict says most of its own architecture: `conv1.weight` is
    /// `[width, in_channels, k, k]` with `k = 7` for the ImageNet stem and 3
    /// for the CIFAR one; only a ResNet-50 (bottleneck blocks) has
    /// `layer1.0.conv3`, and of the other two only a ResNet-34 has a third
    /// block in its first stage, `layer1.2`. The guess is cheap (no tensor
    /// is built), so it can be checked against what a file claims before
    /// allocating a network of that size.
    pub fn infer(tensors: &BTreeMap<String, Tensor>) -> Option<ResNetConfig> {
        let conv1 = tensors.get("conv1.weight")?;
        let &[width, in_channels, k, _] = conv1.shape() else {
            return None;
        };
        if width == 0 || in_channels == 0 {
            return None;
        }
        let arch = if tensors.contains_key("layer1.0.conv3.weight") {
            Arch::ResNet50
        } else if tensors.contains_key("layer1.2.conv1.weight") {
            Arch::ResNet34
        } else {
            Arch::ResNet18
        };
        let stem = if k == 7 { Stem::ImageNet } else { Stem::Cifar };
        // The network's largest tensor, the last convolution of its last
        // block, must be in the file with its shape: a network built from
        // these settings is then no larger than a few times the file, so a
        // small file cannot ask for a huge network.
        let last = arch.blocks()[3] - 1;
        let c8 = width.checked_mul(8)?;
        let (name, want) = match arch {
            Arch::ResNet50 => (
                format!("layer4.{last}.conv3.weight"),
                [c8.checked_mul(4)?, c8, 1, 1],
            ),
            _ => (format!("layer4.{last}.conv2.weight"), [c8, c8, 3, 3]),
        };
        if tensors.get(&name)?.shape() != want.as_slice() {
            return None;
        }
        Some(ResNetConfig {
            arch,
            stem,
            in_channels,
            width,
        })
    }
}

/// A basic block (two 3x3 convolutions) or a bottleneck (1x1, 3x3, 1x1).
struct Block {
    convs: Vec<Conv2d>,
    bns: Vec<BatchNorm>,
    downsample: Option<(Conv2d, BatchNorm)>,
}

impl Block {
    /// A block named `prefix` (e.g. `layer2.0`) from `in_ch` channels at
    /// `width`, with `stride` on its first 3x3 convolution.
    fn new(
        arch: Arch,
        prefix: &str,
        in_ch: usize,
        width: usize,
        stride: usize,
        seeds: &mut Seeds,
        device: &Device,
    ) -> Block {
        let out_ch = width * arch.expansion();
        let n = |s: &str| join(prefix, s);
        let (convs, bns) = match arch {
            Arch::ResNet50 => (
                vec![
                    Conv2d::new(&n("conv1"), in_ch, width, 1, 1, 0, seeds, device),
                    Conv2d::new(&n("conv2"), width, width, 3, stride, 1, seeds, device),
                    Conv2d::new(&n("conv3"), width, out_ch, 1, 1, 0, seeds, device),
                ],
                vec![
                    BatchNorm::new(&n("bn1"), width, device),
                    BatchNorm::new(&n("bn2"), width, device),
                    BatchNorm::new(&n("bn3"), out_ch, device),
                ],
            ),
            _ => (
                vec![
                    Conv2d::new(&n("conv1"), in_ch, width, 3, stride, 1, seeds, device),
                    Conv2d::new(&n("conv2"), width, width, 3, 1, 1, seeds, device),
                ],
                vec![
                    BatchNorm::new(&n("bn1"), width, device),
                    BatchNorm::new(&n("bn2"), width, device),
                ],
            ),
        };
        let downsample = (stride != 1 || in_ch != out_ch).then(|| {
            (
                Conv2d::new(
                    &n("downsample.0"),
                    in_ch,
                    out_ch,
                    1,
                    stride,
                    0,
                    seeds,
                    device,
                ),
                BatchNorm::new(&n("downsample.1"), out_ch, device),
            )
        });
        Block {
            convs,
            bns,
            downsample,
        }
    }

    fn forward(&self, tape: &Tape, x: &Var) -> Var {
        let mut h = x.clone();
        let last = self.convs.len() - 1;
        for (i, (conv, bn)) in self.convs.iter().zip(&self.bns).enumerate() {
            let c = conv.forward(tape, &h);
            // Batch norm and ReLU as one node, except after the last conv,
            // whose ReLU comes after the shortcut is added.
            h = if i < last {
                bn.forward_relu(tape, &c)
            } else {
                bn.forward(tape, &c)
            };
        }
        let shortcut = match &self.downsample {
            Some((conv, bn)) => bn.forward(tape, &conv.forward(tape, x)),
            None => x.clone(),
        };
        h.add_relu(&shortcut)
    }

    fn modules(&self) -> Vec<&dyn Module> {
        let mut m: Vec<&dyn Module> = Vec::new();
        for (c, b) in self.convs.iter().zip(&self.bns) {
            m.push(c);
            m.push(b);
        }
        if let Some((c, b)) = &self.downsample {
            m.push(c);
            m.push(b);
        }
        m
    }
}

/// A ResNet encoder: images `[N, C, H, W]` to features `[N, feature_dim]`.
pub struct ResNet {
    config: ResNetConfig,
    conv1: Conv2d,
    bn1: BatchNorm,
    layers: Vec<Vec<Block>>,
    feature_dim: usize,
}

impl ResNet {
    /// A freshly initialised encoder (torchvision's initialisation), fixed
    /// by `seed`.
    pub fn new(config: ResNetConfig, seed: u64, device: &Device) -> ResNet {
        assert!(
            config.width > 0 && config.in_channels > 0,
            "ResNet: width and in_channels must be positive, got {config:?}"
        );
        let mut seeds = Seeds::new(seed);
        let w = config.width;
        let conv1 = match config.stem {
            Stem::ImageNet => {
                Conv2d::new("conv1", config.in_channels, w, 7, 2, 3, &mut seeds, device)
            }
            Stem::Cifar => Conv2d::new("conv1", config.in_channels, w, 3, 1, 1, &mut seeds, device),
        };
        let bn1 = BatchNorm::new("bn1", w, device);
        let mut layers = Vec::new();
        let mut in_ch = w;
        for (stage, &count) in config.arch.blocks().iter().enumerate() {
            let width = w << stage;
            let mut blocks = Vec::new();
            for b in 0..count {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                let prefix = format!("layer{}.{b}", stage + 1);
                blocks.push(Block::new(
                    config.arch,
                    &prefix,
                    in_ch,
                    width,
                    stride,
                    &mut seeds,
                    device,
                ));
                in_ch = width * config.arch.expansion();
            }
            layers.push(blocks);
        }
        ResNet {
            config,
            conv1,
            bn1,
            layers,
            feature_dim: in_ch,
        }
    }

    /// The length of a feature vector: `8w` for ResNet-18/34, `32w` for
    /// ResNet-50.
    pub fn feature_dim(&self) -> usize {
        self.feature_dim
    }

    /// The settings it was built with.
    pub fn config(&self) -> ResNetConfig {
        self.config
    }

    fn modules(&self) -> Vec<&dyn Module> {
        let mut m: Vec<&dyn Module> = vec![&self.conv1, &self.bn1];
        for block in self.layers.iter().flatten() {
            m.extend(block.modules());
        }
        m
    }
}

impl Module for ResNet {
    fn forward(&self, tape: &Tape, x: &Var) -> Var {
        assert!(
            x.rank() == 4 && x.shape()[1] == self.config.in_channels,
            "ResNet: expects images [N, {}, H, W], got {:?}",
            self.config.in_channels,
            x.shape()
        );
        let mut h = self.bn1.forward_relu(tape, &self.conv1.forward(tape, x));
        if self.config.stem == Stem::ImageNet {
            h = h.max_pool2d(Pool2dParams::new(3, 2, 1));
        }
        for block in self.layers.iter().flatten() {
            h = block.forward(tape, &h);
        }
        h.global_avg_pool2d()
    }

    fn parameters(&self) -> Vec<Param> {
        self.modules().iter().flat_map(|m| m.parameters()).collect()
    }

    fn buffers(&self) -> Vec<Param> {
        self.modules().iter().flat_map(|m| m.buffers()).collect()
    }

    fn set_training(&self, training: bool) {
        for m in self.modules() {
            m.set_training(training);
        }
    }
}
