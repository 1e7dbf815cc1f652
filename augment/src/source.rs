//! Where a run's images come from, as one value: the kind of data set, its
//! folder, and (for a folder of images) the size and channels to read them
//! at. A [`DataSource`] is what a program asks its user for, what a run
//! folder records (`data.json`, so a resumed run reads the same images) and
//! what loads a split.
//!
//! | kind | `data` | train split | test split |
//! | --- | --- | --- | --- |
//! | `fashion-mnist` | none | the embedded 6,000-image subset | its 1,000 test images |
//! | `fashion-mnist` | a folder of the four IDX files | `train-*` | `t10k-*` |
//! | `cifar10` | `cifar-10-batches-bin/` | `data_batch_1..5.bin` | `test_batch.bin` |
//! | `cifar100` | `cifar-100-binary/` | `train.bin` | `test.bin` (fine labels) |
//! | `folder` | a folder of images | every image below it (labelled by sub-folder when it has them) | `test_data`, labelled |
//!
//! Without a kind, [`DataSource::detect`] recognises a folder by its files.
//! Without a folder, the data set is the embedded subset, never a copy
//! found elsewhere on the machine: a run must not depend on the machine.

use crate::cifar::{read_cifar, CifarKind, CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES};
use crate::dataset::{Dataset, Split};
use crate::error::{DataError, Result};
use crate::folder::{list_images, read_image_folder, read_labelled_folder, FolderOptions};
use crate::images::ViewSource;
use crate::locate::{holds_fashion_mnist, locate_fashion_mnist, read_fashion_mnist};
use crate::stream::{FolderIndex, StreamedFolder};
use crate::views::normalize::Normalization;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The largest side a folder's images are resized to (every image is kept
/// in memory at that size).
pub const MAX_IMAGE_SIZE: usize = 4096;

/// The kinds of data set there are readers for. Written and read as
/// `fashion-mnist`, `cifar10`, `cifar100`, `folder`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum DatasetKind {
    /// Fashion-MNIST IDX files (28x28 gray, 10 classes).
    FashionMnist,
    /// CIFAR-10 binary batches (32x32 RGB, 10 classes).
    Cifar10,
    /// CIFAR-100 binary files (32x32 RGB, 100 fine classes).
    Cifar100,
    /// A folder of PNG / JPEG / BMP images.
    Folder,
}

impl DatasetKind {
    /// The kind's name, as written in files and flags.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
            DatasetKind::Folder => "folder",
        }
    }
}

/// How a folder of images is held while training. Written and read as
/// `auto`, `memory`, `stream`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum FolderMode {
    /// `memory` when the images at the run's size take at most a quarter
    /// of the memory available, else `stream`.
    #[default]
    Auto,
    /// Decode every image once, at the run's size, and keep them all.
    Memory,
    /// Keep an index; decode each image when a batch needs it and cut its
    /// views from the original pixels ([`StreamedFolder`]).
    Stream,
}

impl FolderMode {
    /// The mode's name, as written in files and flags.
    pub fn name(self) -> &'static str {
        match self {
            FolderMode::Auto => "auto",
            FolderMode::Memory => "memory",
            FolderMode::Stream => "stream",
        }
    }
}

/// The train split opened for training: the images (in memory or
/// streamed), their normalisation and a line saying what they are.
pub struct TrainImages {
    /// The images.
    pub images: Box<dyn ViewSource>,
    /// The per-channel statistics to normalise them with.
    pub normalization: Normalization,
    /// How they are held (`memory` for every kind but a folder).
    pub mode: FolderMode,
    /// For people, as [`Loaded::description`], with how a folder is held
    /// and why.
    pub description: String,
}

/// How many images of a streamed folder its statistics are taken from.
pub const STATISTICS_SAMPLE: usize = 2000;

/// The memory available to new work, from `/proc/meminfo` (Linux), in
/// bytes; `None` where it cannot be read.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Where a run's images come from (also `data.json` in a run folder).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSource {
    /// The kind of data set.
    pub dataset: DatasetKind,
    /// The folder holding it; `None` for the embedded Fashion-MNIST subset.
    pub data: Option<PathBuf>,
    /// For a folder of images: a folder of labelled test images
    /// (`<class>/<image>`), the test split.
    pub test_data: Option<PathBuf>,
    /// For a folder of images: the side, in pixels, images are resized to.
    pub image_size: usize,
    /// For a folder of images: 1 (gray) or 3 (RGB).
    pub channels: usize,
    /// Use only the first this many images of each split.
    pub limit: Option<usize>,
    /// The [`Dataset::fingerprint`] of the train split, once a run has read
    /// it (absent in records written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// For a folder of images: held in memory or streamed (records written
    /// before it existed read as `auto`).
    #[serde(default)]
    pub folder_mode: FolderMode,
}

/// A split read from a [`DataSource`], and a line saying what it is.
pub struct Loaded {
    /// The images (and labels when the source has them).
    pub dataset: Dataset,
    /// For people: e.g. "the embedded Fashion-MNIST subset, train split:
    /// 6000 images of 1x28x28, 10 classes".
    pub description: String,
    /// For a folder of images: the file of each row (the folder joined
    /// with the path below it), to trace rows (embeddings) back to files.
    pub paths: Option<Vec<PathBuf>>,
}

impl Default for DataSource {
    /// The embedded Fashion-MNIST subset.
    fn default() -> DataSource {
        DataSource {
            dataset: DatasetKind::FashionMnist,
            data: None,
            test_data: None,
            image_size: 32,
            channels: 3,
            limit: None,
            fingerprint: None,
            folder_mode: FolderMode::Auto,
        }
    }
}

impl DataSource {
    /// The kind of the data set in `data`: `kind` when given, else
    /// recognised from the folder's files (Fashion-MNIST's IDX files,
    /// CIFAR-10's `data_batch_1.bin`, CIFAR-100's `train.bin`, otherwise a
    /// folder of images); the embedded Fashion-MNIST without a folder.
    pub fn detect(kind: Option<DatasetKind>, data: Option<&Path>) -> Result<DatasetKind> {
        if let Some(kind) = kind {
            return Ok(kind);
        }
        let Some(dir) = data else {
            return Ok(DatasetKind::FashionMnist);
        };
        if !dir.is_dir() {
            return Err(DataError::NotFound {
                path: dir.to_path_buf(),
                what: "not a folder".into(),
                fix: "give the folder that holds the data set".into(),
            });
        }
        let has = |name: &str| dir.join(name).exists() || dir.join(format!("{name}.gz")).exists();
        Ok(if holds_fashion_mnist(dir) {
            DatasetKind::FashionMnist
        } else if has("data_batch_1.bin") {
            DatasetKind::Cifar10
        } else if has("train.bin") {
            DatasetKind::Cifar100
        } else {
            DatasetKind::Folder
        })
    }

    /// The same source, made to be found again from anywhere: its folders
    /// as absolute, canonical paths, and the train split's fingerprint. What
    /// a run records in `data.json`.
    pub fn recorded(&self, train: &dyn ViewSource) -> Result<DataSource> {
        let canonical = |p: &Option<PathBuf>| -> Result<Option<PathBuf>> {
            p.as_ref()
                .map(|p| p.canonicalize().map_err(|e| DataError::io(p, e)))
                .transpose()
        };
        Ok(DataSource {
            data: canonical(&self.data)?,
            test_data: canonical(&self.test_data)?,
            fingerprint: Some(train.fingerprint()),
            ..self.clone()
        })
    }

    /// Errors unless `train` is the data this source recorded (when it
    /// recorded a fingerprint): a run is never resumed on other images.
    pub fn check_fingerprint(&self, train: &dyn ViewSource) -> Result<()> {
        match &self.fingerprint {
            Some(want) if *want != train.fingerprint() => Err(DataError::invalid(
                format!(
                    "the images read now (fingerprint {}) are not those the run was trained on \
                     ({want})",
                    train.fingerprint()
                ),
                "resume with the run's own data, unchanged",
            )),
            _ => Ok(()),
        }
    }

    /// The per-channel normalisation for this source: the published
    /// statistics of Fashion-MNIST and CIFAR, or, for a folder, those of
    /// `train` (the images themselves, [`Normalization::from_dataset`]).
    pub fn normalization(&self, train: &Dataset) -> Normalization {
        match self.dataset {
            DatasetKind::FashionMnist => Normalization::fashion_mnist(),
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => Normalization::cifar10(),
            DatasetKind::Folder => Normalization::from_dataset(train),
        }
    }

    /// Opens the train split for pretraining (no labels needed): a folder
    /// of images in memory or streamed as [`DataSource::folder_mode`] says
    /// (`auto` decides by size against the memory available, and the
    /// description says which it chose and why); every other kind in
    /// memory. A run records the resolved mode ([`TrainImages::mode`]).
    pub fn open_train(&self) -> Result<TrainImages> {
        let mode = self.resolve_folder_mode(Split::Train)?;
        if mode.0 != FolderMode::Stream {
            let loaded = self.load(Split::Train, false)?;
            let normalization = self.normalization(&loaded.dataset);
            let description = match self.dataset {
                DatasetKind::Folder => {
                    format!("{}; held in memory ({})", loaded.description, mode.1)
                }
                _ => loaded.description,
            };
            return Ok(TrainImages {
                images: Box::new(loaded.dataset),
                normalization,
                mode: mode.0,
                description,
            });
        }
        let dir = self.folder()?;
        let streamed = self.open_streamed(Split::Train, false)?;
        // The index read each file's header, not its pixels.
        let report = streamed
            .index()
            .report
            .to_string()
            .replacen("read ", "indexed ", 1);
        let normalization = streamed.statistics(STATISTICS_SAMPLE)?;
        let description = format!(
            "{} ({report}), train split: {} images streamed from disk ({}), views of {}x{}x{}",
            dir.display(),
            streamed.len(),
            mode.1,
            self.channels,
            self.image_size,
            self.image_size
        );
        Ok(TrainImages {
            images: Box::new(streamed),
            normalization,
            mode: FolderMode::Stream,
            description,
        })
    }

    /// About `n` labelled images of `split` spread evenly over it (all of
    /// them when it has fewer): what a kNN monitor scores on. A streamed
    /// folder decodes only those (fitted to the run's size), so the
    /// monitor of a folder larger than memory fits in memory.
    pub fn labelled_sample(&self, split: Split, n: usize) -> Result<Loaded> {
        let streamed =
            self.dataset == DatasetKind::Folder && self.folder_mode == FolderMode::Stream;
        if !streamed {
            let loaded = self.load(split, true)?;
            let len = loaded.dataset.len();
            if n >= len {
                return Ok(loaded);
            }
            let picks = crate::stream::spread(len, n);
            return Ok(Loaded {
                dataset: loaded.dataset.subset(&picks)?,
                description: format!("{} (a sample of {n})", loaded.description),
                paths: loaded
                    .paths
                    .map(|p| picks.iter().map(|&i| p[i].clone()).collect()),
            });
        }
        let dir = self.split_folder(split)?;
        let streamed = self.open_streamed(split, true)?;
        let dataset = streamed.sample(n)?;
        let description = format!(
            "{}: a sample of {} of {} labelled images",
            dir.display(),
            dataset.len(),
            streamed.len()
        );
        Ok(Loaded {
            dataset,
            description,
            paths: None,
        })
    }

    /// How a folder of images is held for `split` (memory or stream), with
    /// the reason: the mode asked for, or for `auto` the choice by size
    /// against the memory available. Every other kind: memory.
    pub fn resolve_folder_mode(&self, split: Split) -> Result<(FolderMode, String)> {
        match (self.dataset, self.folder_mode) {
            (DatasetKind::Folder, FolderMode::Auto) => self.choose_folder_mode(split),
            (DatasetKind::Folder, chosen) => {
                Ok((chosen, format!("--folder-mode {}", chosen.name())))
            }
            _ => Ok((FolderMode::Memory, String::new())),
        }
    }

    /// The images of `split` of a folder, streamed ([`StreamedFolder`]):
    /// indexed, labelled by sub-folder when `labelled`, cut to `limit`.
    pub fn open_streamed(&self, split: Split, labelled: bool) -> Result<StreamedFolder> {
        if self.dataset != DatasetKind::Folder {
            return Err(DataError::invalid(
                format!("a {} data set cannot be streamed", self.dataset.name()),
                "stream a folder of images; other data sets are read into memory",
            ));
        }
        self.check_folder_settings()?;
        self.check_limit()?;
        let mut index = FolderIndex::scan(self.split_folder(split)?, labelled)?;
        if let Some(n) = self.limit {
            index.truncate(n);
        }
        StreamedFolder::new(index, self.channels, self.image_size)
    }

    /// `auto` for a folder: memory when the images at the run's size take
    /// at most a quarter of the memory available, with the reason.
    fn choose_folder_mode(&self, split: Split) -> Result<(FolderMode, String)> {
        self.check_folder_settings()?;
        let files = list_images(self.split_folder(split)?, false)?.files.len();
        let images = self.limit.map_or(files, |n| n.min(files));
        let need = (images * self.channels * self.image_size * self.image_size) as u64;
        let gb = |b: u64| b as f64 / 1e9;
        Ok(match available_memory() {
            Some(free) if need <= free / 4 => (
                FolderMode::Memory,
                format!(
                    "auto: {:.2} GB at {} px, within a quarter of the {:.1} GB available",
                    gb(need),
                    self.image_size,
                    gb(free)
                ),
            ),
            Some(free) => (
                FolderMode::Stream,
                format!(
                    "auto: {:.2} GB at {} px, more than a quarter of the {:.1} GB available",
                    gb(need),
                    self.image_size,
                    gb(free)
                ),
            ),
            None => (
                FolderMode::Memory,
                "auto: the memory available is unknown here".to_string(),
            ),
        })
    }

    /// Reads `split`. `labelled` asks for labels (evaluation): an
    /// unlabelled source is then an error naming the fix.
    pub fn load(&self, split: Split, labelled: bool) -> Result<Loaded> {
        self.check_limit()?;
        let split_name = match split {
            Split::Train => "train",
            Split::Test => "test",
        };
        let mut paths = None;
        let (dataset, source) = match self.dataset {
            DatasetKind::FashionMnist => match &self.data {
                Some(dir) => (
                    read_fashion_mnist(&locate_fashion_mnist(Some(dir))?, split)?,
                    format!("Fashion-MNIST from {}", dir.display()),
                ),
                None => (
                    crate::embedded::fashion_mnist_subset(split)?,
                    "the embedded Fashion-MNIST subset".to_string(),
                ),
            },
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => self.load_cifar(split)?,
            DatasetKind::Folder => {
                let (dataset, source, files) = self.load_folder(split, labelled)?;
                paths = Some(files);
                (dataset, source)
            }
        };
        let dataset = match self.limit {
            Some(n) if n < dataset.len() => {
                if let Some(p) = paths.as_mut() {
                    p.truncate(n);
                }
                dataset.subset(&(0..n).collect::<Vec<_>>())?
            }
            _ => dataset,
        };
        if labelled && dataset.labels().is_none() {
            return Err(DataError::invalid(
                format!("{source}: the {split_name} images have no labels"),
                "evaluation needs labelled images; arrange a folder as <class>/<image>",
            ));
        }
        let description = format!(
            "{source}, {split_name} split: {} images of {}x{}x{}{}",
            dataset.len(),
            dataset.channels(),
            dataset.height(),
            dataset.width(),
            if dataset.labels().is_some() {
                format!(", {} classes", dataset.num_classes())
            } else {
                ", unlabelled".to_string()
            }
        );
        Ok(Loaded {
            dataset,
            description,
            paths,
        })
    }

    /// Errors for a limit of 0 images.
    fn check_limit(&self) -> Result<()> {
        match self.limit {
            Some(0) => Err(DataError::invalid(
                "limit 0: no image would be used",
                "give a limit of at least 1, or none",
            )),
            _ => Ok(()),
        }
    }

    /// The data folder, or an error saying this kind needs one.
    fn folder(&self) -> Result<&Path> {
        self.data.as_deref().ok_or_else(|| {
            DataError::invalid(
                format!("the {} data set needs a data folder", self.dataset.name()),
                "give the folder that holds it",
            )
        })
    }

    fn load_cifar(&self, split: Split) -> Result<(Dataset, String)> {
        let name = self.dataset.name();
        let (kind, files): (CifarKind, Vec<&str>) = match (self.dataset, split) {
            (DatasetKind::Cifar10, Split::Train) => {
                (CifarKind::Cifar10, CIFAR10_TRAIN_FILES.to_vec())
            }
            (DatasetKind::Cifar10, Split::Test) => (CifarKind::Cifar10, vec![CIFAR10_TEST_FILE]),
            (_, Split::Train) => (CifarKind::Cifar100Fine, vec!["train.bin"]),
            (_, Split::Test) => (CifarKind::Cifar100Fine, vec!["test.bin"]),
        };
        let dir = self.folder()?;
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|f| {
                let (plain, gz) = (dir.join(f), dir.join(format!("{f}.gz")));
                if !plain.exists() && gz.exists() {
                    gz
                } else {
                    plain
                }
            })
            .collect();
        if let Some(missing) = paths.iter().find(|p| !p.exists()) {
            return Err(DataError::missing(
                missing,
                format!(
                    "give the folder of the binary version of {name} (e.g. cifar-10-batches-bin)"
                ),
            ));
        }
        let ds = read_cifar(&paths, kind)?;
        Ok((ds, format!("{name} from {}", dir.display())))
    }

    /// Errors unless the channels and image size suit a folder.
    fn check_folder_settings(&self) -> Result<()> {
        if !matches!(self.channels, 1 | 3) {
            return Err(DataError::invalid(
                format!(
                    "channels {}: a folder is read as gray or RGB",
                    self.channels
                ),
                "give 1 (gray) or 3 (RGB)",
            ));
        }
        if self.image_size < 8 || self.image_size > MAX_IMAGE_SIZE {
            return Err(DataError::invalid(
                format!(
                    "image size {}: a folder's images are resized to 8 to {MAX_IMAGE_SIZE} pixels",
                    self.image_size
                ),
                "use 16 or more (32 is typical, 224 the paper's)",
            ));
        }
        Ok(())
    }

    /// The folder of `split` of a folder of images: the data folder, or
    /// the test folder (an error when none was given).
    fn split_folder(&self, split: Split) -> Result<&Path> {
        match split {
            Split::Train => self.folder(),
            Split::Test => self.test_data.as_deref().ok_or_else(|| {
                DataError::invalid(
                    "a folder of images has no test split",
                    "give a folder of labelled test images (<class>/<image>) as the test data",
                )
            }),
        }
    }

    fn load_folder(&self, split: Split, labelled: bool) -> Result<(Dataset, String, Vec<PathBuf>)> {
        self.check_folder_settings()?;
        let opts = FolderOptions {
            channels: self.channels,
            height: self.image_size,
            width: self.image_size,
        };
        let dir = self.split_folder(split)?;
        // Labels only when asked for (evaluation): for pretraining every
        // image below the folder counts, in sub-folders or not, so a photo
        // library with a few sub-folders is read whole.
        let read = if labelled {
            read_labelled_folder(dir, &opts)
        } else {
            read_image_folder(dir, &opts)
        }?;
        let source = format!("{} ({})", dir.display(), read.report);
        Ok((read.dataset, source, read.paths))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_embedded_subset() {
        let source = DataSource {
            limit: Some(50),
            ..DataSource::default()
        };
        let train = source.load(Split::Train, true).unwrap();
        assert_eq!(train.dataset.len(), 50);
        assert!(
            train.description.contains("embedded"),
            "{}",
            train.description
        );
        let test = source.load(Split::Test, true).unwrap();
        assert_eq!(test.dataset.shape().height, 28);
        assert_eq!(
            source.normalization(&train.dataset),
            Normalization::fashion_mnist()
        );
    }

    #[test]
    fn missing_folders_and_bad_values_are_named() {
        let e = DataSource::detect(None, Some(Path::new("no/such/folder")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no/such/folder"), "{e}");
        let cifar = DataSource {
            dataset: DatasetKind::Cifar10,
            ..DataSource::default()
        };
        let e = cifar.load(Split::Train, false).err().unwrap().to_string();
        assert!(e.contains("cifar10") && e.contains("data folder"), "{e}");
        let none = DataSource {
            limit: Some(0),
            ..DataSource::default()
        };
        let e = none.load(Split::Train, false).err().unwrap().to_string();
        assert!(e.contains("limit 0"), "{e}");
    }

    #[test]
    fn a_folder_is_recognised_and_without_test_data_says_so() {
        let dir = std::env::temp_dir().join(format!("augment-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(
            DataSource::detect(None, Some(&dir)).unwrap(),
            DatasetKind::Folder
        );
        std::fs::write(dir.join("data_batch_1.bin"), b"").unwrap();
        assert_eq!(
            DataSource::detect(None, Some(&dir)).unwrap(),
            DatasetKind::Cifar10
        );
        let folder = DataSource {
            dataset: DatasetKind::Folder,
            data: Some(dir.clone()),
            ..DataSource::default()
        };
        let e = folder.load(Split::Test, true).err().unwrap().to_string();
        assert!(e.contains("test split"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_source_reads_back_as_written() {
        let source = DataSource {
            dataset: DatasetKind::Folder,
            data: Some(PathBuf::from("photos")),
            test_data: Some(PathBuf::from("labelled")),
            image_size: 64,
            channels: 1,
            limit: Some(100),
            fingerprint: Some("0123456789abcdef".into()),
            folder_mode: FolderMode::Stream,
        };
        let json = serde_json::to_string(&source).unwrap();
        assert!(json.contains("\"dataset\":\"folder\""), "{json}");
        assert_eq!(serde_json::from_str::<DataSource>(&json).unwrap(), source);
    }
}
