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
    #[serde(deserialize_with = "number_or_nan")]
    pub loss: f32,
    /// The learning rate used.
    #[serde(deserialize_with = "number_or_nan")]
    pub lr: f32,
    /// τ used for the moving average after this step.
    #[serde(deserialize_with = "number_or_nan")]
    pub tau: f32,
    /// Images per second of this step (views made in parallel excluded).
    #[serde(deserialize_with = "number_or_nan")]
    pub images_per_s: f32,
    /// The collapse signal: std over the batch of the normalised online
    /// projections, averaged over dimensions (about 1/√D when healthy).
    #[serde(deserialize_with = "number_or_nan")]
    pub collapse: f32,
}

/// What one epoch measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch, from 0.
    pub epoch: usize,
    /// Mean loss over the epoch's steps.
    #[serde(deserialize_with = "number_or_nan")]
    pub loss: f32,
    /// Mean collapse signal.
    #[serde(deserialize_with = "number_or_nan")]
    pub collapse: f32,
    /// Images per second over the epoch.
    #[serde(deserialize_with = "number_or_nan")]
    pub images_per_s: f32,
    /// kNN top-1 accuracy of the online encoder, when the monitor ran.
    pub knn: Option<f32>,
}

/// Reads a number, or `null` (how JSON writes a NaN or an infinity) as
/// NaN, so such a line is kept and shown as what it was, never as a number.
fn number_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f32, D::Error> {
    Ok(Option::<f32>::deserialize(d)?.unwrap_or(f32::NAN))
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

/// Appends lines to `metrics.jsonl` (or, made with [`MetricsLog::sink`],
/// nowhere: the log of a rank that does not write).
pub struct MetricsLog {
    path: PathBuf,
    out: Option<BufWriter<File>>,
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
            out: Some(BufWriter::new(file)),
        })
    }

    /// A log that writes nothing: for the ranks other than 0 of a group
    /// (rank 0 alone writes the run's files).
    pub fn sink() -> MetricsLog {
        MetricsLog {
            path: PathBuf::new(),
            out: None,
        }
    }

    /// Appends one line and flushes it, so the file is current even if the
    /// run dies.
    pub fn write(&mut self, line: &MetricsLine) -> Result<()> {
        let io = |source| ByolError::Io {
            path: self.path.clone(),
            source,
        };
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        let text = serde_json::to_string(line).map_err(|e| io(std::io::Error::other(e)))?;
        writeln!(out, "{text}").map_err(io)?;
        out.flush().map_err(io)
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

/// The part of an epoch a run had trained before it stopped: the sums its
/// epoch line averages.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PartialEpoch {
    /// Sum of the steps' losses.
    pub loss_sum: f64,
    /// Sum of the steps' collapse signals.
    pub collapse_sum: f64,
    /// Number of steps.
    pub steps: usize,
}

/// Makes a run's `metrics.jsonl` agree with the checkpoint it resumes from:
/// keeps the step lines before `step` and the epoch lines before `epoch`
/// (each once), drops the rest (lines written after the checkpoint, a line
/// torn by a crash), and rewrites the file atomically. Returns the sums of
/// the kept steps of epoch `epoch`, so that a run resumed in the middle of
/// an epoch reports that epoch's mean over all of its steps.
pub fn truncate_to(path: &Path, step: usize, epoch: usize) -> Result<PartialEpoch> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(ByolError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut kept = RunMetrics::default();
    let (mut steps, mut epochs) = (
        std::collections::BTreeMap::new(),
        std::collections::BTreeMap::new(),
    );
    for line in text.lines() {
        match serde_json::from_str::<MetricsLine>(line) {
            Ok(MetricsLine::Step(r)) if r.step < step => {
                steps.insert(r.step, r);
            }
            Ok(MetricsLine::Epoch(r)) if r.epoch < epoch => {
                epochs.insert(r.epoch, r);
            }
            _ => {}
        }
    }
    kept.steps = steps.into_values().collect();
    kept.epochs = epochs.into_values().collect();
    let mut out = String::new();
    let mut partial = PartialEpoch::default();
    let mut next_epoch = kept.epochs.iter().peekable();
    for r in &kept.steps {
        while let Some(e) = next_epoch.next_if(|e| e.epoch < r.epoch) {
            out.push_str(&line_of(&MetricsLine::Epoch(e.clone()), path)?);
        }
        if r.epoch == epoch {
            partial.loss_sum += r.loss as f64;
            partial.collapse_sum += r.collapse as f64;
            partial.steps += 1;
        }
        out.push_str(&line_of(&MetricsLine::Step(r.clone()), path)?);
    }
    for e in next_epoch {
        out.push_str(&line_of(&MetricsLine::Epoch(e.clone()), path)?);
    }
    if out != text {
        files::write_atomically(path, out.as_bytes())?;
    }
    Ok(partial)
}

/// One line of the file, with its newline.
fn line_of(line: &MetricsLine, path: &Path) -> Result<String> {
    let text = serde_json::to_string(line).map_err(|e| ByolError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    Ok(text + "\n")
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
    fn a_resumed_run_s_record_is_cut_back_to_its_checkpoint() {
        let dir = std::env::temp_dir().join(format!("byol-metrics-cut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.jsonl");
        let step_in = |s: usize, e: usize, loss: f32| {
            MetricsLine::Step(StepRecord {
                epoch: e,
                ..step(s, loss)
            })
        };
        let epoch0 = MetricsLine::Epoch(EpochRecord {
            epoch: 0,
            loss: 2.0,
            collapse: 0.1,
            images_per_s: 1.0,
            knn: None,
        });
        // Two steps per epoch; written up to step 4, the checkpoint is at
        // step 3 (mid-epoch 1), and the last line is torn.
        let mut text = String::new();
        for line in [
            step_in(0, 0, 3.0),
            step_in(1, 0, 1.0),
            epoch0.clone(),
            step_in(2, 1, 0.5),
            step_in(3, 1, 0.25),
            step_in(4, 2, 0.2),
        ] {
            text += &line_of(&line, &path).unwrap();
        }
        std::fs::write(&path, text + "{\"kind\":\"ste").unwrap();
        let partial = truncate_to(&path, 3, 1).unwrap();
        assert_eq!(partial.steps, 1);
        assert_eq!(partial.loss_sum, 0.5);
        let m = read_metrics(&path).unwrap();
        assert_eq!(
            m.steps.iter().map(|r| r.step).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(m.epochs.len(), 1);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.ends_with('\n'));
        // Nothing to resume from: the record starts empty.
        assert_eq!(truncate_to(&path, 0, 0).unwrap(), PartialEpoch::default());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_nan_is_written_as_null_never_as_a_number() {
        let line = MetricsLine::Step(step(0, f32::NAN));
        let text = serde_json::to_string(&line).unwrap();
        assert!(text.contains("\"loss\":null"), "{text}");
        // And read back as NaN: the line is not lost.
        match serde_json::from_str::<MetricsLine>(&text).unwrap() {
            MetricsLine::Step(r) => assert!(r.loss.is_nan() && r.lr == 0.1),
            other => panic!("{other:?}"),
        }
    }
}
