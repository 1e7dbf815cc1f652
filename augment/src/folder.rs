//! Folders of ordinary image files (PNG, JPEG, BMP, WebP), decoded with
//! the `image` crate, upright (a phone photo's EXIF orientation applied).
//!
//! Two layouts:
//!
//! * **Labelled**, [`read_labelled_folder`]: `root/<class>/<image>`, the
//!   layout of torchvision's `ImageFolder`. Each sub-folder of `root` is a
//!   class; classes are numbered in the sorted order of their names, and
//!   the images of a class may sit in nested folders below it.
//! * **Unlabelled**, [`read_image_folder`]: every image anywhere below
//!   `root`, read recursively. Enough for BYOL pre-training, which needs no
//!   labels.
//!
//! Files are visited in sorted path order, so the same folder always gives
//! the same data set. Each image is converted to the requested channel count
//! (gray images are copied to R, G and B; colour images become gray with the
//! luma weights `0.2989 R + 0.5870 G + 0.1140 B`, the same weights as the
//! grayscale augmentation) and to the requested size: the largest centred
//! box of the target aspect ratio is cut out, then resized with a bilinear
//! ("triangle") filter, so no image is stretched.
//!
//! Files with other extensions are not images and are counted, not read.
//! Image files that fail to decode are skipped, counted, and the first few
//! named in the [`FolderReport`]; if every one fails, that is an error.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};
use rayon::prelude::*;

use crate::dataset::Dataset;
use crate::error::{DataError, Result};

/// File extensions (lower case) read as images.
pub const IMAGE_EXTENSIONS: [&str; 5] = ["png", "jpg", "jpeg", "bmp", "webp"];

/// How many failed files a [`FolderReport`] names.
pub(crate) const NAMED_FAILURES: usize = 5;

/// The shape every image of a folder is converted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FolderOptions {
    /// 1 (gray) or 3 (RGB).
    pub channels: usize,
    /// Output height in pixels.
    pub height: usize,
    /// Output width in pixels.
    pub width: usize,
}

/// What happened while reading a folder, besides the images read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FolderReport {
    /// Images decoded and kept.
    pub decoded: usize,
    /// Image files that could not be decoded, and so were skipped.
    pub skipped: usize,
    /// The first few skipped files, as `path: reason`.
    pub first_skipped: Vec<String>,
    /// Files that are not images by their extension (ignored), including
    /// files at the top of a labelled folder, outside any class.
    pub ignored_files: usize,
}

impl fmt::Display for FolderReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "read {} images", self.decoded)?;
        if self.skipped > 0 {
            write!(
                f,
                "; skipped {} that could not be decoded (first: {})",
                self.skipped,
                self.first_skipped.join("; ")
            )?;
        }
        if self.ignored_files > 0 {
            write!(
                f,
                "; ignored {} files that are not images",
                self.ignored_files
            )?;
        }
        Ok(())
    }
}

/// A data set read from a folder, with its [`FolderReport`].
#[derive(Clone, Debug)]
pub struct FolderRead {
    /// The images (and labels, for a labelled folder).
    pub dataset: Dataset,
    /// What was skipped or ignored.
    pub report: FolderReport,
    /// The file of each image, in row order (the folder joined with the
    /// path below it), so that rows can be traced back to files.
    pub paths: Vec<PathBuf>,
}

/// The image files of a folder, in the order they are read, before any is
/// decoded.
pub(crate) struct Listing {
    /// The files, sorted (class by class for a labelled folder).
    pub files: Vec<PathBuf>,
    /// For a labelled folder: each file's class number.
    pub labels: Option<Vec<u32>>,
    /// For a labelled folder: the class names, sorted.
    pub class_names: Option<Vec<String>>,
    /// Files that are not images, and files outside any class.
    pub ignored: usize,
}

/// Lists the image files below `root`: by class (`root/<class>/...`) when
/// `labelled`, else every one, recursively.
pub(crate) fn list_images(root: &Path, labelled: bool) -> Result<Listing> {
    let mut ignored = 0;
    if !labelled {
        let mut files = Vec::new();
        walk(root, &mut files, &mut ignored)?;
        return Ok(Listing {
            files,
            labels: None,
            class_names: None,
            ignored,
        });
    }
    let mut classes = Vec::new();
    for entry in sorted_entries(root)? {
        if entry.is_dir() {
            classes.push(entry);
        } else {
            ignored += 1;
        }
    }
    if classes.is_empty() {
        return Err(DataError::invalid(
            format!("{}: has no class sub-folders", root.display()),
            "arrange a labelled set as root/<class>/<image>, or read it unlabelled",
        ));
    }
    let mut files = Vec::new();
    let mut labels = Vec::new();
    let mut names = Vec::new();
    for (label, class_dir) in classes.iter().enumerate() {
        let mut class_files = Vec::new();
        walk(class_dir, &mut class_files, &mut ignored)?;
        labels.extend(std::iter::repeat_n(label as u32, class_files.len()));
        files.extend(class_files);
        names.push(file_name(class_dir));
    }
    Ok(Listing {
        files,
        labels: Some(labels),
        class_names: Some(names),
        ignored,
    })
}

/// Reads `root/<class>/<image>` into a labelled data set; the class names
/// (sorted) are the data set's class names.
pub fn read_labelled_folder(root: &Path, opts: &FolderOptions) -> Result<FolderRead> {
    check_folder(root, opts)?;
    let list = list_images(root, true)?;
    let (ds, report, paths) = decode_all(
        root,
        &list.files,
        list.labels.as_deref(),
        list.ignored,
        opts,
    )?;
    Ok(FolderRead {
        dataset: ds.with_class_names(list.class_names.unwrap_or_default()),
        report,
        paths,
    })
}

/// Reads every image below `root` (recursively) into an unlabelled data set.
pub fn read_image_folder(root: &Path, opts: &FolderOptions) -> Result<FolderRead> {
    check_folder(root, opts)?;
    let list = list_images(root, false)?;
    let (dataset, report, paths) = decode_all(root, &list.files, None, list.ignored, opts)?;
    Ok(FolderRead {
        dataset,
        report,
        paths,
    })
}

/// Errors unless `root` is an existing folder and `opts` a valid shape.
pub(crate) fn check_folder(root: &Path, opts: &FolderOptions) -> Result<()> {
    if opts.channels != 1 && opts.channels != 3 {
        return Err(DataError::invalid(
            format!("{} channels requested", opts.channels),
            "ask for 1 (gray) or 3 (RGB) channels",
        ));
    }
    if opts.height == 0 || opts.width == 0 {
        return Err(DataError::invalid(
            format!("an image size of {}x{} requested", opts.height, opts.width),
            "ask for a height and width of at least 1",
        ));
    }
    if !root.exists() {
        return Err(DataError::missing(
            root,
            "check the path of the image folder",
        ));
    }
    if !root.is_dir() {
        return Err(DataError::invalid(
            format!("{}: is a file, not a folder", root.display()),
            "pass the folder that holds the images",
        ));
    }
    Ok(())
}

/// The entries of a folder, sorted by path.
pub(crate) fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let read = fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut entries = Vec::new();
    for entry in read {
        entries.push(entry.map_err(|e| DataError::io(dir, e))?.path());
    }
    entries.sort();
    Ok(entries)
}

/// Appends the image files below `dir` (recursively, sorted) to `files`,
/// counting other files in `ignored`. Links to folders are not followed, so
/// a cycle of links cannot trap the walk; only regular files (or links to
/// them) are taken, so a FIFO or a device named `x.png` is never opened
/// (opening a FIFO would wait for a writer forever).
pub(crate) fn walk(dir: &Path, files: &mut Vec<PathBuf>, ignored: &mut usize) -> Result<()> {
    for path in sorted_entries(dir)? {
        let is_link = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        if path.is_dir() {
            if !is_link {
                walk(&path, files, ignored)?;
            }
        } else if path.is_file() && has_image_extension(&path) {
            files.push(path);
        } else {
            *ignored += 1;
        }
    }
    Ok(())
}

/// Whether the file name ends in one of [`IMAGE_EXTENSIONS`] (any case).
fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The last component of a path, as text.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Decodes `files` in parallel, keeps those that decode (in order) and
/// reports the rest.
fn decode_all(
    root: &Path,
    files: &[PathBuf],
    labels: Option<&[u32]>,
    ignored_files: usize,
    opts: &FolderOptions,
) -> Result<(Dataset, FolderReport, Vec<PathBuf>)> {
    if files.is_empty() {
        return Err(DataError::EmptyFolder {
            path: root.to_path_buf(),
        });
    }
    let decoded: Vec<std::result::Result<Vec<u8>, String>> =
        files.par_iter().map(|f| decode_one(f, opts)).collect();

    let mut pixels = Vec::new();
    let mut kept_labels = Vec::new();
    let mut kept_paths = Vec::new();
    let mut report = FolderReport {
        ignored_files,
        ..FolderReport::default()
    };
    for (i, result) in decoded.into_iter().enumerate() {
        match result {
            Ok(image) => {
                pixels.extend_from_slice(&image);
                if let Some(l) = labels {
                    kept_labels.push(l[i]);
                }
                kept_paths.push(files[i].clone());
                report.decoded += 1;
            }
            Err(reason) => {
                report.skipped += 1;
                if report.first_skipped.len() < NAMED_FAILURES {
                    let name = files[i].strip_prefix(root).unwrap_or(&files[i]);
                    report
                        .first_skipped
                        .push(format!("{}: {reason}", name.display()));
                }
            }
        }
    }
    if report.decoded == 0 {
        return Err(DataError::NothingDecoded {
            path: root.to_path_buf(),
            failed: report.skipped,
            first_failures: report.first_skipped,
        });
    }
    let labels = labels.map(|_| kept_labels);
    let ds = Dataset::new(pixels, opts.channels, opts.height, opts.width, labels)?;
    Ok((ds, report, kept_paths))
}

/// The largest side of an image file that is decoded (a 400-megapixel
/// photo); larger ones are skipped and reported, never allocated.
pub const MAX_DECODED_SIDE: u32 = 20_000;

/// The most memory one image's decoding may allocate (1 GiB).
pub const MAX_DECODED_BYTES: u64 = 1 << 30;

/// Decodes one file into CHW bytes of the requested shape, or says why not.
fn decode_one(path: &Path, opts: &FolderOptions) -> std::result::Result<Vec<u8>, String> {
    let rgb = fit(&decode_file(path)?, opts.width as u32, opts.height as u32);
    Ok(to_chw(&rgb, opts.channels))
}

/// A decoder for `path` that refuses a file declaring an absurd size (a
/// decompression bomb) from its header, before anything is allocated.
fn limited_decoder(path: &Path) -> std::result::Result<impl ImageDecoder, String> {
    let mut reader = ImageReader::open(path)
        .map_err(|e| e.to_string())?
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_DECODED_SIDE);
    limits.max_image_height = Some(MAX_DECODED_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    reader.into_decoder().map_err(|e| e.to_string())
}

/// Whether an EXIF orientation turns the image on its side (width and
/// height swap).
fn turns(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// The width and height of the image in `path` as it is meant to be seen
/// (after its EXIF orientation), read from its header alone.
pub(crate) fn oriented_size(path: &Path) -> std::result::Result<(u32, u32), String> {
    let mut decoder = limited_decoder(path)?;
    let (w, h) = decoder.dimensions();
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    Ok(if turns(orientation) { (h, w) } else { (w, h) })
}

/// Decodes the image in `path` as 8-bit RGB, upright: a phone photo's EXIF
/// orientation is applied; gray is copied to R, G and B; an alpha channel
/// is dropped; 16-bit samples are rounded to 8 bits.
pub(crate) fn decode_file(path: &Path) -> std::result::Result<RgbImage, String> {
    let mut decoder = limited_decoder(path)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    image.apply_orientation(orientation);
    // into_rgb8 keeps an RGB image as it is: no second full-size copy.
    Ok(image.into_rgb8())
}

/// Cuts the largest centred box of aspect `width / height` out of `image`,
/// then resizes it to `width x height` with a bilinear filter.
pub(crate) fn fit(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    // Compare w / h with width / height without dividing: w * height vs width * h.
    let (crop_w, crop_h) = if (w as u64) * (height as u64) > (width as u64) * (h as u64) {
        // Too wide: keep the full height.
        (((h as u64 * width as u64) / height as u64).max(1) as u32, h)
    } else {
        // Too tall (or exact): keep the full width.
        (w, ((w as u64 * height as u64) / width as u64).max(1) as u32)
    };
    let x = (w - crop_w) / 2;
    let y = (h - crop_h) / 2;
    let cropped = image::imageops::crop_imm(image, x, y, crop_w, crop_h).to_image();
    if (crop_w, crop_h) == (width, height) {
        return cropped;
    }
    image::imageops::resize(&cropped, width, height, FilterType::Triangle)
}

/// The pixels of an RGB image as CHW bytes with `channels` planes: the three
/// colour planes, or one plane of luma `0.2989 R + 0.5870 G + 0.1140 B`.
pub(crate) fn to_chw(image: &RgbImage, channels: usize) -> Vec<u8> {
    let plane = (image.width() * image.height()) as usize;
    let mut out = vec![0u8; channels * plane];
    for (i, p) in image.pixels().enumerate() {
        let [r, g, b] = p.0;
        if channels == 1 {
            let y = 0.2989 * r as f32 + 0.5870 * g as f32 + 0.1140 * b as f32;
            out[i] = y.round().clamp(0.0, 255.0) as u8;
        } else {
            out[i] = r;
            out[plane + i] = g;
            out[2 * plane + i] = b;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;
    use image::{GrayImage, Luma, Rgb};

    fn rgb_opts(side: usize) -> FolderOptions {
        FolderOptions {
            channels: 3,
            height: side,
            width: side,
        }
    }

    fn save_solid(path: &Path, w: u32, h: u32, colour: [u8; 3]) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        RgbImage::from_pixel(w, h, Rgb(colour)).save(path).unwrap();
    }

    #[test]
    fn labelled_folder_gives_sorted_classes_and_skips_bad_files() {
        let dir = TempDir::new("folder-labelled");
        let root = dir.path();
        save_solid(&root.join("dog/a.png"), 8, 8, [10, 20, 30]);
        save_solid(&root.join("cat/z.png"), 5, 9, [200, 0, 0]);
        save_solid(&root.join("cat/deeper/y.jpg"), 6, 6, [0, 0, 255]);
        fs::write(root.join("cat/broken.png"), b"not a png").unwrap();
        fs::write(root.join("dog/notes.txt"), b"hello").unwrap();
        fs::write(root.join("README"), b"top-level file").unwrap();

        let read = read_labelled_folder(root, &rgb_opts(4)).unwrap();
        let ds = &read.dataset;
        assert_eq!(ds.class_names().unwrap(), &["cat", "dog"]);
        // cat: broken.png (skipped), deeper/y.jpg, z.png; then dog: a.png.
        assert_eq!(ds.labels().unwrap(), &[0, 0, 1]);
        assert_eq!(
            (ds.len(), ds.channels(), ds.height(), ds.width()),
            (3, 3, 4, 4)
        );
        assert_eq!(read.report.decoded, 3);
        assert_eq!(read.report.skipped, 1);
        assert!(read.report.first_skipped[0].contains("broken.png"));
        assert_eq!(read.report.ignored_files, 2);
        assert!(read.report.to_string().contains("skipped 1"));
        // A solid image stays solid through crop and resize: z.png is red.
        let z = ds.image(1).unwrap();
        assert!(z[..16].iter().all(|&v| v == 200) && z[16..].iter().all(|&v| v == 0));
        // JPEG is lossy: blue stays close to pure blue.
        let y = ds.image(0).unwrap();
        assert!(y[32..].iter().all(|&v| v > 240) && y[..16].iter().all(|&v| v < 15));
    }

    #[test]
    fn unlabelled_folder_converts_channels() {
        let dir = TempDir::new("folder-unlabelled");
        let root = dir.path();
        save_solid(&root.join("x/1.png"), 7, 3, [100, 150, 50]);
        let gray = GrayImage::from_pixel(3, 3, Luma([77]));
        gray.save(root.join("2.png")).unwrap();

        let one = FolderOptions {
            channels: 1,
            height: 2,
            width: 3,
        };
        let read = read_image_folder(root, &one).unwrap();
        let ds = read.dataset;
        assert!(ds.labels().is_none());
        assert_eq!(
            (ds.len(), ds.channels(), ds.height(), ds.width()),
            (2, 1, 2, 3)
        );
        // Sorted order: "2.png" before "x/1.png".
        assert!(ds.image(0).unwrap().iter().all(|&v| v == 77));
        let luma = (0.2989f32 * 100.0 + 0.5870 * 150.0 + 0.1140 * 50.0).round() as u8;
        assert!(ds.image(1).unwrap().iter().all(|&v| v == luma));

        // A gray image asked for as RGB has three equal planes.
        let read = read_image_folder(root, &rgb_opts(3)).unwrap();
        assert!(read.dataset.image(0).unwrap().iter().all(|&v| v == 77));
    }

    #[test]
    fn missing_empty_and_undecodable_folders_are_errors() {
        let dir = TempDir::new("folder-errors");
        let root = dir.path();
        let e = read_image_folder(&root.join("absent"), &rgb_opts(4)).unwrap_err();
        assert!(matches!(e, DataError::NotFound { .. }));

        fs::create_dir_all(root.join("empty/sub")).unwrap();
        fs::write(root.join("empty/sub/readme.txt"), b"x").unwrap();
        let e = read_image_folder(&root.join("empty"), &rgb_opts(4)).unwrap_err();
        assert!(matches!(e, DataError::EmptyFolder { .. }));
        assert!(e.to_string().contains("empty"));

        fs::create_dir_all(root.join("bad/c")).unwrap();
        for name in ["a.png", "b.jpg", "c/d.bmp"] {
            fs::write(root.join("bad").join(name), b"garbage").unwrap();
        }
        let e = read_labelled_folder(&root.join("bad"), &rgb_opts(4)).unwrap_err();
        match &e {
            DataError::NothingDecoded {
                failed,
                first_failures,
                ..
            } => {
                assert_eq!(*failed, 1);
                assert!(first_failures[0].contains("d.bmp"));
            }
            other => panic!("expected NothingDecoded, got {other:?}"),
        }
        let e = read_image_folder(&root.join("bad"), &rgb_opts(4)).unwrap_err();
        assert!(matches!(e, DataError::NothingDecoded { failed: 3, .. }));

        let e = read_labelled_folder(&root.join("bad/c"), &rgb_opts(4)).unwrap_err();
        assert!(e.to_string().contains("no class sub-folders"));
        let bad = FolderOptions {
            channels: 2,
            height: 4,
            width: 4,
        };
        assert!(read_image_folder(root, &bad).is_err());
    }

    /// A PNG file whose header declares `side` x `side` pixels and holds
    /// nothing more: a decompression bomb in miniature.
    fn png_declaring(side: u32) -> Vec<u8> {
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&side.to_be_bytes());
        ihdr.extend_from_slice(&side.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
        let mut crc = flate2::Crc::new();
        crc.update(&ihdr);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc.sum().to_be_bytes());
        png
    }

    #[test]
    fn photos_in_and_beside_sub_folders_are_all_read_and_special_files_are_skipped() {
        let dir = TempDir::new("folder-photos");
        let root = dir.path();
        save_solid(&root.join("top.png"), 6, 6, [10, 20, 30]);
        save_solid(&root.join("holiday/a.png"), 6, 6, [40, 50, 60]);
        save_solid(&root.join("holiday/2019/b.png"), 6, 6, [70, 80, 90]);
        // A bomb: 100,000 x 100,000 pixels declared, refused from its header.
        fs::write(root.join("bomb.png"), png_declaring(100_000)).unwrap();
        // A FIFO named like an image is skipped, never opened (which would
        // wait forever for a writer).
        let fifo = root.join("holiday/pipe.png");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        let has_fifo = matches!(made, Ok(s) if s.success());
        let read = read_image_folder(root, &rgb_opts(4)).unwrap();
        assert_eq!(read.dataset.len(), 3, "{}", read.report);
        assert!(read.dataset.labels().is_none());
        let report = read.report.to_string();
        assert!(report.contains("bomb.png"), "{report}");
        if has_fifo {
            assert!(report.contains("ignored"), "{report}");
        } else {
            eprintln!("skipped the FIFO part: mkfifo is not available here");
        }
    }
}
