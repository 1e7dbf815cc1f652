//! IDX files: the format of MNIST and Fashion-MNIST.
//!
//! An IDX file is a header and then the values, row-major:
//!
//! ```text
//! bytes 0-1   0x00 0x00
//! byte  2     the type of the values: 0x08 = unsigned byte (the only one MNIST uses)
//! byte  3     the number of dimensions, d
//! 4 * d bytes each dimension's size, a big-endian u32
//! then        the values, product of the sizes of them
//! ```
//!
//! Images are `0x00000803` (bytes, 3 dimensions: count, rows, columns),
//! labels `0x00000801` (bytes, 1 dimension: count). Files are often gzipped
//! (`*-ubyte.gz`); both forms read.
//!
//! A file that does not start with the expected magic number, or whose
//! length is not what its header declares, is an error: a truncated download
//! is caught here rather than showing up as black images later.

use std::io::Write;
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::gzip;

/// Magic number of an IDX image file: unsigned bytes, 3 dimensions.
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX label file: unsigned bytes, 1 dimension.
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Reads the images of an IDX image file (gzipped or raw) as a one-channel,
/// unlabelled [`Dataset`].
pub fn read_idx_images(path: &Path) -> Result<Dataset> {
    parse_idx_images(&gzip::read_file_declared(path, declared_size)?, path)
}

/// Reads the labels of an IDX label file (gzipped or raw).
pub fn read_idx_labels(path: &Path) -> Result<Vec<u32>> {
    parse_idx_labels(&gzip::read_file_declared(path, declared_size)?, path)
}

/// The size an IDX file's header declares: 4 bytes of magic number (the
/// last one the number of dimensions), 4 per dimension, then the product
/// of the dimensions in one-byte values. `None` when the header is cut
/// short or the product overflows (the parser then says what is wrong).
fn declared_size(head: &[u8]) -> Option<u64> {
    let dims = *head.get(3)? as usize;
    let header = 4 + 4 * dims;
    let values = (0..dims).try_fold(1u64, |n, d| {
        let at = 4 + 4 * d;
        let size = u32::from_be_bytes(head.get(at..at + 4)?.try_into().ok()?);
        n.checked_mul(size as u64)
    })?;
    values.checked_add(header as u64)
}

/// Reads an image file and its label file into one labelled [`Dataset`].
/// Errors if their counts differ.
pub fn read_idx_pair(images: &Path, labels: &Path) -> Result<Dataset> {
    let ds = read_idx_images(images)?;
    let l = read_idx_labels(labels)?;
    attach_labels(ds, l, images, labels)
}

/// `ds` with `labels`, checking there is one label per image.
pub(crate) fn attach_labels(
    ds: Dataset,
    labels: Vec<u32>,
    images_path: &Path,
    labels_path: &Path,
) -> Result<Dataset> {
    if labels.len() != ds.len() {
        return Err(DataError::CountMismatch {
            images: images_path.to_path_buf(),
            labels: labels_path.to_path_buf(),
            n_images: ds.len(),
            n_labels: labels.len(),
        });
    }
    ds.with_labels(labels)
}

/// Parses the (already decompressed) bytes of an IDX image file. `path`
/// only names the source in errors.
pub fn parse_idx_images(bytes: &[u8], path: &Path) -> Result<Dataset> {
    let (dims, data) = parse_header(bytes, path, IMAGES_MAGIC)?;
    let (rows, cols) = (dims[1] as usize, dims[2] as usize);
    if rows == 0 || cols == 0 {
        return Err(DataError::invalid(
            format!("{}: images of size {rows}x{cols}", path.display()),
            "the file is corrupt; copy it again",
        ));
    }
    Dataset::new(data.to_vec(), 1, rows, cols, None)
}

/// Parses the (already decompressed) bytes of an IDX label file.
pub fn parse_idx_labels(bytes: &[u8], path: &Path) -> Result<Vec<u32>> {
    let (_, data) = parse_header(bytes, path, LABELS_MAGIC)?;
    Ok(data.iter().map(|&b| b as u32).collect())
}

/// Checks the magic number and length of an IDX file and splits it into
/// its dimensions and its values.
fn parse_header<'a>(bytes: &'a [u8], path: &Path, magic: u32) -> Result<(Vec<u32>, &'a [u8])> {
    let mut first = [0u8; 4];
    let n = bytes.len().min(4);
    first[..n].copy_from_slice(&bytes[..n]);
    let found = u32::from_be_bytes(first);
    if bytes.len() < 4 || found != magic {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            found,
            expected: magic,
        });
    }
    let ndims = (magic & 0xff) as usize;
    let header_len = 4 + 4 * ndims;
    if bytes.len() < header_len {
        return Err(DataError::LengthMismatch {
            path: path.to_path_buf(),
            expected: header_len as u64,
            found: bytes.len() as u64,
        });
    }
    let dims: Vec<u32> = bytes[4..header_len]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    // The product of the dimensions, checked: three 32-bit sizes can
    // overflow even a u64 (a damaged header then matches no file length).
    let expected = dims
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
        .and_then(|values| values.checked_add(header_len as u64))
        .unwrap_or(u64::MAX);
    if expected != bytes.len() as u64 {
        return Err(DataError::LengthMismatch {
            path: path.to_path_buf(),
            expected,
            found: bytes.len() as u64,
        });
    }
    Ok((dims, &bytes[header_len..]))
}

/// The bytes of an IDX file: magic, dimensions, values.
fn encode(magic: u32, dims: &[u32], values: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + values.len());
    out.extend_from_slice(&magic.to_be_bytes());
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(values);
    out
}

/// Writes `bytes` to `path`, gzip-compressed if `gzip` is true.
fn write_bytes(path: &Path, bytes: &[u8], gzip: bool) -> Result<()> {
    let io = |e| DataError::io(path, e);
    if gzip {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).map_err(io)?;
        files::write_atomically(path, &enc.finish().map_err(io)?)?;
    } else {
        files::write_atomically(path, bytes)?;
    }
    Ok(())
}

/// Writes the images of a one-channel data set as an IDX image file
/// (gzip-compressed if `gzip`). Errors for a three-channel set, which IDX
/// image files cannot hold.
pub fn write_idx_images(path: &Path, ds: &Dataset, gzip: bool) -> Result<()> {
    if ds.channels() != 1 {
        return Err(DataError::invalid(
            format!("writing a {}-channel data set as IDX", ds.channels()),
            "IDX image files hold one channel; convert the images to gray first",
        ));
    }
    let dims = [ds.len() as u32, ds.height() as u32, ds.width() as u32];
    write_bytes(path, &encode(IMAGES_MAGIC, &dims, ds.pixels()), gzip)
}

/// Writes labels as an IDX label file (gzip-compressed if `gzip`). Errors if
/// a label does not fit in a byte.
pub fn write_idx_labels(path: &Path, labels: &[u32], gzip: bool) -> Result<()> {
    let bytes: Option<Vec<u8>> = labels.iter().map(|&l| u8::try_from(l).ok()).collect();
    let bytes = bytes.ok_or_else(|| {
        DataError::invalid(
            format!(
                "writing {} as IDX labels: a label is above 255",
                path.display()
            ),
            "IDX label files hold one byte per label",
        )
    })?;
    write_bytes(
        path,
        &encode(LABELS_MAGIC, &[labels.len() as u32], &bytes),
        gzip,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    fn sample() -> Dataset {
        let pixels: Vec<u8> = (0..3 * 4 * 5).map(|i| (i * 7 % 256) as u8).collect();
        Dataset::new(pixels, 1, 4, 5, Some(vec![3, 0, 9])).unwrap()
    }

    #[test]
    fn round_trips_gzipped_and_raw() {
        let dir = TempDir::new("idx-round-trip");
        let ds = sample();
        for gz in [true, false] {
            let img = dir.path().join(format!("img-{gz}"));
            let lab = dir.path().join(format!("lab-{gz}"));
            write_idx_images(&img, &ds, gz).unwrap();
            write_idx_labels(&lab, ds.labels().unwrap(), gz).unwrap();
            let back = read_idx_pair(&img, &lab).unwrap();
            assert_eq!(back, ds);
        }
    }

    #[test]
    fn wrong_magic_is_an_error_naming_the_file() {
        let dir = TempDir::new("idx-magic");
        let ds = sample();
        let lab = dir.path().join("labels.idx");
        write_idx_labels(&lab, ds.labels().unwrap(), false).unwrap();
        // A label file where images are expected.
        let e = read_idx_images(&lab).unwrap_err();
        assert!(matches!(
            e,
            DataError::BadMagic {
                found: LABELS_MAGIC,
                expected: IMAGES_MAGIC,
                ..
            }
        ));
        assert!(e.to_string().contains("labels.idx"));
        // Too short to hold a magic number at all.
        let e = parse_idx_labels(&[0, 0], Path::new("tiny")).unwrap_err();
        assert!(matches!(e, DataError::BadMagic { .. }));
    }

    #[test]
    fn header_count_must_match_the_length() {
        let ds = sample();
        let mut bytes = encode(IMAGES_MAGIC, &[3, 4, 5], ds.pixels());
        bytes.pop(); // truncated by one byte
        let e = parse_idx_images(&bytes, Path::new("short.idx")).unwrap_err();
        assert!(matches!(
            e,
            DataError::LengthMismatch {
                expected: 76,
                found: 75,
                ..
            }
        ));
        assert!(e.to_string().contains("short.idx"));
        // A header that claims more images than are there.
        let bytes = encode(IMAGES_MAGIC, &[4, 4, 5], ds.pixels());
        assert!(parse_idx_images(&bytes, Path::new("x")).is_err());
        // A header cut short.
        assert!(matches!(
            parse_idx_images(&bytes[..9], Path::new("x")).unwrap_err(),
            DataError::LengthMismatch { .. }
        ));
    }

    #[test]
    fn mismatched_pairs_and_missing_files_are_errors() {
        let dir = TempDir::new("idx-pair");
        let ds = sample();
        let img = dir.path().join("img");
        let lab = dir.path().join("lab");
        write_idx_images(&img, &ds, true).unwrap();
        write_idx_labels(&lab, &[1, 2], true).unwrap();
        let e = read_idx_pair(&img, &lab).unwrap_err();
        assert!(matches!(
            e,
            DataError::CountMismatch {
                n_images: 3,
                n_labels: 2,
                ..
            }
        ));
        let e = read_idx_images(&dir.path().join("absent")).unwrap_err();
        assert!(matches!(e, DataError::NotFound { .. }));
    }
}
