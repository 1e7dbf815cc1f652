//! `byol eval`: how good a frozen encoder's features are, by a kNN
//! classifier (k = 200, cosine similarity, votes weighted exp(sim / 0.1)),
//! the quick linear probe (mini-batch Adam for a fixed number of epochs,
//! the training monitor's kind) or the logistic-regression probe as the
//! field reports it (L2, fitted to convergence by L-BFGS, the number that
//! matches scikit-learn's `LogisticRegression`), all trained on the train
//! split's labels and scored on the test split. With `--labels-per-class
//! K` each is fitted on K labelled images of each class only, over several
//! random draws, and reported as their mean ± standard deviation.

use crate::args::{DataArgs, DeviceArgs, EncoderArgs};
use crate::commands::{encoder_and_splits, splits_only, CmdResult, Outcome};
use crate::error::CliError;
use crate::report;
use byol::eval::{
    balanced_draw, dataset_labels, pixel_features, rows, LabelledSplits, LinearProbeConfig,
    LogisticConfig, Spread,
};
use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use std::path::PathBuf;
use tensor::Tensor;

/// The evaluation protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// k nearest neighbours by cosine similarity.
    Knn,
    /// A linear classifier on the frozen features, trained by mini-batch
    /// Adam for --probe-epochs (quick).
    Linear,
    /// Multinomial logistic regression with an L2 penalty (--c), fitted to
    /// convergence by L-BFGS: the probe as papers report it.
    Logistic,
}

/// Flags of `byol eval`.
#[derive(Args, Clone, Debug)]
#[command(after_help = "Examples:
  byol eval --checkpoint runs/pretrain --method knn
  byol eval --checkpoint runs/pretrain --method linear --json linear.json
  byol eval --checkpoint runs/pretrain --method logistic --c 0.1
  byol eval --checkpoint runs/pretrain --method logistic --labels-per-class 10 --draws 5
  byol eval --pixels --dataset fashion-mnist --method logistic --labels-per-class 10
  byol eval --weights encoder.safetensors --dataset cifar10 --data cifar-10-batches-bin")]
pub struct EvalArgs {
    #[command(flatten)]
    pub encoder: EncoderArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// knn, linear (quick) or logistic (fitted to convergence).
    #[arg(long, value_enum, default_value = "knn")]
    pub method: Method,
    /// kNN: neighbours that vote.
    #[arg(long, default_value_t = 200)]
    pub k: usize,
    /// kNN: temperature of the votes exp(sim / T).
    #[arg(long, default_value_t = 0.1)]
    pub temperature: f32,
    /// Linear probe: passes over the train features.
    #[arg(long, default_value_t = 100)]
    pub probe_epochs: usize,
    /// Linear probe: peak learning rate of Adam (cosine decay).
    #[arg(long, default_value_t = 0.01)]
    pub probe_lr: f32,
    /// Logistic probe: inverse L2 strength, as scikit-learn's C (smaller
    /// is stronger).
    #[arg(long, default_value_t = 1.0)]
    pub c: f64,
    /// Logistic probe: converged when every component of the objective's
    /// gradient is below this (scikit-learn's tol).
    #[arg(long, default_value_t = LogisticConfig::default().tolerance)]
    pub tolerance: f64,
    /// Logistic probe: the most L-BFGS iterations.
    #[arg(long, default_value_t = LogisticConfig::default().max_iter)]
    pub max_iter: usize,
    /// Score the normalised pixels themselves (no encoder): the baseline
    /// every encoder should beat. With --checkpoint, on that run's data.
    #[arg(long, conflicts_with = "weights")]
    pub pixels: bool,
    /// Fit on only K labelled train images of each class (drawn at random,
    /// --draws times), as a user with few labels would; the test split
    /// stays whole. Prints every draw and their mean ± standard deviation.
    #[arg(long, value_name = "K")]
    pub labels_per_class: Option<usize>,
    /// With --labels-per-class: how many draws of the labelled images.
    #[arg(long, default_value_t = 5, requires = "labels_per_class")]
    pub draws: usize,
    /// With --labels-per-class: the seed of the first draw (draw d uses
    /// seed + d).
    #[arg(long, default_value_t = 0, requires = "labels_per_class")]
    pub draw_seed: u64,
    /// Also write the result as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Runs `byol eval`.
pub fn run(args: EvalArgs) -> CmdResult {
    check_method_flags(&args)?;
    let device = args.device.open()?;
    let (splits, f_train, f_test) = if args.pixels {
        let splits = splits_only(&args.data, args.encoder.recorded_data().as_ref())?;
        let f_train = pixel_features(&splits.train, &splits.norm, &device)?;
        let f_test = pixel_features(&splits.test, &splits.norm, &device)?;
        (splits, f_train, f_test)
    } else {
        let (encoder, splits) = encoder_and_splits(&args.encoder, &args.data, &device)?;
        let (f_train, f_test) = splits.features(&encoder, &device)?;
        (splits, f_train, f_test)
    };
    let name = match args.method {
        Method::Knn => "kNN",
        Method::Linear => "linear probe (Adam)",
        Method::Logistic => "logistic probe (L-BFGS)",
    };
    let (accuracy, mut value) = match args.labels_per_class {
        None => {
            let (accuracy, detail) = score(&args, &splits, &f_train, &f_test)?;
            out!(
                "{name} top-1 accuracy: {accuracy:.4} on {} test images ({} classes)",
                splits.test.len(),
                splits.classes
            );
            (accuracy, detail)
        }
        Some(per_class) => {
            if args.draws == 0 {
                return Err(CliError::flag("--draws 0: at least one draw is needed"));
            }
            let labels = dataset_labels(&splits.train, "train")?;
            let mut accuracies = Vec::with_capacity(args.draws);
            let mut details = Vec::with_capacity(args.draws);
            for d in 0..args.draws {
                let seed = args.draw_seed + d as u64;
                let chosen = balanced_draw(labels, splits.classes, per_class, seed)?;
                let few = splits.with_train(&chosen)?;
                let (accuracy, detail) = score(&args, &few, &rows(&f_train, &chosen)?, &f_test)?;
                say!("draw {} (seed {seed}): {accuracy:.4}", d + 1);
                accuracies.push(accuracy);
                details.push(detail);
            }
            let spread = Spread::of(accuracies)?;
            out!(
                "{name} top-1 accuracy with {per_class} labels per class: {spread} on {} test \
                 images ({} classes)",
                splits.test.len(),
                splits.classes
            );
            let value = json!({"labels_per_class": per_class, "draws": details,
                               "accuracies": spread.values, "std": spread.std(),
                               "method": details[0]["method"]});
            (spread.mean(), value)
        }
    };
    if let Some(path) = &args.json {
        value["accuracy"] = json!(accuracy);
        value["encoder"] = json!(if args.pixels {
            "none (pixels)".to_string()
        } else {
            args.encoder.describe()
        });
        value["test_images"] = json!(splits.test.len());
        report::write_json(path, &value)?;
    }
    Ok(Outcome::Done)
}

/// The method's own flags, checked before any work.
fn check_method_flags(args: &EvalArgs) -> Result<(), CliError> {
    match args.method {
        Method::Knn if args.k == 0 => {
            Err(CliError::flag("--k 0: at least one neighbour must vote"))
        }
        Method::Knn if !(args.temperature > 0.0 && args.temperature.is_finite()) => {
            Err(CliError::flag(format!(
                "--temperature {}: must be a positive number (0.1 is usual)",
                args.temperature
            )))
        }
        Method::Logistic if !(args.c > 0.0 && args.c.is_finite()) => Err(CliError::flag(format!(
            "--c {}: must be a positive number (1 is scikit-learn's default)",
            args.c
        ))),
        Method::Logistic if !(args.tolerance > 0.0 && args.tolerance.is_finite()) => {
            Err(CliError::flag(format!(
                "--tolerance {}: must be a positive number (1e-4 is scikit-learn's default)",
                args.tolerance
            )))
        }
        Method::Logistic if args.max_iter == 0 => Err(CliError::flag(
            "--max-iter 0: L-BFGS needs at least one iteration",
        )),
        _ => Ok(()),
    }
}

/// The accuracy of `args.method` fitted on `splits`' train labels and
/// `f_train`, scored on the test split, and what to record of it.
fn score(
    args: &EvalArgs,
    splits: &LabelledSplits,
    f_train: &Tensor,
    f_test: &Tensor,
) -> Result<(f32, Value), CliError> {
    Ok(match args.method {
        Method::Knn => {
            let acc = splits.knn_of(f_train, f_test, args.k, args.temperature)?;
            (
                acc,
                json!({"method": "knn", "k": args.k, "temperature": args.temperature}),
            )
        }
        Method::Linear => {
            let config = LinearProbeConfig {
                epochs: args.probe_epochs,
                lr: args.probe_lr,
                ..LinearProbeConfig::default()
            };
            let r = splits.probe_of(f_train, f_test, &config)?;
            (
                r.test_accuracy,
                json!({"method": "linear", "epochs": config.epochs, "lr": config.lr,
                       "train_accuracy": r.train_accuracy}),
            )
        }
        Method::Logistic => {
            let config = LogisticConfig {
                c: args.c,
                tolerance: args.tolerance,
                max_iter: args.max_iter,
            };
            let r = splits.logistic_of(f_train, f_test, &config)?;
            if !r.converged {
                say!(
                    "warning: L-BFGS stopped after {} iterations before the gradient fell below {}",
                    r.iterations,
                    config.tolerance
                );
            }
            (
                r.test_accuracy,
                json!({"method": "logistic", "c": config.c, "tolerance": config.tolerance,
                       "iterations": r.iterations,
                       "converged": r.converged, "objective": r.objective,
                       "train_accuracy": r.train_accuracy}),
            )
        }
    })
}
