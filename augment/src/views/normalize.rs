//! Per-channel normalisation, the last step of every view (and of the plain
//! evaluation batches): `x' = (x - mean[c]) / std[c]`, with the data set's
//! pixel mean and standard deviation on the `[0, 1]` scale, so the network
//! sees inputs of mean about 0 and spread about 1.
//!
//! Known values:
//!
//! | data set | mean | std | source |
//! | --- | --- | --- | --- |
//! | Fashion-MNIST | 0.2860 | 0.3530 | computed here from Debian's full training set (60,000 images) |
//! | CIFAR-10 | 0.4914, 0.4822, 0.4465 | 0.2470, 0.2435, 0.2616 | the training set's statistics, as widely used |
//! | ImageNet | 0.485, 0.456, 0.406 | 0.229, 0.224, 0.225 | torchvision's values |
//!
//! [`Normalization::from_dataset`] computes them for any other set.

use crate::dataset::Dataset;
use crate::error::{DataError, Result};

/// A mean and a standard deviation per channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalization {
    /// Mean of each channel, on the `[0, 1]` scale.
    pub mean: Vec<f32>,
    /// Standard deviation of each channel, on the `[0, 1]` scale.
    pub std: Vec<f32>,
}

impl Normalization {
    /// Fashion-MNIST (one channel): mean 0.2860, std 0.3530.
    pub fn fashion_mnist() -> Self {
        Normalization {
            mean: vec![0.2860],
            std: vec![0.3530],
        }
    }

    /// CIFAR-10 (RGB): mean (0.4914, 0.4822, 0.4465), std (0.2470, 0.2435, 0.2616).
    pub fn cifar10() -> Self {
        Normalization {
            mean: vec![0.4914, 0.4822, 0.4465],
            std: vec![0.2470, 0.2435, 0.2616],
        }
    }

    /// ImageNet (RGB): mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
    pub fn imagenet() -> Self {
        Normalization {
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
        }
    }

    /// No change (mean 0, std 1) for `channels` channels.
    pub fn identity(channels: usize) -> Self {
        Normalization {
            mean: vec![0.0; channels],
            std: vec![1.0; channels],
        }
    }

    /// The mean and standard deviation of each channel over every pixel of
    /// `ds`, on the `[0, 1]` scale (its pixels / 255), by the same rule as
    /// [`Normalization::from_values`]: a channel without spread gets std 1.
    pub fn from_dataset(ds: &Dataset) -> Self {
        let plane = ds.height() * ds.width();
        let planes = ds
            .pixels()
            .chunks_exact(plane.max(1))
            .map(|p| p.iter().map(|&v| v as f64 / 255.0));
        Normalization::from_planes(ds.channels(), planes)
    }

    /// The mean and standard deviation of each channel of NCHW values
    /// already on the `[0, 1]` scale (an `.npy` array of images), `values`
    /// holding whole images of `channels` planes of `plane` values.
    pub fn from_values(values: &[f32], channels: usize, plane: usize) -> Self {
        let planes = values
            .chunks_exact(plane.max(1))
            .map(|p| p.iter().map(|&v| v as f64));
        Normalization::from_planes(channels, planes)
    }

    /// The statistics of planes given in order (image 0's channels 0, 1,
    /// ..., then image 1's, ...), summed in `f64`:
    /// `mean = Σx / n`, `std = sqrt(max(Σx² / n - mean², 0))`. The one rule
    /// every caller shares: a channel with no spread (a constant, or no
    /// values at all) gets std 1, so dividing by it is safe and the channel
    /// stays centred rather than blowing up.
    pub(crate) fn from_planes<P: Iterator<Item = f64>>(
        channels: usize,
        planes: impl Iterator<Item = P>,
    ) -> Self {
        let mut sum = vec![0f64; channels];
        let mut sum_sq = vec![0f64; channels];
        let mut count = vec![0f64; channels];
        for (i, plane) in planes.enumerate() {
            let ch = i % channels.max(1);
            for v in plane {
                sum[ch] += v;
                sum_sq[ch] += v * v;
                count[ch] += 1.0;
            }
        }
        let mean: Vec<f64> = sum
            .iter()
            .zip(&count)
            .map(|(s, n)| s / n.max(1.0))
            .collect();
        let std = sum_sq
            .iter()
            .zip(&count)
            .zip(&mean)
            .map(|((sq, n), m)| {
                let var = (sq / n.max(1.0) - m * m).max(0.0);
                if var > 0.0 {
                    var.sqrt() as f32
                } else {
                    1.0
                }
            })
            .collect();
        Normalization {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std,
        }
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// Errors unless this has `channels` means and stds, each std positive.
    pub fn check(&self, channels: usize) -> Result<()> {
        if self.mean.len() != channels || self.std.len() != channels {
            return Err(DataError::invalid(
                format!(
                    "a normalisation with {} means and {} stds for {channels}-channel images",
                    self.mean.len(),
                    self.std.len()
                ),
                "give one mean and one std per channel (e.g. Normalization::fashion_mnist() \
                 for gray images, ::cifar10() for RGB)",
            ));
        }
        if self.std.iter().any(|&s| !(s > 0.0 && s.is_finite())) {
            return Err(DataError::invalid(
                format!("a normalisation std of {:?}", self.std),
                "every std must be a positive number",
            ));
        }
        Ok(())
    }

    /// `x' = (x - mean[c]) / std[c]` in place on a CHW image whose planes have
    /// `plane` values.
    pub fn apply(&self, data: &mut [f32], plane: usize) {
        for (ch, values) in data.chunks_exact_mut(plane).enumerate() {
            let (m, inv) = (self.mean[ch], 1.0 / self.std[ch]);
            for v in values {
                *v = (*v - m) * inv;
            }
        }
    }

    /// The inverse, `x = x' std[c] + mean[c]`, to show a normalised image.
    pub fn undo(&self, data: &mut [f32], plane: usize) {
        for (ch, values) in data.chunks_exact_mut(plane).enumerate() {
            let (m, s) = (self.mean[ch], self.std[ch]);
            for v in values {
                *v = *v * s + m;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_then_undo_is_the_identity() {
        let n = Normalization::cifar10();
        let original = vec![0.1, 0.9, 0.5, 0.5, 0.0, 1.0];
        let mut x = original.clone();
        n.apply(&mut x, 2);
        assert!((x[0] - (0.1 - 0.4914) / 0.2470).abs() < 1e-6);
        assert!((x[5] - (1.0 - 0.4465) / 0.2616).abs() < 1e-6);
        n.undo(&mut x, 2);
        assert!(x.iter().zip(&original).all(|(a, b)| (a - b).abs() < 1e-6));
    }

    #[test]
    fn statistics_of_a_data_set() {
        // One gray image of two pixels, 0 and 255: mean 0.5, std 0.5.
        let ds = Dataset::new(vec![0, 255], 1, 1, 2, None).unwrap();
        let n = Normalization::from_dataset(&ds);
        assert!((n.mean[0] - 0.5).abs() < 1e-6 && (n.std[0] - 0.5).abs() < 1e-6);
        let flat = Dataset::new(vec![3, 3], 1, 1, 2, None).unwrap();
        assert_eq!(Normalization::from_dataset(&flat).std, vec![1.0]);
    }

    #[test]
    fn statistics_of_values_follow_the_same_rules_as_a_data_set() {
        // Two images of two channels of two pixels: channel 0 holds 0 and 1,
        // channel 1 holds 5 everywhere (no spread: std 1, as for images).
        let values = [0.0, 1.0, 5.0, 5.0, 1.0, 0.0, 5.0, 5.0];
        let n = Normalization::from_values(&values, 2, 2);
        assert_eq!(n.mean, vec![0.5, 5.0]);
        assert_eq!(n.std, vec![0.5, 1.0]);
        // The same pixels as bytes give the same statistics either way.
        let bytes = vec![0u8, 51, 255, 102, 204, 153];
        let ds = Dataset::new(bytes.clone(), 3, 1, 2, None).unwrap();
        let scaled: Vec<f32> = bytes.iter().map(|&b| b as f32 / 255.0).collect();
        let (a, b) = (
            Normalization::from_dataset(&ds),
            Normalization::from_values(&scaled, 3, 2),
        );
        for (x, y) in a.mean.iter().chain(&a.std).zip(b.mean.iter().chain(&b.std)) {
            assert!((x - y).abs() < 1e-6, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn check_catches_wrong_channel_counts() {
        assert!(Normalization::fashion_mnist().check(1).is_ok());
        assert!(Normalization::fashion_mnist().check(3).is_err());
        let bad = Normalization {
            mean: vec![0.0],
            std: vec![0.0],
        };
        assert!(bad.check(1).is_err());
    }
}
