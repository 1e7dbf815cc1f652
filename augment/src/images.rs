//! [`ViewSource`]: what a trainer needs of its images, whether they sit in
//! memory ([`Dataset`]) or are read from disk as they are needed
//! ([`StreamedFolder`](crate::stream::StreamedFolder)).
//!
//! A trainer asks for three things: how many images there are, their
//! channels and view size (to build the network and record the run), and
//! the two BYOL views of the images at some indices in some epoch. Both
//! sources make the views with the same rule (the image's own generator,
//! seeded by run seed, epoch and index; see [`crate::pipeline`]), so the
//! views of image `i` in epoch `e` do not depend on where the pixels came
//! from, nor on the number of threads.

use crate::dataset::Dataset;
use crate::error::Result;
use crate::pipeline::{two_views, Batch};
use crate::views::TwoViewConfig;

/// A set of images a trainer can take BYOL views of.
pub trait ViewSource: Send + Sync {
    /// Number of images.
    fn len(&self) -> usize;

    /// Whether there are no images.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Channels of every view: 1 (gray) or 3 (RGB).
    fn channels(&self) -> usize;

    /// `(height, width)` of every view, unless the view settings ask for
    /// another output size.
    fn view_size(&self) -> (usize, usize);

    /// The two views of the images at `indices`, for `epoch` of the run
    /// seeded `run_seed`: two normalised NCHW batches, row `k` of each the
    /// view of `indices[k]`.
    fn two_views(
        &self,
        indices: &[usize],
        epoch: u64,
        run_seed: u64,
        cfg: &TwoViewConfig,
    ) -> Result<(Batch, Batch)>;

    /// A fingerprint of the images: 16 hex digits that change when the
    /// images do, recorded by a run so that it is never resumed on other
    /// images.
    fn fingerprint(&self) -> String;

    /// What went wrong so far while reading (files skipped), to show as a
    /// warning; `None` when nothing did.
    fn problems(&self) -> Option<String> {
        None
    }
}

impl ViewSource for Dataset {
    fn len(&self) -> usize {
        Dataset::len(self)
    }

    fn channels(&self) -> usize {
        Dataset::channels(self)
    }

    fn view_size(&self) -> (usize, usize) {
        (self.height(), self.width())
    }

    fn two_views(
        &self,
        indices: &[usize],
        epoch: u64,
        run_seed: u64,
        cfg: &TwoViewConfig,
    ) -> Result<(Batch, Batch)> {
        two_views(self, indices, epoch, run_seed, cfg)
    }

    fn fingerprint(&self) -> String {
        Dataset::fingerprint(self)
    }
}

impl<T: ViewSource + ?Sized> ViewSource for Box<T> {
    fn len(&self) -> usize {
        (**self).len()
    }

    fn channels(&self) -> usize {
        (**self).channels()
    }

    fn view_size(&self) -> (usize, usize) {
        (**self).view_size()
    }

    fn two_views(
        &self,
        indices: &[usize],
        epoch: u64,
        run_seed: u64,
        cfg: &TwoViewConfig,
    ) -> Result<(Batch, Batch)> {
        (**self).two_views(indices, epoch, run_seed, cfg)
    }

    fn fingerprint(&self) -> String {
        (**self).fingerprint()
    }

    fn problems(&self) -> Option<String> {
        (**self).problems()
    }
}
