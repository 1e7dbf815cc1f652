//! The streamed image folder (`augment::stream`): its index, its views
//! against the in-memory reader's, determinism across threads, and files
//! that fail, on folders of generated PNG and JPEG files of mixed sizes and
//! kinds (gray, RGBA, 16-bit, EXIF-rotated, corrupt, empty).

use std::fs;
use std::path::{Path, PathBuf};

use augment::{
    read_image_folder, DataError, FolderIndex, FolderOptions, Normalization, StreamedFolder,
    TwoViewConfig, ViewSource,
};
use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageEncoder, Rgb, RgbImage, Rgba, RgbaImage};
use rng::Rng;

/// A folder of the test's own, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("augment-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A `w x h` RGB image of random pixels.
fn noise(w: u32, h: u32, seed: u64) -> RgbImage {
    let mut rng = Rng::from_seed(seed);
    RgbImage::from_fn(w, h, |_, _| {
        Rgb([
            rng.below(256) as u8,
            rng.below(256) as u8,
            rng.below(256) as u8,
        ])
    })
}

fn save(image: &RgbImage, path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    image.save(path).unwrap();
}

/// A JPEG whose EXIF says "rotate 90 degrees clockwise to view" (value 6),
/// as a phone held upright writes it.
fn save_rotated_jpeg(image: &RgbImage, path: &Path) {
    // TIFF, little-endian: one IFD entry, Orientation (0x0112), SHORT, 6.
    let exif = vec![
        0x49, 0x49, 0x2A, 0x00, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0,
        0, 0,
    ];
    let mut bytes = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut bytes, 90);
    encoder.set_exif_metadata(exif).unwrap();
    encoder
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            ExtendedColorType::Rgb8,
        )
        .unwrap();
    fs::write(path, bytes).unwrap();
}

/// A PNG whose header is whole and whose pixels are cut off: it indexes,
/// then fails to decode mid-run.
fn save_truncated_png(path: &Path, seed: u64) {
    let mut bytes = Vec::new();
    noise(24, 24, seed)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    fs::write(path, &bytes[..bytes.len() / 3]).unwrap();
}

/// Two classes of mixed files; returns how many indexable images it holds.
fn mixed_folder(root: &Path) -> usize {
    for i in 0..12 {
        save(&noise(40, 30, i), &root.join(format!("cats/p{i:02}.png")));
    }
    for i in 0..6 {
        save(
            &noise(64, 48, 100 + i),
            &root.join(format!("dogs/j{i}.jpg")),
        );
    }
    save(&noise(600, 400, 7), &root.join("dogs/large.jpg"));
    let gray = image::GrayImage::from_fn(20, 20, |x, y| image::Luma([(x * 12 + y) as u8]));
    gray.save(root.join("cats/gray.png")).unwrap();
    let rgba = RgbaImage::from_fn(16, 16, |x, _| Rgba([200, x as u8 * 10, 0, 7]));
    rgba.save(root.join("cats/alpha.png")).unwrap();
    let deep =
        image::ImageBuffer::<Rgb<u16>, Vec<u16>>::from_fn(18, 18, |x, _| Rgb([x as u16 * 3000; 3]));
    deep.save(root.join("cats/deep.png")).unwrap();
    save_rotated_jpeg(&noise(30, 20, 9), &root.join("dogs/rotated.jpg"));
    save_truncated_png(&root.join("dogs/truncated.png"), 11);
    fs::write(root.join("cats/empty.png"), b"").unwrap();
    fs::write(root.join("dogs/junk.jpg"), b"this is not a jpeg").unwrap();
    fs::write(root.join("dogs/notes.txt"), b"not an image").unwrap();
    12 + 6 + 1 + 3 + 1 + 1
}

fn entry<'a>(index: &'a FolderIndex, name: &str) -> &'a augment::IndexEntry {
    index
        .entries
        .iter()
        .find(|e| e.path.ends_with(name))
        .unwrap_or_else(|| panic!("{name} is not in the index"))
}

#[test]
fn the_index_lists_images_with_upright_sizes_and_counts_the_bad_files() {
    let dir = TempDir::new("stream-index");
    let expected = mixed_folder(&dir.0);
    let index = FolderIndex::scan(&dir.0, true).unwrap();
    assert_eq!(index.len(), expected);
    assert_eq!(
        index.class_names.as_deref(),
        Some(&["cats".to_string(), "dogs".to_string()][..])
    );
    // Sorted, class by class.
    assert_eq!(entry(&index, "p00.png").label, Some(0));
    assert_eq!(entry(&index, "large.jpg").label, Some(1));
    assert!(index.entries[0].path.starts_with("cats"));
    let large = entry(&index, "large.jpg");
    assert_eq!((large.width, large.height), (600, 400));
    // Stored 30 wide and 20 high, viewed on its side.
    let rotated = entry(&index, "rotated.jpg");
    assert_eq!((rotated.width, rotated.height), (20, 30));
    // The empty file and the junk fail from their header; the text file is
    // not an image.
    assert_eq!(index.report.skipped, 2, "{}", index.report);
    assert_eq!(index.report.ignored_files, 1);
    let named = index.report.first_skipped.join("; ");
    assert!(
        named.contains("empty.png") && named.contains("junk.jpg"),
        "{named}"
    );
    // Unlabelled: the same files, no labels.
    let flat = FolderIndex::scan(&dir.0, false).unwrap();
    assert_eq!(flat.len(), expected);
    assert_eq!(flat.labels(), None);
    assert_eq!(
        index.fingerprint(),
        FolderIndex::scan(&dir.0, true).unwrap().fingerprint()
    );
    assert_ne!(index.fingerprint(), flat.fingerprint());
}

/// Images already at the view size: the streamed views are the in-memory
/// reader's views, value for value.
#[test]
fn streamed_views_equal_in_memory_views_for_images_at_the_view_size() {
    let dir = TempDir::new("stream-equal");
    for i in 0..10 {
        save(&noise(32, 32, i), &dir.0.join(format!("img{i}.png")));
    }
    let opts = FolderOptions {
        channels: 3,
        height: 32,
        width: 32,
    };
    let memory = read_image_folder(&dir.0, &opts).unwrap().dataset;
    let streamed = StreamedFolder::new(FolderIndex::scan(&dir.0, false).unwrap(), 3, 32).unwrap();
    let cfg = TwoViewConfig::byol(Normalization::cifar10());
    let indices = [3, 0, 9, 4, 4, 7];
    for epoch in [0, 5] {
        let want = ViewSource::two_views(&memory, &indices, epoch, 42, &cfg).unwrap();
        let got = streamed.two_views(&indices, epoch, 42, &cfg).unwrap();
        assert_eq!(got, want, "epoch {epoch}");
    }
    // One channel too.
    let gray = read_image_folder(
        &dir.0,
        &FolderOptions {
            channels: 1,
            ..opts
        },
    )
    .unwrap()
    .dataset;
    let streamed = StreamedFolder::new(FolderIndex::scan(&dir.0, false).unwrap(), 1, 32).unwrap();
    let cfg = TwoViewConfig::byol(Normalization::fashion_mnist());
    assert_eq!(
        streamed.two_views(&indices, 1, 3, &cfg).unwrap(),
        ViewSource::two_views(&gray, &indices, 1, 3, &cfg).unwrap()
    );
    assert_eq!(streamed.problems(), None);
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// Views of mixed sizes and kinds come out at the view size, the same with
/// 1 and 2 threads; a file that fails mid-run is replaced, counted, named.
#[test]
fn mixed_files_give_the_same_views_on_any_number_of_threads_and_a_bad_one_is_replaced() {
    let dir = TempDir::new("stream-mixed");
    mixed_folder(&dir.0);
    let streamed = StreamedFolder::new(FolderIndex::scan(&dir.0, false).unwrap(), 3, 32).unwrap();
    let all: Vec<usize> = (0..streamed.len()).collect();
    let cfg = TwoViewConfig::byol(Normalization::cifar10());
    let one = in_pool(1, || streamed.two_views(&all, 2, 7, &cfg).unwrap());
    let two = in_pool(2, || streamed.two_views(&all, 2, 7, &cfg).unwrap());
    assert_eq!(one, two);
    assert_eq!(one.0.shape, [all.len(), 3, 32, 32]);
    assert!(one.0.data.iter().chain(&one.1.data).all(|x| x.is_finite()));
    let problems = streamed.problems().expect("the truncated file is reported");
    assert!(
        problems.starts_with("1 of ") && problems.contains("truncated.png"),
        "{problems}"
    );
    // The rotated photo decodes upright: 20 wide, 30 high.
    let rotated = streamed
        .index()
        .entries
        .iter()
        .position(|e| e.path.ends_with("rotated.jpg"))
        .unwrap();
    let (_, shape) = streamed.decode(rotated).unwrap();
    assert_eq!((shape.width, shape.height), (20, 30));
    // Another epoch: still one file, counted once.
    streamed.two_views(&all, 3, 7, &cfg).unwrap();
    assert!(streamed.problems().unwrap().starts_with("1 of "));
}

/// A folder where most images fail mid-run stops with an error naming
/// them, not a run on the few that work.
#[test]
fn a_folder_of_mostly_bad_files_is_an_error_naming_them() {
    let dir = TempDir::new("stream-bad");
    save(&noise(24, 24, 1), &dir.0.join("good.png"));
    for i in 0..3 {
        save_truncated_png(&dir.0.join(format!("cut{i}.png")), i);
    }
    let streamed = StreamedFolder::new(FolderIndex::scan(&dir.0, false).unwrap(), 3, 16).unwrap();
    let cfg = TwoViewConfig::byol(Normalization::cifar10());
    let err = streamed.two_views(&[0, 1, 2, 3], 0, 0, &cfg).unwrap_err();
    assert!(matches!(err, DataError::NothingDecoded { .. }), "{err}");
    assert!(err.to_string().contains("cut0.png"), "{err}");
    // Headers that cannot be read are caught by the index already.
    let junk = TempDir::new("stream-junk");
    save(&noise(8, 8, 1), &junk.0.join("a.png"));
    for i in 0..2 {
        fs::write(junk.0.join(format!("x{i}.jpg")), b"nope").unwrap();
    }
    let err = FolderIndex::scan(&junk.0, false).unwrap_err().to_string();
    assert!(err.contains("x0.jpg"), "{err}");
}

/// The statistics sample fits images to the view size and keeps labels.
#[test]
fn a_sample_is_an_in_memory_data_set_at_the_view_size() {
    let dir = TempDir::new("stream-sample");
    mixed_folder(&dir.0);
    let streamed = StreamedFolder::new(FolderIndex::scan(&dir.0, true).unwrap(), 1, 16).unwrap();
    let sample = streamed.sample(8).unwrap();
    assert_eq!(sample.len(), 8);
    assert_eq!(
        (sample.channels(), sample.height(), sample.width()),
        (1, 16, 16)
    );
    assert_eq!(sample.labels().unwrap().len(), 8);
    assert_eq!(sample.num_classes(), 2);
    // The statistics, taken 64 images at a time, are the sample's.
    let many = TempDir::new("stream-statistics");
    for i in 0..150 {
        save(&noise(12, 10, i), &many.0.join(format!("{i:03}.png")));
    }
    let streamed = StreamedFolder::new(FolderIndex::scan(&many.0, false).unwrap(), 3, 8).unwrap();
    for n in [20, 130, 1000] {
        assert_eq!(
            streamed.statistics(n).unwrap(),
            Normalization::from_dataset(&streamed.sample(n).unwrap()),
            "{n} images"
        );
    }
}
