//! Finding Fashion-MNIST: the full set when it is on the machine, the
//! embedded subset otherwise.
//!
//! The places looked at, in order:
//!
//! 1. an **explicit path** (a command-line argument): the folder itself or
//!    its `fashion-mnist/` sub-folder;
//! 2. the **`BYOL_DATA`** environment variable, a folder looked at the same
//!    way;
//! 3. **`/usr/share/datasets/fashion-mnist`**, where Debian's
//!    `dataset-fashion-mnist` package installs the full set
//!    (`apt-get install dataset-fashion-mnist`);
//! 4. the **embedded subset** compiled into this crate (see
//!    [`crate::embedded`]).
//!
//! A folder "holds Fashion-MNIST" when it has the four files of the original
//! release, each gzipped (`train-images-idx3-ubyte.gz`) or not
//! (`train-images-idx3-ubyte`). An explicit path or a set `BYOL_DATA` that
//! does not hold them is an error rather than a silent fall-back, because the
//! person who set it expects that data to be used. The [`FashionSource`]
//! returned says which one was taken, so a program can tell its user.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::dataset::{Dataset, Split};
use crate::embedded;
use crate::error::{DataError, Result};
use crate::idx::read_idx_pair;

/// The environment variable naming a data folder.
pub const ENV_VAR: &str = "BYOL_DATA";

/// Where Debian's `dataset-fashion-mnist` package installs the data set.
pub const DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The four files of a Fashion-MNIST release, without the `.gz`.
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Where the data set was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FashionSource {
    /// A folder given explicitly.
    Explicit(PathBuf),
    /// The folder named by `BYOL_DATA`.
    Env(PathBuf),
    /// The folder of Debian's `dataset-fashion-mnist` package.
    Debian(PathBuf),
    /// The subset compiled into this crate.
    Embedded,
}

impl FashionSource {
    /// The folder holding the files, or `None` for the embedded subset.
    pub fn folder(&self) -> Option<&Path> {
        match self {
            FashionSource::Explicit(p) | FashionSource::Env(p) | FashionSource::Debian(p) => {
                Some(p)
            }
            FashionSource::Embedded => None,
        }
    }
}

impl fmt::Display for FashionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FashionSource::Explicit(p) => write!(f, "Fashion-MNIST from {}", p.display()),
            FashionSource::Env(p) => {
                write!(f, "Fashion-MNIST from {} ({ENV_VAR})", p.display())
            }
            FashionSource::Debian(p) => write!(
                f,
                "Fashion-MNIST from {} (Debian package dataset-fashion-mnist)",
                p.display()
            ),
            FashionSource::Embedded => write!(
                f,
                "the embedded Fashion-MNIST subset (6,000 training and 1,000 test images; \
                 install dataset-fashion-mnist or set {ENV_VAR} for the full set)"
            ),
        }
    }
}

/// Finds Fashion-MNIST: `explicit`, then `BYOL_DATA`, then the Debian
/// folder, then the embedded subset. Errors only when `explicit` or a
/// non-empty `BYOL_DATA` is given and holds no Fashion-MNIST.
pub fn locate_fashion_mnist(explicit: Option<&Path>) -> Result<FashionSource> {
    locate_with(explicit, std::env::var_os(ENV_VAR), Path::new(DEBIAN_DIR))
}

/// Finds Fashion-MNIST (as [`locate_fashion_mnist`]) and reads `split`.
pub fn load_fashion_mnist(
    explicit: Option<&Path>,
    split: Split,
) -> Result<(Dataset, FashionSource)> {
    let source = locate_fashion_mnist(explicit)?;
    let ds = read_fashion_mnist(&source, split)?;
    Ok((ds, source))
}

/// Reads `split` from a located source, with the class names attached.
pub fn read_fashion_mnist(source: &FashionSource, split: Split) -> Result<Dataset> {
    let Some(dir) = source.folder() else {
        return embedded::fashion_mnist_subset(split);
    };
    let (images, labels) = match split {
        Split::Train => (FILES[0], FILES[1]),
        Split::Test => (FILES[2], FILES[3]),
    };
    let file = |stem: &str| find_file(dir, stem).unwrap_or_else(|| dir.join(format!("{stem}.gz")));
    let ds = read_idx_pair(&file(images), &file(labels))?;
    Ok(ds.with_class_names(embedded::class_names()))
}

/// The search itself, with the environment and the Debian folder passed in
/// so that tests can try every case without touching the process.
pub fn locate_with(
    explicit: Option<&Path>,
    env: Option<OsString>,
    debian_dir: &Path,
) -> Result<FashionSource> {
    if let Some(path) = explicit {
        return match holding_folder(path) {
            Some(dir) => Ok(FashionSource::Explicit(dir)),
            None => Err(not_found(path, "this folder was given as the data folder")),
        };
    }
    if let Some(value) = env.filter(|v| !v.is_empty()) {
        let path = PathBuf::from(value);
        return match holding_folder(&path) {
            Some(dir) => Ok(FashionSource::Env(dir)),
            None => Err(not_found(
                &path,
                "the BYOL_DATA environment variable names this folder",
            )),
        };
    }
    if holds_fashion_mnist(debian_dir) {
        return Ok(FashionSource::Debian(debian_dir.to_path_buf()));
    }
    Ok(FashionSource::Embedded)
}

/// `path` or `path/fashion-mnist`, whichever holds the four files.
fn holding_folder(path: &Path) -> Option<PathBuf> {
    [path.to_path_buf(), path.join("fashion-mnist")]
        .into_iter()
        .find(|dir| holds_fashion_mnist(dir))
}

/// Whether `dir` has all four files, gzipped or not.
pub fn holds_fashion_mnist(dir: &Path) -> bool {
    FILES.iter().all(|stem| find_file(dir, stem).is_some())
}

/// `dir/stem.gz` if it exists, else `dir/stem` if it exists.
fn find_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [dir.join(format!("{stem}.gz")), dir.join(stem)]
        .into_iter()
        .find(|p| p.is_file())
}

/// The error for a folder that was named but holds no Fashion-MNIST.
fn not_found(path: &Path, named_by: &str) -> DataError {
    DataError::NotFound {
        path: path.to_path_buf(),
        what: format!(
            "{named_by}, but neither it nor its fashion-mnist/ sub-folder holds \
             Fashion-MNIST ({}, each optionally .gz)",
            FILES.join(", ")
        ),
        fix: format!(
            "give a folder holding those four files, or none (unset {ENV_VAR}, no path) to \
             use the Debian package dataset-fashion-mnist or the embedded subset"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idx::{write_idx_images, write_idx_labels};
    use crate::testing::TempDir;

    /// Writes a tiny fake Fashion-MNIST (2 train and 1 test image of 28x28)
    /// into `dir`, gzipped.
    fn write_fake(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        let train = Dataset::new(vec![9; 2 * 784], 1, 28, 28, None).unwrap();
        let test = Dataset::new(vec![7; 784], 1, 28, 28, None).unwrap();
        write_idx_images(&dir.join("train-images-idx3-ubyte.gz"), &train, true).unwrap();
        write_idx_labels(&dir.join("train-labels-idx1-ubyte.gz"), &[1, 2], true).unwrap();
        // The test pair uncompressed, to check that both names are found.
        write_idx_images(&dir.join("t10k-images-idx3-ubyte"), &test, false).unwrap();
        write_idx_labels(&dir.join("t10k-labels-idx1-ubyte"), &[3], false).unwrap();
    }

    #[test]
    fn explicit_then_env_then_debian_then_embedded() {
        let tmp = TempDir::new("locate-order");
        let a = tmp.path().join("a");
        let b = tmp.path().join("b/fashion-mnist");
        let debian = tmp.path().join("debian");
        let nowhere = tmp.path().join("nowhere");
        write_fake(&a);
        write_fake(&b);
        write_fake(&debian);
        let env_b = Some(OsString::from(tmp.path().join("b")));

        let s = locate_with(Some(&a), env_b.clone(), &debian).unwrap();
        assert_eq!(s, FashionSource::Explicit(a.clone()));
        let s = locate_with(None, env_b, &debian).unwrap();
        assert_eq!(s, FashionSource::Env(b.clone()));
        let s = locate_with(None, Some(OsString::new()), &debian).unwrap();
        assert_eq!(s, FashionSource::Debian(debian.clone()));
        let s = locate_with(None, None, &nowhere).unwrap();
        assert_eq!(s, FashionSource::Embedded);

        let train = read_fashion_mnist(&FashionSource::Env(b.clone()), Split::Train).unwrap();
        assert_eq!(train.labels().unwrap(), &[1, 2]);
        let test = read_fashion_mnist(&FashionSource::Explicit(a), Split::Test).unwrap();
        assert_eq!(test.labels().unwrap(), &[3]);
        assert_eq!(test.image(0).unwrap()[0], 7);
    }

    #[test]
    fn a_named_folder_without_the_data_is_an_error() {
        let tmp = TempDir::new("locate-errors");
        let debian = tmp.path().join("debian");
        write_fake(&debian);
        let empty = tmp.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();

        let e = locate_with(Some(&empty), None, &debian).unwrap_err();
        assert!(matches!(e, DataError::NotFound { .. }));
        assert!(e.to_string().contains("t10k-labels-idx1-ubyte"));
        let e = locate_with(None, Some(empty.clone().into_os_string()), &debian).unwrap_err();
        assert!(e.to_string().contains(ENV_VAR));
    }

    #[test]
    fn the_debian_package_reads_in_full_when_installed() {
        let dir = Path::new(DEBIAN_DIR);
        if !holds_fashion_mnist(dir) {
            eprintln!(
                "skipped: {DEBIAN_DIR} not installed (apt-get install dataset-fashion-mnist)"
            );
            return;
        }
        let source = FashionSource::Debian(dir.to_path_buf());
        let test = read_fashion_mnist(&source, Split::Test).unwrap();
        assert_eq!(test.len(), 10_000);
        assert_eq!(test.class_counts(), vec![1000; 10]);
        // The embedded test split is the first 100 of each class, in order:
        // its first image is the full set's first image.
        let sub = embedded::fashion_mnist_subset(Split::Test).unwrap();
        assert_eq!(sub.image(0), test.image(0));
    }
}
