//! Building batches: the two BYOL views of a set of images, or the plain
//! normalised images for evaluation, as `f32` NCHW arrays.
//!
//! **Randomness per image.** Image `i` of epoch `e` in a run with seed `s`
//! gets its own generators:
//!
//! ```text
//! image_seed = seed_for(s, e, i)
//! view 1: Rng::from_seed(fold(image_seed, 1))
//! view 2: Rng::from_seed(fold(image_seed, 2))
//! ```
//!
//! so its two views depend on `(s, e, i)` alone: the same whatever the batch
//! it is in, its position there, or the number of threads, and a run resumed
//! at epoch `e` replays them. The two views have separate streams, so that
//! changing the settings of one view does not change the other.
//!
//! **Parallelism.** Images are spread over rayon's thread pool; each worker
//! keeps its own scratch buffers, and each image writes only its own slice
//! of the two output arrays.

use rayon::prelude::*;
use rng::{fold, seed_for, Rng};

use crate::dataset::{Dataset, Shape};
use crate::error::{DataError, Result};
use crate::views::crop::{self, CropBox, ResampleScratch};
use crate::views::normalize::Normalization;
use crate::views::{apply_view, TwoViewConfig, ViewDraw, ViewScratch};

/// A batch of images as a plain array: `data` holds `shape = [n, c, h, w]`
/// values, row-major (NCHW).
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// The values, image after image, each CHW.
    pub data: Vec<f32>,
    /// `[n, c, h, w]`.
    pub shape: [usize; 4],
}

impl Batch {
    /// A batch of zeros of the given shape.
    pub fn zeros(shape: [usize; 4]) -> Self {
        Batch {
            data: vec![0.0; shape.iter().product()],
            shape,
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    /// Whether the batch has no images.
    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }

    /// The values of image `i` (CHW), or `None` past the end.
    pub fn image(&self, i: usize) -> Option<&[f32]> {
        let len = self.shape[1] * self.shape[2] * self.shape[3];
        self.data.get(i * len..(i + 1) * len)
    }
}

/// Errors if any index is past the end of `ds`.
fn check_indices(ds: &Dataset, indices: &[usize]) -> Result<()> {
    match indices.iter().find(|&&i| i >= ds.len()) {
        Some(&i) => Err(ds.index_error(i)),
        None => Ok(()),
    }
}

/// Which view of an image: the paper's view 1 or view 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// View 1 (blur always, never solarize, in the paper).
    One,
    /// View 2 (blur sometimes, solarize sometimes, in the paper).
    Two,
}

/// The random choices of `view` of image `index` (of shape `input`) in
/// `epoch` of the run seeded `run_seed` (see the module doc).
pub fn draw_for(
    cfg: &TwoViewConfig,
    input: Shape,
    index: usize,
    run_seed: u64,
    epoch: u64,
    view: View,
) -> ViewDraw {
    let output = cfg.output_shape(input);
    let (settings, tag) = match view {
        View::One => (&cfg.view1, 1),
        View::Two => (&cfg.view2, 2),
    };
    let mut rng = Rng::from_seed(fold(seed_for(run_seed, epoch, index as u64), tag));
    settings.draw(
        &mut rng,
        input.height,
        input.width,
        output.height,
        output.width,
    )
}

/// Makes one view of image `index` of `ds` into `out`, normalised.
#[allow(clippy::too_many_arguments)]
fn make_view(
    ds: &Dataset,
    index: usize,
    run_seed: u64,
    epoch: u64,
    view: View,
    cfg: &TwoViewConfig,
    out: &mut [f32],
    scratch: &mut ViewScratch,
) {
    let input = ds.shape();
    let output = cfg.output_shape(input);
    let draw = draw_for(cfg, input, index, run_seed, epoch, view);
    let src = &ds.pixels()[index * input.len()..(index + 1) * input.len()];
    apply_view(src, input, &draw, out, output, scratch);
    cfg.normalization.apply(out, output.plane());
}

/// The two views of the images of `ds` at `indices`, for `epoch` of the run
/// seeded `run_seed`: two normalised NCHW batches, image `k` of each being
/// the view of `indices[k]`.
///
/// Errors for an index past the end or an invalid configuration (including
/// a normalisation of the wrong channel count).
pub fn two_views(
    ds: &Dataset,
    indices: &[usize],
    epoch: u64,
    run_seed: u64,
    cfg: &TwoViewConfig,
) -> Result<(Batch, Batch)> {
    check_indices(ds, indices)?;
    cfg.check(ds.channels())?;
    let output = cfg.output_shape(ds.shape());
    let shape = [indices.len(), output.channels, output.height, output.width];
    let mut view1 = Batch::zeros(shape);
    let mut view2 = Batch::zeros(shape);
    let len = output.len();
    view1
        .data
        .par_chunks_mut(len)
        .zip(view2.data.par_chunks_mut(len))
        .zip(indices.par_iter())
        .for_each_init(ViewScratch::default, |scratch, ((out1, out2), &index)| {
            make_view(ds, index, run_seed, epoch, View::One, cfg, out1, scratch);
            make_view(ds, index, run_seed, epoch, View::Two, cfg, out2, scratch);
        });
    Ok((view1, view2))
}

/// The images of `ds` at `indices`, unaugmented, normalised: the batches for
/// evaluation (a linear probe, kNN, embedding export). With `output_size`
/// the whole image is resized (bilinear) to `(height, width)`.
pub fn plain_batch(
    ds: &Dataset,
    indices: &[usize],
    normalization: &Normalization,
    output_size: Option<(usize, usize)>,
) -> Result<Batch> {
    check_indices(ds, indices)?;
    normalization.check(ds.channels())?;
    let input = ds.shape();
    let (out_h, out_w) = output_size.unwrap_or((input.height, input.width));
    let output = Shape {
        channels: input.channels,
        height: out_h,
        width: out_w,
    };
    if output.is_empty() {
        return Err(DataError::invalid(
            format!("an output size of {out_h}x{out_w}"),
            "give an output height and width of at least 1",
        ));
    }
    let mut batch = Batch::zeros([indices.len(), output.channels, out_h, out_w]);
    let whole = CropBox::full(input.height, input.width);
    batch
        .data
        .par_chunks_mut(output.len())
        .zip(indices.par_iter())
        .for_each_init(ResampleScratch::default, |scratch, (out, &index)| {
            let src = &ds.pixels()[index * input.len()..(index + 1) * input.len()];
            crop::resample(src, input, &whole, out, output, scratch);
            normalization.apply(out, output.plane());
        });
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::ViewSettings;

    /// `n` random RGB images of 32x32 (bytes from the crate's own generator).
    pub(crate) fn random_rgb(n: usize) -> Dataset {
        let mut rng = Rng::from_seed(99);
        let pixels = (0..n * 3 * 32 * 32).map(|_| rng.below(256) as u8).collect();
        Dataset::new(pixels, 3, 32, 32, None).unwrap()
    }

    fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(f)
    }

    #[test]
    fn same_seed_same_batches_with_one_and_two_threads() {
        let ds = random_rgb(24);
        let cfg = TwoViewConfig::byol(Normalization::cifar10());
        let indices: Vec<usize> = (0..24).rev().collect();
        let one = in_pool(1, || two_views(&ds, &indices, 3, 7, &cfg).unwrap());
        let two = in_pool(2, || two_views(&ds, &indices, 3, 7, &cfg).unwrap());
        assert_eq!(one, two);
        assert_eq!(one.0.shape, [24, 3, 32, 32]);
        // Views differ between the two views, epochs and seeds.
        assert_ne!(one.0, one.1);
        let other_epoch = two_views(&ds, &indices, 4, 7, &cfg).unwrap();
        assert_ne!(one.0, other_epoch.0);
    }

    #[test]
    fn an_image_gets_the_same_views_in_any_batch() {
        let ds = random_rgb(10);
        let cfg = TwoViewConfig::byol(Normalization::cifar10());
        let (a1, a2) = two_views(&ds, &[2, 5, 7], 1, 42, &cfg).unwrap();
        let (b1, b2) = two_views(&ds, &[7], 1, 42, &cfg).unwrap();
        assert_eq!(a1.image(2), b1.image(0));
        assert_eq!(a2.image(2), b2.image(0));
    }

    #[test]
    fn identity_views_equal_the_plain_batch() {
        let ds = random_rgb(3);
        let mut cfg = TwoViewConfig::byol(Normalization::cifar10());
        cfg.view1 = ViewSettings::identity();
        let (v1, _) = two_views(&ds, &[0, 1, 2], 0, 0, &cfg).unwrap();
        let plain = plain_batch(&ds, &[0, 1, 2], &Normalization::cifar10(), None).unwrap();
        for (a, b) in v1.data.iter().zip(&plain.data) {
            assert!((a - b).abs() < 1e-5);
        }
        // The plain batch is the normalised image.
        let x = ds.image(1).unwrap()[1024] as f32 / 255.0;
        assert!((plain.image(1).unwrap()[1024] - (x - 0.4822) / 0.2435).abs() < 1e-5);
    }

    #[test]
    fn views_of_fashion_mnist_have_sensible_statistics() {
        let ds = crate::embedded::fashion_mnist_subset(crate::dataset::Split::Test).unwrap();
        let cfg = TwoViewConfig::byol(Normalization::fashion_mnist());
        let indices: Vec<usize> = (0..256).collect();
        let (v1, v2) = two_views(&ds, &indices, 0, 1, &cfg).unwrap();
        assert_eq!(v1.shape, [256, 1, 28, 28]);
        for v in [&v1, &v2] {
            assert!(v.data.iter().all(|x| x.is_finite()));
            let mean = v.data.iter().sum::<f32>() / v.data.len() as f32;
            // Normalised by the data set's statistics: the mean lands near 0
            // (crops and jitter move it somewhat).
            assert!(mean.abs() < 0.5, "mean {mean}");
        }
        let plain = plain_batch(
            &ds,
            &indices,
            &Normalization::fashion_mnist(),
            Some((32, 32)),
        )
        .unwrap();
        assert_eq!(plain.shape, [256, 1, 32, 32]);
    }

    #[test]
    fn bad_indices_and_settings_are_errors() {
        let ds = random_rgb(2);
        let cfg = TwoViewConfig::byol(Normalization::cifar10());
        assert!(two_views(&ds, &[0, 2], 0, 0, &cfg).is_err());
        let gray_norm = TwoViewConfig::byol(Normalization::fashion_mnist());
        assert!(two_views(&ds, &[0], 0, 0, &gray_norm).is_err());
        assert!(plain_batch(&ds, &[5], &Normalization::cifar10(), None).is_err());
        assert!(plain_batch(&ds, &[0], &Normalization::cifar10(), Some((0, 4))).is_err());
    }
}
