//! The Fashion-MNIST subset compiled into this crate.
//!
//! 6,000 training images (600 per class) and 1,000 test images (100 per
//! class) of Fashion-MNIST (Xiao, Rasul and Vollgraf 2017; MIT licence,
//! copyright 2017 Zalando SE), 28x28 gray, kept in `data/fashion-mnist-subset/`
//! as the original IDX gzip files, about 3 MB. They are made from Debian's
//! `dataset-fashion-mnist` package by `scripts/make_embedded_subset.py`: the
//! first images of each class, in the original order (see the README and
//! LICENSE beside the files).
//!
//! `include_bytes!` puts the compressed files inside any binary that uses
//! this crate, so the demo and the tests run on a fresh clone, with no
//! download, no system package and no path to get right.

use std::path::Path;

use crate::dataset::{Dataset, Split};
use crate::error::Result;
use crate::gzip::decompress_if_gzip;
use crate::idx::{attach_labels, parse_idx_images, parse_idx_labels};

/// The names of Fashion-MNIST's ten classes, by label.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Training images of the subset (IDX, gzip).
const TRAIN_IMAGES: &[u8] =
    include_bytes!("../data/fashion-mnist-subset/train-images-idx3-ubyte.gz");
/// Training labels of the subset (IDX, gzip).
const TRAIN_LABELS: &[u8] =
    include_bytes!("../data/fashion-mnist-subset/train-labels-idx1-ubyte.gz");
/// Test images of the subset (IDX, gzip).
const TEST_IMAGES: &[u8] = include_bytes!("../data/fashion-mnist-subset/t10k-images-idx3-ubyte.gz");
/// Test labels of the subset (IDX, gzip).
const TEST_LABELS: &[u8] = include_bytes!("../data/fashion-mnist-subset/t10k-labels-idx1-ubyte.gz");

/// Images per class in the embedded training split.
pub const TRAIN_PER_CLASS: usize = 600;
/// Images per class in the embedded test split.
pub const TEST_PER_CLASS: usize = 100;

/// The embedded subset's `split`, labelled, with Fashion-MNIST's class names.
///
/// The files are checked like any IDX file, so this only fails if the
/// repository's data files were damaged (the error then names them).
pub fn fashion_mnist_subset(split: Split) -> Result<Dataset> {
    let (images, labels, image_name, label_name) = match split {
        Split::Train => (
            TRAIN_IMAGES,
            TRAIN_LABELS,
            "embedded:train-images-idx3-ubyte.gz",
            "embedded:train-labels-idx1-ubyte.gz",
        ),
        Split::Test => (
            TEST_IMAGES,
            TEST_LABELS,
            "embedded:t10k-images-idx3-ubyte.gz",
            "embedded:t10k-labels-idx1-ubyte.gz",
        ),
    };
    let (image_path, label_path) = (Path::new(image_name), Path::new(label_name));
    let ds = parse_idx_images(&decompress_if_gzip(images, image_path)?, image_path)?;
    let l = parse_idx_labels(&decompress_if_gzip(labels, label_path)?, label_path)?;
    Ok(attach_labels(ds, l, image_path, label_path)?.with_class_names(class_names()))
}

/// [`FASHION_MNIST_CLASSES`] as owned strings.
pub fn class_names() -> Vec<String> {
    FASHION_MNIST_CLASSES
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_has_the_promised_sizes_and_balance() {
        let train = fashion_mnist_subset(Split::Train).unwrap();
        assert_eq!(train.len(), 6000);
        assert_eq!(
            (train.channels(), train.height(), train.width()),
            (1, 28, 28)
        );
        assert_eq!(train.class_counts(), vec![TRAIN_PER_CLASS; 10]);
        assert_eq!(train.class_names().unwrap()[9], "Ankle boot");

        let test = fashion_mnist_subset(Split::Test).unwrap();
        assert_eq!(test.len(), 1000);
        assert_eq!((test.channels(), test.height(), test.width()), (1, 28, 28));
        assert_eq!(test.class_counts(), vec![TEST_PER_CLASS; 10]);

        // Real images, not blank ones: the mean pixel of the training subset
        // is 0.2869 on the 0..1 scale (README of the data folder).
        let mean = train.pixels().iter().map(|&p| p as f64).sum::<f64>()
            / train.pixels().len() as f64
            / 255.0;
        assert!((mean - 0.2869).abs() < 0.001, "mean {mean}");
    }
}
