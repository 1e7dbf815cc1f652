//! Speed of a streamed image folder: the time to index a folder, and
//! images/s of the two-view pipeline (decode the original JPEG, cut both
//! views, resize, augment, normalise) for photo-sized files at view sizes
//! 96 and 224, with the threads rayon has (RAYON_NUM_THREADS).
//!
//! `cargo bench -p augment --bench stream -- --index 100000` times the
//! index alone on that many small JPEGs in sub-folders of 1,000.
//!
//! `cargo bench -p augment --bench stream [-- IMAGES] [--dir DIR]` (default
//! 256 images of 500x375 and a quarter as many of 2000x1500). The JPEGs are
//! generated (smooth gradients with noise) into a temporary folder removed
//! at the end, or into `DIR`, kept (and reused when there), so that
//! `scripts/bench-stream.sh` can time torchvision on the same files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use augment::{FolderIndex, Normalization, StreamedFolder, TwoViewConfig, ViewSource};
use image::{Rgb, RgbImage};
use rng::Rng;

/// Writes `n` JPEGs of `w x h` into `dir`.
fn write_photos(dir: &Path, n: usize, w: u32, h: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = Rng::from_seed(5);
    for i in 0..n {
        let tint = rng.below(128) as u32;
        let img = RgbImage::from_fn(w, h, |x, y| {
            let n = rng.below(24) as u32;
            Rgb([
                ((x * 255 / w + n) % 256) as u8,
                ((y * 255 / h + tint) % 256) as u8,
                ((x + y + n) % 256) as u8,
            ])
        });
        img.save(dir.join(format!("{i:05}.jpg"))).unwrap();
    }
}

/// `--index N`: the time to index `N` small JPEGs (64x48), alone.
fn index_only(n: usize) {
    let dir = std::env::temp_dir().join(format!("augment-index-bench-{}", std::process::id()));
    // Spread over sub-folders of 1,000, as photo libraries are.
    for start in (0..n).step_by(1000) {
        let sub = dir.join(format!("{:03}", start / 1000));
        write_photos(&sub, (n - start).min(1000), 64, 48);
    }
    let start = Instant::now();
    let index = FolderIndex::scan(&dir, false).unwrap();
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "indexed {} files in {seconds:.2} s ({:.0} files/s, page cache warm), {} threads",
        index.len(),
        index.len() as f64 / seconds,
        rayon::current_num_threads()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--index") {
        let n = args
            .get(i + 1)
            .and_then(|a| a.parse().ok())
            .unwrap_or(100_000);
        return index_only(n);
    }
    let images: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(256);
    let kept = args
        .iter()
        .position(|a| a == "--dir")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let root: PathBuf = kept.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("augment-stream-bench-{}", std::process::id()))
    });
    println!(
        "streamed folder, {} rayon threads; JPEG quality 90",
        rayon::current_num_threads()
    );
    println!("| photos | view | index (files/s) | two views (images/s) |");
    println!("| --- | --- | --- | --- |");
    for (count, w, h) in [(images, 500, 375), (images / 4, 2000, 1500)] {
        let dir = root.join(format!("{w}x{h}"));
        if !dir.join(format!("{:05}.jpg", count - 1)).exists() {
            write_photos(&dir, count, w, h);
        }
        let start = Instant::now();
        let index = FolderIndex::scan(&dir, false).unwrap();
        let index_rate = count as f64 / start.elapsed().as_secs_f64();
        for size in [96, 224] {
            let folder = StreamedFolder::new(index.clone(), 3, size).unwrap();
            let cfg = TwoViewConfig::byol(Normalization::cifar10());
            let all: Vec<usize> = (0..folder.len()).collect();
            // One warm-up batch, then every image in batches of 32.
            folder
                .two_views(&all[..8.min(all.len())], 0, 0, &cfg)
                .unwrap();
            let start = Instant::now();
            for (epoch, batch) in all.chunks(32).enumerate() {
                folder.two_views(batch, epoch as u64, 1, &cfg).unwrap();
            }
            let rate = count as f64 / start.elapsed().as_secs_f64();
            println!("| {count} of {w}x{h} | {size} | {index_rate:.0} | {rate:.1} |");
        }
    }
    if kept.is_none() {
        let _ = std::fs::remove_dir_all(&root);
    }
}
