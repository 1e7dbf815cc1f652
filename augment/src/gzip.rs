//! Reading a whole file into memory, decompressing it when it is gzip.
//!
//! Whether a file is compressed is decided by its first two bytes, the gzip
//! magic number `1f 8b`, not by its name: `train-images-idx3-ubyte` that is
//! secretly compressed, or a `.gz` that was already unpacked, both read.
//!
//! A compressed file is inflated only as far as it can be valid: up to the
//! size its own header declares (an IDX file says its dimensions in its
//! first bytes), or at most [`MAX_INFLATED`]. A small file built to inflate
//! to gigabytes (a "gzip bomb") is refused as soon as it passes that size,
//! before the memory is taken.

use std::fs;
use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::{DataError, Result};

/// The two bytes every gzip stream starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The most bytes a compressed file is inflated to when its header says
/// nothing of its size (4 GiB: more than any data set this crate reads).
pub const MAX_INFLATED: u64 = 1 << 32;

/// How many inflated bytes a header needs to say its size.
const HEADER_BYTES: usize = 64;

/// The bytes of the file at `path`, gunzipped when they are gzip, inflated
/// no further than [`MAX_INFLATED`].
///
/// Errors: [`DataError::NotFound`] when nothing is at `path`,
/// [`DataError::Io`] when it cannot be read or the gzip stream is corrupt.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    read_file_declared(path, |_| None)
}

/// As [`read_file`], inflating no further than `declared(first bytes)`,
/// the size the file's own header gives (`None`: [`MAX_INFLATED`]).
pub fn read_file_declared(path: &Path, declared: impl Fn(&[u8]) -> Option<u64>) -> Result<Vec<u8>> {
    if !path.exists() {
        return Err(DataError::missing(
            path,
            "check the path (a data file was expected there)",
        ));
    }
    let raw = fs::read(path).map_err(|e| DataError::io(path, e))?;
    inflate_declared(&raw, path, declared)
}

/// `bytes` gunzipped when they start with the gzip magic number, else
/// `bytes` unchanged. `path` only names the source in errors.
pub fn decompress_if_gzip(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    inflate_declared(bytes, path, |_| None)
}

/// `bytes` gunzipped (when gzip) up to the size `declared` reads from the
/// first inflated bytes, or [`MAX_INFLATED`]; more is an error.
fn inflate_declared(
    bytes: &[u8],
    path: &Path,
    declared: impl Fn(&[u8]) -> Option<u64>,
) -> Result<Vec<u8>> {
    if !bytes.starts_with(&GZIP_MAGIC) {
        return Ok(bytes.to_vec());
    }
    let io = |e| DataError::io(path, e);
    let mut stream = MultiGzDecoder::new(bytes);
    let mut out = Vec::new();
    (&mut stream)
        .take(HEADER_BYTES as u64)
        .read_to_end(&mut out)
        .map_err(io)?;
    let said = declared(&out).map(|n| n.min(MAX_INFLATED));
    let limit = said.unwrap_or(MAX_INFLATED);
    // The buffer for the size the header declares, taken at once so it
    // never doubles past it, but never more than deflate can make of these
    // bytes (at most 1032 to 1): a header's claim alone reserves nothing
    // the file could not really hold.
    if let Some(n) = said {
        let possible = (bytes.len() as u64).saturating_mul(1032);
        let want = n.min(possible).saturating_sub(out.len() as u64) as usize;
        out.reserve(want.saturating_add(1));
    }
    // One byte past the limit tells a longer stream from an exact one.
    let rest = (limit + 1).saturating_sub(out.len() as u64);
    stream.take(rest).read_to_end(&mut out).map_err(io)?;
    if out.len() as u64 > limit {
        return Err(DataError::Format {
            path: path.to_path_buf(),
            problem: format!(
                "the compressed data inflates past the {limit} bytes it can hold (its header's \
                 size, or the most this reader takes); the file is corrupt or not what it \
                 claims"
            ),
        });
    }
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
    fn a_stream_longer_than_its_header_declares_is_refused_early() {
        // 64 MB of zeros compress to about 64 KB.
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&vec![0u8; 64 << 20]).unwrap();
        let packed = enc.finish().unwrap();
        assert!(packed.len() < 1 << 20);
        let e = inflate_declared(&packed, Path::new("bomb.gz"), |_| Some(1000)).unwrap_err();
        assert!(
            e.to_string().contains("inflates past the 1000 bytes"),
            "{e}"
        );
        // Exactly the declared size is fine.
        let ok = inflate_declared(&packed, Path::new("x.gz"), |_| Some(64 << 20)).unwrap();
        assert_eq!(ok.len(), 64 << 20);
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
