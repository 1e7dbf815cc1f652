//! The run's record: one JSON object per line in `metrics.jsonl`, a `step`
//! line after every step and an `epoch` line after every epoch, appended so
//! a resumed run continues the same file.
//!
//! A line is a [`MetricsLine`], tagged by its `kind`:
//!
//! ```text
//! {"kind":"step","step":0,"epoch":0,"loss":3.91,"lr":0.0001,"tau":0.99,"images_per_s":412.0,"collapse":0.11}
//! {"kind":"epoch","epoch":0,"loss":2.75,"collapse":0.12,"images_per_s":405.3,"knn":0.64}
//! ```
//!
//! The same types write the file ([`MetricsLog`]) and read it back
//! ([`read_metrics`]), so a plot or a report never looks a field up by a
//! string key.

use crate::error::{ByolError, Result};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// What one training step measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Global step, from 0.
    pub step: usize,
    /// Epoch, from 0.
    pub epoch: usize,
    /// The symmetric BYOL loss (between 0 and 8).
    pub loss: f32,
    /// The learning rate used.
    pub lr: f32,
    /// τ used for the moving average after this step.
    pub tau: f32,
    /// Images per second of this step (views made in parallel excluded).
    pub images_per_s: f32,
    /// The collapse signal: std over the batch of the normalised online
    /// projections, averaged over dimensions (about 1/√D when healthy).
    pub collapse: f32,
}

/// What one epoch measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch, from 0.
    pub epoch: usize,
    /// Mean loss over the epoch's steps.
    pub loss: f32,
    /// Mean collapse signal.
    pub collapse: f32,
    /// Images per second over the epoch.
    pub images_per_s: f32,
    /// kNN top-1 accuracy of the online encoder, when the monitor ran.
    pub knn: Option<f32>,
}

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MetricsLine {
    /// After every step.
    Step(StepRecord),
    /// After every epoch.
    Epoch(EpochRecord),
}

/// Appends lines to `metrics.jsonl`.
pub struct MetricsLog {
    path: PathBuf,
    out: BufWriter<File>,
}

impl MetricsLog {
    /// Opens (creating or appending to) the log at `path`.
    pub fn open(path: &Path) -> Result<MetricsLog> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| ByolError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(MetricsLog {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        })
    }

    /// Appends one line and flushes it, so the file is current even if the
    /// run dies.
    pub fn write(&mut self, line: &MetricsLine) -> Result<()> {
        let io = |source| ByolError::Io {
            path: self.path.clone(),
            source,
        };
        let text = serde_json::to_string(line).map_err(|e| io(std::io::Error::other(e)))?;
        writeln!(self.out, "{text}").map_err(io)?;
        self.out.flush().map_err(io)
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A run's metrics as read back: one record per step and per epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunMetrics {
    /// Every step, in step order.
    pub steps: Vec<StepRecord>,
    /// Every epoch, in epoch order.
    pub epochs: Vec<EpochRecord>,
}

/// Reads a `metrics.jsonl`. A line that does not parse (the end of a line
/// cut by a crash mid-write) is skipped. A step or epoch written twice (a
/// run resumed from a checkpoint replays the steps after it) keeps its last
/// record.
pub fn read_metrics(path: &Path) -> Result<RunMetrics> {
    let text = std::fs::read_to_string(path).map_err(|source| ByolError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut steps = std::collections::BTreeMap::new();
    let mut epochs = std::collections::BTreeMap::new();
    for line in text.lines() {
        match serde_json::from_str::<MetricsLine>(line) {
            Ok(MetricsLine::Step(r)) => {
                steps.insert(r.step, r);
            }
            Ok(MetricsLine::Epoch(r)) => {
                epochs.insert(r.epoch, r);
            }
            Err(_) => {}
        }
    }
    Ok(RunMetrics {
        steps: steps.into_values().collect(),
        epochs: epochs.into_values().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(step: usize, loss: f32) -> StepRecord {
        StepRecord {
            step,
            epoch: 0,
            loss,
            lr: 0.1,
            tau: 0.99,
            images_per_s: 100.0,
            collapse: 0.1,
        }
    }

    #[test]
    fn lines_are_tagged_by_kind_and_read_back() {
        let dir = std::env::temp_dir().join(format!("byol-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut log = MetricsLog::open(&path).unwrap();
        log.write(&MetricsLine::Step(step(0, 3.0))).unwrap();
        log.write(&MetricsLine::Step(step(1, 2.5))).unwrap();
        // A resumed run writes step 1 again.
        log.write(&MetricsLine::Step(step(1, 2.4))).unwrap();
        let epoch = EpochRecord {
            epoch: 0,
            loss: 2.7,
            collapse: 0.1,
            images_per_s: 90.0,
            knn: Some(0.6),
        };
        log.write(&MetricsLine::Epoch(epoch.clone())).unwrap();
        drop(log);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("{\"kind\":\"step\",\"step\":0,"), "{text}");
        // A line cut short by a crash is skipped.
        std::fs::write(&path, text + "{\"kind\":\"step\",\"st").unwrap();
        let m = read_metrics(&path).unwrap();
        assert_eq!(m.steps, vec![step(0, 3.0), step(1, 2.4)]);
        assert_eq!(m.epochs, vec![epoch]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_nan_is_written_as_null_never_as_a_number() {
        let line = MetricsLine::Step(step(0, f32::NAN));
        let text = serde_json::to_string(&line).unwrap();
        assert!(text.contains("\"loss\":null"), "{text}");
    }
}
