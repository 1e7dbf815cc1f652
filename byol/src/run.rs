//! The run folder: where a pretraining run keeps its files, and the few
//! rules about it that every program on top must follow the same way.
//!
//! ```text
//! <run>/config.json        the settings (TrainConfig), written by Trainer::new
//! <run>/data.json          where the images came from (augment::DataSource)
//! <run>/metrics.jsonl      a line per step and per epoch (crate::metrics)
//! <run>/checkpoints/       epoch-NNNN.{safetensors,json} (crate::checkpoint)
//! <run>/plots/             pictures drawn from metrics.jsonl
//! ```
//!
//! A folder that holds a run is someone's work: a new run never starts in
//! it ([`refuse_existing`]); `--resume` continues it instead.

use crate::checkpoint;
use crate::error::{ByolError, Result};
use augment::DataSource;
use std::path::{Path, PathBuf};

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

/// Whether `dir` holds a run (its settings or its checkpoints).
pub fn holds_run(dir: &Path) -> bool {
    config_path(dir).exists() || checkpoint::folder(dir).exists()
}

/// Errors ([`ByolError::RunExists`]) when `dir` already holds a run.
pub fn refuse_existing(dir: &Path) -> Result<()> {
    if holds_run(dir) {
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
        let e = refuse_existing(&dir).unwrap_err();
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
}
