//! Flags several commands share: the device (`--device`), the data
//! (`--dataset`, `--data`, ...: an `augment::DataSource`) and the encoder
//! (`--checkpoint` or `--weights`). Each group turns into the library's
//! type; what those types do lives in the libraries.

use crate::error::CliError;
use augment::{DataSource, DatasetKind, FolderMode, Normalization};
use byol::{Checkpoint, Side};
use clap::Args;
use models::weights::{self, LoadMode};
use models::{Arch, ResNet, ResNetConfig, Stem};
use std::path::{Path, PathBuf};
use tensor::Device;

/// `--device cpu|gpu|auto`.
#[derive(Args, Clone, Debug, Default)]
pub struct DeviceArgs {
    /// Where to compute: `cpu`, `gpu` (a wgpu adapter; a software one such
    /// as Mesa's llvmpipe counts), `gpu:N` (adapter N of `byol devices`,
    /// from 0) or `auto`: for the commands that train (pretrain, study,
    /// demo, ablate), the fastest of the CPU and each hardware GPU on the
    /// run's own step, timed once per machine and step shape and
    /// remembered in device-choice.json under BYOL_CACHE_DIR (else
    /// ~/.cache/byol; safe to delete); for the others, a hardware GPU when
    /// there is one, else the CPU.
    /// Default: the BYOL_DEVICE environment variable, else `auto`. Under
    /// mpirun, `gpu` and `auto` give each process on a machine its own GPU
    /// (by its local rank) when there are several.
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,
}

impl DeviceArgs {
    /// Opens the device asked for, or says why it cannot.
    pub fn open(&self) -> Result<Device, CliError> {
        Ok(match &self.device {
            Some(name) => Device::from_name(name)?,
            None => Device::from_env()?,
        })
    }

    /// [`DeviceArgs::open`] for one process of several on a machine
    /// (`local_rank`, when the launcher says): a GPU not named by number
    /// becomes this process's own (`Device::for_local_rank`).
    pub fn open_for(&self, local_rank: Option<usize>) -> Result<Device, CliError> {
        let device = self.open()?;
        let name = match &self.device {
            Some(name) => name.clone(),
            None => std::env::var("BYOL_DEVICE").unwrap_or_default(),
        };
        let numbered = name.trim().to_ascii_lowercase().starts_with("gpu:");
        match local_rank {
            Some(local) if !numbered => Ok(device.for_local_rank(local)?),
            _ => Ok(device),
        }
    }
}

impl DeviceArgs {
    /// The device named by `--device`, else `BYOL_DEVICE`, else `auto`.
    fn requested(&self) -> String {
        self.device
            .clone()
            .or_else(|| std::env::var("BYOL_DEVICE").ok())
            .unwrap_or_else(|| "auto".into())
            .trim()
            .to_ascii_lowercase()
    }

    /// The device to train `config` on `images` with: as
    /// [`DeviceArgs::open_for`], except that `auto` (the default), in a
    /// process of its own, times the run's own step on the CPU and on every
    /// hardware GPU and takes the fastest (`byol::device_choice`; the
    /// choice is remembered per machine). `loud` prints the choice and why.
    pub fn open_for_training(
        &self,
        config: Option<&byol::TrainConfig>,
        images: &dyn augment::ViewSource,
        local_rank: Option<usize>,
        loud: bool,
    ) -> Result<Device, CliError> {
        let (Some(config), None, "auto") = (config, local_rank, self.requested().as_str()) else {
            return self.open_for(local_rank);
        };
        // `open_for` checks the backends' settings through
        // `Device::from_name`; the candidates below are made directly.
        Device::check_cpu_settings()?;
        let hardware = tensor::backend::gpu::adapters_summary()
            .iter()
            .filter(|a| a.hardware)
            .count();
        let mut candidates = vec![Device::Cpu];
        for index in 0..hardware {
            candidates.push(Device::gpu_at(index)?);
        }
        let (h, w) = images.view_size();
        let cache = byol::device_choice::cache_path();
        let choice = byol::device_choice::choose(
            &candidates,
            config,
            images.channels(),
            [h, w],
            cache.as_deref(),
        )?;
        if loud {
            say!("device: auto chose {}", choice.reason);
        }
        Ok(choice.device)
    }
}

/// Where the images come from: the flags of an `augment::DataSource`.
#[derive(Args, Clone, Debug, Default)]
pub struct DataArgs {
    /// The data set. Default: recognised from the files in --data, or the
    /// embedded Fashion-MNIST subset (6,000 training and 1,000 test images)
    /// without --data.
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetKind>,
    /// The folder holding the data set (see --dataset).
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// For --dataset folder: a folder of labelled test images
    /// (TEST/<class>/<image>), for evaluation.
    #[arg(long, value_name = "PATH")]
    pub test_data: Option<PathBuf>,
    /// For --dataset folder: the side, in pixels, images are resized to
    /// [default: the run's, given --checkpoint; else 32].
    #[arg(long, value_name = "PIXELS")]
    pub image_size: Option<usize>,
    /// For --dataset folder: 1 (gray) or 3 (RGB) [default: the run's,
    /// given --checkpoint; else 3].
    #[arg(long, value_name = "N")]
    pub channels: Option<usize>,
    /// Use only the first N images of each split (for quick trials).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// For --dataset folder, when pretraining: `memory` decodes every image
    /// once at --image-size and keeps them all; `stream` keeps an index and
    /// decodes each image when a batch needs it, cutting the views from
    /// the original pixels (for folders larger than memory); `auto` keeps
    /// them in memory when that takes at most a quarter of the memory
    /// available, and says which it chose. `embed` streams the same way
    /// [default: the run's, given --checkpoint; else auto]
    #[arg(long, value_enum, value_name = "MODE")]
    pub folder_mode: Option<FolderMode>,
}

impl DataArgs {
    /// The data source the flags describe (the kind recognised from the
    /// files in --data when not given).
    pub fn source(&self) -> Result<DataSource, CliError> {
        self.source_for(None)
    }

    /// The data source for an encoder trained on `recorded` (its run's
    /// `data.json`): without --dataset and --data, the run's own data (the
    /// flags --test-data and --limit still apply); with them, the flags,
    /// taking the image size and channels the run used unless given. So
    /// `byol eval --checkpoint runs/photos` evaluates on what the run
    /// trained on.
    pub fn source_for(&self, recorded: Option<&DataSource>) -> Result<DataSource, CliError> {
        if let (Some(run), None, None) = (recorded, self.dataset, &self.data) {
            return Ok(DataSource {
                test_data: self.test_data.clone().or_else(|| run.test_data.clone()),
                limit: self.limit.or(run.limit),
                image_size: self.image_size.unwrap_or(run.image_size),
                channels: self.channels.unwrap_or(run.channels),
                folder_mode: self.folder_mode.unwrap_or(run.folder_mode),
                fingerprint: None,
                ..run.clone()
            });
        }
        let image_size = self
            .image_size
            .or(recorded.map(|r| r.image_size))
            .unwrap_or(32);
        let channels = self.channels.or(recorded.map(|r| r.channels)).unwrap_or(3);
        let dataset = DataSource::detect(self.dataset, self.data.as_deref())
            .map_err(|e| CliError::flag(format!("--data: {e}")))?;
        if let (DatasetKind::Cifar10 | DatasetKind::Cifar100 | DatasetKind::Folder, None) =
            (dataset, &self.data)
        {
            return Err(CliError::flag(format!(
                "--dataset {} needs --data <folder>",
                dataset.name()
            )));
        }
        if self.limit == Some(0) {
            return Err(CliError::flag(
                "--limit 0: give at least 1 image, or no --limit",
            ));
        }
        if dataset == DatasetKind::Folder {
            if !matches!(channels, 1 | 3) {
                return Err(CliError::flag(format!(
                    "--channels {channels}: expected 1 (gray) or 3 (RGB)"
                )));
            }
            if !(8..=augment::source::MAX_IMAGE_SIZE).contains(&image_size) {
                return Err(CliError::flag(format!(
                    "--image-size {image_size}: must be from 8 to {} (32 is typical, 224 the \
                     paper's)",
                    augment::source::MAX_IMAGE_SIZE
                )));
            }
        }
        Ok(DataSource {
            dataset,
            data: self.data.clone(),
            test_data: self.test_data.clone(),
            image_size,
            channels,
            limit: self.limit,
            fingerprint: None,
            folder_mode: self.folder_mode.unwrap_or_default(),
        })
    }
}

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
    /// With --weights: the architecture (default: read from the file).
    #[arg(long, value_enum, ignore_case = true, requires = "weights")]
    pub arch: Option<Arch>,
    /// With --weights: the stem, cifar (3x3, no max-pool) or imagenet
    /// (default: read from the file).
    #[arg(long, value_enum, ignore_case = true, requires = "weights")]
    pub stem: Option<Stem>,
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
    /// The network.
    pub encoder: ResNet,
    /// The normalisation of its training data (checkpoints record it).
    pub normalization: Option<Normalization>,
    /// For the user: where it came from.
    pub description: String,
}

impl EncoderArgs {
    /// Where the encoder comes from, for reports.
    pub fn describe(&self) -> String {
        match (&self.checkpoint, &self.weights) {
            (Some(path), _) if self.target => format!("target encoder of {}", path.display()),
            (Some(path), _) => format!("online encoder of {}", path.display()),
            (None, Some(path)) => path.display().to_string(),
            (None, None) => "none".to_string(),
        }
    }

    /// What the run of --checkpoint recorded of its data (`data.json`),
    /// when --checkpoint names a run folder or one of its checkpoints.
    pub fn recorded_data(&self) -> Option<DataSource> {
        let path = self.checkpoint.as_ref()?;
        let run = if path.is_dir() {
            path.clone()
        } else {
            // <run>/checkpoints/epoch-NNNN.json
            path.parent()?.parent()?.to_path_buf()
        };
        byol::run::read_data_source(&run).ok()
    }

    /// Loads the encoder onto `device`.
    pub fn load(&self, device: &Device) -> Result<LoadedEncoder, CliError> {
        match (&self.checkpoint, &self.weights) {
            (Some(path), _) => {
                let checkpoint = load_checkpoint(path)?;
                let side = if self.target {
                    Side::Target
                } else {
                    Side::Online
                };
                let (meta, config) = (&checkpoint.meta, &checkpoint.meta.config);
                Ok(LoadedEncoder {
                    encoder: checkpoint.encoder(side, device)?,
                    normalization: Some(meta.normalization()),
                    description: format!(
                        "the {} encoder of {} (epoch {}, step {}; {} width {})",
                        side.name(),
                        checkpoint.path.display(),
                        meta.epoch,
                        meta.step,
                        config.arch,
                        config.width
                    ),
                })
            }
            (None, Some(path)) => {
                let mut tensors = weights::read(path)?;
                // A torchvision classifier's head (or `byol finetune
                // --out`'s) is not part of the encoder.
                tensors.retain(|k, _| !k.starts_with("fc."));
                let found = ResNetConfig::infer(&tensors).ok_or_else(|| {
                    CliError::flag(format!(
                        "--weights {}: has no conv1.weight of shape [width, channels, k, k], so \
                         it is not a torchvision-named ResNet encoder (write one with `byol \
                         export`)",
                        path.display()
                    ))
                })?;
                let config = ResNetConfig {
                    arch: self.arch.unwrap_or(found.arch),
                    stem: self.stem.unwrap_or(found.stem),
                    in_channels: self.in_channels.unwrap_or(found.in_channels),
                    width: self.width.unwrap_or(found.width),
                };
                if config != found {
                    return Err(CliError::flag(format!(
                        "--weights {}: holds a {} {} stem of width {} for {} channel(s), not \
                         what --arch, --stem, --width or --in-channels say",
                        path.display(),
                        found.arch,
                        found.stem,
                        found.width,
                        found.in_channels
                    )));
                }
                let encoder = ResNet::new(config, 0, device);
                weights::apply(&encoder, &tensors, "", LoadMode::Strict, path)?;
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
            (None, None) => Err(CliError::flag(
                "no encoder given: pass --checkpoint <run folder> (from `byol pretrain`) or \
                 --weights <encoder.safetensors>",
            )),
        }
    }
}

/// The checkpoint at `path` (a run folder's newest good one), with a
/// warning for each newer one that could not be used.
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint, CliError> {
    let checkpoint = Checkpoint::load(path)?;
    for why in &checkpoint.skipped {
        say!("warning: skipped a checkpoint that cannot be used: {why}");
    }
    Ok(checkpoint)
}

/// Errors unless `value` lies in `(0, 1]`; `flag` names it in the message.
pub fn check_fraction(flag: &str, value: f64) -> Result<(), CliError> {
    if value > 0.0 && value <= 1.0 {
        Ok(())
    } else {
        Err(CliError::flag(format!(
            "{flag} {value}: must be a fraction in (0, 1], e.g. 0.01 or 0.1"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_outside_zero_one_are_named() {
        assert!(check_fraction("--label-fraction", 0.1).is_ok());
        assert!(check_fraction("--label-fraction", 1.0).is_ok());
        let e = check_fraction("--label-fraction", 0.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--label-fraction 0"), "{e}");
        assert!(check_fraction("--label-fraction", 1.5).is_err());
    }

    #[test]
    fn an_unknown_device_is_named() {
        let e = DeviceArgs {
            device: Some("tpu".into()),
        }
        .open()
        .unwrap_err()
        .to_string();
        assert!(e.contains("--device") && e.contains("tpu"), "{e}");
    }

    #[test]
    fn data_flags_name_what_is_missing() {
        let e = DataArgs {
            data: Some(PathBuf::from("no/such/folder")),
            ..DataArgs::default()
        }
        .source()
        .unwrap_err()
        .to_string();
        assert!(e.contains("--data") && e.contains("no/such/folder"), "{e}");
        let e = DataArgs {
            dataset: Some(DatasetKind::Cifar10),
            ..DataArgs::default()
        }
        .source()
        .unwrap_err()
        .to_string();
        assert!(e.contains("--dataset cifar10 needs --data"), "{e}");
        let embedded = DataArgs::default().source().unwrap();
        assert_eq!(
            (embedded.dataset, embedded.data),
            (DatasetKind::FashionMnist, None)
        );
    }

    #[test]
    fn weights_that_are_not_an_encoder_are_named() {
        let dir = std::env::temp_dir().join(format!("byol-cli-weights-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let head = dir.join("head.safetensors");
        let t = tensor::Tensor::zeros(&[2, 2], &Device::Cpu);
        weights::write(&head, &[("fc.weight".to_string(), t)]).unwrap();
        let args = EncoderArgs {
            weights: Some(head),
            ..EncoderArgs::default()
        };
        let e = args.load(&Device::Cpu).err().unwrap().to_string();
        assert!(
            e.contains("head.safetensors") && e.contains("conv1.weight"),
            "{e}"
        );
        let e = EncoderArgs::default()
            .load(&Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("--checkpoint") && e.contains("--weights"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
