//! Checkpoints: everything needed to continue a run exactly, and to take
//! its encoder out.
//!
//! A checkpoint is two files in the run's `checkpoints/`, named for the
//! epochs completed (`epoch-0000` is the run's start, written when it is
//! set up, so a run can be resumed from its first second) and, for one
//! written mid-epoch (Ctrl-C, a signal), the step too:
//! `epoch-0002-step-000000123`, so it never replaces the end-of-epoch one.
//! They are ordered by those numbers, not as text.
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
//! its step and epoch must agree with its data size, its optimiser state
//! must be there once a step was taken, its values must be finite, and its
//! tensors must be those its settings describe (the encoder's and heads'
//! shapes are read from the tensors and compared before any network is
//! built), so a damaged or hand-edited file gives an error, never a panic
//! or a network of absurd size. Loading a run folder falls back from a
//! damaged newest checkpoint to the newest good one, saying so
//! ([`Checkpoint::skipped`]). A checkpoint with a NaN or infinite value is
//! never written.

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
        let per_epoch = self.images / self.config.batch_size;
        if per_epoch == 0 {
            return Err(format!(
                "{} images make no whole batch of {}",
                self.images, self.config.batch_size
            ));
        }
        // At the end of `epoch` epochs, or within the next one.
        let start = self.epoch.checked_mul(per_epoch);
        let consistent = start.is_some_and(|start| {
            (self.step == start && self.epoch <= self.config.epochs)
                || (self.step > start
                    && self.step - start < per_epoch
                    && self.epoch < self.config.epochs)
        });
        if !consistent {
            return Err(format!(
                "step {} and epoch {} do not agree: {} images in batches of {} make {per_epoch} \
                 steps per epoch, over {} epochs",
                self.step, self.epoch, self.images, self.config.batch_size, self.config.epochs
            ));
        }
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

/// The file name (without extension) of the checkpoint of `meta`:
/// `epoch-NNNN` at the end of an epoch, `epoch-NNNN-step-SSSSSSSSS` in the
/// middle of one.
fn stem(meta: &CheckpointMeta) -> String {
    let per_epoch = meta.images / meta.config.batch_size.max(1);
    if meta.step == meta.epoch * per_epoch {
        format!("epoch-{:04}", meta.epoch)
    } else {
        format!("epoch-{:04}-step-{:09}", meta.epoch, meta.step)
    }
}

/// The (epoch, step in the name) of a checkpoint's JSON file name, `None`
/// for another file. An end-of-epoch name (step 0 here) sorts before the
/// mid-epoch names of the epoch after it.
fn order_of(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("epoch-")?.strip_suffix(".json")?;
    let (epoch, step) = match rest.split_once("-step-") {
        Some((e, s)) => (e, s.parse().ok()?),
        None => (rest, 0),
    };
    Some((epoch.parse().ok()?, step))
}

/// The JSON files of a run's checkpoints, newest first (by the numbers in
/// their names, so `epoch-10000` comes after `epoch-9999`).
pub fn all(run: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder(run)) else {
        return Vec::new();
    };
    let mut found: Vec<((u64, u64), PathBuf)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| Some((order_of(&p.file_name()?.to_string_lossy())?, p)))
        .collect();
    found.sort();
    found.into_iter().rev().map(|(_, p)| p).collect()
}

/// Removes all but the newest `keep` checkpoints of a run (`keep` 0 keeps
/// every one); returns the JSON paths removed. Each goes JSON first, then
/// its weights, so a checkpoint half removed by a crash is never listed.
pub fn prune(run: &Path, keep: usize) -> Result<Vec<PathBuf>> {
    if keep == 0 {
        return Ok(Vec::new());
    }
    let old: Vec<PathBuf> = all(run).into_iter().skip(keep).collect();
    for json in &old {
        for path in [json.clone(), json.with_extension("safetensors")] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(ByolError::Io { path, source }),
            }
        }
    }
    Ok(old)
}

/// The JSON of the latest checkpoint of a run, if any.
pub fn latest(run: &Path) -> Option<PathBuf> {
    all(run).into_iter().next()
}

/// Whether the run holds trained work: a checkpoint after its start
/// (`epoch-0000` is written before the first step).
pub fn has_trained(run: &Path) -> bool {
    all(run)
        .iter()
        .any(|p| p.file_name().is_some_and(|n| n != "epoch-0000.json"))
}

/// The first tensor of `tensors` holding a NaN or an infinity, by name.
fn first_non_finite<'a>(
    tensors: impl IntoIterator<Item = (&'a String, &'a Tensor)>,
) -> Option<&'a String> {
    tensors
        .into_iter()
        .find(|(_, t)| !t.to_vec().iter().all(|x| x.is_finite()))
        .map(|(k, _)| k)
}

/// A checkpoint read from disk and checked.
pub struct Checkpoint {
    /// Its JSON file.
    pub path: PathBuf,
    /// The JSON half.
    pub meta: CheckpointMeta,
    /// Newer checkpoints of the run that could not be used, with why
    /// (loading a run folder falls back past them): for a warning.
    pub skipped: Vec<String>,
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
        // Read everything back first, then ask the device whether it failed
        // meanwhile: a checkpoint is never written from a broken device.
        let tensors: Vec<(String, Tensor)> = tensors
            .into_iter()
            .map(|(k, t)| (k, t.to_device(&Device::Cpu)))
            .collect();
        if let Some(e) = step.device().take_error() {
            return Err(ByolError::Device(e));
        }
        if let Some(key) = first_non_finite(tensors.iter().map(|(k, t)| (k, t))) {
            return Err(ByolError::NonFinite {
                step: meta.step,
                what: format!("{key} holds a NaN or infinite value, so no checkpoint was written"),
                checkpoint: latest(run),
            });
        }
        let name = stem(meta);
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
    /// newest good one: a damaged newer one is skipped and named in
    /// [`Checkpoint::skipped`]), and checks it (see the module docs).
    pub fn load(path: &Path) -> Result<Checkpoint> {
        Checkpoint::load_with(path, |_| Ok(())).map(|(c, ())| c)
    }

    /// As [`Checkpoint::load`], taking the newest checkpoint that `accept`
    /// also takes: a checkpoint whose damage only shows when it is used
    /// (restoring its networks and optimiser, say) is skipped like one that
    /// does not read. Returns the checkpoint and what `accept` made of it.
    pub fn load_with<T>(
        path: &Path,
        accept: impl Fn(&Checkpoint) -> Result<T>,
    ) -> Result<(Checkpoint, T)> {
        if !path.exists() {
            return Err(ByolError::Checkpoint {
                path: path.to_path_buf(),
                problem: "no such file or folder (give a run folder, or its \
                          checkpoints/epoch-NNNN.json)"
                    .into(),
            });
        }
        if !path.is_dir() {
            let checkpoint = Checkpoint::load_file(path)?;
            let made = accept(&checkpoint)?;
            return Ok((checkpoint, made));
        }
        let mut skipped = Vec::new();
        let mut first_error = None;
        for json in all(path) {
            let tried = Checkpoint::load_file(&json).and_then(|c| {
                let made = accept(&c)?;
                Ok((c, made))
            });
            match tried {
                Ok((mut checkpoint, made)) => {
                    checkpoint.skipped = skipped;
                    return Ok((checkpoint, made));
                }
                Err(e) => {
                    skipped.push(e.to_string());
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| ByolError::Checkpoint {
            path: path.to_path_buf(),
            problem: "no checkpoint found (expected checkpoints/epoch-NNNN.json)".into(),
        }))
    }

    /// Reads and checks the checkpoint whose JSON is `json`.
    fn load_file(json: &Path) -> Result<Checkpoint> {
        let problem = |path: &Path, problem: String| ByolError::Checkpoint {
            path: path.to_path_buf(),
            problem,
        };
        let json = json.to_path_buf();
        let text = std::fs::read_to_string(&json).map_err(|source| ByolError::Io {
            path: json.clone(),
            source,
        })?;
        let meta: CheckpointMeta = serde_json::from_str(&text)
            .map_err(|e| problem(&json, format!("not a usable checkpoint description: {e}")))?;
        meta.check().map_err(|p| problem(&json, p))?;
        let tensors = weights::read(&json.with_extension("safetensors"))?;
        if let Some(key) = first_non_finite(&tensors) {
            return Err(problem(
                &json,
                format!("{key} holds a NaN or infinite value; the weights are not usable"),
            ));
        }
        let checkpoint = Checkpoint {
            path: json,
            meta,
            skipped: Vec::new(),
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
        if self.meta.step > 0 {
            let has_state = |name: &str| {
                opt_state
                    .keys()
                    .any(|k| k.split_once('.').map(|(_, n)| n) == Some(name))
            };
            if let Some(p) = step.parameters().iter().find(|p| !has_state(p.name())) {
                return Err(ByolError::Checkpoint {
                    path: self.path.clone(),
                    problem: format!(
                        "after {} steps the optimiser state of {} is missing; the run \
                         cannot continue exactly",
                        self.meta.step,
                        p.name()
                    ),
                });
            }
        }
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
            batch_size: 4,
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

    /// Pruning keeps the newest `keep` checkpoints (JSON and weights),
    /// removes the rest, and touches no other file.
    #[test]
    fn pruning_keeps_the_newest_checkpoints_and_nothing_else_goes() {
        let run = std::env::temp_dir().join(format!("byol-ckpt-prune-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&run);
        std::fs::create_dir_all(folder(&run)).unwrap();
        for stem in [
            "epoch-0000",
            "epoch-0001",
            "epoch-0001-step-000000006",
            "epoch-0002",
        ] {
            for ext in ["json", "safetensors"] {
                std::fs::write(folder(&run).join(format!("{stem}.{ext}")), "{}").unwrap();
            }
        }
        std::fs::write(folder(&run).join("notes.txt"), "mine").unwrap();
        assert!(prune(&run, 0).unwrap().is_empty());
        assert_eq!(all(&run).len(), 4);
        let removed = prune(&run, 2).unwrap();
        assert_eq!(removed.len(), 2);
        let mut left: Vec<String> = std::fs::read_dir(folder(&run))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "epoch-0001-step-000000006.json",
                "epoch-0001-step-000000006.safetensors",
                "epoch-0002.json",
                "epoch-0002.safetensors",
                "notes.txt"
            ]
        );
        std::fs::remove_dir_all(run).unwrap();
    }

    #[test]
    fn checkpoints_are_ordered_by_their_numbers_and_mid_epoch_ones_keep_their_own_name() {
        let run = std::env::temp_dir().join(format!("byol-ckpt-order-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&run);
        std::fs::create_dir_all(folder(&run)).unwrap();
        for name in [
            "epoch-9999.json",
            "epoch-10000.json",
            "epoch-0002.json",
            "epoch-0002-step-000000011.json",
            "notes.json",
        ] {
            std::fs::write(folder(&run).join(name), "{}").unwrap();
        }
        let names: Vec<String> = all(&run)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "epoch-10000.json",
                "epoch-9999.json",
                "epoch-0002-step-000000011.json",
                "epoch-0002.json"
            ]
        );
        assert!(has_trained(&run));
        // The names a save picks: 4 steps an epoch.
        let config = tiny_config();
        let mut m = meta(config);
        assert_eq!(stem(&m), "epoch-0001");
        m.step = 6;
        assert_eq!(stem(&m), "epoch-0001-step-000000006");
        std::fs::remove_dir_all(run).unwrap();
    }

    #[test]
    fn a_damaged_newest_checkpoint_falls_back_to_the_previous_good_one() {
        let (run, step) = saved("fallback");
        // A second, later checkpoint, then damage it.
        let later = CheckpointMeta {
            epoch: 2,
            step: 8,
            ..meta(tiny_config())
        };
        Checkpoint::save(&run, &later, &step).unwrap();
        let newest = latest(&run).unwrap();
        assert!(newest.ends_with("epoch-0002.json"));
        std::fs::write(newest.with_extension("safetensors"), b"not safetensors").unwrap();
        let c = Checkpoint::load(&run).unwrap();
        assert!(c.path.ends_with("epoch-0001.json"));
        assert_eq!(c.skipped.len(), 1);
        assert!(c.skipped[0].contains("epoch-0002"), "{:?}", c.skipped);
        // Named directly, the damaged one is an error.
        assert!(Checkpoint::load(&newest).is_err());
        // A NaN weight is never written, and never read.
        let p = step.parameters()[0].clone();
        p.set_value(Tensor::full(&p.shape(), f32::NAN, &Device::Cpu));
        let e = Checkpoint::save(&run, &later, &step)
            .unwrap_err()
            .to_string();
        assert!(e.contains("NaN") && e.contains(p.name()), "{e}");
        let good = c.path.clone();
        let weights_file = good.with_extension("safetensors");
        // Written by another tool: this project's writer refuses an infinity.
        let tensors = weights::read(&weights_file).unwrap();
        let key = "net.online.encoder.conv1.weight".to_string();
        let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
            .iter()
            .filter(|(k, _)| !k.ends_with("num_batches_tracked"))
            .map(|(k, t)| {
                let inf = k == &key;
                let v: Vec<u8> = t
                    .to_vec()
                    .iter()
                    .flat_map(|x| if inf { f32::INFINITY } else { *x }.to_le_bytes())
                    .collect();
                (k.clone(), v, t.shape().to_vec())
            })
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
            .iter()
            .map(|(k, b, shape)| {
                let dtype = safetensors::Dtype::F32;
                let view = safetensors::tensor::TensorView::new(dtype, shape.clone(), b);
                (k.clone(), view.unwrap())
            })
            .collect();
        std::fs::write(&weights_file, safetensors::serialize(views, None).unwrap()).unwrap();
        let e = Checkpoint::load(&good).err().unwrap().to_string();
        assert!(e.contains(&key) && e.contains("infinite"), "{e}");
        std::fs::remove_dir_all(run).unwrap();
    }

    #[test]
    fn steps_that_do_not_fit_the_data_or_a_missing_optimiser_are_refused() {
        let (run, _) = saved("consistency");
        // 16 images in batches of 4: 4 steps an epoch, so after 1 epoch the
        // step is 4 to 7.
        let e = damaged(&run, |v| v["step"] = 9.into()).to_string();
        assert!(e.contains("step 9 and epoch 1 do not agree"), "{e}");
        let (run2, _) = saved("no-optimiser");
        let weights_file = latest(&run2).unwrap().with_extension("safetensors");
        let tensors: Vec<(String, Tensor)> = weights::read(&weights_file)
            .unwrap()
            .into_iter()
            .filter(|(k, _)| !k.starts_with(OPT))
            .collect();
        weights::write(&weights_file, &tensors).unwrap();
        let e = Checkpoint::load(&run2)
            .unwrap()
            .restore(&Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("optimiser state") && e.contains("missing"),
            "{e}"
        );
        std::fs::remove_dir_all(run).unwrap();
        std::fs::remove_dir_all(run2).unwrap();
    }
}
