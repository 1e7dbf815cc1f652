//! Semi-supervised fine-tuning: the whole encoder and a linear head
//! trained on a small, class-balanced fraction of the labels, the BYOL
//! paper's Table 2 protocol (1% and 10% of ImageNet's labels), scaled down.
//!
//! ```text
//! S = balanced_subset(train labels, fraction, seed)      ~fraction·N images, equal per class
//! encoder' = a copy of the encoder (the caller's is left as it was)
//! head     = Linear(F → classes), PyTorch's default initialisation
//! for each epoch, for each shuffled mini-batch B ⊂ S:
//!     x = crop+flip(B) or the plain images, normalised          (training mode: batch statistics)
//!     L = cross-entropy(head(encoder'(x)), y)
//!     all parameters ← SGD, momentum 0.9, lr_t = lr · (1 + cos(π t / T)) / 2
//! accuracy = top-1 of head(encoder'(test)) in evaluation mode
//! ```
//!
//! * **The subset** ([`balanced_subset`]) has `round(fraction·N)` images
//!   (at least one per class), split as evenly as the classes allow: each
//!   class gets `⌊total/classes⌋` or one more (which classes get the extra
//!   one is drawn with the seed), and within a class the images are drawn
//!   at random. A class with fewer images than its share gives all it has
//!   and the others share the rest evenly ("water-filling"), so the size
//!   is always `round(fraction·N)` and a fraction of 1 is the whole split.
//!   The paper's subsets are the fixed 1% / 10% ImageNet splits of SimCLR,
//!   also class-balanced.
//! * **Optimiser.** The paper fine-tunes with SGD and Nesterov momentum
//!   0.9, no weight decay, for 30 (1%) or 20 (10%) epochs with a learning
//!   rate from a small search; here [`crate::optim::Sgd`] (heavy-ball
//!   momentum 0.9, weight decay skipping biases and batch norm) with a
//!   cosine decay to 0, and the same learning rate for the encoder and the
//!   head.
//! * **Augmentation.** With `augment` on, each training image is a random
//!   resized crop (area U[`min_crop_area`, 1], aspect log-U[3/4, 4/3]) and
//!   a horizontal flip with p = 0.5, made by [`augment::two_views`] with
//!   every other augmentation off; the second, identity view it also makes
//!   is not used. Views are seeded by `(seed, epoch, image)`. The paper's
//!   fine-tuning uses its Table 6 crop, area U[0.08, 1], on 224-pixel
//!   images; the default here is the lighter U[0.3, 1], because a 28-pixel
//!   image has little to spare: fine-tuning a random-init ResNet-18 of
//!   width 8 on 10% of the embedded Fashion-MNIST subset for 30 epochs
//!   gave 74.7% test accuracy with 0.3 and 72.4% with 0.08 (one seed).
//!   With `augment` off, the plain normalised images.
//! * **Batch norm** runs in training mode, so a batch of one image cannot
//!   be used (its 1x1 feature maps at the last stage have no variance): the
//!   batch size is capped at the subset size, and a last batch of a single
//!   image is skipped.
//! * **Evaluation** puts the fine-tuned copy in evaluation mode and
//!   classifies the test split with [`super::extract_features`] and the
//!   head.

use super::features::{check_encoder_input, extract_features};
use super::{accuracy, check_labels, dataset_labels};
use crate::error::{ByolError, Result};
use crate::optim::{self, OptimizerKind};
use crate::schedule::lr_at;
use augment::views::crop::CropSettings;
use augment::{plain_batch, two_views, Dataset, Normalization, TwoViewConfig, ViewSettings};
use autograd::{no_grad, Param, Tape, Var};
use models::init::Seeds;
use models::layers::Linear;
use models::{Module, ResNet};
use tensor::{Device, Tensor};

/// The settings of a fine-tuning run.
#[derive(Clone, Debug, PartialEq)]
pub struct FinetuneConfig {
    /// The fraction of the train split whose labels are used, in `(0, 1]`
    /// (0.01 and 0.1 in the paper).
    pub fraction: f64,
    /// Passes over the labelled subset.
    pub epochs: usize,
    /// Images per mini-batch (capped at the subset size).
    pub batch_size: usize,
    /// Peak learning rate of SGD, decayed to 0 along a half cosine.
    pub lr: f32,
    /// Weight decay (not on biases and batch norm).
    pub weight_decay: f32,
    /// Seed of the subset, the head's initialisation, the batch order and
    /// the augmentation.
    pub seed: u64,
    /// Random resized crop and flip on the training images (see the module
    /// docs); plain images when off.
    pub augment: bool,
    /// The smallest area of a crop, as a fraction of the image, in
    /// `(0, 1]` (the paper's 0.08; 0.3 by default, see the module docs).
    pub min_crop_area: f32,
}

impl Default for FinetuneConfig {
    /// 10% of the labels, 30 epochs, batch 64, SGD lr 0.05 with cosine
    /// decay, no weight decay, seed 0, crop (area U[0.3, 1]) and flip on.
    fn default() -> FinetuneConfig {
        FinetuneConfig {
            fraction: 0.1,
            epochs: 30,
            batch_size: 64,
            lr: 0.05,
            weight_decay: 0.0,
            seed: 0,
            augment: true,
            min_crop_area: 0.3,
        }
    }
}

impl FinetuneConfig {
    /// Errors for a setting that cannot train: a fraction or a minimum
    /// crop area outside `(0, 1]`, no epochs, a batch smaller than 2 (batch
    /// norm in training mode needs two images), or a learning rate or
    /// weight decay that is negative or not finite.
    pub fn validate(&self) -> Result<()> {
        check_fraction(self.fraction)?;
        if !(self.min_crop_area > 0.0 && self.min_crop_area <= 1.0) {
            return Err(ByolError::Config(format!(
                "fine-tuning: the minimum crop area is {}; it must lie in (0, 1] (0.08 in the paper)",
                self.min_crop_area
            )));
        }
        if self.epochs == 0 {
            return Err(ByolError::Config(
                "fine-tuning: epochs is 0; give at least 1".to_string(),
            ));
        }
        if self.batch_size < 2 {
            return Err(ByolError::Config(format!(
                "fine-tuning: the batch size is {}; batch norm in training mode needs at least 2",
                self.batch_size
            )));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(ByolError::Config(format!(
                "fine-tuning: the learning rate is {}; it must be a positive number",
                self.lr
            )));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(ByolError::Config(format!(
                "fine-tuning: the weight decay is {}; it must be 0 or more",
                self.weight_decay
            )));
        }
        Ok(())
    }
}

/// What a fine-tuning run gives: the accuracy, and the fine-tuned networks.
pub struct FinetuneResult {
    /// Top-1 accuracy on the test split, in `[0, 1]`.
    pub test_accuracy: f32,
    /// How many labelled images were used.
    pub labelled: usize,
    /// The mean cross-entropy over the mini-batches of the last epoch.
    pub final_loss: f32,
    /// The fine-tuned copy of the encoder (in evaluation mode).
    pub encoder: ResNet,
    /// The trained linear head, `head.weight` `[classes, F]` and `head.bias`.
    pub head: Linear,
}

/// Errors unless `fraction` lies in `(0, 1]`.
fn check_fraction(fraction: f64) -> Result<()> {
    if fraction.is_finite() && fraction > 0.0 && fraction <= 1.0 {
        Ok(())
    } else {
        Err(ByolError::Config(format!(
            "the label fraction is {fraction}; it must lie in (0, 1] (0.01 for 1%, 0.1 for 10%)"
        )))
    }
}

/// The indices (ascending) of a class-balanced subset of
/// `total = max(round(fraction · labels.len()), classes)` items, at least
/// one per class: each class gets `⌊total / classes⌋` items or one more,
/// drawn at random with `seed`; a class with fewer items gives them all and
/// the other classes share its shortfall evenly (see the module docs). The
/// same inputs always give the same subset.
///
/// Errors for no labels, a label not below `classes`, a fraction outside
/// `(0, 1]`, or a class with no items (it cannot be represented).
pub fn balanced_subset(
    labels: &[u32],
    classes: usize,
    fraction: f64,
    seed: u64,
) -> Result<Vec<usize>> {
    if labels.is_empty() {
        return Err(ByolError::Input(
            "balanced subset: there are no labels to choose from".to_string(),
        ));
    }
    check_labels(labels, classes, "balanced subset")?;
    check_fraction(fraction)?;
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    if let Some(empty) = by_class.iter().position(Vec::is_empty) {
        return Err(ByolError::Input(format!(
            "balanced subset: class {empty} has no items among the {} labels; every class of \
             0..{classes} needs at least one",
            labels.len()
        )));
    }
    // total = round(fraction · N), at least one per class.
    let total = ((fraction * labels.len() as f64).round() as usize).max(classes);
    let available: Vec<usize> = by_class.iter().map(Vec::len).collect();
    // The level L: the largest with Σ_c min(n_c, L) ≤ total. Every class
    // gets min(n_c, L); the r = total - Σ_c min(n_c, L) left over (fewer
    // than the classes with more than L items) go one each to classes
    // with more than L items, drawn with the seed.
    let filled = |level: usize| -> usize { available.iter().map(|&a| a.min(level)).sum() };
    let (mut low, mut high) = (1, *available.iter().max().unwrap_or(&1));
    while low < high {
        let mid = (low + high).div_ceil(2);
        if filled(mid) <= total {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    let level = low;
    let left_over = total - filled(level);
    let mut rng = rng::Rng::from_seed(seed);
    let mut eligible: Vec<usize> = (0..classes).filter(|&c| available[c] > level).collect();
    rng.shuffle(&mut eligible);
    let mut quota: Vec<usize> = available.iter().map(|&a| a.min(level)).collect();
    for &c in &eligible[..left_over.min(eligible.len())] {
        quota[c] += 1;
    }
    let mut chosen = Vec::with_capacity(total);
    for (members, &q) in by_class.iter_mut().zip(&quota) {
        rng.shuffle(members);
        chosen.extend_from_slice(&members[..q]);
    }
    chosen.sort_unstable();
    Ok(chosen)
}

/// A copy of `encoder` (same configuration, parameters and buffers) on
/// `device`, whose training leaves the original untouched.
fn copy_encoder(encoder: &ResNet, device: &Device) -> ResNet {
    let copy = ResNet::new(encoder.config(), 0, device);
    for (dst, src) in copy.state().iter().zip(encoder.state()) {
        dst.set_value(src.value());
    }
    copy
}

/// The augmentation of fine-tuning: view 1 is a random resized crop of
/// area U[`min_crop_area`, 1] (aspect log-U[3/4, 4/3]) and a flip with
/// p = 0.5, nothing else; view 2 (unused) is the identity.
fn crop_and_flip(norm: &Normalization, min_crop_area: f32) -> TwoViewConfig {
    TwoViewConfig {
        view1: ViewSettings {
            crop: Some(CropSettings {
                area: (min_crop_area, 1.0),
                ..CropSettings::byol()
            }),
            flip_p: 0.5,
            ..ViewSettings::identity()
        },
        view2: ViewSettings::identity(),
        normalization: norm.clone(),
        output_size: None,
    }
}

/// Fine-tunes a copy of `encoder` with a linear head on a class-balanced
/// `config.fraction` of the labels of `train`, and returns its top-1
/// accuracy on `test` (see the module docs for the protocol). Runs on the
/// device of the encoder's parameters; `encoder` itself is not changed
/// (neither its weights nor its mode).
///
/// Errors for invalid settings, unlabelled or empty splits, labels not
/// below `classes`, images the encoder or `norm` does not take, fewer than
/// two labelled images, and a loss that is not finite.
pub fn finetune(
    encoder: &ResNet,
    train: &Dataset,
    test: &Dataset,
    norm: &Normalization,
    classes: usize,
    config: &FinetuneConfig,
) -> Result<FinetuneResult> {
    config.validate()?;
    let device = match encoder.parameters().first() {
        Some(p) => p.value().device(),
        None => Device::Cpu,
    };
    check_encoder_input(
        encoder,
        train,
        config.batch_size,
        &device,
        "fine-tuning (train split)",
    )?;
    check_encoder_input(
        encoder,
        test,
        config.batch_size,
        &device,
        "fine-tuning (test split)",
    )?;
    let train_labels = dataset_labels(train, "fine-tuning (train split)")?;
    let test_labels = dataset_labels(test, "fine-tuning (test split)")?;
    check_labels(test_labels, classes, "fine-tuning (test split)")?;
    let subset = balanced_subset(train_labels, classes, config.fraction, config.seed)
        .map_err(|e| ByolError::Input(format!("fine-tuning: {e}")))?;
    if subset.len() < 2 {
        return Err(ByolError::Input(format!(
            "fine-tuning: the labelled subset has {} image(s); batch norm in training mode \
             needs at least 2 (raise the fraction)",
            subset.len()
        )));
    }

    let net = copy_encoder(encoder, &device);
    net.set_training(true);
    let mut seeds = Seeds::new(config.seed ^ 0x4845_4144); // "HEAD"
    let head = Linear::new(
        "head",
        net.feature_dim(),
        classes,
        true,
        &mut seeds,
        &device,
    );
    let mut params = net.parameters();
    params.extend(head.parameters());
    let mut optimizer = optim::build(OptimizerKind::Sgd, config.weight_decay);
    let views = crop_and_flip(norm, config.min_crop_area);

    let batch_size = config.batch_size.min(subset.len());
    let batches: Vec<usize> = subset.chunks(batch_size).map(<[usize]>::len).collect();
    let steps_per_epoch = batches.iter().filter(|&&len| len >= 2).count();
    let total_steps = config.epochs * steps_per_epoch;
    let mut rng = rng::Rng::from_seed(config.seed.wrapping_add(1));
    let mut order = subset.clone();
    let mut step = 0;
    let mut final_loss = f32::NAN;
    for epoch in 0..config.epochs {
        rng.shuffle(&mut order);
        let mut loss_sum = Tensor::scalar(0.0, &device);
        for rows in order.chunks(batch_size).filter(|rows| rows.len() >= 2) {
            let batch = if config.augment {
                two_views(train, rows, epoch as u64, config.seed, &views).map(|(v1, _)| v1)
            } else {
                plain_batch(train, rows, norm, None)
            }
            .map_err(|e| ByolError::Input(format!("fine-tuning: {e}")))?;
            let labels: Vec<usize> = rows.iter().map(|&i| train_labels[i] as usize).collect();
            let tape = Tape::new();
            let x = Var::constant(Tensor::from_vec(batch.data, &batch.shape, &device));
            // L = cross-entropy(head(encoder(x)), y)
            let logits = head.forward(&tape, &net.forward(&tape, &x));
            let loss = logits.cross_entropy(&labels);
            loss_sum = loss_sum.add(loss.value());
            tape.backward(&loss);
            optimizer.step(&params, lr_at(step, total_steps, 0, config.lr));
            params.iter().for_each(Param::zero_grad);
            step += 1;
        }
        final_loss = loss_sum.item() / steps_per_epoch.max(1) as f32;
        if !final_loss.is_finite() {
            return Err(ByolError::Input(format!(
                "fine-tuning: the loss became {final_loss} in epoch {epoch}; lower the learning \
                 rate ({})",
                config.lr
            )));
        }
    }

    // Evaluation mode: running statistics, features of the test split.
    let features = extract_features(&net, test, norm, config.batch_size, &device)?;
    let predictions: Vec<u32> = no_grad(|| {
        let logits = head.forward(&Tape::new(), &Var::constant(features));
        let classes = logits.value().argmax(1, false).to_vec();
        classes.iter().map(|&c| c as u32).collect()
    });
    // The predictions were read back: a failure of the device shows now.
    if let Some(e) = device.take_error() {
        return Err(ByolError::Device(e));
    }
    Ok(FinetuneResult {
        test_accuracy: accuracy(&predictions, test_labels),
        labelled: subset.len(),
        final_loss,
        encoder: net,
        head,
    })
}

#[cfg(test)]
mod tests {
    use super::super::features::tests::{banded_images, tiny_encoder};
    use super::*;

    #[test]
    fn balanced_subsets_are_balanced_sized_and_seeded() {
        // Classes of 50, 80 and 70 items, interleaved.
        let mut labels = Vec::new();
        for (c, n) in [(0u32, 50), (1, 80), (2, 70)] {
            labels.extend(std::iter::repeat_n(c, n));
        }
        let mut rng = rng::Rng::from_seed(9);
        rng.shuffle(&mut labels);
        let s = balanced_subset(&labels, 3, 0.1, 7).unwrap();
        assert_eq!(s.len(), 20, "round(0.1 · 200)");
        let mut counts = [0usize; 3];
        for &i in &s {
            counts[labels[i] as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c == 6 || c == 7), "{counts:?}");
        assert!(s.windows(2).all(|w| w[0] < w[1]), "ascending, no repeats");
        assert_eq!(s, balanced_subset(&labels, 3, 0.1, 7).unwrap());
        assert_ne!(s, balanced_subset(&labels, 3, 0.1, 8).unwrap());
        // A tiny fraction still has one of each class.
        let one_each = balanced_subset(&labels, 3, 1e-4, 0).unwrap();
        let mut seen: Vec<u32> = one_each.iter().map(|&i| labels[i]).collect();
        seen.sort_unstable();
        assert_eq!(seen, vec![0, 1, 2]);
        // A small class gives all it has, the others share the rest evenly.
        let s = balanced_subset(&labels, 3, 0.9, 1).unwrap();
        let mut counts = [0usize; 3];
        for &i in &s {
            counts[labels[i] as usize] += 1;
        }
        assert_eq!(counts, [50, 65, 65]);
        let s = balanced_subset(&labels, 3, 0.8, 1).unwrap();
        assert_eq!(s.len(), 160);
        // All of it: every item once.
        let all = balanced_subset(&labels, 3, 1.0, 0).unwrap();
        assert_eq!(all, (0..200).collect::<Vec<usize>>());
    }

    #[test]
    fn balanced_subset_errors_name_the_problem() {
        let e = balanced_subset(&[0, 2, 2], 3, 0.5, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("class 1 has no items"), "{e}");
        let e = balanced_subset(&[0, 3], 3, 0.5, 0).unwrap_err().to_string();
        assert!(e.contains("label 3"), "{e}");
        let e = balanced_subset(&[0, 1], 2, 0.0, 0).unwrap_err().to_string();
        assert!(e.contains("fraction is 0"), "{e}");
        assert!(balanced_subset(&[0, 1], 2, 1.5, 0).is_err());
        assert!(balanced_subset(&[], 2, 0.5, 0).is_err());
    }

    #[test]
    fn a_tiny_finetune_runs_and_leaves_the_encoder_alone() {
        let train = banded_images(48, 3, 1);
        let test = banded_images(24, 3, 2);
        let norm = Normalization::identity(1);
        let encoder = tiny_encoder(1, 4);
        let before: Vec<Vec<f32>> = encoder.state().iter().map(|p| p.value().to_vec()).collect();
        for augment in [true, false] {
            let config = FinetuneConfig {
                fraction: 0.5,
                epochs: 3,
                batch_size: 8,
                augment,
                ..FinetuneConfig::default()
            };
            let r = finetune(&encoder, &train, &test, &norm, 3, &config).unwrap();
            assert_eq!(r.labelled, 24);
            assert!((0.0..=1.0).contains(&r.test_accuracy));
            assert!(r.final_loss.is_finite());
            assert_eq!(r.head.weight.shape(), vec![3, encoder.feature_dim()]);
        }
        let after: Vec<Vec<f32>> = encoder.state().iter().map(|p| p.value().to_vec()).collect();
        assert_eq!(before, after);
    }

    #[test]
    fn finetune_errors_name_the_problem() {
        let train = banded_images(12, 3, 1);
        let norm = Normalization::identity(1);
        let encoder = tiny_encoder(1, 0);
        let bad = FinetuneConfig {
            batch_size: 1,
            ..FinetuneConfig::default()
        };
        let e = finetune(&encoder, &train, &train, &norm, 3, &bad)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("at least 2"), "{e}");
        let e = finetune(
            &encoder,
            &train,
            &train,
            &norm,
            2,
            &FinetuneConfig::default(),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("label 2"), "{e}");
        let unlabelled = Dataset::new(vec![0; 128], 1, 8, 8, None).unwrap();
        let e = finetune(
            &encoder,
            &unlabelled,
            &train,
            &norm,
            3,
            &FinetuneConfig::default(),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("no labels"), "{e}");
    }
}
