//! What can go wrong in this crate, as one typed error.
//!
//! Every fallible function of the crate returns [`ByolError`]. Its messages
//! are in the library's words: a setting is named as [`crate::TrainConfig`]
//! names it (`lr`, `batch_size`), a file by its path, an evaluation input by
//! the split it belongs to. A program on top (the `byol` command) matches
//! on the variants to say the same in its own words, e.g. with the flag
//! that sets a value.

use std::fmt;
use std::path::PathBuf;

/// The error of every fallible function of this crate.
#[derive(Debug)]
pub enum ByolError {
    /// A setting has a value it cannot have; the message names the
    /// setting, the value and what is allowed (`lr -1: must be a positive
    /// number`).
    Config(String),
    /// Reading or batching images failed (the `augment` crate's error).
    Data(augment::DataError),
    /// A weights file could not be read, written or applied.
    Weights(models::weights::WeightsError),
    /// A file could not be written (the `files` crate's error).
    Write(files::WriteError),
    /// A file or folder could not be read or created.
    Io {
        /// The path.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A checkpoint is missing, damaged, or does not fit what it is used
    /// with (other data, other networks).
    Checkpoint {
        /// The checkpoint's JSON file, or the run folder searched.
        path: PathBuf,
        /// What is wrong, and how to fix it where there is a fix.
        problem: String,
    },
    /// A new run was asked to start in a folder that already holds one.
    RunExists {
        /// The folder.
        path: PathBuf,
    },
    /// Another process holds the run folder.
    RunInUse {
        /// The folder.
        path: PathBuf,
        /// The holder's process id, as it wrote it in `<run>/.lock`.
        pid: Option<u32>,
    },
    /// An evaluation's input does not fit: an empty split, a label not
    /// below the number of classes, features and labels of different
    /// lengths, an encoder on another device.
    Input(String),
    /// The device failed: a lost GPU, a driver error, a tensor too large for
    /// the adapter. Nothing computed since is used.
    Device(tensor::DeviceError),
    /// The processes training together disagree or one of them failed
    /// (the failing rank reports its own error).
    Distributed(String),
    /// Another rank of the group failed at a point where every rank checks
    /// in; that rank reports its own error, this one only stops.
    OtherRankFailed,
    /// The loss or a weight became NaN or infinite; the run stopped before
    /// the value could change a weight or reach a checkpoint.
    NonFinite {
        /// The step at which it happened.
        step: usize,
        /// What became non-finite (`the loss became NaN`, a tensor's name).
        what: String,
        /// The last good checkpoint, if one was written.
        checkpoint: Option<PathBuf>,
    },
}

impl fmt::Display for ByolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ByolError::Config(message) | ByolError::Input(message) => f.write_str(message),
            ByolError::Distributed(message) => f.write_str(message),
            ByolError::OtherRankFailed => {
                f.write_str("another process of the group failed; it reports why")
            }
            ByolError::Data(e) => write!(f, "{e}"),
            ByolError::Weights(e) => write!(f, "{e}"),
            ByolError::Write(e) => write!(f, "{e}"),
            ByolError::Device(e) => write!(f, "{e}"),
            ByolError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            ByolError::Checkpoint { path, problem } => write!(f, "{}: {problem}", path.display()),
            ByolError::RunInUse { path, pid } => write!(
                f,
                "{}: in use by process {}; one process at a time works on a run folder \
                 (wait for it, stop it, or use another folder)",
                path.display(),
                pid.map(|p| p.to_string())
                    .unwrap_or_else(|| "(unknown pid)".into())
            ),
            ByolError::RunExists { path } => write!(
                f,
                "{}: already holds a run; continue it, or start the new one in another folder",
                path.display()
            ),
            ByolError::NonFinite {
                step,
                what,
                checkpoint,
            } => {
                write!(f, "at step {step}, {what}; the run stopped")?;
                match checkpoint {
                    Some(c) => write!(f, ". The last good checkpoint is {}", c.display())?,
                    None => write!(f, ". No checkpoint was written before it")?,
                }
                write!(
                    f,
                    ". Try a lower learning rate (lr) or a longer warm-up (warmup_epochs)"
                )
            }
        }
    }
}

impl std::error::Error for ByolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ByolError::Data(e) => Some(e),
            ByolError::Weights(e) => Some(e),
            ByolError::Write(e) => Some(e),
            ByolError::Device(e) => Some(e),
            ByolError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<augment::DataError> for ByolError {
    fn from(e: augment::DataError) -> ByolError {
        ByolError::Data(e)
    }
}

impl From<models::weights::WeightsError> for ByolError {
    fn from(e: models::weights::WeightsError) -> ByolError {
        ByolError::Weights(e)
    }
}

impl From<tensor::DeviceError> for ByolError {
    fn from(e: tensor::DeviceError) -> ByolError {
        ByolError::Device(e)
    }
}

impl From<files::WriteError> for ByolError {
    fn from(e: files::WriteError) -> ByolError {
        ByolError::Write(e)
    }
}

/// The crate's result type.
pub type Result<T, E = ByolError> = std::result::Result<T, E>;
