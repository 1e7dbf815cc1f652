//! The command's one error type: what went wrong, from a library or from a
//! flag, said in one line in the command's own words.
//!
//! The libraries name a setting as the library does (`lr`, the data
//! folder); here each error is told with the flag a user types
//! (`--lr`, `--data`) and the fix, and `main` prints it as
//! `error: <message>` with exit status 1.

use augment::DataError;
use byol::ByolError;
use std::fmt;
use tensor::DeviceError;

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    /// A flag's value cannot be used; the message names the flag, the
    /// value and the fix.
    Flag(String),
    /// The method's library failed.
    Byol(ByolError),
    /// Reading or writing images or arrays failed.
    Data(DataError),
    /// A file could not be written.
    Write(files::WriteError),
    /// A weights file could not be read or applied.
    Weights(models::weights::WeightsError),
    /// The device asked for is not there.
    Device(DeviceError),
    /// The group of processes (MPI) could not be joined.
    Group(collective::CollectiveError),
    /// A command other than `pretrain` was started as several processes.
    NotAlone {
        /// The command.
        command: &'static str,
        /// How many processes were started.
        size: usize,
    },
}

impl CliError {
    /// A [`CliError::Flag`] from a message.
    pub fn flag(message: impl Into<String>) -> CliError {
        CliError::Flag(message.into())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Flag(message) => f.write_str(message),
            CliError::Byol(e @ ByolError::NonFinite { .. }) => {
                write!(f, "{e} (the flags --lr and --warmup-epochs)")
            }
            CliError::Byol(ByolError::Device(e)) => write!(f, "{e} (--device cpu runs it there)"),
            CliError::Byol(ByolError::RunExists { path }) => write!(
                f,
                "--out {0}: already holds a run; continue it with --resume {0}, or choose \
                 another --out",
                path.display()
            ),
            CliError::Byol(e) => write!(f, "{e}"),
            CliError::Data(e) => write!(f, "{e}"),
            CliError::Write(e) => write!(f, "{e}"),
            CliError::Weights(e) => write!(f, "{e}"),
            CliError::Device(e) => write!(f, "--device: {e}"),
            CliError::Group(e) => write!(f, "{e}"),
            CliError::NotAlone { command, size } => write!(
                f,
                "`byol {command}` was started as {size} processes, but only `byol pretrain` \
                 trains as a group; run `byol {command}` without mpirun"
            ),
        }
    }
}

impl std::error::Error for CliError {}

impl From<ByolError> for CliError {
    fn from(e: ByolError) -> CliError {
        CliError::Byol(e)
    }
}

impl From<DataError> for CliError {
    fn from(e: DataError) -> CliError {
        CliError::Data(e)
    }
}

impl From<files::WriteError> for CliError {
    fn from(e: files::WriteError) -> CliError {
        CliError::Write(e)
    }
}

impl From<models::weights::WeightsError> for CliError {
    fn from(e: models::weights::WeightsError) -> CliError {
        CliError::Weights(e)
    }
}

impl From<DeviceError> for CliError {
    fn from(e: DeviceError) -> CliError {
        CliError::Device(e)
    }
}
