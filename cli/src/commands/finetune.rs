//! `byol finetune`: the paper's semi-supervised protocol (Table 2), scaled
//! down: the whole encoder and a linear head trained on a class-balanced
//! fraction of the train split's labels (or K per class, over several
//! draws), scored on the test split; `--from-scratch` trains the same
//! architecture from random weights instead, the supervised baseline.

use crate::args::{check_fraction, DataArgs, DeviceArgs, EncoderArgs};
use crate::commands::{encoder_and_splits, CmdResult, Outcome};
use crate::error::CliError;
use crate::report;
use byol::eval::finetune::{finetune, FinetuneConfig};
use byol::eval::{dataset_labels, per_class_fraction, Spread};
use clap::Args;
use models::Module;
use models::ResNet;
use serde_json::json;
use std::path::PathBuf;
use tensor::Tensor;

/// Flags of `byol finetune`.
#[derive(Args, Clone, Debug)]
#[command(after_help = "Examples:
  byol finetune --checkpoint runs/pretrain --label-fraction 0.01
  byol finetune --checkpoint runs/pretrain --label-fraction 0.1 --out finetuned.safetensors
  byol finetune --checkpoint runs/pretrain --labels-per-class 10 --draws 5
  byol finetune --checkpoint runs/pretrain --labels-per-class 10 --draws 5 --from-scratch")]
pub struct FinetuneArgs {
    #[command(flatten)]
    pub encoder: EncoderArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// The fraction of the train split whose labels are used, class-balanced
    /// (0.01 and 0.1 in the paper).
    #[arg(long, default_value_t = 0.1)]
    pub label_fraction: f64,
    /// Instead of --label-fraction: K labelled images of each class (an
    /// error names a class with fewer).
    #[arg(long, value_name = "K", conflicts_with = "label_fraction")]
    pub labels_per_class: Option<usize>,
    /// Repeat with this many draws of the labelled images (seeds seed,
    /// seed + 1, ...) and report their mean ± standard deviation.
    #[arg(long, default_value_t = 1)]
    pub draws: usize,
    /// Train the same architecture from random initial weights (seeded by
    /// --seed) instead of the given encoder's: the supervised baseline on
    /// the same labels with the same augmentations.
    #[arg(long)]
    pub from_scratch: bool,
    /// Passes over the labelled subset.
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// Images per mini-batch (capped at the subset size).
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Peak learning rate of SGD with momentum 0.9 (cosine decay).
    #[arg(long, default_value_t = 0.05)]
    pub lr: f32,
    /// Seed of the labelled subset, the head and the batches.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Train on the plain images (no random crop and flip).
    #[arg(long)]
    pub no_augment: bool,
    /// Write the fine-tuned encoder and head (torchvision names, head as
    /// fc.weight / fc.bias) as safetensors here.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also write the result as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Runs `byol finetune`.
pub fn run(args: FinetuneArgs) -> CmdResult {
    check_fraction("--label-fraction", args.label_fraction)?;
    if args.draws == 0 {
        return Err(CliError::flag("--draws 0: at least one draw is needed"));
    }
    if args.out.is_some() && args.draws > 1 {
        return Err(CliError::flag(
            "--out with --draws above 1: say which draw's network to write (run one draw)",
        ));
    }
    let device = args.device.open()?;
    let (encoder, data) = encoder_and_splits(&args.encoder, &args.data, &device)?;
    let labels = dataset_labels(&data.train, "train")?;
    let mut accuracies = Vec::with_capacity(args.draws);
    let mut runs = Vec::with_capacity(args.draws);
    let mut last = None;
    for d in 0..args.draws {
        let seed = args.seed + d as u64;
        // K per class: the fraction whose balanced subset takes exactly K
        // of each class (a class with fewer is named).
        let fraction = match args.labels_per_class {
            Some(k) => per_class_fraction(labels, data.classes, k)?,
            None => args.label_fraction,
        };
        // finetune trains a copy: the given encoder stays as it is.
        let fresh;
        let start = if args.from_scratch {
            fresh = ResNet::new(encoder.config(), seed, &device);
            &fresh
        } else {
            &encoder
        };
        let config = FinetuneConfig {
            fraction,
            epochs: args.epochs,
            batch_size: args.batch_size,
            lr: args.lr,
            seed,
            augment: !args.no_augment,
            ..FinetuneConfig::default()
        };
        let r = finetune(
            start,
            &data.train,
            &data.test,
            &data.norm,
            data.classes,
            &config,
        )?;
        out!(
            "fine-tuned {}on {} labelled images ({:.3}% of {}): top-1 accuracy {:.4} on {} test \
             images",
            if args.from_scratch {
                "from scratch "
            } else {
                ""
            },
            r.labelled,
            fraction * 100.0,
            data.train.len(),
            r.test_accuracy,
            data.test.len()
        );
        accuracies.push(r.test_accuracy);
        runs.push(
            json!({"seed": seed, "labelled": r.labelled, "test_accuracy": r.test_accuracy,
                         "final_loss": r.final_loss}),
        );
        last = Some(r);
    }
    let spread = Spread::of(accuracies)?;
    if args.draws > 1 {
        out!("over {} draws: {spread}", args.draws);
    }
    if let (Some(path), Some(r)) = (&args.out, &last) {
        let mut tensors: Vec<(String, Tensor)> = r
            .encoder
            .state()
            .iter()
            .map(|p| (p.name().to_string(), p.value()))
            .collect();
        tensors.push(("fc.weight".into(), r.head.weight.value()));
        if let Some(b) = &r.head.bias {
            tensors.push(("fc.bias".into(), b.value()));
        }
        models::weights::write(path, &tensors)?;
        say!("wrote {}", path.display());
    }
    if let Some(path) = &args.json {
        report::write_json(
            path,
            &json!({
                "label_fraction": args.labels_per_class.is_none().then_some(args.label_fraction),
                "labels_per_class": args.labels_per_class,
                "from_scratch": args.from_scratch,
                "labelled": runs[0]["labelled"],
                "epochs": args.epochs,
                "lr": args.lr,
                "test_accuracy": spread.mean(),
                "std": spread.std(),
                "draws": runs,
                "final_loss": runs[runs.len() - 1]["final_loss"],
                "encoder": args.encoder.describe(),
            }),
        )?;
    }
    Ok(Outcome::Done)
}
