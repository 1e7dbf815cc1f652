//! Views per second: how fast the BYOL augmentations run, so that they never
//! hold up a training step.
//!
//! Run with `cargo bench -p augment`. For 28x28 gray and 32x32 RGB images, it
//! times [`augment::two_views`] with the `byol` preset over batches of 256
//! (each image makes two views) on rayon's default thread pool, and prints
//! views per second. The images are random bytes: the work of every step
//! does not depend on the pixel values.

use std::time::{Duration, Instant};

use augment::{two_views, Dataset, Normalization, TwoViewConfig};
use rng::Rng;

/// Images per batch, the batch size of small-image BYOL runs.
const BATCH: usize = 256;
/// How long each measurement runs.
const MEASURE: Duration = Duration::from_secs(3);

/// A data set of `n` random images of the given shape.
fn random_images(n: usize, channels: usize, side: usize) -> Dataset {
    let mut rng = Rng::from_seed(1);
    let pixels = (0..n * channels * side * side)
        .map(|_| rng.below(256) as u8)
        .collect();
    Dataset::new(pixels, channels, side, side, None).expect("valid shape")
}

/// Views per second of `cfg` on `ds`, batch after batch for [`MEASURE`].
fn views_per_second(ds: &Dataset, cfg: &TwoViewConfig) -> f64 {
    let indices: Vec<usize> = (0..BATCH).collect();
    // Warm up: thread pool, caches.
    for epoch in 0..3 {
        two_views(ds, &indices, epoch, 0, cfg).expect("valid batch");
    }
    let start = Instant::now();
    let mut epoch = 3;
    let mut images = 0usize;
    while start.elapsed() < MEASURE {
        let (v1, v2) = two_views(ds, &indices, epoch, 0, cfg).expect("valid batch");
        std::hint::black_box((&v1.data, &v2.data));
        images += BATCH;
        epoch += 1;
    }
    2.0 * images as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let threads = rayon::current_num_threads();
    println!("augment views benchmark: byol preset, batch {BATCH}, {threads} rayon threads");
    let cases = [
        (
            "28x28 gray (Fashion-MNIST)",
            1,
            28,
            Normalization::fashion_mnist(),
        ),
        ("32x32 RGB (CIFAR-10)", 3, 32, Normalization::cifar10()),
    ];
    for (name, channels, side, norm) in cases {
        let ds = random_images(BATCH, channels, side);
        let cfg = TwoViewConfig::byol(norm);
        let rate = views_per_second(&ds, &cfg);
        println!(
            "{name:28} {rate:>12.0} views/s  ({:.1} us per view per thread)",
            1e6 * threads as f64 / rate
        );
    }
}
