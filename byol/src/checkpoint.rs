//! Checkpoints: everything needed to continue a run exactly, and to take
//! its encoder out.
//!
//! A checkpoint after epoch `N` is two files in the run's `checkpoints/`:
//!
//! ```text
//! epoch-NNNN.safetensors
//!   net.online.encoder.*  net.online.projector.*  net.online.predictor.*   parameters + BN buffers
//!   net.target.encoder.*  net.target.projector.*                           parameters + BN buffers
//!   opt.<buffer>.<parameter>                                               the optimiser's buffers
//! epoch-NNNN.json     CheckpointMeta: config, epoch, step, in_channels, image_size, mean, std, images
//! ```
//!
//! This module is the only place that knows that layout: [`Checkpoint::save`]
//! writes it from a [`ByolStep`], [`Checkpoint::load`] reads and checks it,
//! and a loaded checkpoint hands out what callers need as types: a
//! [`ByolStep`] to train on ([`Checkpoint::restore`]), an encoder
//! ([`Checkpoint::encoder`]), its torchvision-named tensors
//! ([`Checkpoint::encoder_tensors`]), the normalisation of its data.
//!
//! No random state needs saving: shuffles and views are drawn from seeds
//! derived from (run seed, epoch, image index), so a resumed run replays
//! them exactly.
//!
//! Both files are written through the workspace's atomic writer (the
//! `files` crate), the tensors first and the JSON (which marks the
//! checkpoint complete) last, so a crash while writing leaves the previous
//! checkpoint as the latest good one.
//!
//! A checkpoint is checked when read, never trusted: its JSON must parse
//! (an unknown architecture or optimiser, a wrong type or a missing key is
//! an error naming it), its settings must pass [`TrainConfig::validate`],
//! and its tensors must be those its settings describe (the encoder's
//! shape is read from the tensors and compared before any network is
//! built), so a damaged or hand-edited file gives an error, never a panic
//! or a network of absurd size.

use crate::config::TrainConfig;
use crate::error::{ByolError, Result};
use crate::network::{ByolNetworks, Side};
use crate::optim;
use crate::step::ByolStep;
use augment::Normalization;
use models::weights::{self, LoadMode};
use models::{MlpHead, ResNet, ResNetConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tensor::{Device, Tensor};

/// The prefix of the networks' tensors in the safetensors file.
const NET: &str = "net.";
/// The prefix of the optimiser's buffers.
const OPT: &str = "opt.";

/// The JSON half of a checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckpointMeta {
    /// The run's configuration.
    pub config: TrainConfig,
    /// Epochs completed.
    pub epoch: usize,
    /// Steps completed.
    pub step: usize,
    /// Channels of the training images.
    pub in_channels: usize,
    /// Height and width of the training images.
    pub image_size: [usize; 2],
    /// Per-channel normalisation mean of the training data.
    pub mean: Vec<f32>,
    /// Per-channel normalisation standard deviation.
    pub std: Vec<f32>,
    /// Number of training images (a resumed run must see the same data).
    pub images: usize,
}

impl CheckpointMeta {
    /// The normalisation of the run's training data.
    pub fn normalization(&self) -> Normalization {
        Normalization {
            mean: self.mean.clone(),
            std: self.std.clone(),
        }
    }

    /// Errors unless every field is usable: valid settings, at least one
    /// input channel and a mean and a positive, finite standard deviation
    /// per channel.
    fn check(&self) -> std::result::Result<(), String> {
        self.config
            .validate()
            .map_err(|e| format!("its settings are not valid: {e}"))?;
        if self.in_channels == 0 {
            return Err("in_channels is 0; images have at least 1 channel".into());
        }
        if self.mean.len() != self.in_channels || self.std.len() != self.in_channels {
            return Err(format!(
                "mean and std have {} and {} values for {} channel(s); one each per channel",
                self.mean.len(),
                self.std.len(),
                self.in_channels
            ));
        }
        if let Some(s) = self.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(format!(
                "std {s}: every standard deviation must be positive"
            ));
        }
        if let Some(m) = self.mean.iter().find(|m| !m.is_finite()) {
            return Err(format!("mean {m}: every mean must be a number"));
        }
        Ok(())
    }
}

/// The folder of a run's checkpoints.
pub fn folder(run: &Path) -> PathBuf {
    run.join("checkpoints")
}

fn stem(epoch: usize) -> String {
    format!("epoch-{epoch:04}")
}

/// The JSON of the latest complete checkpoint of a run, if any.
pub fn latest(run: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(folder(run))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            name.starts_with("epoch-") && name.ends_with(".json")
        })
        .collect();
    found.sort();
    found.pop()
}

/// A checkpoint read from disk and checked.
pub struct Checkpoint {
    /// Its JSON file.
    pub path: PathBuf,
    /// The JSON half.
    pub meta: CheckpointMeta,
    tensors: BTreeMap<String, Tensor>,
}

impl Checkpoint {
    /// Writes a checkpoint of `step` (networks and optimiser) with `meta`
    /// into the run folder `run`, after `meta.epoch` epochs; returns the
    /// JSON path.
    pub fn save(run: &Path, meta: &CheckpointMeta, step: &ByolStep) -> Result<PathBuf> {
        let dir = folder(run);
        std::fs::create_dir_all(&dir).map_err(|source| ByolError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut tensors: Vec<(String, Tensor)> = step
            .nets
            .state()
            .into_iter()
            .map(|(k, p)| (format!("{NET}{k}"), p.value()))
            .collect();
        tensors.extend(
            step.optimizer()
                .state()
                .into_iter()
                .map(|(k, t)| (format!("{OPT}{k}"), t)),
        );
        let name = stem(meta.epoch);
        weights::write(&dir.join(format!("{name}.safetensors")), &tensors)?;
        let json_path = dir.join(format!("{name}.json"));
        let text = serde_json::to_string_pretty(meta).map_err(|e| ByolError::Checkpoint {
            path: json_path.clone(),
            problem: e.to_string(),
        })?;
        files::write_atomically(&json_path, text.as_bytes())?;
        Ok(json_path)
    }

    /// Reads a checkpoint from its JSON path, or from a run folder (its
    /// latest), and checks it (see the module docs).
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let problem = |path: &Path, problem: String| ByolError::Checkpoint {
            path: path.to_path_buf(),
            problem,
        };
        if !path.exists() {
            return Err(problem(
                path,
                "no such file or folder (give a run folder, or its checkpoints/epoch-NNNN.json)"
                    .into(),
            ));
        }
        let json = if path.is_dir() {
            latest(path).ok_or_else(|| {
                problem(
                    path,
                    "no checkpoint found (expected checkpoints/epoch-NNNN.json)".into(),
                )
            })?
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&json).map_err(|source| ByolError::Io {
            path: json.clone(),
            source,
        })?;
        let meta: CheckpointMeta = serde_json::from_str(&text)
            .map_err(|e| problem(&json, format!("not a usable checkpoint description: {e}")))?;
        meta.check().map_err(|p| problem(&json, p))?;
        let tensors = weights::read(&json.with_extension("safetensors"))?;
        let checkpoint = Checkpoint {
            path: json,
            meta,
            tensors,
        };
        checkpoint
            .check_tensors()
            .map_err(|p| problem(&checkpoint.path, p))?;
        Ok(checkpoint)
    }

    /// The encoder the settings describe, for `in_channels` channels.
    fn encoder_config(&self) -> ResNetConfig {
        self.meta.config.network(self.meta.in_channels).encoder
    }

    /// Errors unless the tensors describe the networks the settings say:
    /// both encoders and the heads, read from the tensors' shapes without
    /// building anything, so a wrong size never allocates a network.
    fn check_tensors(&self) -> std::result::Result<(), String> {
        let config = &self.meta.config;
        let mut heads = vec![
            (Side::Online, "projector", config.hidden, config.projection),
            (Side::Target, "projector", config.hidden, config.projection),
        ];
        let predictor = format!(
            "{NET}{}",
            ByolNetworks::head_prefix(Side::Online, "predictor")
        );
        if config.predictor {
            heads.push((Side::Online, "predictor", config.hidden, config.projection));
        } else if self.tensors.keys().any(|k| k.starts_with(&predictor)) {
            return Err(format!(
                "its settings say there is no predictor, but it has {predictor} tensors"
            ));
        }
        for (side, head, hidden, output) in heads {
            let name = format!("{NET}{}", ByolNetworks::head_prefix(side, head));
            match MlpHead::infer(&self.tensors, &name) {
                Some((_, h, o)) if (h, o) == (hidden, output) => {}
                found => {
                    return Err(format!(
                        "its settings say hidden {hidden} and projection {output}, but its {name} \
                         tensors are {}",
                        match found {
                            Some((_, h, o)) => format!("hidden {h} and output {o}"),
                            None => "missing or misshapen".into(),
                        }
                    ))
                }
            }
        }
        let want = self.encoder_config();
        for side in [Side::Online, Side::Target] {
            let found = ResNetConfig::infer(&self.encoder_map(side));
            if found != Some(want) {
                return Err(format!(
                    "its settings describe a {} {} stem of width {} for {} channel(s), but its \
                     {} encoder tensors are {}",
                    want.arch,
                    want.stem,
                    want.width,
                    want.in_channels,
                    side.name(),
                    match found {
                        Some(f) => format!(
                            "a {} {} stem of width {} for {} channel(s)",
                            f.arch, f.stem, f.width, f.in_channels
                        ),
                        None => "missing".into(),
                    }
                ));
            }
        }
        Ok(())
    }

    /// The key prefix of a side's encoder in the safetensors file.
    fn encoder_prefix(side: Side) -> String {
        format!("{NET}{}", ByolNetworks::encoder_prefix(side))
    }

    /// The tensors of one side's encoder, under torchvision's names.
    fn encoder_map(&self, side: Side) -> BTreeMap<String, Tensor> {
        self.encoder_tensors(side).into_iter().collect()
    }

    /// The tensors of one side's encoder under torchvision's names
    /// (`conv1.weight`, `layer1.0.bn1.running_mean`, ...): what `byol
    /// export` writes.
    pub fn encoder_tensors(&self, side: Side) -> Vec<(String, Tensor)> {
        let prefix = Checkpoint::encoder_prefix(side);
        self.tensors
            .iter()
            .filter_map(|(k, t)| k.strip_prefix(&prefix).map(|k| (k.to_string(), t.clone())))
            .collect()
    }

    /// One side's encoder on `device`, with the checkpoint's weights.
    pub fn encoder(&self, side: Side, device: &Device) -> Result<ResNet> {
        let encoder = ResNet::new(self.encoder_config(), 0, device);
        weights::apply(
            &encoder,
            &self.tensors,
            &Checkpoint::encoder_prefix(side),
            LoadMode::Strict,
            &self.path,
        )?;
        Ok(encoder)
    }

    /// The networks and the optimiser as they were when the checkpoint was
    /// written, on `device`: a [`ByolStep`] that continues the run.
    pub fn restore(&self, device: &Device) -> Result<ByolStep> {
        let config = &self.meta.config;
        let nets = ByolNetworks::new(config.network(self.meta.in_channels), config.seed, device);
        for (key, p) in nets.state() {
            match self.tensors.get(&format!("{NET}{key}")) {
                Some(t) if t.shape() == p.shape().as_slice() => p.set_value(t.to_device(device)),
                found => {
                    return Err(ByolError::Checkpoint {
                        path: self.path.clone(),
                        problem: match found {
                            Some(t) => format!(
                                "{NET}{key} has shape {:?}; the networks of its settings need {:?}",
                                t.shape(),
                                p.shape()
                            ),
                            None => format!("{NET}{key} is missing"),
                        },
                    })
                }
            }
        }
        let mut step =
            ByolStep::from_parts(nets, optim::build(config.optimizer, config.weight_decay));
        let opt_state: BTreeMap<String, Tensor> = self
            .tensors
            .iter()
            .filter_map(|(k, t)| {
                k.strip_prefix(OPT)
                    .map(|k| (k.to_string(), t.to_device(device)))
            })
            .collect();
        step.load_optimizer_state(&opt_state)
            .map_err(|e| ByolError::Checkpoint {
                path: self.path.clone(),
                problem: e.to_string(),
            })?;
        Ok(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::OptimizerKind;

    fn tiny_config() -> TrainConfig {
        TrainConfig {
            width: 2,
            hidden: 8,
            projection: 4,
            optimizer: OptimizerKind::Lars,
            ..TrainConfig::default()
        }
    }

    fn meta(config: TrainConfig) -> CheckpointMeta {
        CheckpointMeta {
            config,
            epoch: 1,
            step: 4,
            in_channels: 1,
            image_size: [8, 8],
            mean: vec![0.5],
            std: vec![0.25],
            images: 16,
        }
    }

    /// A run folder with one checkpoint of a tiny network after one step.
    fn saved(name: &str) -> (PathBuf, ByolStep) {
        let run = std::env::temp_dir().join(format!("byol-ckpt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&run);
        let config = tiny_config();
        let d = Device::Cpu;
        let mut step = ByolStep::new(
            config.network(1),
            config.seed,
            config.optimizer,
            config.weight_decay,
            &d,
        );
        let v1 = Tensor::randn(&[4, 1, 8, 8], 0.0, 1.0, 1, &d);
        let v2 = Tensor::randn(&[4, 1, 8, 8], 0.0, 1.0, 2, &d);
        step.step(&v1, &v2, 0.1, 0.9).unwrap();
        Checkpoint::save(&run, &meta(config), &step).unwrap();
        (run, step)
    }

    #[test]
    fn a_saved_checkpoint_restores_networks_and_optimiser_exactly() {
        let (run, step) = saved("roundtrip");
        let c = Checkpoint::load(&run).unwrap();
        assert_eq!(c.meta, meta(tiny_config()));
        assert!(c.path.ends_with("checkpoints/epoch-0001.json"));
        let back = c.restore(&Device::Cpu).unwrap();
        for ((k, p), (_, q)) in step.nets.state().iter().zip(back.nets.state()) {
            assert_eq!(p.value().to_vec(), q.value().to_vec(), "{k}");
        }
        let (a, b) = (step.optimizer().state(), back.optimizer().state());
        assert_eq!(a.len(), b.len());
        for ((ka, ta), (kb, tb)) in a.iter().zip(&b) {
            assert_eq!((ka, ta.to_vec()), (kb, tb.to_vec()));
        }
        // The encoders, and their torchvision-named tensors.
        let online = c.encoder(Side::Online, &Device::Cpu).unwrap();
        let names: Vec<String> = c
            .encoder_tensors(Side::Online)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert!(names.contains(&"conv1.weight".to_string()), "{names:?}");
        assert_eq!(names.len(), models::Module::state(&online).len());
        let target = c.encoder(Side::Target, &Device::Cpu).unwrap();
        let (o, t) = (
            models::Module::parameters(&online)[0].value().to_vec(),
            models::Module::parameters(&target)[0].value().to_vec(),
        );
        assert_ne!(o, t, "online and target are different networks");
        std::fs::remove_dir_all(run).unwrap();
    }

    /// A change made by hand to a checkpoint's JSON.
    type Damage = Box<dyn Fn(&mut serde_json::Value)>;

    /// The checkpoint's JSON with `change` applied.
    fn damaged(run: &Path, change: impl Fn(&mut serde_json::Value)) -> ByolError {
        let json = latest(run).unwrap();
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        change(&mut v);
        std::fs::write(&json, v.to_string()).unwrap();
        match Checkpoint::load(run) {
            Err(e) => e,
            Ok(_) => panic!("a damaged checkpoint loaded"),
        }
    }

    #[test]
    fn a_damaged_checkpoint_is_an_error_naming_what_is_wrong() {
        let (run, _) = saved("damaged");
        let good = std::fs::read_to_string(latest(&run).unwrap()).unwrap();
        let restore = || std::fs::write(latest(&run).unwrap(), &good).unwrap();
        let cases: Vec<(Damage, &str)> = vec![
            (Box::new(|v| v["config"]["arch"] = "vgg".into()), "vgg"),
            (
                Box::new(|v| v["config"]["optimizer"] = "rmsprop".into()),
                "rmsprop",
            ),
            (Box::new(|v| v["config"]["lr"] = "fast".into()), "fast"),
            (Box::new(|v| v["config"]["lr"] = (-1.0).into()), "lr -1"),
            (Box::new(|v| v["epoch"] = (-3).into()), "epoch"),
            (
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("step");
                }),
                "missing field `step`",
            ),
            (
                Box::new(|v| {
                    v["config"].as_object_mut().unwrap().remove("width");
                }),
                "missing field `width`",
            ),
            (Box::new(|v| v["std"] = serde_json::json!([0.0])), "std 0"),
            (
                Box::new(|v| v["mean"] = serde_json::json!([0.1, 0.2])),
                "2 and 1 values",
            ),
            // Settings that do not describe the tensors: caught before a
            // network of that size is built.
            (
                Box::new(|v| v["config"]["width"] = 4096.into()),
                "width 4096",
            ),
            (Box::new(|v| v["in_channels"] = 3.into()), "3 channel(s)"),
            (
                Box::new(|v| v["config"]["arch"] = "resnet50".into()),
                "resnet50",
            ),
            (
                Box::new(|v| v["config"]["hidden"] = 100_000.into()),
                "hidden 100000",
            ),
            (
                Box::new(|v| v["config"]["predictor"] = false.into()),
                "no predictor",
            ),
        ];
        for (change, expect) in cases {
            let e = damaged(&run, change).to_string();
            assert!(
                e.contains(expect) && e.contains("epoch-0001.json"),
                "expected {expect:?} in: {e}"
            );
            restore();
        }
        // Not JSON at all.
        std::fs::write(latest(&run).unwrap(), "{\"config\": ").unwrap();
        let e = Checkpoint::load(&run).err().unwrap().to_string();
        assert!(e.contains("not a usable checkpoint description"), "{e}");
        restore();
        // A tensor of the right name and the wrong shape is caught when the
        // networks are restored.
        let weights_file = latest(&run).unwrap().with_extension("safetensors");
        let mut tensors = weights::read(&weights_file).unwrap();
        let key = "net.online.encoder.layer1.0.bn1.weight".to_string();
        tensors.insert(key.clone(), Tensor::zeros(&[3], &Device::Cpu));
        let list: Vec<(String, Tensor)> = tensors.into_iter().collect();
        weights::write(&weights_file, &list).unwrap();
        let e = Checkpoint::load(&run)
            .unwrap()
            .restore(&Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(&key) && e.contains("shape [3]"), "{e}");
        assert!(Checkpoint::load(&run).is_ok());
        // No checkpoint at all.
        let empty = run.join("checkpoints-none");
        std::fs::create_dir_all(&empty).unwrap();
        let e = Checkpoint::load(&empty).err().unwrap().to_string();
        assert!(e.contains("no checkpoint found"), "{e}");
        std::fs::remove_dir_all(run).unwrap();
    }
}
