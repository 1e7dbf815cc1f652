//! # files: result files that are complete or absent
//!
//! Every file the workspace writes for a user (weights, checkpoints, `.npy`
//! features, plots, reports) goes through [`write_atomically`] or
//! [`write_with`], so one set of promises holds everywhere:
//!
//! 1. **Complete or absent.** The bytes go to a temporary file in the
//!    target's own folder (so the rename stays on one file system), are
//!    flushed to disk (`fsync`), and only then renamed over the target; the
//!    folder is synced after the rename so the new name survives a power
//!    cut. A crash at any moment leaves either the old file or the new one,
//!    never half of one.
//! 2. **Nothing left behind.** On any error the temporary file is removed.
//!    Its name is short (`.tmp-<pid>-<n>`, created with `O_EXCL`), so it is
//!    unique among processes and threads and fits beside a target whose own
//!    name is already near the 255-byte limit.
//! 3. **Only regular files are replaced.** A symbolic link is followed: the
//!    link stays and its target is replaced. An existing character device
//!    or FIFO (`/dev/null`, `/dev/stdout` through a pipe) is written to
//!    directly, not replaced by a regular file, which would break the
//!    machine when run as root. A folder, a block device or a socket is
//!    refused with an error naming it.
//! 4. **Permissions are kept.** A replaced file keeps its mode bits (a
//!    read-only report stays read-only, a group-shared one stays shared).
//!
//! ```
//! let dir = std::env::temp_dir().join(format!("files-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("report.txt");
//! files::write_atomically(&path, b"kNN 0.713\n").unwrap();
//! assert_eq!(std::fs::read(&path).unwrap(), b"kNN 0.713\n");
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

#![warn(missing_docs)]

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a file could not be written. The path named is the one the caller
/// gave.
#[derive(Debug)]
pub enum WriteError {
    /// The system refused an operation.
    Io {
        /// The file asked for.
        path: PathBuf,
        /// What was being done ("creating a temporary file beside it", ...).
        doing: &'static str,
        /// What the system said.
        source: io::Error,
    },
    /// The path names something that is not a file and must not be
    /// replaced by one.
    NotAFile {
        /// The file asked for.
        path: PathBuf,
        /// What is there instead ("a folder", "a block device", "a socket").
        found: &'static str,
    },
    /// The path has no file name (e.g. `/` or `..`).
    NoFileName {
        /// The path given.
        path: PathBuf,
    },
    /// Symbolic links lead in a circle or more than 40 deep.
    TooManyLinks {
        /// The path given.
        path: PathBuf,
    },
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Io {
                path,
                doing,
                source,
            } => write!(f, "cannot write {}: {doing}: {source}", path.display()),
            WriteError::NotAFile { path, found } => write!(
                f,
                "cannot write {}: it is {found}, not a file; give the path of a file",
                path.display()
            ),
            WriteError::NoFileName { path } => write!(
                f,
                "cannot write {}: the path has no file name; give the path of a file",
                path.display()
            ),
            WriteError::TooManyLinks { path } => write!(
                f,
                "cannot write {}: its symbolic links go round in a circle or more than 40 deep",
                path.display()
            ),
        }
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WriteError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Writes `bytes` to `path` under the promises of the crate docs.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_with(path, |file| file.write_all(bytes))
}

/// Writes to `path` whatever `fill` writes into the file it is handed,
/// under the promises of the crate docs. If `fill` fails, the temporary
/// file is removed, the target is left as it was, and the error is
/// returned.
pub fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), WriteError> {
    let io_error = |doing: &'static str| {
        move |source: io::Error| WriteError::Io {
            path: path.to_path_buf(),
            doing,
            source,
        }
    };
    if path.file_name().is_none() {
        return Err(WriteError::NoFileName {
            path: path.to_path_buf(),
        });
    }
    let target = follow_links(path)?;
    let existing = match std::fs::symlink_metadata(&target) {
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_error("looking at what is there")(e)),
    };
    if let Some(meta) = &existing {
        match Kind::of(meta) {
            Kind::File => {}
            Kind::Stream => {
                // A device or a pipe: write into it, never replace it.
                let mut file = OpenOptions::new()
                    .write(true)
                    .open(&target)
                    .map_err(io_error("opening it for writing"))?;
                fill(&mut file).map_err(io_error("writing into it"))?;
                return file.flush().map_err(io_error("writing into it"));
            }
            Kind::Refused(found) => {
                return Err(WriteError::NotAFile {
                    path: path.to_path_buf(),
                    found,
                })
            }
        }
    }
    let folder = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (temp, mut file) =
        create_temporary(&folder).map_err(io_error("creating a temporary file beside it"))?;
    let result = (|| {
        if let Some(meta) = &existing {
            file.set_permissions(meta.permissions())
                .map_err(io_error("giving the new file the old one's permissions"))?;
        }
        fill(&mut file).map_err(io_error("writing the temporary file"))?;
        file.sync_all()
            .map_err(io_error("flushing the temporary file to disk"))?;
        drop(file);
        std::fs::rename(&temp, &target).map_err(io_error("renaming the temporary file over it"))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
        return result;
    }
    sync_folder(&folder);
    Ok(())
}

/// What is at a path, as far as writing is concerned.
enum Kind {
    /// A regular file: replaced atomically.
    File,
    /// A character device or a FIFO: written into.
    Stream,
    /// Anything else, named for the message.
    Refused(&'static str),
}

impl Kind {
    #[cfg(unix)]
    fn of(meta: &std::fs::Metadata) -> Kind {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_file() {
            Kind::File
        } else if t.is_char_device() || t.is_fifo() {
            Kind::Stream
        } else if t.is_dir() {
            Kind::Refused("a folder")
        } else if t.is_block_device() {
            Kind::Refused("a block device (a disk)")
        } else if t.is_socket() {
            Kind::Refused("a socket")
        } else {
            Kind::Refused("not a regular file")
        }
    }

    #[cfg(not(unix))]
    fn of(meta: &std::fs::Metadata) -> Kind {
        if meta.is_file() {
            Kind::File
        } else if meta.is_dir() {
            Kind::Refused("a folder")
        } else {
            Kind::Refused("not a regular file")
        }
    }
}

/// The path a write to `path` must land on: `path` itself, or, when it is
/// a symbolic link, the end of its chain of links (a relative link is read
/// from the link's own folder). The end need not exist yet.
fn follow_links(path: &Path) -> Result<PathBuf, WriteError> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(&current).map_err(|source| WriteError::Io {
                    path: path.to_path_buf(),
                    doing: "reading its symbolic link",
                    source,
                })?;
                current = match current.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(WriteError::TooManyLinks {
        path: path.to_path_buf(),
    })
}

/// A new, empty file in `folder` with a name no other writer holds:
/// `.tmp-<pid>-<n>`, created exclusively (`O_EXCL`), retried with the next
/// `n` if a stale one is in the way.
fn create_temporary(folder: &Path) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = folder.join(format!(".tmp-{}-{n}", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Syncs a folder so that a rename in it is on disk. Best effort: some file
/// systems do not sync folders, and the file's own data is already safe.
fn sync_folder(folder: &Path) {
    if let Ok(dir) = File::open(folder) {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests;
