//! Encoders from flags: the online (or target) encoder of a BYOL
//! checkpoint (`--checkpoint`), or a torchvision-named safetensors file
//! (`--weights`, as `byol export` writes or PyTorch saves).
//!
//! A weights file says most of its own architecture: `conv1.weight` has
//! shape `[width, in_channels, k, k]` (k = 3 for the CIFAR stem, 7 for the
//! ImageNet one), a ResNet-50 has `layer1.0.conv3`, a ResNet-34 has
//! `layer1.2`. So `--arch`, `--stem`, `--width` and `--in-channels` are
//! read from the file unless given; given, they must agree with it (the
//! strict load checks every name and shape).

use augment::Normalization;
use byol::checkpoint::{self, CheckpointMeta};
use clap::Args;
use models::weights::{self, LoadMode};
use models::{Arch, ResNet, ResNetConfig, Stem};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tensor::{Device, Tensor};

/// Which encoder to use.
#[derive(Args, Clone, Debug, Default)]
pub struct EncoderArgs {
    /// A pretraining run folder (its latest checkpoint) or a checkpoint's
    /// .json file.
    #[arg(long, value_name = "PATH", conflicts_with = "weights")]
    pub checkpoint: Option<PathBuf>,
    /// With --checkpoint: use the target encoder (the moving average)
    /// instead of the online one.
    #[arg(long, requires = "checkpoint")]
    pub target: bool,
    /// A torchvision-named safetensors file of an encoder (from `byol
    /// export`, or a PyTorch state_dict saved with safetensors).
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// With --weights: resnet18, resnet34 or resnet50 (default: read from
    /// the file).
    #[arg(long, requires = "weights")]
    pub arch: Option<String>,
    /// With --weights: cifar (3x3 stem, no max-pool) or imagenet (default:
    /// read from the file).
    #[arg(long, requires = "weights")]
    pub stem: Option<String>,
    /// With --weights: the base width, 64 for torchvision's (default: read
    /// from the file).
    #[arg(long, requires = "weights")]
    pub width: Option<usize>,
    /// With --weights: 1 (gray) or 3 (RGB) input channels (default: read
    /// from the file).
    #[arg(long, requires = "weights")]
    pub in_channels: Option<usize>,
}

/// An encoder ready to use, with what is known of its training data.
pub struct LoadedEncoder {
    /// The network, in evaluation mode is up to the caller.
    pub encoder: ResNet,
    /// The normalisation of its training data (checkpoints record it).
    pub normalization: Option<Normalization>,
    /// For the user: where it came from.
    pub description: String,
}

impl EncoderArgs {
    /// Where the encoder comes from, for reports: the checkpoint or the
    /// weights file, as given.
    pub fn describe(&self) -> String {
        match (&self.checkpoint, &self.weights) {
            (Some(path), _) if self.target => format!("target encoder of {}", path.display()),
            (Some(path), _) => format!("online encoder of {}", path.display()),
            (None, Some(path)) => path.display().to_string(),
            (None, None) => "none".to_string(),
        }
    }

    /// Loads the encoder onto `device`.
    pub fn load(&self, device: &Device) -> Result<LoadedEncoder, String> {
        match (&self.checkpoint, &self.weights) {
            (Some(path), _) => from_checkpoint(path, self.target, device),
            (None, Some(path)) => self.load_weights(path, device),
            (None, None) => Err(
                "no encoder given: pass --checkpoint <run folder> (from `byol pretrain`) or \
                 --weights <encoder.safetensors>"
                    .to_string(),
            ),
        }
    }

    fn load_weights(&self, path: &Path, device: &Device) -> Result<LoadedEncoder, String> {
        let mut tensors = weights::read(path).map_err(|e| e.to_string())?;
        // A torchvision classifier's head (or `byol finetune --out`'s) is
        // not part of the encoder.
        tensors.retain(|k, _| !k.starts_with("fc."));
        let config = self.config_for(&tensors, path)?;
        let encoder = ResNet::new(config, 0, device);
        weights::apply(&encoder, &tensors, "", LoadMode::Strict, path).map_err(|e| {
            format!("{e} (check --arch, --stem, --width and --in-channels against the file)")
        })?;
        Ok(LoadedEncoder {
            description: format!(
                "{} {} stem, width {}, {} input channel(s), from {}",
                config.arch,
                config.stem,
                config.width,
                config.in_channels,
                path.display()
            ),
            encoder,
            normalization: None,
        })
    }

    /// The architecture: the flags where given, the file's evidence
    /// otherwise.
    fn config_for(
        &self,
        tensors: &BTreeMap<String, Tensor>,
        path: &Path,
    ) -> Result<ResNetConfig, String> {
        let conv1 = tensors.get("conv1.weight").ok_or_else(|| {
            format!(
                "{}: has no conv1.weight, so it is not a torchvision-named ResNet encoder \
                 (write one with `byol export`)",
                path.display()
            )
        })?;
        let shape = conv1.shape().to_vec();
        if shape.len() != 4 {
            return Err(format!(
                "{}: conv1.weight has shape {shape:?}; expected [width, channels, k, k]",
                path.display()
            ));
        }
        let arch = match &self.arch {
            Some(name) => Arch::from_name(name)
                .ok_or_else(|| format!("--arch {name}: expected resnet18, resnet34 or resnet50"))?,
            None if tensors.contains_key("layer1.0.conv3.weight") => Arch::ResNet50,
            None if tensors.contains_key("layer1.2.conv1.weight") => Arch::ResNet34,
            None => Arch::ResNet18,
        };
        let stem = match &self.stem {
            Some(name) => Stem::from_name(name)
                .ok_or_else(|| format!("--stem {name}: expected cifar or imagenet"))?,
            None if shape[2] == 7 => Stem::ImageNet,
            None => Stem::Cifar,
        };
        Ok(ResNetConfig {
            arch,
            stem,
            in_channels: self.in_channels.unwrap_or(shape[1]),
            width: self.width.unwrap_or(shape[0]),
        })
    }
}

/// The encoder of a checkpoint (online, or target with `target`).
pub fn from_checkpoint(
    path: &Path,
    target: bool,
    device: &Device,
) -> Result<LoadedEncoder, String> {
    let (meta, tensors) = read_checkpoint(path)?;
    let config = meta.config.network(meta.in_channels).encoder;
    let encoder = ResNet::new(config, 0, device);
    let branch = if target { "target" } else { "online" };
    weights::apply(
        &encoder,
        &tensors,
        &format!("net.{branch}.encoder."),
        LoadMode::Strict,
        path,
    )
    .map_err(|e| e.to_string())?;
    Ok(LoadedEncoder {
        description: format!(
            "the {branch} encoder of {} (epoch {}, step {}; {} width {})",
            path.display(),
            meta.epoch,
            meta.step,
            meta.config.arch,
            meta.config.width
        ),
        encoder,
        normalization: Some(Normalization {
            mean: meta.mean.clone(),
            std: meta.std.clone(),
        }),
    })
}

/// Reads a checkpoint (a run folder's latest, or a `.json` path), with an
/// error that says what a checkpoint is.
pub fn read_checkpoint(path: &Path) -> Result<(CheckpointMeta, BTreeMap<String, Tensor>), String> {
    if !path.exists() {
        return Err(format!(
            "--checkpoint {}: no such file or folder (give a run folder of `byol pretrain`, \
             or its checkpoints/epoch-NNNN.json)",
            path.display()
        ));
    }
    checkpoint::load(path)
}

/// The torchvision-named tensors of a checkpoint's encoder (online or
/// target): `net.online.encoder.<name>` becomes `<name>`.
pub fn encoder_tensors(tensors: &BTreeMap<String, Tensor>, target: bool) -> Vec<(String, Tensor)> {
    let prefix = if target {
        "net.target.encoder."
    } else {
        "net.online.encoder."
    };
    tensors
        .iter()
        .filter_map(|(k, t)| k.strip_prefix(prefix).map(|k| (k.to_string(), t.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(config: ResNetConfig) -> BTreeMap<String, Tensor> {
        let net = ResNet::new(config, 3, &Device::Cpu);
        models::Module::state(&net)
            .iter()
            .map(|p| (p.name().to_string(), p.value()))
            .collect()
    }

    #[test]
    fn the_architecture_is_read_from_the_weights() {
        for config in [
            ResNetConfig {
                arch: Arch::ResNet18,
                stem: Stem::Cifar,
                in_channels: 1,
                width: 4,
            },
            ResNetConfig {
                arch: Arch::ResNet34,
                stem: Stem::ImageNet,
                in_channels: 3,
                width: 2,
            },
            ResNetConfig {
                arch: Arch::ResNet50,
                stem: Stem::Cifar,
                in_channels: 3,
                width: 2,
            },
        ] {
            let found = EncoderArgs::default()
                .config_for(&saved(config), Path::new("x.safetensors"))
                .unwrap();
            assert_eq!(found, config);
        }
    }

    #[test]
    fn a_file_that_is_not_an_encoder_is_named() {
        let mut t = BTreeMap::new();
        t.insert(
            "fc.weight".to_string(),
            Tensor::zeros(&[2, 2], &Device::Cpu),
        );
        let e = EncoderArgs::default()
            .config_for(&t, Path::new("head.safetensors"))
            .unwrap_err();
        assert!(
            e.contains("head.safetensors") && e.contains("conv1.weight"),
            "{e}"
        );
        let e = EncoderArgs::default().load(&Device::Cpu).err().unwrap();
        assert!(e.contains("--checkpoint") && e.contains("--weights"), "{e}");
    }
}
