//! The logistic-regression probe against scikit-learn on the same
//! features: standardised raw pixels of the embedded Fashion-MNIST subset
//! (the first 2,000 train images, all 1,000 test images), C = 0.01. The
//! reference numbers come from `scripts/logistic_reference.py`
//! (scikit-learn's `LogisticRegression`, lbfgs, tol 1e-10, fitted to
//! convergence in 585 iterations): train 92.30%, test 83.30%, objective
//! (mean loss + ‖W‖² / (2CN)) 0.42522094.

use augment::{embedded, Split};
use byol::eval::{logistic_probe, LogisticConfig};
use tensor::{Device, Tensor};

/// The first `n` images of `split` as `[n, 784]` pixel features in
/// `[0, 1]`, with their labels.
fn pixels(split: Split, n: usize) -> (Tensor, Vec<u32>) {
    let data = embedded::fashion_mnist_subset(split).unwrap();
    let n = n.min(data.len());
    let values: Vec<f32> = data.pixels()[..n * 784]
        .iter()
        .map(|&v| v as f32 / 255.0)
        .collect();
    let labels = data.labels().unwrap()[..n].to_vec();
    (Tensor::from_vec(values, &[n, 784], &Device::Cpu), labels)
}

#[test]
fn the_probe_finds_what_scikit_learn_finds() {
    let (train, train_labels) = pixels(Split::Train, 2000);
    let (test, test_labels) = pixels(Split::Test, 1000);
    // Fitted far past the default tolerance, to compare the objective.
    let config = LogisticConfig {
        c: 0.01,
        tolerance: 1e-6,
        ..LogisticConfig::default()
    };
    let r = logistic_probe(&train, &train_labels, &test, &test_labels, 10, &config).unwrap();
    assert!(r.converged, "{r:?}");
    assert!(
        (r.objective - 0.42522094).abs() < 1e-6,
        "objective {} (scikit-learn: 0.42522094)",
        r.objective
    );
    // Within 0.3 points, as the issue asks.
    assert!((r.train_accuracy - 0.9230).abs() <= 0.003, "{r:?}");
    assert!((r.test_accuracy - 0.8330).abs() <= 0.003, "{r:?}");
    // The default tolerance (scikit-learn's 1e-4) stops sooner, at the
    // same accuracies.
    let quick = LogisticConfig {
        c: 0.01,
        ..LogisticConfig::default()
    };
    let q = logistic_probe(&train, &train_labels, &test, &test_labels, 10, &quick).unwrap();
    assert!(q.converged && q.iterations < r.iterations, "{q:?} {r:?}");
    assert!((q.train_accuracy - 0.9230).abs() <= 0.003, "{q:?}");
    assert!((q.test_accuracy - 0.8330).abs() <= 0.003, "{q:?}");
}
