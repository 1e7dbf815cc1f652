//! # Evaluation of a frozen encoder
//!
//! BYOL learns an encoder without labels; how good it is can only be told by
//! using its features for a labelled task. This module holds the three
//! protocols the paper and its predecessors use, scaled down to run on a CPU:
//!
//! | protocol | what is trained | where it comes from |
//! | --- | --- | --- |
//! | [`knn`]: weighted k-nearest neighbours | nothing | InstDisc (Wu et al. 2018), the monitor of most self-supervised code (solo-learn) |
//! | [`linear`]: linear probe | a linear classifier on frozen features | BYOL §4.1 / Table 1, "linear evaluation" |
//! | [`logistic`]: the probe as reported | L2 logistic regression fitted to convergence (L-BFGS) | scikit-learn's `LogisticRegression`, checked against it |
//! | [`finetune`](mod@finetune): semi-supervised fine-tuning | the whole encoder + a linear head, on 1% or 10% of the labels | BYOL §4.1 / Table 2 |
//!
//! All three start from the same thing, the encoder's output after global
//! average pooling (`[N, F]`, F = 8w for a ResNet-18 of width w), computed
//! in evaluation mode (batch norm with its running statistics) by
//! [`features::extract_features`]. [`features::pixel_features`] gives the
//! raw normalised pixels in the same form, the baseline a learned encoder
//! should beat.
//!
//! ```text
//! Dataset ──plain_batch──► [B, C, H, W] ──ResNet (eval, no_grad)──► [B, F] ──concat──► [N, F]
//!                                                                                 │
//!                        ┌────────────────────────────────────────────────────────┤
//!                        ▼                                                        ▼
//!        knn_accuracy (cosine, k = 200, T = 0.1)         linear_probe (standardise, CE, Adam)
//! ```
//!
//! Everything is written with [`tensor::Tensor`] and [`autograd`] ops, so
//! it runs where the encoder lives (CPU or GPU); only small results (a chunk
//! of similarities, a batch of predictions) are read back to the host.
//!
//! Errors are [`ByolError::Input`] (or [`ByolError::Config`] for a probe's
//! settings), whose message names what is wrong (an
//! empty split, a label not below the class count, a mismatch of shapes or
//! devices). Nothing here panics on user data.
//!
//! ```
//! use byol::eval::{knn_accuracy, linear_probe, LinearProbeConfig};
//! use tensor::{Device, Tensor};
//!
//! // Two well-separated clusters of 2-d features.
//! let dev = Device::Cpu;
//! let train = Tensor::from_vec(vec![1.0, 0.1, 1.0, -0.1, -1.0, 0.1, -1.0, -0.1], &[4, 2], &dev);
//! let test = Tensor::from_vec(vec![0.9, 0.0, -0.9, 0.05], &[2, 2], &dev);
//! let acc = knn_accuracy(&train, &[0, 0, 1, 1], &test, &[0, 1], 2, 200, 0.1).unwrap();
//! assert_eq!(acc, 1.0);
//! let probe = linear_probe(&train, &[0, 0, 1, 1], &test, &[0, 1], 2, &LinearProbeConfig::default()).unwrap();
//! assert_eq!(probe.test_accuracy, 1.0);
//! ```

use crate::error::{ByolError, Result};

pub mod features;
pub mod few_labels;
pub mod finetune;
pub mod knn;
pub mod linear;
pub mod logistic;
pub mod pca;
pub mod splits;

pub use features::{array_features, dataset_labels, extract_features, pixel_features};
pub use few_labels::{balanced_draw, per_class_fraction, rows, Spread};
pub use finetune::{balanced_subset, finetune, FinetuneConfig, FinetuneResult};
pub use knn::{knn_accuracy, knn_predict};
pub use linear::{linear_probe, LinearProbeConfig, LinearProbeResult};
pub use logistic::{logistic_probe, LogisticConfig, LogisticResult};
pub use pca::pca_2d;
pub use splits::{LabelledSplits, Scores, FEATURE_BATCH, MONITOR_TRAIN_IMAGES};

/// The fraction of `predictions` equal to `labels`, in `[0, 1]` (0 for
/// empty inputs). The two slices have the same length in every caller.
pub fn accuracy(predictions: &[u32], labels: &[u32]) -> f32 {
    if labels.is_empty() {
        return 0.0;
    }
    let correct = predictions
        .iter()
        .zip(labels)
        .filter(|(p, l)| p == l)
        .count();
    correct as f32 / labels.len() as f32
}

/// Errors unless every label of the split called `what` is below `classes`.
pub(crate) fn check_labels(labels: &[u32], classes: usize, what: &str) -> Result<()> {
    if classes == 0 {
        return Err(ByolError::Input(format!(
            "{what}: the number of classes is 0; give at least 1"
        )));
    }
    match labels.iter().position(|&l| l as usize >= classes) {
        Some(i) => Err(ByolError::Input(format!(
            "{what}: label {} (of item {i}) is not below the number of classes, {classes}",
            labels[i]
        ))),
        None => Ok(()),
    }
}

/// Errors unless `features` is a non-empty `[N, F]` matrix with one label
/// per row, for the split called `what`. Returns `(N, F)`.
pub(crate) fn check_features(
    features: &tensor::Tensor,
    labels: &[u32],
    what: &str,
) -> Result<(usize, usize)> {
    if features.rank() != 2 {
        return Err(ByolError::Input(format!(
            "{what}: features must be a matrix [N, F], got shape {:?}",
            features.shape()
        )));
    }
    let (n, f) = (features.shape()[0], features.shape()[1]);
    if n == 0 {
        return Err(ByolError::Input(format!(
            "{what}: the split is empty (no feature rows)"
        )));
    }
    if f == 0 {
        return Err(ByolError::Input(format!(
            "{what}: the features have no dimensions (shape [{n}, 0])"
        )));
    }
    if labels.len() != n {
        return Err(ByolError::Input(format!(
            "{what}: {n} feature rows but {} labels; give one label per row",
            labels.len()
        )));
    }
    Ok((n, f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::Module;
    use tensor::{Device, Tensor};

    #[test]
    fn accuracy_counts_matches() {
        assert_eq!(accuracy(&[0, 1, 2, 2], &[0, 1, 1, 2]), 0.75);
        assert_eq!(accuracy(&[], &[]), 0.0);
    }

    #[test]
    fn checks_name_the_problem() {
        let err = check_labels(&[0, 3], 3, "train").unwrap_err().to_string();
        assert!(err.contains("label 3") && err.contains("train"), "{err}");
        assert!(check_labels(&[0], 0, "x")
            .unwrap_err()
            .to_string()
            .contains("classes is 0"));
        let d = Device::Cpu;
        let empty = Tensor::zeros(&[0, 4], &d);
        assert!(check_features(&empty, &[], "test")
            .unwrap_err()
            .to_string()
            .contains("empty"));
        let m = Tensor::zeros(&[2, 4], &d);
        assert!(check_features(&m, &[0], "test")
            .unwrap_err()
            .to_string()
            .contains("2 feature rows but 1"));
        let v = Tensor::zeros(&[4], &d);
        assert!(check_features(&v, &[0], "test")
            .unwrap_err()
            .to_string()
            .contains("[N, F]"));
        assert_eq!(check_features(&m, &[0, 1], "t").unwrap(), (2, 4));
    }

    /// The protocols on the GPU give what they give on the CPU (skipped,
    /// saying so, where there is no adapter; see `tensor::testing`).
    #[test]
    fn gpu_agrees_with_cpu() {
        let Some(gpu) = tensor::testing::gpu_device() else {
            return;
        };
        let cpu = Device::Cpu;
        // Features of a tiny encoder built from the same seed on each device.
        let ds = features::tests::banded_images(12, 3, 1);
        let norm = augment::Normalization::identity(1);
        let config = models::ResNetConfig {
            arch: models::Arch::ResNet18,
            stem: models::Stem::Cifar,
            in_channels: 1,
            width: 2,
        };
        let on_cpu = models::ResNet::new(config, 5, &cpu);
        let on_gpu = models::ResNet::new(config, 5, &gpu);
        let f_cpu = extract_features(&on_cpu, &ds, &norm, 5, &cpu).unwrap();
        let f_gpu = extract_features(&on_gpu, &ds, &norm, 5, &gpu).unwrap();
        assert!(f_gpu.device().is_gpu());
        tensor::testing::assert_close(&f_gpu, &f_cpu, 1e-4, 1e-3, "features");
        // kNN and the linear probe on the GPU copies of the features.
        let labels = dataset_labels(&ds, "test").unwrap();
        let knn_cpu = knn_predict(&f_cpu, labels, &f_cpu, 3, 5, 0.1).unwrap();
        let knn_gpu = knn_predict(&f_gpu, labels, &f_gpu, 3, 5, 0.1).unwrap();
        assert_eq!(knn_cpu, knn_gpu);
        let probe = LinearProbeConfig {
            epochs: 5,
            batch_size: 4,
            ..LinearProbeConfig::default()
        };
        let p_cpu = linear_probe(&f_cpu, labels, &f_cpu, labels, 3, &probe).unwrap();
        let p_gpu = linear_probe(&f_gpu, labels, &f_gpu, labels, 3, &probe).unwrap();
        assert!(
            (p_cpu.final_loss - p_gpu.final_loss).abs() < 1e-3,
            "{p_cpu:?} {p_gpu:?}"
        );
        // A fine-tuning run on the GPU.
        let tune = FinetuneConfig {
            fraction: 1.0,
            epochs: 1,
            batch_size: 6,
            ..FinetuneConfig::default()
        };
        let r = finetune(&on_gpu, &ds, &ds, &norm, 3, &tune).unwrap();
        assert!((0.0..=1.0).contains(&r.test_accuracy));
        assert!(r.encoder.parameters()[0].value().device().is_gpu());
    }
}
