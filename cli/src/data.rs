//! Data sets from flags: `--dataset` and `--data` (and, for folders of
//! images, `--test-data`, `--image-size`, `--channels`), read with the
//! `augment` crate's readers.
//!
//! | `--dataset` | `--data` | train split | test split |
//! | --- | --- | --- | --- |
//! | `fashion-mnist` (default) | none | the embedded 6,000-image subset | its 1,000 test images |
//! | `fashion-mnist` | a folder of the four IDX files | `train-*` | `t10k-*` |
//! | `cifar10` | `cifar-10-batches-bin/` | `data_batch_1..5.bin` | `test_batch.bin` |
//! | `cifar100` | `cifar-100-binary/` | `train.bin` | `test.bin` (fine labels) |
//! | `folder` | a folder of images | every image below it (labelled by sub-folder when it has them) | `--test-data`, labelled |
//!
//! Without `--dataset`, a `--data` folder is recognised by its files.

use augment::{
    read_cifar, read_image_folder, read_labelled_folder, CifarKind, Dataset, FolderOptions,
    Normalization, Split,
};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The kinds of data set the command reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
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

/// Where the images come from.
#[derive(Args, Clone, Debug, Default)]
pub struct DataArgs {
    /// The data set: fashion-mnist, cifar10, cifar100 or folder. Default:
    /// recognised from the files in --data, or the embedded Fashion-MNIST
    /// subset (6,000 training and 1,000 test images) without --data.
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetKind>,
    /// The folder holding the data set (see --dataset).
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// For --dataset folder: a folder of labelled test images
    /// (TEST/<class>/<image>), for evaluation.
    #[arg(long, value_name = "PATH")]
    pub test_data: Option<PathBuf>,
    /// For --dataset folder: the side, in pixels, images are resized to.
    #[arg(long, value_name = "PIXELS", default_value_t = 32)]
    pub image_size: usize,
    /// For --dataset folder: 1 (gray) or 3 (RGB).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub channels: usize,
    /// Use only the first N images of each split (for quick trials).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

/// A data set read from the flags, and a line saying what it is.
pub struct Loaded {
    /// The images (and labels when the source has them).
    pub dataset: Dataset,
    /// For the user: e.g. "the embedded Fashion-MNIST subset, train split:
    /// 6000 images of 1x28x28, labelled".
    pub description: String,
}

impl DataArgs {
    /// The data set kind: `--dataset`, or recognised from `--data`.
    pub fn kind(&self) -> Result<DatasetKind, String> {
        if let Some(kind) = self.dataset {
            return Ok(kind);
        }
        let Some(dir) = &self.data else {
            return Ok(DatasetKind::FashionMnist);
        };
        if !dir.is_dir() {
            return Err(format!(
                "--data {}: not a folder (give the folder that holds the data set)",
                dir.display()
            ));
        }
        let has = |name: &str| dir.join(name).exists() || dir.join(format!("{name}.gz")).exists();
        Ok(if augment::locate::holds_fashion_mnist(dir) {
            DatasetKind::FashionMnist
        } else if has("data_batch_1.bin") {
            DatasetKind::Cifar10
        } else if has("train.bin") {
            DatasetKind::Cifar100
        } else {
            DatasetKind::Folder
        })
    }

    /// The per-channel normalisation for a data set of this kind: the
    /// published statistics of Fashion-MNIST and CIFAR, or those of the
    /// images themselves for a folder.
    pub fn normalization(&self, ds: &Dataset) -> Result<Normalization, String> {
        Ok(match self.kind()? {
            DatasetKind::FashionMnist => Normalization::fashion_mnist(),
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => Normalization::cifar10(),
            DatasetKind::Folder => Normalization::from_dataset(ds),
        })
    }

    /// Reads `split`. `labelled` asks for labels (evaluation): an
    /// unlabelled source is then an error naming the fix.
    pub fn load(&self, split: Split, labelled: bool) -> Result<Loaded, String> {
        let kind = self.kind()?;
        let split_name = match split {
            Split::Train => "train",
            Split::Test => "test",
        };
        let (dataset, source) = match kind {
            DatasetKind::FashionMnist => {
                let (ds, source) = augment::load_fashion_mnist(self.data.as_deref(), split)
                    .map_err(|e| format!("--data: {e}"))?;
                // Without --data, the embedded subset, never a system copy
                // found on the way: a run must not depend on the machine.
                let ds = if self.data.is_none() && source.folder().is_some() {
                    augment::embedded::fashion_mnist_subset(split).map_err(|e| e.to_string())?
                } else {
                    ds
                };
                let source = match &self.data {
                    Some(dir) => format!("Fashion-MNIST from {}", dir.display()),
                    None => "the embedded Fashion-MNIST subset".to_string(),
                };
                (ds, source)
            }
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => self.load_cifar(kind, split)?,
            DatasetKind::Folder => self.load_folder(split, labelled)?,
        };
        let dataset = match self.limit {
            Some(0) => return Err("--limit 0: give at least 1 image".to_string()),
            Some(n) if n < dataset.len() => dataset
                .subset(&(0..n).collect::<Vec<_>>())
                .map_err(|e| e.to_string())?,
            _ => dataset,
        };
        if labelled && dataset.labels().is_none() {
            return Err(format!(
                "{source}: the {split_name} images have no labels; evaluation needs labelled \
                 images (arrange a folder as <class>/<image>)"
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
        })
    }

    fn require_data(&self, what: &str) -> Result<&Path, String> {
        self.data
            .as_deref()
            .ok_or_else(|| format!("--dataset {what} needs --data <folder>"))
    }

    fn load_cifar(&self, kind: DatasetKind, split: Split) -> Result<(Dataset, String), String> {
        let (name, cifar, files): (&str, CifarKind, Vec<&str>) = match (kind, split) {
            (DatasetKind::Cifar10, Split::Train) => (
                "cifar10",
                CifarKind::Cifar10,
                augment::cifar::CIFAR10_TRAIN_FILES.to_vec(),
            ),
            (DatasetKind::Cifar10, Split::Test) => (
                "cifar10",
                CifarKind::Cifar10,
                vec![augment::cifar::CIFAR10_TEST_FILE],
            ),
            (_, Split::Train) => ("cifar100", CifarKind::Cifar100Fine, vec!["train.bin"]),
            (_, Split::Test) => ("cifar100", CifarKind::Cifar100Fine, vec!["test.bin"]),
        };
        let dir = self.require_data(name)?;
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|f| {
                let plain = dir.join(f);
                let gz = dir.join(format!("{f}.gz"));
                if !plain.exists() && gz.exists() {
                    gz
                } else {
                    plain
                }
            })
            .collect();
        if let Some(missing) = paths.iter().find(|p| !p.exists()) {
            return Err(format!(
                "--data {}: {} is missing (expected the binary version of {name}, \
                 e.g. the folder cifar-10-batches-bin)",
                dir.display(),
                missing.display()
            ));
        }
        let ds = read_cifar(&paths, cifar).map_err(|e| e.to_string())?;
        Ok((ds, format!("{name} from {}", dir.display())))
    }

    fn load_folder(&self, split: Split, labelled: bool) -> Result<(Dataset, String), String> {
        if !matches!(self.channels, 1 | 3) {
            return Err(format!(
                "--channels {}: expected 1 (gray) or 3 (RGB)",
                self.channels
            ));
        }
        if self.image_size < 8 {
            return Err(format!(
                "--image-size {}: too small for a ResNet; use 16 or more (32 is typical)",
                self.image_size
            ));
        }
        let opts = FolderOptions {
            channels: self.channels,
            height: self.image_size,
            width: self.image_size,
        };
        let dir = match split {
            Split::Train => self.require_data("folder")?,
            Split::Test => self.test_data.as_deref().ok_or_else(|| {
                "a folder of images has no test split: give --test-data <folder of labelled images>"
                    .to_string()
            })?,
        };
        let has_classes = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok())
            .any(|e| e.path().is_dir());
        let read = if labelled || has_classes {
            read_labelled_folder(dir, &opts)
        } else {
            read_image_folder(dir, &opts)
        }
        .map_err(|e| e.to_string())?;
        let source = format!("{} ({})", dir.display(), read.report);
        Ok((read.dataset, source))
    }
}

/// The names of the classes of `ds`, or their numbers when it has none.
pub fn class_names(ds: &Dataset) -> Vec<String> {
    match ds.class_names() {
        Some(names) => names.to_vec(),
        None => (0..ds.num_classes()).map(|c| c.to_string()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_embedded_subset() {
        let args = DataArgs {
            limit: Some(50),
            ..DataArgs::default()
        };
        let train = args.load(Split::Train, true).unwrap();
        assert_eq!(train.dataset.len(), 50);
        assert!(
            train.description.contains("embedded"),
            "{}",
            train.description
        );
        let test = args.load(Split::Test, true).unwrap();
        assert_eq!(test.dataset.shape().height, 28);
    }

    #[test]
    fn missing_folders_and_bad_values_are_named() {
        let args = DataArgs {
            data: Some(PathBuf::from("no/such/folder")),
            ..DataArgs::default()
        };
        let e = args.load(Split::Train, false).err().unwrap();
        assert!(e.contains("no/such/folder"), "{e}");
        let args = DataArgs {
            dataset: Some(DatasetKind::Cifar10),
            ..DataArgs::default()
        };
        let e = args.load(Split::Train, false).err().unwrap();
        assert!(e.contains("--data"), "{e}");
        let args = DataArgs {
            limit: Some(0),
            ..DataArgs::default()
        };
        assert!(args
            .load(Split::Train, false)
            .err()
            .unwrap()
            .contains("--limit 0"));
    }

    #[test]
    fn a_folder_without_test_data_says_so() {
        let dir = std::env::temp_dir().join(format!("byol-cli-data-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let args = DataArgs {
            dataset: Some(DatasetKind::Folder),
            data: Some(dir.clone()),
            image_size: 32,
            channels: 3,
            ..DataArgs::default()
        };
        let e = args.load(Split::Test, true).err().unwrap();
        assert!(e.contains("--test-data"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
