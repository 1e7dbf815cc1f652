//! BYOL learns on real data: pretraining a small ResNet-18 on the 6,000
//! embedded Fashion-MNIST training images, without their labels, lowers the
//! loss without collapsing and makes the encoder's features better for kNN
//! classification of the 1,000 test images than the same network's at its
//! random initialisation.
//!
//! The settings are `TrainConfig::demo()`, the demo's recipe (τ 0.9 held
//! constant, a multiplicative brightness jitter), with half its epochs to
//! fit the CI budget: 20 epochs of 46 steps (920 steps, about 4 minutes in
//! a release build on 2 cores, 5 in the test profile), seed 0. kNN
//! accuracy goes from the random initialisation's 62.3% to 72.4%
//! (2026-12-03), 8 points of margin over what the test asks.
//!
//! Until 2026-12-03 the test ran the paper's moving average (τ_base 0.99
//! rising to 1) with the additive brightness: 62.3% to 68.3% when it was
//! written, a gain that depends on the seed at 20 epochs (seed 1 ended 1
//! point below its initialisation). On an AVX-512 CPU, with the packed
//! convolution on the network's 64-channel 4x4 layers (forward pass and,
//! since then, weight gradient), which sums in another order, that run
//! ended at 63.5%, below the test's 2 points: a setting
//! that near the edge turns rounding into a pass or a fail, so the test
//! now runs the recipe the demo uses, whose gain is far from it. Training
//! on the CPU is deterministic: this is the run the test replays.

use augment::{embedded, Dataset, Normalization, Split};
use byol::eval::features::{dataset_labels, extract_features};
use byol::eval::knn::knn_accuracy;
use byol::metrics::MetricsLog;
use byol::{Progress, TrainConfig, Trainer};
use models::ResNet;
use tensor::Device;

fn knn(
    encoder: &ResNet,
    train: &Dataset,
    test: &Dataset,
    norm: &Normalization,
    dev: &Device,
) -> f32 {
    let f_train = extract_features(encoder, train, norm, 256, dev).unwrap();
    let f_test = extract_features(encoder, test, norm, 256, dev).unwrap();
    let (l_train, l_test) = (
        dataset_labels(train, "train").unwrap(),
        dataset_labels(test, "test").unwrap(),
    );
    knn_accuracy(&f_train, l_train, &f_test, l_test, 10, 200, 0.1).unwrap()
}

fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len() as f32
}

#[test]
fn pretraining_lowers_the_loss_and_beats_random_init_on_knn() {
    let dev = Device::Cpu;
    let norm = Normalization::fashion_mnist();
    let train = embedded::fashion_mnist_subset(Split::Train).unwrap();
    let test = embedded::fashion_mnist_subset(Split::Test).unwrap();
    // The demo's recipe (τ 0.9 held constant, a brightness factor), half
    // its epochs.
    let config = TrainConfig {
        epochs: 20,
        seed: 0,
        knn_every: 0,
        checkpoint_every: 20,
        ..TrainConfig::demo()
    };
    let run = std::env::temp_dir().join(format!("byol-learning-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run);
    let mut trainer = Trainer::new(config, train.clone(), norm.clone(), &dev, &run).unwrap();
    let before = knn(&trainer.nets().online.encoder, &train, &test, &norm, &dev);
    trainer.nets().set_training(true);
    let mut log = MetricsLog::open(&run.join("metrics.jsonl")).unwrap();
    let (mut losses, mut collapse) = (Vec::new(), Vec::new());
    trainer
        .run(&mut log, None, &mut |event| {
            if let Progress::Step(r) = event {
                losses.push(r.loss);
                collapse.push(r.collapse);
            }
        })
        .unwrap();
    let after = knn(&trainer.nets().online.encoder, &train, &test, &norm, &dev);
    std::fs::remove_dir_all(run).unwrap();

    let (head, tail) = (mean(&losses[..20]), mean(&losses[losses.len() - 20..]));
    eprintln!(
        "loss {head:.3} -> {tail:.3} over {} steps; kNN {before:.3} -> {after:.3}",
        losses.len()
    );
    assert!(
        tail < head * 0.5,
        "the loss did not fall: first 20 steps {head}, last 20 {tail}"
    );
    // Healthy projections of dimension 64 spread with std about 1/8; a
    // collapsed network gives ~0.
    let last = mean(&collapse[collapse.len() - 20..]);
    assert!(last > 0.05, "the collapse signal fell to {last}");
    assert!(
        after > before + 0.02,
        "kNN after training {after} is not 2 points above random init {before}"
    );
}
