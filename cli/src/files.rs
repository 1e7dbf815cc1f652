//! Writing result files so that a failure never leaves half a file under
//! the real name, and never replaces a good one with a broken one: the
//! bytes go to a temporary file beside the target (same folder, so the
//! rename stays on one file system and is atomic), are flushed to disk,
//! and only then renamed into place. `.npy` features, PNG plots and
//! previews, and the JSON and Markdown reports all go through here.

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through `.<name>.tmp-<pid>` beside it; on any
/// failure the temporary file is removed and the error names `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let fail = |what: String| format!("cannot write {}: {what}", path.display());
    let name = path
        .file_name()
        .ok_or_else(|| fail("the path has no file name".to_string()))?
        .to_string_lossy();
    let temp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let written = std::fs::File::create(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        // On disk before the rename makes the file visible.
        file.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&temp, path)) {
        let _ = std::fs::remove_file(&temp);
        return Err(fail(e.to_string()));
    }
    Ok(())
}

/// A PNG file's bytes for `height` rows of `width` RGB pixels (3 bytes
/// each, row after row).
pub fn png_bytes(rgb: &[u8], width: usize, height: usize) -> Result<Vec<u8>, String> {
    let (w, h) = match (u32::try_from(width), u32::try_from(height)) {
        (Ok(w), Ok(h)) => (w, h),
        _ => return Err(format!("a {width}x{height} picture is too large for PNG")),
    };
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(rgb, w, h, ExtendedColorType::Rgb8)
        .map_err(|e| e.to_string())?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_written_replaced_and_never_left_half_done() {
        let dir = std::env::temp_dir().join(format!("byol-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.txt");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        // Only the file itself is left: no temporary file.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let missing = dir.join("no-such-folder").join("x.txt");
        let e = write_atomically(&missing, b"x").unwrap_err();
        assert!(e.contains(&missing.display().to_string()), "{e}");
        let e = write_atomically(Path::new("/"), b"x").unwrap_err();
        assert!(e.contains("no file name"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn png_bytes_decode_to_the_same_pixels() {
        let rgb = [255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9];
        let png = png_bytes(&rgb, 2, 2).unwrap();
        let back = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(back.into_raw(), rgb.to_vec());
    }
}
