//! Reading a whole file into memory, decompressing it when it is gzip.
//!
//! Whether a file is compressed is decided by its first two bytes, the gzip
//! magic number `1f 8b`, not by its name: `train-images-idx3-ubyte` that is
//! secretly compressed, or a `.gz` that was already unpacked, both read.

use std::fs;
use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::{DataError, Result};

/// The two bytes every gzip stream starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The bytes of the file at `path`, gunzipped when they are gzip.
///
/// Errors: [`DataError::NotFound`] when nothing is at `path`,
/// [`DataError::Io`] when it cannot be read or the gzip stream is corrupt.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    if !path.exists() {
        return Err(DataError::missing(
            path,
            "check the path (a data file was expected there)",
        ));
    }
    let raw = fs::read(path).map_err(|e| DataError::io(path, e))?;
    decompress_if_gzip(&raw, path)
}

/// `bytes` gunzipped when they start with the gzip magic number, else
/// `bytes` unchanged. `path` only names the source in errors.
pub fn decompress_if_gzip(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    if !bytes.starts_with(&GZIP_MAGIC) {
        return Ok(bytes.to_vec());
    }
    let mut out = Vec::with_capacity(bytes.len() * 4);
    MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| DataError::io(path, e))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    #[test]
    fn plain_bytes_pass_through_and_gzip_is_unpacked() {
        let data = b"hello idx".to_vec();
        assert_eq!(decompress_if_gzip(&data, Path::new("x")).unwrap(), data);
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&data).unwrap();
        let packed = enc.finish().unwrap();
        assert_eq!(decompress_if_gzip(&packed, Path::new("x")).unwrap(), data);
    }

    #[test]
    fn corrupt_gzip_and_missing_files_are_errors() {
        let bad = [0x1f, 0x8b, 8, 0, 1, 2, 3];
        let e = decompress_if_gzip(&bad, Path::new("broken.gz")).unwrap_err();
        assert!(matches!(e, DataError::Io { .. }));
        assert!(e.to_string().contains("broken.gz"));
        let e = read_file(Path::new("surely/not/here.gz")).unwrap_err();
        assert!(matches!(e, DataError::NotFound { .. }));
    }
}
