//! Checkpoints: everything needed to continue a run exactly.
//!
//! `checkpoints/epoch-NNNN.safetensors` holds the online and target
//! networks (parameters and running statistics, keys `net.online...`,
//! `net.target...`) and the optimiser's buffers (`opt....`);
//! `checkpoints/epoch-NNNN.json` holds the configuration, the epoch and
//! step reached, and the data facts the run depends on. No random state
//! needs saving: shuffles and views are drawn from seeds derived from (run
//! seed, epoch, image index), so a resumed run replays them exactly.
//!
//! Both files are written to temporary names and renamed, the tensors
//! first and the JSON (which marks the checkpoint complete) last, so a crash
//! while writing leaves the previous checkpoint as the latest good one.

use crate::config::TrainConfig;
use models::weights;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tensor::Tensor;

/// The JSON half of a checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
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

/// The folder of a run's checkpoints.
pub fn folder(run: &Path) -> PathBuf {
    run.join("checkpoints")
}

fn stem(epoch: usize) -> String {
    format!("epoch-{epoch:04}")
}

/// Writes a checkpoint after `meta.epoch` epochs; returns the JSON path.
pub fn save(
    run: &Path,
    meta: &CheckpointMeta,
    tensors: &[(String, Tensor)],
) -> Result<PathBuf, String> {
    let dir = folder(run);
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("{}: cannot create the folder: {e}", dir.display()))?;
    let name = stem(meta.epoch);
    weights::write(&dir.join(format!("{name}.safetensors")), tensors).map_err(|e| e.to_string())?;
    let json_path = dir.join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(meta).map_err(|e| e.to_string())?;
    files::write_atomically(&json_path, text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(json_path)
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

/// Reads a checkpoint from its JSON path (or a run folder, for the latest).
pub fn load(path: &Path) -> Result<(CheckpointMeta, BTreeMap<String, Tensor>), String> {
    let json = if path.is_dir() {
        latest(path).ok_or_else(|| {
            format!(
                "{}: no checkpoint found (expected checkpoints/epoch-NNNN.json)",
                path.display()
            )
        })?
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&json).map_err(|e| format!("{}: {e}", json.display()))?;
    let meta: CheckpointMeta = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a checkpoint description: {e}", json.display()))?;
    let tensors = weights::read(&json.with_extension("safetensors")).map_err(|e| e.to_string())?;
    Ok((meta, tensors))
}
