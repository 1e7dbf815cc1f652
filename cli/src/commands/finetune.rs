//! `byol finetune`: the paper's semi-supervised protocol (Table 2), scaled
//! down: the whole encoder and a linear head trained on a class-balanced
//! fraction of the train split's labels, scored on the test split.

use crate::args::{check_fraction, DataArgs, DeviceArgs, EncoderArgs};
use crate::commands::{encoder_and_splits, CmdResult, Outcome};
use crate::report;
use byol::eval::finetune::{finetune, FinetuneConfig};
use clap::Args;
use models::Module;
use serde_json::json;
use std::path::PathBuf;
use tensor::Tensor;

/// Flags of `byol finetune`.
#[derive(Args, Clone, Debug)]
#[command(after_help = "Examples:
  byol finetune --checkpoint runs/pretrain --label-fraction 0.01
  byol finetune --checkpoint runs/pretrain --label-fraction 0.1 --out finetuned.safetensors")]
pub struct FinetuneArgs {
    #[command(flatten)]
    pub encoder: EncoderArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// The fraction of the train split whose labels are used, class-balanced
    /// (0.01 and 0.1 in the paper).
    #[arg(long, default_value_t = 0.1)]
    pub label_fraction: f64,
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
    let device = args.device.open()?;
    let (encoder, data) = encoder_and_splits(&args.encoder, &args.data, &device)?;
    let config = FinetuneConfig {
        fraction: args.label_fraction,
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        seed: args.seed,
        augment: !args.no_augment,
        ..FinetuneConfig::default()
    };
    let r = finetune(
        &encoder,
        &data.train,
        &data.test,
        &data.norm,
        data.classes,
        &config,
    )?;
    out!(
        "fine-tuned on {} labelled images ({}% of {}): top-1 accuracy {:.4} on {} test images",
        r.labelled,
        args.label_fraction * 100.0,
        data.train.len(),
        r.test_accuracy,
        data.test.len()
    );
    if let Some(path) = &args.out {
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
                "label_fraction": args.label_fraction,
                "labelled": r.labelled,
                "epochs": args.epochs,
                "lr": args.lr,
                "test_accuracy": r.test_accuracy,
                "final_loss": r.final_loss,
                "encoder": args.encoder.describe(),
            }),
        )?;
    }
    Ok(Outcome::Done)
}
