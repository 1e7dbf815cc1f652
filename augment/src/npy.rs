//! NumPy `.npy` files, version 1.0: the way arrays of images come in
//! (`byol embed --npy`) and features leave this project (`byol embed`
//! writes them; `np.load` reads them).
//!
//! The format is a magic string, a little header describing the array as a
//! Python dict literal, then the raw values in C order:
//!
//! ```text
//! \x93NUMPY  1 0  <header length: u16 LE>  {'descr': '<f4', 'fortran_order': False, 'shape': (N, F), }
//! <N·F little-endian f32 values>
//! ```
//!
//! The header is padded with spaces and ends with `\n` so that the data
//! starts at a multiple of 64 bytes. Reading accepts `<f4`, `<f8` and `|u1`
//! (converted to f32), C order, versions 1 to 3.

use crate::error::{DataError, Result};
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// Writes `values` with `shape` as a float32 `.npy` file, complete or not
/// at all (the `files` crate's atomic writer).
pub fn write_f32(path: &Path, shape: &[usize], values: &[f32]) -> Result<()> {
    let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_raw(path, shape, "<f4", values.len(), data)
}

/// Writes `values` as a little-endian int64 (`<i8`) `.npy` array of
/// `shape` (atomically, as [`write_f32`]): class labels, which NumPy and
/// PyTorch then read as integers.
pub fn write_i64(path: &Path, shape: &[usize], values: &[i64]) -> Result<()> {
    let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_raw(path, shape, "<i8", values.len(), data)
}

/// Writes the `count` values in `data` (already little-endian bytes of the
/// type `descr` names) as an `.npy` array of `shape`.
fn write_raw(path: &Path, shape: &[usize], descr: &str, count: usize, data: Vec<u8>) -> Result<()> {
    if element_count(shape) != Some(count) {
        return Err(DataError::invalid(
            format!(
                "{}: {count} values do not fill the shape {shape:?}",
                path.display(),
            ),
            "give one value per element of the shape",
        ));
    }
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    // magic (6) + version (2) + length (2) + header + '\n' = multiple of 64
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + data.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&[1, 0]);
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&data);
    files::write_atomically(path, &bytes)?;
    Ok(())
}

/// The number of elements of `shape`, or `None` if it overflows. A zero
/// dimension does not hide an overflow of the others (an array of shape
/// `(0, 2^32, 2^32, 2^32)` is refused too: its planes cannot be indexed).
fn element_count(shape: &[usize]) -> Option<usize> {
    shape
        .iter()
        .filter(|&&d| d > 0)
        .try_fold(1usize, |n, &d| n.checked_mul(d))?;
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// An array read from a `.npy` file, as f32.
#[derive(Debug, PartialEq)]
pub struct Array {
    /// The dimensions.
    pub shape: Vec<usize>,
    /// The values in C order.
    pub values: Vec<f32>,
}

/// Reads a `.npy` file of `<f4`, `<f8` or `|u1` values in C order.
pub fn read(path: &Path) -> Result<Array> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    parse(&bytes).map_err(|problem| DataError::Format {
        path: path.to_path_buf(),
        problem,
    })
}

fn parse(bytes: &[u8]) -> std::result::Result<Array, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy file (no \\x93NUMPY magic); save it with numpy.save".into());
    }
    let (header_start, header_len) = match bytes[6] {
        1 => (10, u16::from_le_bytes([bytes[8], bytes[9]]) as usize),
        2 | 3 if bytes.len() >= 12 => (
            12,
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
        ),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let data_start = header_start + header_len;
    let header = bytes
        .get(header_start..data_start)
        .ok_or("the header is cut short")?;
    let header = std::str::from_utf8(header).map_err(|_| "the header is not text")?;
    let descr = field(header, "descr")?;
    if field(header, "fortran_order")?.trim() != "False" {
        return Err("the array is in Fortran order; save np.ascontiguousarray(x)".into());
    }
    let shape = parse_shape(&field(header, "shape")?)?;
    let count = element_count(&shape)
        .filter(|&n| n.checked_mul(8).is_some())
        .ok_or_else(|| format!("the shape {shape:?} is too large to hold"))?;
    let data = &bytes[data_start..];
    let descr = descr.trim().trim_matches('\'');
    let values: Vec<f32> = match descr {
        "<f4" => {
            need(data.len(), count * 4)?;
            data.chunks_exact(4)
                .take(count)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        }
        "<f8" => {
            need(data.len(), count * 8)?;
            data.chunks_exact(8)
                .take(count)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect()
        }
        "|u1" => {
            need(data.len(), count)?;
            data[..count].iter().map(|&b| b as f32).collect()
        }
        other => {
            return Err(format!(
                "values of type {other}; expected float32 (<f4), float64 or uint8: \
                 convert with x.astype(np.float32)"
            ))
        }
    };
    Ok(Array { shape, values })
}

fn need(have: usize, want: usize) -> std::result::Result<(), String> {
    if have < want {
        Err(format!(
            "the data is cut short: {have} bytes, {want} expected"
        ))
    } else {
        Ok(())
    }
}

/// The text of `'key': value` in the header dict (up to the next `,` at
/// the top level, or the matching `)` for the shape tuple).
fn field(header: &str, key: &str) -> std::result::Result<String, String> {
    let tag = format!("'{key}':");
    let at = header
        .find(&tag)
        .ok_or_else(|| format!("the header has no '{key}'"))?;
    let rest = header[at + tag.len()..].trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')').map(|i| i + 1)
    } else {
        rest.find([',', '}'])
    }
    .ok_or_else(|| format!("the header's '{key}' is not closed"))?;
    Ok(rest[..end].to_string())
}

fn parse_shape(text: &str) -> std::result::Result<Vec<usize>, String> {
    text.trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("the shape {text} is not a tuple of sizes"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_array_reads_back() {
        let dir = std::env::temp_dir().join(format!("byol-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for shape in [vec![3usize, 2], vec![5], vec![2, 1, 3, 3]] {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 1.0).collect();
            let path = dir.join("x.npy");
            write_f32(&path, &shape, &values).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            // The data starts on a 64-byte boundary, as NumPy requires.
            let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            assert_eq!((10 + header_len) % 64, 0);
            assert_eq!(read(&path).unwrap(), Array { shape, values });
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Labels go out as int64: the header says `<i8` and each value is 8
    /// little-endian bytes after the 64-byte-aligned header.
    #[test]
    fn integers_are_written_as_int64() {
        let dir = std::env::temp_dir().join(format!("byol-npy-i64-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("labels.npy");
        write_i64(&path, &[3], &[0, 7, -2]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(
            header.contains("'descr': '<i8'") && header.contains("(3,)"),
            "{header}"
        );
        assert_eq!((10 + header_len) % 64, 0);
        let values: Vec<i64> = bytes[10 + header_len..]
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(values, [0, 7, -2]);
        assert!(write_i64(&path, &[2], &[1, 2, 3]).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn numpy_headers_of_other_types_are_read_or_named() {
        // What numpy.save writes for np.arange(4, dtype=np.uint8).reshape(2, 2).
        let mut header = "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }".to_string();
        header.push_str(&" ".repeat(128 - 10 - header.len() - 1));
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&[0, 1, 2, 255]);
        let a = parse(&bytes).unwrap();
        assert_eq!(a.shape, vec![2, 2]);
        assert_eq!(a.values, vec![0.0, 1.0, 2.0, 255.0]);

        let e = parse(&replaced(&bytes, "|u1", "<i8")).unwrap_err();
        assert!(e.contains("<i8") && e.contains("float32"), "{e}");
        let e = parse(b"PK\x03\x04 not npy").unwrap_err();
        assert!(e.contains("magic"), "{e}");
        let e = parse(&bytes[..bytes.len() - 2]).unwrap_err();
        assert!(e.contains("cut short"), "{e}");
        // A shape whose size overflows is refused before any allocation.
        let mut huge = b"\x93NUMPY\x01\x00".to_vec();
        let dict =
            "{'descr': '<f4', 'fortran_order': False, 'shape': (9999999999999, 9999999999999), }\n";
        huge.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        huge.extend_from_slice(dict.as_bytes());
        let e = parse(&huge).unwrap_err();
        assert!(e.contains("too large"), "{e}");
        let mut zero = b"\x93NUMPY\x01\x00".to_vec();
        let dict =
            "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296), }\n";
        zero.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        zero.extend_from_slice(dict.as_bytes());
        let e = parse(&zero).unwrap_err();
        assert!(e.contains("too large"), "{e}");
    }

    /// A copy of `bytes` with the first `from` replaced by `to` (same length).
    fn replaced(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
        let at = bytes
            .windows(from.len())
            .position(|w| w == from.as_bytes())
            .expect("present");
        let mut out = bytes.to_vec();
        out[at..at + to.len()].copy_from_slice(to.as_bytes());
        out
    }
}
