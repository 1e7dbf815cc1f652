//! The evaluation protocol as one type: a labelled train/test pair, how to
//! normalise it, and the two scores this project reports for a
//! representation.
//!
//! ```text
//! LabelledSplits { train, test, norm, classes }
//!   score_encoder(encoder) ─► features of both splits ─► score_features ─► Scores { knn, linear }
//!   score_pixels()         ─► the normalised pixels   ─┘
//!   monitor().knn(encoder) ─► the kNN accuracy alone, on at most 10,000 train images
//! ```
//!
//! * **kNN**: k = 200 neighbours by cosine similarity, votes weighted
//!   `exp(sim / 0.1)` ([`knn_accuracy`]);
//! * **linear probe**: a linear classifier on standardised frozen features
//!   ([`linear_probe`], [`LinearProbeConfig::default`]).
//!
//! Both are fitted on the train split's labels and scored on the test
//! split. The demo, the ablation, `byol eval` and the kNN monitor during
//! pretraining all go through here, so they measure the same thing.

use super::features::{dataset_labels, extract_features, pixel_features};
use super::knn::{knn_accuracy, DEFAULT_K, DEFAULT_TEMPERATURE};
use super::linear::{linear_probe, LinearProbeConfig, LinearProbeResult};
use super::logistic::{logistic_probe, LogisticConfig, LogisticResult};
use crate::error::{ByolError, Result};
use augment::{Dataset, Normalization};
use models::ResNet;
use tensor::{Device, Tensor};

/// Images per forward pass when computing features.
pub const FEATURE_BATCH: usize = 256;

/// The most training images the kNN monitor compares against: it runs
/// every few epochs, and all 60,000 of Fashion-MNIST would cost more than
/// an epoch of training.
pub const MONITOR_TRAIN_IMAGES: usize = 10_000;

/// kNN and linear-probe top-1 accuracy, each in `[0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scores {
    /// kNN (k = 200, cosine, T = 0.1).
    pub knn: f32,
    /// Linear probe on standardised features.
    pub linear: f32,
}

/// A labelled train/test pair and the normalisation of both.
#[derive(Clone, Debug)]
pub struct LabelledSplits {
    /// Features are fitted here (the kNN memory bank, the probe's training).
    pub train: Dataset,
    /// Scores are measured here.
    pub test: Dataset,
    /// The normalisation of both (the encoder's training data's).
    pub norm: Normalization,
    /// The number of classes (of either split, whichever names more).
    pub classes: usize,
}

impl LabelledSplits {
    /// The pair, checked: both splits non-empty and labelled, with the
    /// same image shape.
    pub fn new(train: Dataset, test: Dataset, norm: Normalization) -> Result<LabelledSplits> {
        for (ds, what) in [(&train, "train"), (&test, "test")] {
            dataset_labels(ds, what)?;
            if ds.is_empty() {
                return Err(ByolError::Input(format!("{what}: the split is empty")));
            }
        }
        if train.shape() != test.shape() {
            return Err(ByolError::Input(format!(
                "the train images are {:?} and the test images {:?}; both splits need one shape",
                train.shape(),
                test.shape()
            )));
        }
        let classes = train.num_classes().max(test.num_classes());
        Ok(LabelledSplits {
            train,
            test,
            norm,
            classes,
        })
    }

    /// The same pair with the train split cut to its first
    /// [`MONITOR_TRAIN_IMAGES`] images: what the kNN monitor compares
    /// against during pretraining.
    pub fn monitor(&self) -> Result<LabelledSplits> {
        if self.train.len() <= MONITOR_TRAIN_IMAGES {
            return Ok(self.clone());
        }
        let first: Vec<usize> = (0..MONITOR_TRAIN_IMAGES).collect();
        Ok(LabelledSplits {
            train: self.train.subset(&first)?,
            ..self.clone()
        })
    }

    /// The train and test labels.
    fn labels(&self) -> Result<(&[u32], &[u32])> {
        Ok((
            dataset_labels(&self.train, "train")?,
            dataset_labels(&self.test, "test")?,
        ))
    }

    /// The encoder's features of both splits, `[N, F]` each, on `device`
    /// (leaves the encoder in evaluation mode).
    pub fn features(&self, encoder: &ResNet, device: &Device) -> Result<(Tensor, Tensor)> {
        Ok((
            extract_features(encoder, &self.train, &self.norm, FEATURE_BATCH, device)?,
            extract_features(encoder, &self.test, &self.norm, FEATURE_BATCH, device)?,
        ))
    }

    /// Both scores of an encoder; also returns its test features (for a
    /// plot). Leaves the encoder in evaluation mode.
    pub fn score_encoder(&self, encoder: &ResNet, device: &Device) -> Result<(Scores, Tensor)> {
        let (f_train, f_test) = self.features(encoder, device)?;
        let scores = self.score_features(&f_train, &f_test)?;
        Ok((scores, f_test))
    }

    /// The normalised pixels of both splits as features, `[N, C·H·W]`
    /// each, on `device`: the baseline with no encoder.
    pub fn pixels(&self, device: &Device) -> Result<(Tensor, Tensor)> {
        Ok((
            pixel_features(&self.train, &self.norm, device)?,
            pixel_features(&self.test, &self.norm, device)?,
        ))
    }

    /// Both scores of the normalised pixels themselves: the baseline with
    /// no encoder.
    pub fn score_pixels(&self, device: &Device) -> Result<Scores> {
        let (f_train, f_test) = self.pixels(device)?;
        self.score_features(&f_train, &f_test)
    }

    /// Both scores of given features of the train and test splits.
    pub fn score_features(&self, f_train: &Tensor, f_test: &Tensor) -> Result<Scores> {
        Ok(Scores {
            knn: self.knn_of(f_train, f_test, DEFAULT_K, DEFAULT_TEMPERATURE)?,
            linear: self
                .probe_of(f_train, f_test, &LinearProbeConfig::default())?
                .test_accuracy,
        })
    }

    /// The kNN accuracy of an encoder (the monitor's score). Leaves the
    /// encoder in evaluation mode.
    pub fn knn(&self, encoder: &ResNet, device: &Device) -> Result<f32> {
        let (f_train, f_test) = self.features(encoder, device)?;
        self.knn_of(&f_train, &f_test, DEFAULT_K, DEFAULT_TEMPERATURE)
    }

    /// The kNN accuracy of given features with `k` neighbours and vote
    /// temperature `temperature`.
    pub fn knn_of(
        &self,
        f_train: &Tensor,
        f_test: &Tensor,
        k: usize,
        temperature: f32,
    ) -> Result<f32> {
        let (l_train, l_test) = self.labels()?;
        knn_accuracy(
            f_train,
            l_train,
            f_test,
            l_test,
            self.classes,
            k,
            temperature,
        )
    }

    /// A linear probe on given features.
    pub fn probe_of(
        &self,
        f_train: &Tensor,
        f_test: &Tensor,
        config: &LinearProbeConfig,
    ) -> Result<LinearProbeResult> {
        let (l_train, l_test) = self.labels()?;
        linear_probe(f_train, l_train, f_test, l_test, self.classes, config)
    }

    /// The logistic-regression probe of given features (L2, fitted to
    /// convergence by L-BFGS: [`super::logistic`]).
    pub fn logistic_of(
        &self,
        f_train: &Tensor,
        f_test: &Tensor,
        config: &LogisticConfig,
    ) -> Result<LogisticResult> {
        let (l_train, l_test) = self.labels()?;
        logistic_probe(f_train, l_train, f_test, l_test, self.classes, config)
    }
}

#[cfg(test)]
mod tests {
    use super::super::features::tests::{banded_images, tiny_encoder};
    use super::*;

    #[test]
    fn an_encoder_and_the_pixels_are_scored_the_same_way() {
        let splits = LabelledSplits::new(
            banded_images(24, 3, 1),
            banded_images(12, 3, 2),
            Normalization::identity(1),
        )
        .unwrap();
        assert_eq!(splits.classes, 3);
        // The banded classes are easy: raw pixels separate them.
        let pixels = splits.score_pixels(&Device::Cpu).unwrap();
        assert_eq!(pixels.knn, 1.0);
        let encoder = tiny_encoder(1, 0);
        let (scores, f_test) = splits.score_encoder(&encoder, &Device::Cpu).unwrap();
        assert_eq!(f_test.shape(), &[12, encoder.feature_dim()]);
        assert!((0.0..=1.0).contains(&scores.knn) && (0.0..=1.0).contains(&scores.linear));
        assert_eq!(splits.knn(&encoder, &Device::Cpu).unwrap(), scores.knn);
        assert_eq!(splits.monitor().unwrap().train.len(), 24);
    }

    #[test]
    fn unlabelled_or_mismatched_splits_are_named() {
        let unlabelled = Dataset::new(vec![0; 64], 1, 8, 8, None).unwrap();
        let e = LabelledSplits::new(
            banded_images(4, 2, 1),
            unlabelled,
            Normalization::identity(1),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("test") && e.contains("no labels"), "{e}");
        let wide = Dataset::new(vec![0; 128], 1, 8, 16, Some(vec![0])).unwrap();
        let e = LabelledSplits::new(banded_images(4, 2, 1), wide, Normalization::identity(1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("one shape"), "{e}");
    }
}
