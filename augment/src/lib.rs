//! # augment: images in
//!
//! This crate stands beside the tensor stack (`tensor` -> `autograd` ->
//! `models` -> `byol`), not in it. Its job ends where the network's begins:
//! it turns files into batches of images as plain `f32` arrays in NCHW
//! layout (image, channel, row, column), and knows nothing of tensors or
//! gradients. The `byol` crate hands these arrays to `tensor`. Keeping it
//! apart means the data side can be read, tested and timed on its own.
//!
//! It does three things.
//!
//! ## 1. Read data sets
//!
//! Every reader returns a [`Dataset`] (bytes, CHW per image, labels when the
//! source has them) or a [`DataError`] that names the file, what is wrong and
//! the fix. Nothing panics on a bad file and nothing is skipped silently.
//!
//! * [`idx`]: MNIST-style IDX files (Fashion-MNIST), gzipped or raw;
//! * [`cifar`]: CIFAR-10 and CIFAR-100 binary batches;
//! * [`folder`]: folders of PNG / JPEG / BMP / WebP files, labelled
//!   (`root/<class>/<file>`) or not, converted to the channel count and size
//!   asked for; undecodable files are skipped, counted and named;
//! * [`stream`]: the same folders when they are larger than memory: an
//!   index of the files, and each image decoded when a batch needs it,
//!   its views cut from the original pixels;
//! * [`images`]: [`ViewSource`], what a trainer needs of either (the
//!   number of images, their shape, the two views of a batch);
//! * [`locate`]: finds Fashion-MNIST: an explicit path, then `BYOL_DATA`,
//!   then Debian's `dataset-fashion-mnist` package
//!   (`/usr/share/datasets/fashion-mnist`), then
//! * [`embedded`]: a real 6,000 + 1,000 image subset of Fashion-MNIST
//!   compiled into the crate, so everything runs on a fresh clone;
//! * [`source`]: a [`DataSource`], the one value that says where a run's
//!   images come from (kind, folder, size), recognises a data set from its
//!   files and loads either split;
//! * [`npy`]: NumPy `.npy` arrays, read (images) and written (features,
//!   labels);
//! * [`rows`]: a CSV of which file each row came from, with its label.
//!
//! ## 2. Make the two BYOL views
//!
//! BYOL (Grill et al. 2020) learns by making two random views of each image
//! and training one network to predict the other's representation. The
//! views are what the network must learn to ignore: position and scale
//! (crop), mirror image (flip), lighting and colour (jitter, grayscale),
//! focus (blur) and tone (solarize). [`views`] implements each, as the
//! paper's Table 6 gives them:
//!
//! | step | what it does | paper's parameter | view 1 | view 2 |
//! | --- | --- | --- | --- | --- |
//! | [random resized crop](views::crop) | a box of random area and shape, resized back (bilinear) | area U[0.08, 1], aspect log-U[3/4, 4/3] | always | always |
//! | [horizontal flip](views::flip) | mirror left-right | | p = 0.5 | p = 0.5 |
//! | [colour jitter](views::jitter) | brightness, contrast, saturation, hue, in random order, clip after each | 0.4, 0.4, 0.2, 0.1 | p = 0.8 | p = 0.8 |
//! | [grayscale](views::grayscale) | luma 0.2989 R + 0.5870 G + 0.1140 B to all channels | | p = 0.2 | p = 0.2 |
//! | [Gaussian blur](views::blur) | separable, kernel ~ side / 10 (odd), reflected borders | sigma U[0.1, 2.0] | p = 1.0 | p = 0.1 |
//! | [solarize](views::solarize) | `x < 0.5 ? x : 1 - x` | | p = 0.0 | p = 0.2 |
//! | [normalise](views::normalize) | `(x - mean) / std` per channel | data set statistics | always | always |
//!
//! On one-channel images, saturation, hue and grayscale do nothing.
//! [`TwoViewConfig::byol`] is the paper's setting; [`TwoViewConfig::cifar`] is
//! the same with the blur off in both views, as small-image re-implementations
//! use; every field is a public setting.
//!
//! ## 3. Build batches, reproducibly
//!
//! [`two_views`] makes the two views of a list of images in parallel (rayon)
//! and returns two [`Batch`]es. Every image draws its random parameters from
//! its own generator (the workspace's `rng` crate), seeded by `(run seed, epoch, image index)`,
//! so a batch is the same whatever the number of threads, and a resumed run
//! replays exactly the same views. [`plain_batch`] gives the unaugmented,
//! normalised images for evaluation, and [`preview`] draws a PNG grid of
//! views for a person to look at.
//!
//! ```
//! use augment::{embedded, two_views, Normalization, Split, TwoViewConfig};
//!
//! let ds = embedded::fashion_mnist_subset(Split::Test)?;
//! let cfg = TwoViewConfig::byol(Normalization::fashion_mnist());
//! let (v1, v2) = two_views(&ds, &[0, 1, 2, 3], /* epoch */ 0, /* run seed */ 42, &cfg)?;
//! assert_eq!(v1.shape, [4, 1, 28, 28]);
//! assert_eq!(v2.data.len(), 4 * 28 * 28);
//! # Ok::<(), augment::DataError>(())
//! ```

#![warn(missing_docs)]

pub mod cifar;
pub mod dataset;
pub mod embedded;
pub mod error;
pub mod folder;
pub mod gzip;
pub mod idx;
pub mod images;
pub mod locate;
pub mod npy;
pub mod pipeline;
pub mod preview;
pub mod rows;
pub mod source;
pub mod stream;
pub mod views;

#[cfg(test)]
mod testing;

pub use cifar::{read_cifar, CifarKind};
pub use dataset::{Dataset, Shape, Split};
pub use error::DataError;
pub use folder::{
    read_image_folder, read_labelled_folder, FolderOptions, FolderRead, FolderReport,
};
pub use idx::{read_idx_images, read_idx_labels, read_idx_pair};
pub use images::ViewSource;
pub use locate::{load_fashion_mnist, locate_fashion_mnist, FashionSource};
pub use pipeline::{plain_batch, two_views, Batch, View};
pub use preview::{render_preview, write_preview, Preview, PreviewOptions};
pub use rows::rows_csv;
pub use source::{DataSource, DatasetKind, FolderMode, Loaded, TrainImages};
pub use stream::{FolderIndex, IndexEntry, StreamedFolder};
pub use views::jitter::BrightnessMode;
pub use views::normalize::Normalization;
pub use views::{AugmentPreset, TwoViewConfig, ViewSettings};
