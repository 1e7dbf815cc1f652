//! The full configuration of a pretraining run: everything needed to
//! rebuild the networks, the optimiser and the data pipeline, so that a
//! checkpoint (which stores it) can resume the run exactly. It is written as
//! `config.json` in the run directory.
//!
//! The settings with a few named values are enums ([`Arch`], [`Stem`],
//! [`OptimizerKind`], [`AugmentPreset`], [`BrightnessMode`]), so a bad name
//! in a JSON or TOML file is an error naming the value and the choices when
//! it is read, not later; the numbers are checked by
//! [`TrainConfig::validate`]. Unknown keys are errors too, so a misspelt
//! setting is never silently ignored.

use crate::error::{ByolError, Result};
use crate::network::{NetworkConfig, TargetInit};
use crate::optim::OptimizerKind;
use crate::schedule::Schedule;
use augment::{AugmentPreset, BrightnessMode};
use models::{Arch, ResNetConfig, Stem};
use serde::{Deserialize, Serialize};

/// A pretraining run's settings. The `byol` command's flags have the same
/// names, with dashes (`batch_size` is `--batch-size`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The ResNet: 18, 34 or 50 layers.
    pub arch: Arch,
    /// The first layers: `cifar` (small images) or `imagenet`.
    pub stem: Stem,
    /// Base width of the ResNet (64 in the paper).
    pub width: usize,
    /// Hidden width of projector and predictor (4096 in the paper).
    pub hidden: usize,
    /// Output width of projector and predictor (256 in the paper).
    pub projection: usize,
    /// Whether the online network has a predictor.
    pub predictor: bool,
    /// Start the target as a copy of the online network (else its own
    /// random initialisation, as the official code).
    pub target_copy: bool,
    /// Passes over the data.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// The optimiser.
    pub optimizer: OptimizerKind,
    /// Base learning rate; the peak is `lr · batch / 256`.
    pub lr: f32,
    /// Weight decay (1.5e-6 in the paper, for LARS).
    pub weight_decay: f32,
    /// Epochs of linear warm-up (10 of 1000 in the paper).
    pub warmup_epochs: f32,
    /// How the learning rate moves: `cosine` (warm-up, then the paper's
    /// decay to 0) or `constant` (the peak at every step, no warm-up).
    #[serde(default)]
    pub lr_schedule: Schedule,
    /// τ_base of the moving average: 0.996 in the paper's runs of hundreds
    /// of epochs, 0.9 (the default, constant) measured best for the short
    /// runs of small images here; 1 keeps a fixed random target, 0 makes
    /// the target the online network.
    pub tau: f32,
    /// How τ moves: `cosine` (the paper's rise from τ_base to 1) or
    /// `constant` (τ_base at every step).
    #[serde(default)]
    pub tau_schedule: Schedule,
    /// The augmentation preset.
    pub augment: AugmentPreset,
    /// The smallest area of a random resized crop, as a fraction of the
    /// image (the paper's 0.08 for 224-pixel ImageNet images; small images
    /// such as 28x28 Fashion-MNIST learn faster with 0.2, as CIFAR
    /// re-implementations use). Both views use it.
    #[serde(default = "paper_min_crop")]
    pub min_crop: f32,
    /// Strength of the colour jitter, as a multiple of the paper's
    /// (brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1): 1 is the
    /// paper's, 0.5 half of each, 0 none (SimCLR's "colour distortion
    /// strength"). Gray images are hit hard by the additive brightness
    /// shift, which moves a black background to mid-gray.
    #[serde(default = "paper_jitter")]
    pub jitter: f32,
    /// How the jitter changes brightness: `additive` (a delta, as the
    /// official code) or `multiplicative` (a factor, as torchvision's
    /// `ColorJitter`; black stays black, which suits images on a dark
    /// background). The default is `multiplicative`, measured better for
    /// small images (docs/results.md); a config without the key, written
    /// before it was a setting, reads as `additive`.
    #[serde(default = "paper_brightness")]
    pub brightness: BrightnessMode,
    /// In a run of several processes, whether batch norm takes its
    /// statistics over the whole global batch (as the paper's code does
    /// across its 512 cores) rather than each process's slice of it. One
    /// process alone is unaffected.
    #[serde(default = "synchronised")]
    pub sync_batch_norm: bool,
    /// The run's seed (weights, shuffling, views).
    pub seed: u64,
    /// Write a checkpoint every this many epochs (and at the end).
    pub checkpoint_every: usize,
    /// Run the kNN monitor every this many epochs (0: never).
    pub knn_every: usize,
    /// Keep only the newest this many checkpoints, removing older ones as
    /// new ones are written (0: keep every one). The newest is always the
    /// run's latest state; with 1 there is no older one to fall back to if
    /// it is damaged.
    #[serde(default)]
    pub keep_last: usize,
    /// Start the online encoder (and the target's, unless
    /// `init_online_only`) from this torchvision-named safetensors file
    /// (a `byol export` file or a torchvision ResNet's weights), to adapt a
    /// pretrained network to new images; `None` starts from random weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_weights: Option<std::path::PathBuf>,
    /// With `init_weights`: leave the target encoder as `target_copy`
    /// says instead of starting it from the same weights.
    #[serde(default)]
    pub init_online_only: bool,
}

impl Default for TrainConfig {
    /// The recipe for small images (28x28 to 32x32), chosen by measurement
    /// on the full Fashion-MNIST at a budget of about 6e14 FLOP (twenty
    /// epochs of 60,000 images, about 100 minutes on a 2-core AVX-512 CPU;
    /// `docs/results.md`, "20 epochs with the fast target" and "The recipe
    /// search"): a ResNet-18 of width 16 (256-d features) with the CIFAR
    /// stem, the paper's heads 4096 -> 256, batch 256, Adam at peak lr 2e-3
    /// without weight decay, one warm-up epoch and cosine decay, τ 0.9
    /// held constant, the target starting as a copy of the online network,
    /// the paper's augmentations without blur, crops of at least 20% of the
    /// image and a multiplicative brightness jitter; 20 epochs. With peak
    /// lr 1e-3 that run reached 84.5% kNN and 87.7% with the logistic probe
    /// (raw pixels 81.8% / 83.5%), and with 10 labels per class 76.0%
    /// against the pixels' 68.6% and the same ResNet trained from scratch
    /// 53.2%; with 2e-3 it was ahead after every epoch and ended at 85.1%
    /// kNN and 88.7% logistic, 77.7% with 10 labels per class (pixels
    /// 69.0%, scratch 59.1%).
    ///
    /// The fast target (τ 0.9, where the paper's rises from 0.99-0.996 to
    /// one) is what these short runs measured best: five epochs of this
    /// network with τ 0.9 beat τ_base 0.99 by 2.2 points (kNN) and 2.7
    /// (logistic probe), the best row of the study's Table 5a.
    ///
    /// For a run of minutes instead, [`TrainConfig::demo`] is the smaller
    /// recipe `byol demo` runs. The paper's ImageNet setting differs in
    /// scale, not in kind: width 64, batch 4096, LARS at base lr 0.2 with
    /// weight decay 1.5e-6, 10 warm-up epochs of 1000, τ_base 0.996 rising
    /// to 1 along the cosine, the `byol` augmentations with crops from 8%.
    fn default() -> TrainConfig {
        TrainConfig {
            arch: Arch::ResNet18,
            stem: Stem::Cifar,
            width: 16,
            hidden: 4096,
            projection: 256,
            predictor: true,
            target_copy: true,
            epochs: 20,
            batch_size: 256,
            optimizer: OptimizerKind::Adam,
            lr: 2e-3,
            weight_decay: 0.0,
            warmup_epochs: 1.0,
            lr_schedule: Schedule::Cosine,
            tau: 0.9,
            tau_schedule: Schedule::Constant,
            augment: AugmentPreset::Cifar,
            min_crop: 0.2,
            jitter: 1.0,
            brightness: BrightnessMode::Multiplicative,
            sync_batch_norm: true,
            seed: 0,
            checkpoint_every: 1,
            knn_every: 1,
            keep_last: 0,
            init_weights: None,
            init_online_only: false,
        }
    }
}

impl TrainConfig {
    /// The demo's recipe, sized for minutes on a 2-core CPU: on the
    /// embedded Fashion-MNIST subset (6,000 images of 28x28) it lifts the
    /// kNN accuracy of a ResNet-18 of width 8 from its random
    /// initialisation's in 40 epochs (about 5 minutes; `byol demo` runs
    /// it), measured by `byol study`: 62.3% -> 76.4% with seed 0 and
    /// 58.7% -> 75.4% with seed 1 (the logistic probe 73.4% -> 82.9% and
    /// 69.2% -> 82.8%; `docs/results.md`, "At the demo's scale").
    /// A ResNet-18 of width 8 (64-d features), heads 256 -> 64, batch 128,
    /// Adam at base lr 4e-3 (peak 2e-3) with weight decay 1.5e-6, one
    /// warm-up epoch and cosine decay, τ 0.9 held constant, the target its
    /// own random initialisation; the augmentations as [`TrainConfig::default`].
    pub fn demo() -> TrainConfig {
        TrainConfig {
            width: 8,
            hidden: 256,
            projection: 64,
            target_copy: false,
            epochs: 40,
            batch_size: 128,
            lr: 4e-3,
            weight_decay: 1.5e-6,
            ..TrainConfig::default()
        }
    }
}

/// The widest ResNet a run may ask for (the paper's is 64; 16 times that
/// is a ResNet-50 of some 6 billion parameters).
pub const MAX_WIDTH: usize = 1024;
/// The widest projector or predictor layer (the paper's hidden is 4096).
pub const MAX_HEAD: usize = 65_536;
/// The most epochs (the paper runs 1000).
pub const MAX_EPOCHS: usize = 1_000_000;
/// The largest batch (the paper's is 4096).
pub const MAX_BATCH: usize = 1 << 20;

/// The paper's smallest crop area (checkpoints written before the setting
/// existed used it).
fn paper_min_crop() -> f32 {
    0.08
}

/// The paper's brightness jitter.
fn paper_brightness() -> BrightnessMode {
    BrightnessMode::Additive
}

/// Batch norm over the global batch (what runs written before the setting
/// existed, all single-process, did in effect).
fn synchronised() -> bool {
    true
}

/// The paper's jitter strength.
fn paper_jitter() -> f32 {
    1.0
}

impl TrainConfig {
    /// Checks every number a user can get wrong ([`ByolError::Config`]);
    /// the message names the setting, the value and what is allowed. (The
    /// named values cannot be wrong: they are enums.)
    pub fn validate(&self) -> Result<()> {
        let bad = |message: String| Err(ByolError::Config(message));
        // Upper bounds far above any real use, so that a typo (or a damaged
        // file) cannot ask for a network of hundreds of gigabytes.
        for (name, v, most) in [
            ("width", self.width, MAX_WIDTH),
            ("hidden", self.hidden, MAX_HEAD),
            ("projection", self.projection, MAX_HEAD),
            ("epochs", self.epochs, MAX_EPOCHS),
            ("checkpoint_every", self.checkpoint_every, MAX_EPOCHS),
            ("batch_size", self.batch_size, MAX_BATCH),
        ] {
            if v == 0 || v > most {
                return bad(format!("{name} {v}: must be from 1 to {most}"));
            }
        }
        if self.batch_size < 2 {
            return bad(format!(
                "batch_size {}: batch norm needs at least 2 images per batch",
                self.batch_size
            ));
        }
        if !(self.min_crop > 0.0 && self.min_crop <= 1.0) {
            return bad(format!(
                "min_crop {}: the smallest crop area must be in (0, 1]",
                self.min_crop
            ));
        }
        if !(self.jitter >= 0.0 && self.jitter <= 2.5) {
            return bad(format!(
                "jitter {}: the colour jitter strength must be between 0 and 2.5 (1 is the paper's)",
                self.jitter
            ));
        }
        if !(0.0..=1.0).contains(&self.tau) {
            return bad(format!("tau {}: must be between 0 and 1", self.tau));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!("lr {}: must be a positive number", self.lr));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad(format!(
                "weight_decay {}: must be zero or positive",
                self.weight_decay
            ));
        }
        if !(self.warmup_epochs >= 0.0 && self.warmup_epochs.is_finite()) {
            return bad(format!(
                "warmup_epochs {}: must be zero or positive",
                self.warmup_epochs
            ));
        }
        Ok(())
    }

    /// The network settings for images with `in_channels` channels.
    pub fn network(&self, in_channels: usize) -> NetworkConfig {
        NetworkConfig {
            encoder: ResNetConfig {
                arch: self.arch,
                stem: self.stem,
                in_channels,
                width: self.width,
            },
            hidden: self.hidden,
            projection: self.projection,
            predictor: self.predictor,
            target_init: if self.target_copy {
                TargetInit::CopyOnline
            } else {
                TargetInit::Random
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(TrainConfig::default().validate().is_ok());
        assert!(TrainConfig::demo().validate().is_ok());
        let bad = TrainConfig {
            width: 0,
            ..TrainConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("width 0"));
        let huge = TrainConfig {
            width: 100_000,
            ..TrainConfig::default()
        };
        let e = huge.validate().unwrap_err().to_string();
        assert!(e.contains("width 100000: must be from 1 to 1024"), "{e}");
        let bad = TrainConfig {
            batch_size: 1,
            ..TrainConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("batch_size 1"));
        let bad = TrainConfig {
            tau: 1.5,
            ..TrainConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("tau 1.5"));
        let bad = TrainConfig {
            min_crop: 0.0,
            ..TrainConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("min_crop 0"));
        let json = serde_json::to_string(&TrainConfig::default()).unwrap();
        let back: TrainConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, TrainConfig::default());
        // A configuration written before `min_crop` existed reads with the
        // paper's value.
        let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
        old.as_object_mut().unwrap().remove("min_crop");
        let back: TrainConfig = serde_json::from_value(old).unwrap();
        assert_eq!(back.min_crop, 0.08);
        // One written before the schedules could be chosen has the paper's.
        let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
        let map = old.as_object_mut().unwrap();
        map.remove("lr_schedule");
        map.remove("tau_schedule");
        let back: TrainConfig = serde_json::from_value(old).unwrap();
        assert_eq!(
            (back.lr_schedule, back.tau_schedule),
            (Schedule::Cosine, Schedule::Cosine)
        );
    }

    #[test]
    fn named_values_are_written_as_before_and_bad_ones_name_the_choices() {
        // The JSON of a config (and so of every checkpoint) spells the named
        // values as the string-typed settings did, so old runs still read.
        let json = serde_json::to_value(TrainConfig::default()).unwrap();
        for (key, value) in [
            ("arch", "resnet18"),
            ("stem", "cifar"),
            ("optimizer", "adam"),
            ("augment", "cifar"),
            ("brightness", "multiplicative"),
        ] {
            assert_eq!(json[key], value, "{key}");
        }
        for (key, value, choices) in [
            ("arch", "vgg", "`resnet18`, `resnet34`, `resnet50`"),
            ("stem", "tiny", "`imagenet` or `cifar`"),
            ("optimizer", "rmsprop", "`lars`, `sgd`, `adam`, `adamw`"),
            ("augment", "heavy", "`byol` or `cifar`"),
            ("brightness", "linear", "`additive` or `multiplicative`"),
        ] {
            let mut bad = json.clone();
            bad[key] = serde_json::json!(value);
            let e = serde_json::from_value::<TrainConfig>(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains(value) && e.contains(choices), "{key}: {e}");
        }
        // A misspelt or unknown key is an error, never silently dropped.
        let mut extra = json.clone();
        extra["epoch"] = serde_json::json!(3);
        let e = serde_json::from_value::<TrainConfig>(extra)
            .unwrap_err()
            .to_string();
        assert!(e.contains("epoch"), "{e}");
    }
}
