//! CIFAR-10 and CIFAR-100 binary batches.
//!
//! The "binary version" of CIFAR (Krizhevsky, 2009) is a plain sequence of
//! fixed-size records, no header:
//!
//! ```text
//! CIFAR-10:  <1 byte label 0..10> <3072 bytes image>                        3073 bytes
//! CIFAR-100: <1 byte coarse label 0..20> <1 byte fine label 0..100> <3072>  3074 bytes
//! ```
//!
//! The 3072 image bytes are a 32x32 RGB image stored channel by channel
//! (1024 red, then 1024 green, then 1024 blue, each row by row): exactly
//! the CHW layout of [`Dataset`], so they are copied as they are.
//!
//! CIFAR-10 ships as `data_batch_1.bin` .. `data_batch_5.bin` (50,000 training
//! images) and `test_batch.bin` (10,000); CIFAR-100 as `train.bin` and
//! `test.bin`. A file whose length is not a whole number of records is an
//! error (a truncated download, or a batch of the other kind), and so is a
//! label outside the range of its kind.

use std::path::Path;

use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::gzip;

/// Side of a CIFAR image in pixels.
pub const SIDE: usize = 32;
/// Bytes of one CIFAR image: 3 channels of 32x32.
pub const IMAGE_BYTES: usize = 3 * SIDE * SIDE;

/// The names of CIFAR-10's classes, by label.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// The training files of CIFAR-10, in their usual order.
pub const CIFAR10_TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test file of CIFAR-10.
pub const CIFAR10_TEST_FILE: &str = "test_batch.bin";

/// Which CIFAR, and for CIFAR-100 which of its two labels to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CifarKind {
    /// CIFAR-10: 10 classes, records of 3073 bytes.
    Cifar10,
    /// CIFAR-100 with its 20 coarse (superclass) labels.
    Cifar100Coarse,
    /// CIFAR-100 with its 100 fine labels.
    Cifar100Fine,
}

impl CifarKind {
    /// Label bytes before each image: 1 for CIFAR-10, 2 for CIFAR-100.
    pub fn label_bytes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 1,
            CifarKind::Cifar100Coarse | CifarKind::Cifar100Fine => 2,
        }
    }

    /// Bytes of one record: the labels and the image.
    pub fn record_bytes(self) -> usize {
        self.label_bytes() + IMAGE_BYTES
    }

    /// Which label byte of a record is kept.
    fn label_offset(self) -> usize {
        match self {
            CifarKind::Cifar10 | CifarKind::Cifar100Coarse => 0,
            CifarKind::Cifar100Fine => 1,
        }
    }

    /// Number of classes of the label kept.
    pub fn classes(self) -> u32 {
        match self {
            CifarKind::Cifar10 => 10,
            CifarKind::Cifar100Coarse => 20,
            CifarKind::Cifar100Fine => 100,
        }
    }
}

/// Reads one or more CIFAR binary batches (raw or gzipped) into one labelled
/// 3-channel 32x32 [`Dataset`], the files' records in the order given.
/// CIFAR-10 sets get their class names.
pub fn read_cifar<P: AsRef<Path>>(paths: &[P], kind: CifarKind) -> Result<Dataset> {
    if paths.is_empty() {
        return Err(DataError::invalid(
            "no CIFAR files given",
            "pass at least one batch file, e.g. data_batch_1.bin",
        ));
    }
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for p in paths {
        let path = p.as_ref();
        let bytes = gzip::read_file(path)?;
        parse_cifar_into(&bytes, path, kind, &mut pixels, &mut labels)?;
    }
    let ds = Dataset::new(pixels, 3, SIDE, SIDE, Some(labels))?;
    Ok(match kind {
        CifarKind::Cifar10 => {
            ds.with_class_names(CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect())
        }
        _ => ds,
    })
}

/// Parses the bytes of one batch, appending its images and labels. `path`
/// only names the source in errors.
pub fn parse_cifar_into(
    bytes: &[u8],
    path: &Path,
    kind: CifarKind,
    pixels: &mut Vec<u8>,
    labels: &mut Vec<u32>,
) -> Result<()> {
    let record = kind.record_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(DataError::TruncatedRecord {
            path: path.to_path_buf(),
            record_bytes: record as u64,
            file_bytes: bytes.len() as u64,
        });
    }
    pixels.reserve(bytes.len() / record * IMAGE_BYTES);
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let label = rec[kind.label_offset()] as u32;
        if label >= kind.classes() {
            return Err(DataError::BadLabel {
                path: path.to_path_buf(),
                record: i,
                label,
                classes: kind.classes(),
            });
        }
        labels.push(label);
        pixels.extend_from_slice(&rec[kind.label_bytes()..]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    /// Records of `kind` for images whose bytes are `seed + position`, with
    /// the given labels (for CIFAR-100 the coarse label is `fine / 5`).
    fn records(kind: CifarKind, labels: &[u8], seed: u8) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, &l) in labels.iter().enumerate() {
            if kind != CifarKind::Cifar10 {
                out.push(l / 5);
            }
            out.push(l);
            out.extend((0..IMAGE_BYTES).map(|p| (p as u8).wrapping_add(seed + i as u8)));
        }
        out
    }

    #[test]
    fn cifar10_round_trip_over_two_files() {
        let dir = TempDir::new("cifar10");
        let a = dir.path().join("data_batch_1.bin");
        let b = dir.path().join("data_batch_2.bin");
        std::fs::write(&a, records(CifarKind::Cifar10, &[3, 9], 0)).unwrap();
        std::fs::write(&b, records(CifarKind::Cifar10, &[0], 50)).unwrap();
        let ds = read_cifar(&[&a, &b], CifarKind::Cifar10).unwrap();
        assert_eq!(
            (ds.len(), ds.channels(), ds.height(), ds.width()),
            (3, 3, 32, 32)
        );
        assert_eq!(ds.labels().unwrap(), &[3, 9, 0]);
        assert_eq!(ds.class_names().unwrap()[3], "cat");
        // Image 1, red plane, pixel (0, 2): byte 2 + seed 0 + index 1.
        assert_eq!(ds.image(1).unwrap()[2], 3);
        // Image 2, green plane starts at 1024: (1024 + 50) mod 256.
        assert_eq!(ds.image(2).unwrap()[1024], (1024u32 + 50) as u8);
    }

    #[test]
    fn cifar100_keeps_the_chosen_label() {
        let bytes = records(CifarKind::Cifar100Fine, &[42, 99], 0);
        let (mut px, mut fine, mut coarse) = (Vec::new(), Vec::new(), Vec::new());
        let p = Path::new("train.bin");
        parse_cifar_into(&bytes, p, CifarKind::Cifar100Fine, &mut px, &mut fine).unwrap();
        parse_cifar_into(&bytes, p, CifarKind::Cifar100Coarse, &mut px, &mut coarse).unwrap();
        assert_eq!(fine, vec![42, 99]);
        assert_eq!(coarse, vec![8, 19]);
    }

    #[test]
    fn truncated_records_are_errors() {
        let mut bytes = records(CifarKind::Cifar10, &[1, 2], 0);
        bytes.truncate(bytes.len() - 10);
        let mut sink = (Vec::new(), Vec::new());
        let e = parse_cifar_into(
            &bytes,
            Path::new("cut.bin"),
            CifarKind::Cifar10,
            &mut sink.0,
            &mut sink.1,
        )
        .unwrap_err();
        assert!(matches!(
            e,
            DataError::TruncatedRecord {
                record_bytes: 3073,
                file_bytes: 6136,
                ..
            }
        ));
        assert!(e.to_string().contains("cut.bin"));
        // An empty file holds no record: also an error.
        assert!(parse_cifar_into(
            &[],
            Path::new("e"),
            CifarKind::Cifar10,
            &mut sink.0,
            &mut sink.1
        )
        .is_err());
        // A CIFAR-100 file read as CIFAR-10 is caught by its length.
        let c100 = records(CifarKind::Cifar100Fine, &[1, 2, 3], 0);
        assert!(parse_cifar_into(
            &c100,
            Path::new("x"),
            CifarKind::Cifar10,
            &mut sink.0,
            &mut sink.1
        )
        .is_err());
    }

    #[test]
    fn out_of_range_labels_and_missing_files_are_errors() {
        let bytes = records(CifarKind::Cifar10, &[1, 12], 0);
        let mut sink = (Vec::new(), Vec::new());
        let e = parse_cifar_into(
            &bytes,
            Path::new("x"),
            CifarKind::Cifar10,
            &mut sink.0,
            &mut sink.1,
        )
        .unwrap_err();
        assert!(matches!(
            e,
            DataError::BadLabel {
                record: 1,
                label: 12,
                ..
            }
        ));
        let e = read_cifar(&["no/such/batch.bin"], CifarKind::Cifar10).unwrap_err();
        assert!(matches!(e, DataError::NotFound { .. }));
    }
}
