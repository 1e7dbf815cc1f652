//! The linear probe: a linear classifier trained on frozen features, the
//! BYOL paper's main measure of a representation ("linear evaluation",
//! §4.1, Table 1, and the ablations of §5 and Table 5a).
//!
//! The encoder is not touched: its features `[N, F]` (from
//! [`super::extract_features`], or the raw pixels of
//! [`super::pixel_features`] as a baseline) are computed once, and only a
//! weight matrix and a bias are trained on them.
//!
//! ```text
//! μ_d = mean_n x_nd,   σ_d = √(var_n x_nd + ε)       over the train split only (ε = 1e-6)
//! x̃ = (x - μ) / σ                                    train and test alike
//! z = x̃ · Wᵀ + b                                     W: [classes, F] = 0, b: [classes] = 0 at the start
//! L = (1/B) Σ_i -log softmax(z_i)[y_i]               cross-entropy over a mini-batch
//! (W, b) ← Adam step with lr_t = lr · (1 + cos(π t / T)) / 2
//! ```
//!
//! * **Standardisation.** The scales of a ResNet's features vary a lot
//!   from dimension to dimension and from run to run; dividing by the train
//!   split's per-dimension standard deviation makes one learning rate work
//!   for all of them (solo-learn and many probes do the same with a
//!   batch norm without affine parameters in front of the classifier). The
//!   test split is shifted and scaled by the *train* statistics: it is
//!   never looked at before it is classified.
//! * **Zero initialisation.** The problem is convex, so the start does not
//!   matter for where it ends, and zeros make the result a function of the
//!   data and the seed of the shuffle alone; a dimension that is constant
//!   on the train split keeps a zero weight.
//! * **Optimiser.** The paper uses SGD with Nesterov momentum at batch
//!   1024 for 80 epochs, no weight decay, with a learning rate chosen on a
//!   validation split. With no such search here, the default is the
//!   crate's [`crate::optim::Adam`] (β = (0.9, 0.999)), lr 1e-2 decayed to
//!   0 along a cosine, batch 256, 100 epochs, no weight decay (see
//!   [`LinearProbeConfig::default`]); any of the crate's optimisers can be
//!   chosen by name. Measured on the embedded Fashion-MNIST subset (6,000
//!   train, 1,000 test images): on the 64-d features of a random-init
//!   ResNet-18 of width 8, Adam at 1e-3 is still short of the optimum
//!   after 100 epochs (66.1% test) where 1e-2 reaches it (68.4%, as SGD
//!   at 0.1-0.3: 68.8-69.0%); on the 784 raw pixels, a problem that
//!   overfits, the slower 1e-3 does better (84.3% against 81.8%), as any
//!   early stopping would. The default favours reaching the optimum.
//! * **Mini-batches.** Each epoch visits the train rows in an order
//!   shuffled by a generator seeded once with `seed` (Fisher-Yates,
//!   [`rng::Rng::shuffle`]); the last batch may be smaller. Rows are
//!   gathered on the features' device ([`Tensor::index_select`]), so the
//!   whole probe runs there; the loss is read back once per epoch.

use super::{accuracy, check_features, check_labels};
use crate::error::{ByolError, Result};
use crate::optim::{self, OptimizerKind};
use crate::schedule::lr_at;
use autograd::{no_grad, Param, Tape, Var};
use tensor::Tensor;

/// The ε added to the per-dimension variance before its square root.
pub const STANDARDIZE_EPS: f32 = 1e-6;

/// The settings of a linear probe.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearProbeConfig {
    /// Passes over the train split.
    pub epochs: usize,
    /// Rows per mini-batch (the last one of an epoch may be smaller).
    pub batch_size: usize,
    /// Peak learning rate, decayed to 0 along a half cosine over the run.
    pub lr: f32,
    /// Weight decay of the weight matrix (the bias has none, as
    /// [`crate::optim::is_excluded`] decides).
    pub weight_decay: f32,
    /// The optimiser.
    pub optimizer: OptimizerKind,
    /// Seed of the order of the mini-batches.
    pub seed: u64,
}

impl Default for LinearProbeConfig {
    /// Adam, lr 1e-2 with cosine decay, batch 256, 100 epochs, no weight
    /// decay, seed 0 (see the module docs for why).
    fn default() -> LinearProbeConfig {
        LinearProbeConfig {
            epochs: 100,
            batch_size: 256,
            lr: 1e-2,
            weight_decay: 0.0,
            optimizer: OptimizerKind::Adam,
            seed: 0,
        }
    }
}

impl LinearProbeConfig {
    /// Errors for a setting that cannot train: no epochs, a batch of 0, a
    /// learning rate or weight decay that is negative or not finite.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(ByolError::Config(
                "linear probe: epochs is 0; give at least 1".to_string(),
            ));
        }
        if self.batch_size == 0 {
            return Err(ByolError::Config(
                "linear probe: the batch size is 0; give at least 1".to_string(),
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(ByolError::Config(format!(
                "linear probe: the learning rate is {}; it must be a positive number",
                self.lr
            )));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(ByolError::Config(format!(
                "linear probe: the weight decay is {}; it must be 0 or more",
                self.weight_decay
            )));
        }
        Ok(())
    }
}

/// What a linear probe measured.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearProbeResult {
    /// Top-1 accuracy on the train split with the final weights, in `[0, 1]`.
    pub train_accuracy: f32,
    /// Top-1 accuracy on the test split, in `[0, 1]`: the number reported.
    pub test_accuracy: f32,
    /// The mean cross-entropy over the mini-batches of the last epoch.
    pub final_loss: f32,
}

/// The per-dimension statistics of the train split: `(μ, σ)`, each `[1, F]`,
/// `σ = √(var + ε)` with the biased variance.
fn train_statistics(train: &Tensor) -> (Tensor, Tensor) {
    let mean = train.mean(&[0], true);
    let std = train
        .var(&[0], false, true)
        .add_scalar(STANDARDIZE_EPS)
        .sqrt();
    (mean, std)
}

/// `(x - μ) / σ`, row by row.
fn standardize(x: &Tensor, mean: &Tensor, std: &Tensor) -> Tensor {
    x.sub(mean).div(std)
}

/// The predicted class of every row of `x` (`[N, F]`) under the linear map
/// `x·Wᵀ + b`: the argmax of each row of logits, read back.
fn predict(x: &Tensor, weight: &Param, bias: &Param) -> Vec<u32> {
    let logits = x.matmul_nt(&weight.value()).add(&bias.value());
    logits
        .argmax(1, false)
        .to_vec()
        .iter()
        .map(|&c| c as u32)
        .collect()
}

/// Trains a linear classifier on the standardised train features and
/// returns its train and test top-1 accuracy (see the module docs for the
/// protocol and [`LinearProbeConfig`] for the settings).
///
/// `train` and `test` are `[N, F]` features on one device (the probe runs
/// there), with one label in `0..classes` per row.
///
/// Errors for empty splits, mismatched shapes, label counts or devices, a
/// label not below `classes`, invalid settings, and a loss that is not
/// finite (non-finite features, or a learning rate far too high).
pub fn linear_probe(
    train: &Tensor,
    train_labels: &[u32],
    test: &Tensor,
    test_labels: &[u32],
    classes: usize,
    config: &LinearProbeConfig,
) -> Result<LinearProbeResult> {
    config.validate()?;
    let (n, f) = check_features(train, train_labels, "linear probe (train split)")?;
    let (_, f_test) = check_features(test, test_labels, "linear probe (test split)")?;
    if f_test != f {
        return Err(ByolError::Input(format!(
            "linear probe: the train features have {f} dimensions, the test features {f_test}"
        )));
    }
    check_labels(train_labels, classes, "linear probe (train split)")?;
    check_labels(test_labels, classes, "linear probe (test split)")?;
    let device = train.device();
    if test.device() != device {
        return Err(ByolError::Input(format!(
            "linear probe: the train features are on the {device} and the test features on \
             the {}; move one",
            test.device()
        )));
    }

    let (mean, std) = train_statistics(train);
    let train_x = standardize(train, &mean, &std);
    let test_x = standardize(test, &mean, &std);

    let weight = Param::new("probe.weight", Tensor::zeros(&[classes, f], &device));
    let bias = Param::new("probe.bias", Tensor::zeros(&[classes], &device));
    let params = [weight.clone(), bias.clone()];
    let mut optimizer = optim::build(config.optimizer, config.weight_decay);

    let steps_per_epoch = n.div_ceil(config.batch_size);
    let total_steps = config.epochs * steps_per_epoch;
    let mut rng = rng::Rng::from_seed(config.seed);
    let mut order: Vec<usize> = (0..n).collect();
    let mut step = 0;
    let mut final_loss = f32::NAN;
    for epoch in 0..config.epochs {
        rng.shuffle(&mut order);
        let mut loss_sum = Tensor::scalar(0.0, &device);
        for rows in order.chunks(config.batch_size) {
            let labels: Vec<usize> = rows.iter().map(|&i| train_labels[i] as usize).collect();
            let tape = Tape::new();
            let x = Var::constant(train_x.index_select(0, rows));
            // z = x̃·Wᵀ + b;  L = cross-entropy(z, y)
            let logits = x.linear(&tape.param(&weight), Some(&tape.param(&bias)));
            let loss = logits.cross_entropy(&labels);
            loss_sum = loss_sum.add(loss.value());
            tape.backward(&loss);
            optimizer.step(&params, lr_at(step, total_steps, 0, config.lr));
            params.iter().for_each(Param::zero_grad);
            step += 1;
        }
        final_loss = loss_sum.item() / steps_per_epoch as f32;
        if !final_loss.is_finite() {
            return Err(ByolError::Input(format!(
                "linear probe: the loss became {final_loss} in epoch {epoch}; are the features \
                 finite? Otherwise lower the learning rate ({})",
                config.lr
            )));
        }
    }

    let (train_pred, test_pred) = no_grad(|| {
        (
            predict(&train_x, &weight, &bias),
            predict(&test_x, &weight, &bias),
        )
    });
    // The predictions were read back: a failure of the device shows now.
    if let Some(e) = train_x.device().take_error() {
        return Err(ByolError::Device(e));
    }
    Ok(LinearProbeResult {
        train_accuracy: accuracy(&train_pred, train_labels),
        test_accuracy: accuracy(&test_pred, test_labels),
        final_loss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::Device;

    /// `n` points in `dims` dimensions from `classes` Gaussian clusters whose
    /// centres are `separation` apart along distinct axes; labels cycle.
    fn clusters(
        n: usize,
        dims: usize,
        classes: usize,
        separation: f32,
        seed: u64,
    ) -> (Tensor, Vec<u32>) {
        let noise = Tensor::randn(&[n, dims], 0.0, 1.0, seed, &Device::Cpu).to_vec();
        let mut data = Vec::with_capacity(n * dims);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let c = i % classes;
            for d in 0..dims {
                let centre = if d == c { separation } else { 0.0 };
                // A large offset and scale on every dimension, which the
                // standardisation removes.
                data.push(100.0 + 50.0 * (centre + noise[i * dims + d]));
            }
            labels.push(c as u32);
        }
        (Tensor::from_vec(data, &[n, dims], &Device::Cpu), labels)
    }

    fn quick() -> LinearProbeConfig {
        LinearProbeConfig {
            epochs: 30,
            batch_size: 32,
            ..LinearProbeConfig::default()
        }
    }

    #[test]
    fn separable_clusters_are_learned_perfectly() {
        let (train, train_y) = clusters(300, 10, 4, 8.0, 1);
        let (test, test_y) = clusters(100, 10, 4, 8.0, 2);
        let r = linear_probe(&train, &train_y, &test, &test_y, 4, &quick()).unwrap();
        assert_eq!(r.train_accuracy, 1.0, "{r:?}");
        assert_eq!(r.test_accuracy, 1.0, "{r:?}");
        assert!(r.final_loss < 0.1, "{r:?}");
    }

    #[test]
    fn random_labels_are_memorised_but_not_generalised() {
        // 60-d noise with labels unrelated to it: with more weights than
        // train rows the probe fits much of the train split, and is at
        // chance (1/4) on the test split.
        let dev = Device::Cpu;
        let train = Tensor::randn(&[120, 60], 0.0, 1.0, 3, &dev);
        let test = Tensor::randn(&[400, 60], 0.0, 1.0, 4, &dev);
        let mut rng = rng::Rng::from_seed(5);
        let train_y: Vec<u32> = (0..120).map(|_| rng.below(4) as u32).collect();
        let test_y: Vec<u32> = (0..400).map(|_| rng.below(4) as u32).collect();
        let r = linear_probe(&train, &train_y, &test, &test_y, 4, &quick()).unwrap();
        // Chance is 0.25 with a standard error of √(0.25·0.75/400) ≈ 0.022.
        assert!((r.test_accuracy - 0.25).abs() < 0.1, "{r:?}");
        assert!(r.train_accuracy > 0.6, "{r:?}");
    }

    #[test]
    fn the_same_seed_gives_the_same_probe_and_sgd_works_too() {
        let (train, train_y) = clusters(120, 6, 3, 3.0, 6);
        let (test, test_y) = clusters(60, 6, 3, 3.0, 7);
        let a = linear_probe(&train, &train_y, &test, &test_y, 3, &quick()).unwrap();
        let b = linear_probe(&train, &train_y, &test, &test_y, 3, &quick()).unwrap();
        assert_eq!(a, b);
        let sgd = LinearProbeConfig {
            optimizer: OptimizerKind::Sgd,
            lr: 0.1,
            weight_decay: 1e-4,
            ..quick()
        };
        let s = linear_probe(&train, &train_y, &test, &test_y, 3, &sgd).unwrap();
        assert!(s.test_accuracy > 0.8, "{s:?}");
    }

    #[test]
    fn bad_inputs_are_errors_that_say_what_is_wrong() {
        let (train, y) = clusters(8, 3, 2, 1.0, 1);
        let cfg = quick();
        let e = linear_probe(&train, &y, &train, &y, 1, &cfg)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("label 1") && e.contains("number of classes, 1"),
            "{e}"
        );
        let narrow = Tensor::zeros(&[2, 2], &Device::Cpu);
        let e = linear_probe(&train, &y, &narrow, &[0, 1], 2, &cfg)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("3 dimensions") && e.contains("test features 2"),
            "{e}"
        );
        let e = linear_probe(&train, &y[..3], &train, &y, 2, &cfg)
            .unwrap_err()
            .to_string();
        assert!(e.contains("8 feature rows but 3 labels"), "{e}");
        let bad = LinearProbeConfig {
            epochs: 0,
            ..quick()
        };
        assert!(linear_probe(&train, &y, &train, &y, 2, &bad).is_err());
        let bad = LinearProbeConfig {
            lr: f32::NAN,
            ..quick()
        };
        assert!(linear_probe(&train, &y, &train, &y, 2, &bad).is_err());
        let nan = Tensor::full(&[8, 3], f32::NAN, &Device::Cpu);
        let e = linear_probe(&nan, &y, &nan, &y, 2, &cfg)
            .unwrap_err()
            .to_string();
        assert!(e.contains("loss became NaN"), "{e}");
    }
}
