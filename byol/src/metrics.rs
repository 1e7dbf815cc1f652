//! The run's record: one JSON object per line in `metrics.jsonl`, a `step`
//! line after every step and an `epoch` line after every epoch, appended so
//! a resumed run continues the same file.

use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// What one training step measured.
#[derive(Clone, Debug, Serialize)]
pub struct StepRecord {
    /// Always `"step"`.
    pub kind: &'static str,
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
#[derive(Clone, Debug, Serialize)]
pub struct EpochRecord {
    /// Always `"epoch"`.
    pub kind: &'static str,
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

/// Appends records to `metrics.jsonl`.
pub struct MetricsLog {
    path: PathBuf,
    out: BufWriter<File>,
}

impl MetricsLog {
    /// Opens (creating or appending to) the log at `path`.
    pub fn open(path: &Path) -> std::io::Result<MetricsLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(MetricsLog {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        })
    }

    /// Appends one record as a line and flushes it, so the file is current
    /// even if the run dies.
    pub fn write<T: Serialize>(&mut self, record: &T) -> std::io::Result<()> {
        let line = serde_json::to_string(record).map_err(std::io::Error::other)?;
        writeln!(self.out, "{line}")?;
        self.out.flush()
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
