//! The run folder: where a pretraining run keeps its files, and the few
//! rules about it that every program on top must follow the same way.
//!
//! ```text
//! <run>/config.json        the settings (TrainConfig), written by Trainer::new
//! <run>/data.json          where the images came from (augment::DataSource)
//! <run>/metrics.jsonl      a line per step and per epoch (crate::metrics)
//! <run>/checkpoints/       epoch-NNNN[-step-SSSSSSSSS].{safetensors,json} (crate::checkpoint)
//! <run>/plots/             pictures drawn from metrics.jsonl
//! <run>/.lock              held (flock) by the one process working on the run
//! ```
//!
//! Two promises live here:
//!
//! * **One run, one folder, one process.** [`RunFolder::create`] and
//!   [`RunFolder::open`] take an exclusive lock on `<run>/.lock` (an
//!   advisory `flock`, released by the system when the process ends, even
//!   by `kill -9`) and write the holder's pid into it; a second process on
//!   the same folder is refused with an error naming that pid, so two runs
//!   never interleave their checkpoints and metrics.
//! * **A folder with trained work is never overwritten.** A new run is
//!   refused in a folder that holds a checkpoint after the start
//!   ([`ByolError::RunExists`]); `--resume` continues it instead. A run's
//!   setup writes, in order, the start checkpoint `epoch-0000`, `data.json`
//!   and `config.json`: a folder with `config.json` and nothing trained yet
//!   (a run killed in its first epoch) can be resumed from step 0; one with
//!   nothing trained can always be reused by a new run, which first removes
//!   the old setup so that nothing of it is mixed into the new one.
//!
//! On a file system without `flock` (NFS mounted `nolock`, Lustre without
//! `flock`), the folder is used unlocked and [`RunFolder::warning`] says so.

use crate::checkpoint;
use crate::error::{ByolError, Result};
use augment::DataSource;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// A run folder held by this process: created or opened, and locked until
/// the value is dropped (or the process ends).
#[derive(Debug)]
pub struct RunFolder {
    path: PathBuf,
    _lock: File,
    warning: Option<String>,
}

impl RunFolder {
    /// Claims `path` for a new run: creates it if need be and locks it.
    /// Refused when another process holds it ([`ByolError::RunInUse`]) or
    /// it holds trained work, a checkpoint after the start
    /// ([`ByolError::RunExists`]). A left-over setup with nothing trained
    /// is reused: its `metrics.jsonl` is removed, so the new run's record
    /// starts empty.
    pub fn create(path: &Path) -> Result<RunFolder> {
        std::fs::create_dir_all(path).map_err(|source| ByolError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let folder = RunFolder::lock(path)?;
        refuse_existing(path)?;
        // Nothing trained: an old setup goes, so no part of it (its data
        // record, its start checkpoint) is taken for the new run's.
        let start = checkpoint::folder(path).join("epoch-0000");
        for old in [
            metrics_path(path),
            config_path(path),
            data_path(path),
            start.with_extension("json"),
            start.with_extension("safetensors"),
        ] {
            match std::fs::remove_file(&old) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(ByolError::Io {
                        path: old,
                        source: e,
                    })
                }
                _ => {}
            }
        }
        Ok(folder)
    }

    /// Opens the run in `path` to continue it: locks it. Refused when
    /// another process holds it, or when its setup was never completed
    /// (no `config.json`) and nothing was trained.
    pub fn open(path: &Path) -> Result<RunFolder> {
        if !path.is_dir() {
            return Err(ByolError::Checkpoint {
                path: path.to_path_buf(),
                problem: "no such run folder".into(),
            });
        }
        let folder = RunFolder::lock(path)?;
        if !config_path(path).exists() && !checkpoint::has_trained(path) {
            return Err(ByolError::Checkpoint {
                path: path.to_path_buf(),
                problem: "holds no run whose setup was completed (no config.json, nothing \
                          trained); start the run again in it"
                    .into(),
            });
        }
        Ok(folder)
    }

    /// Takes the exclusive lock on `<path>/.lock` and writes our pid in it.
    fn lock(path: &Path) -> Result<RunFolder> {
        let lock_path = path.join(".lock");
        let io = |source| ByolError::Io {
            path: lock_path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io)?;
        let mut warning = None;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::Error(e)) if lock_unsupported(&e) => {
                warning = Some(format!(
                    "{}: this file system cannot lock files ({e}); make sure no other process \
                     works on this run folder",
                    path.display()
                ));
            }
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(ByolError::RunInUse {
                    path: path.to_path_buf(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        // Temporary files of a writer that was killed mid-write (the
        // `files` crate's `.tmp-<pid>-<n>`) are stale: nobody else writes
        // here while we hold the lock.
        for dir in [
            path.to_path_buf(),
            checkpoint::folder(path),
            plots_folder(path),
        ] {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(RunFolder {
            path: path.to_path_buf(),
            _lock: file,
            warning,
        })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why the folder is not locked, when its file system cannot lock.
    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }
}

/// Whether a lock error means the file system has no locks at all (rather
/// than that locking failed): ENOLCK (NFS without a lock manager), ENOSYS
/// and EOPNOTSUPP (Lustre without `flock`), or Rust's `Unsupported`.
fn lock_unsupported(e: &std::io::Error) -> bool {
    const ENOLCK: i32 = 37;
    const ENOSYS: i32 = 38;
    const EOPNOTSUPP: i32 = 95;
    e.kind() == std::io::ErrorKind::Unsupported
        || (cfg!(target_os = "linux")
            && matches!(e.raw_os_error(), Some(ENOLCK | ENOSYS | EOPNOTSUPP)))
}

/// `<run>/config.json`.
pub fn config_path(run: &Path) -> PathBuf {
    run.join("config.json")
}

/// `<run>/data.json`.
pub fn data_path(run: &Path) -> PathBuf {
    run.join("data.json")
}

/// `<run>/metrics.jsonl`.
pub fn metrics_path(run: &Path) -> PathBuf {
    run.join("metrics.jsonl")
}

/// `<run>/plots`.
pub fn plots_folder(run: &Path) -> PathBuf {
    run.join("plots")
}

/// Errors ([`ByolError::RunExists`]) when `dir` already holds trained work
/// (a checkpoint after the run's start), before anything is loaded or
/// written: the early form of the check [`RunFolder::create`] makes under
/// its lock.
pub fn refuse_existing(dir: &Path) -> Result<()> {
    if checkpoint::has_trained(dir) {
        return Err(ByolError::RunExists {
            path: dir.to_path_buf(),
        });
    }
    Ok(())
}

/// Writes `<run>/data.json`, so that the run can be resumed on the same
/// images without being told where they are.
pub fn write_data_source(run: &Path, source: &DataSource) -> Result<()> {
    let text = serde_json::to_string_pretty(source).map_err(|e| ByolError::Io {
        path: data_path(run),
        source: std::io::Error::other(e),
    })?;
    files::write_atomically(&data_path(run), (text + "\n").as_bytes())?;
    Ok(())
}

/// Reads `<run>/data.json`.
pub fn read_data_source(run: &Path) -> Result<DataSource> {
    let path = data_path(run);
    let text = std::fs::read_to_string(&path).map_err(|source| ByolError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| ByolError::Checkpoint {
        path,
        problem: format!("not a usable description of the run's data: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_with_a_run_is_refused_and_the_data_source_reads_back() {
        let dir = std::env::temp_dir().join(format!("byol-run-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(refuse_existing(&dir).is_ok());
        std::fs::create_dir_all(dir.join("checkpoints")).unwrap();
        std::fs::write(dir.join("checkpoints/epoch-0001.json"), "{}").unwrap();
        let e = refuse_existing(&dir).unwrap_err();
        assert!(matches!(e, ByolError::RunExists { .. }), "{e}");
        let e = RunFolder::create(&dir).unwrap_err();
        assert!(matches!(e, ByolError::RunExists { .. }), "{e}");
        let source = DataSource {
            limit: Some(7),
            ..DataSource::default()
        };
        write_data_source(&dir, &source).unwrap();
        assert_eq!(read_data_source(&dir).unwrap(), source);
        std::fs::write(data_path(&dir), "{\"dataset\": \"mnist\"}").unwrap();
        let e = read_data_source(&dir).unwrap_err().to_string();
        assert!(e.contains("data.json") && e.contains("mnist"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_folder_is_held_by_one_holder_at_a_time() {
        let dir = std::env::temp_dir().join(format!("byol-run-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = RunFolder::create(&dir).unwrap();
        // A second claim (the same process stands in for another: the lock
        // is per open file) is refused, naming the holder's pid.
        match RunFolder::create(&dir) {
            Err(ByolError::RunInUse { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected RunInUse, got {other:?}"),
        }
        std::fs::write(config_path(&dir), "{}").unwrap();
        let e = RunFolder::open(&dir).unwrap_err().to_string();
        assert!(e.contains("in use by process"), "{e}");
        drop(first);
        // Released: the setup without a checkpoint can be resumed or reused.
        let again = RunFolder::open(&dir).unwrap();
        drop(again);
        std::fs::write(metrics_path(&dir), "{\"kind\":\"step\"}\n").unwrap();
        std::fs::write(data_path(&dir), "{}").unwrap();
        let reused = RunFolder::create(&dir).unwrap();
        for old in [metrics_path(&dir), data_path(&dir), config_path(&dir)] {
            assert!(!old.exists(), "{} of the old setup was kept", old.display());
        }
        assert!(reused.warning().is_none());
        drop(reused);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
