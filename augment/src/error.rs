//! The one error type of this crate, [`DataError`].
//!
//! Every reader returns `Result<_, DataError>` instead of panicking on a bad
//! file. Each variant names the file (or folder), says what is wrong with it,
//! and its message ends with a fix, so that a person who sees the message
//! knows what to do next without reading this code.

use std::error::Error;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What went wrong while reading a data set or building a batch.
#[derive(Debug)]
pub enum DataError {
    /// The path does not exist, or does not hold the files looked for.
    NotFound {
        /// The path that was looked for.
        path: PathBuf,
        /// What is missing, e.g. "no such file or folder".
        what: String,
        /// How to provide it.
        fix: String,
    },
    /// The operating system could not read the path, or a gzip stream in it
    /// is corrupt.
    Io {
        /// The file being read.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// An IDX file does not start with the magic number expected (two zero
    /// bytes, a data-type byte, a dimension-count byte).
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The first four bytes as a big-endian number (zero-padded if the file
        /// is shorter).
        found: u32,
        /// The magic number expected, e.g. `0x00000803` for images.
        expected: u32,
    },
    /// The length of a file does not match the sizes its header declares.
    LengthMismatch {
        /// The file.
        path: PathBuf,
        /// Bytes the header implies (header plus data).
        expected: u64,
        /// Bytes actually in the (decompressed) file.
        found: u64,
    },
    /// A file of fixed-size records (CIFAR) ends part-way through a record, or
    /// holds no record at all.
    TruncatedRecord {
        /// The file.
        path: PathBuf,
        /// The size of one record in bytes.
        record_bytes: u64,
        /// The size of the file in bytes.
        file_bytes: u64,
    },
    /// An image file and its label file disagree on how many items they hold.
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// The label file.
        labels: PathBuf,
        /// Number of images.
        n_images: usize,
        /// Number of labels.
        n_labels: usize,
    },
    /// A label is outside the range the format allows.
    BadLabel {
        /// The file.
        path: PathBuf,
        /// Which record (counting from 0) holds the label.
        record: usize,
        /// The label found.
        label: u32,
        /// The number of classes of the format.
        classes: u32,
    },
    /// A folder holds no image files at all.
    EmptyFolder {
        /// The folder.
        path: PathBuf,
    },
    /// A folder holds image files but none of them could be decoded.
    NothingDecoded {
        /// The folder.
        path: PathBuf,
        /// How many files were tried.
        failed: usize,
        /// The first few failures, as `name: reason`.
        first_failures: Vec<String>,
    },
    /// A file is not in the format expected (an `.npy` array of another
    /// type or order, a cut-short header).
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, and how to fix it.
        problem: String,
    },
    /// A file could not be written (the `files` crate's error).
    Write(files::WriteError),
    /// An argument is out of its range (a channel count, an index, a setting).
    InvalidArgument {
        /// What is wrong.
        problem: String,
        /// How to fix it.
        fix: String,
    },
}

impl DataError {
    /// A [`DataError::Io`] for `path`.
    pub fn io(path: &Path, source: io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A [`DataError::NotFound`] for a path that does not exist.
    pub fn missing(path: &Path, fix: impl Into<String>) -> Self {
        DataError::NotFound {
            path: path.to_path_buf(),
            what: "no such file or folder".to_string(),
            fix: fix.into(),
        }
    }

    /// A [`DataError::InvalidArgument`] from two messages.
    pub fn invalid(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        DataError::InvalidArgument {
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::NotFound { path, what, fix } => {
                write!(f, "{}: {what}. Fix: {fix}", path.display())
            }
            DataError::Io { path, source } => write!(
                f,
                "{}: could not be read ({source}). Fix: check that it is a readable, \
                 complete file (re-download or re-copy it if it is corrupt)",
                path.display()
            ),
            DataError::BadMagic {
                path,
                found,
                expected,
            } => write!(
                f,
                "{}: not an IDX file of the expected kind: magic number {found:#010x}, \
                 expected {expected:#010x}. Fix: pass the matching MNIST-style file \
                 (images start with 0x00000803, labels with 0x00000801)",
                path.display()
            ),
            DataError::LengthMismatch {
                path,
                expected,
                found,
            } => write!(
                f,
                "{}: the header declares {expected} bytes but the file holds {found}. \
                 Fix: the file is truncated or corrupt; copy it again",
                path.display()
            ),
            DataError::TruncatedRecord {
                path,
                record_bytes,
                file_bytes,
            } => write!(
                f,
                "{}: {file_bytes} bytes is not a whole number of {record_bytes}-byte \
                 records. Fix: the file is truncated, or it is a batch of the other CIFAR \
                 kind (CIFAR-10 records are 3073 bytes, CIFAR-100 records 3074)",
                path.display()
            ),
            DataError::CountMismatch {
                images,
                labels,
                n_images,
                n_labels,
            } => write!(
                f,
                "{}: holds {n_images} images but {} holds {n_labels} labels. \
                 Fix: pair the image file with the label file of the same split",
                images.display(),
                labels.display()
            ),
            DataError::BadLabel {
                path,
                record,
                label,
                classes,
            } => write!(
                f,
                "{}: record {record} has label {label}, outside 0..{classes}. Fix: check \
                 that the file is of the format you asked for (CIFAR-10 or CIFAR-100)",
                path.display()
            ),
            DataError::EmptyFolder { path } => write!(
                f,
                "{}: holds no image files (png, jpg, jpeg, bmp). Fix: point at the folder \
                 that holds the images (or root/<class>/<image> for a labelled set)",
                path.display()
            ),
            DataError::NothingDecoded {
                path,
                failed,
                first_failures,
            } => write!(
                f,
                "{}: none of its {failed} image files could be decoded (first: {}). \
                 Fix: check that the files are valid PNG, JPEG or BMP images",
                path.display(),
                first_failures.join("; ")
            ),
            DataError::Format { path, problem } => write!(f, "{}: {problem}", path.display()),
            DataError::Write(e) => write!(f, "{e}"),
            DataError::InvalidArgument { problem, fix } => write!(f, "{problem}. Fix: {fix}"),
        }
    }
}

impl Error for DataError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            DataError::Io { source, .. } => Some(source),
            DataError::Write(e) => Some(e),
            _ => None,
        }
    }
}

impl From<files::WriteError> for DataError {
    fn from(e: files::WriteError) -> DataError {
        DataError::Write(e)
    }
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, DataError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_file_the_problem_and_a_fix() {
        let e = DataError::BadMagic {
            path: PathBuf::from("data/x.idx"),
            found: 0x1234,
            expected: 0x803,
        };
        let text = e.to_string();
        assert!(text.contains("data/x.idx"));
        assert!(text.contains("magic number 0x00001234"));
        assert!(text.contains("Fix:"));
    }

    #[test]
    fn io_errors_keep_their_source() {
        let e = DataError::io(Path::new("a"), io::Error::other("boom"));
        assert!(e.source().is_some());
        assert!(e.to_string().contains("boom"));
    }
}
