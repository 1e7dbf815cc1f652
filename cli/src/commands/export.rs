//! `byol export`: the encoder of a checkpoint, alone, as a safetensors
//! file with torchvision's names (`conv1.weight`, `bn1.running_mean`,
//! `layer1.0.conv1.weight`, ...), to load into PyTorch or into `byol embed
//! --weights`. The projector, predictor and optimiser state stay behind.

use crate::args::load_checkpoint;
use crate::commands::{CmdResult, Outcome};
use byol::Side;
use clap::Args;
use std::path::PathBuf;

/// Flags of `byol export`.
#[derive(Args, Clone, Debug)]
#[command(after_help = "Example:
  byol export --checkpoint runs/pretrain --out encoder.safetensors
Then in PyTorch (width 64; see the README for other widths and the CIFAR stem):
  from safetensors.torch import load_file
  model.load_state_dict(load_file(\"encoder.safetensors\"), strict=False)")]
pub struct ExportArgs {
    /// A pretraining run folder (its latest checkpoint) or a checkpoint's
    /// .json file.
    #[arg(long, value_name = "PATH")]
    pub checkpoint: PathBuf,
    /// Export the target encoder (the moving average) instead of the
    /// online one.
    #[arg(long)]
    pub target: bool,
    /// The safetensors file to write.
    #[arg(long, value_name = "FILE", default_value = "encoder.safetensors")]
    pub out: PathBuf,
}

/// Runs `byol export`.
pub fn run(args: ExportArgs) -> CmdResult {
    let checkpoint = load_checkpoint(&args.checkpoint)?;
    let side = if args.target {
        Side::Target
    } else {
        Side::Online
    };
    let encoder = checkpoint.encoder_tensors(side);
    models::weights::write(&args.out, &encoder)?;
    let (meta, c) = (&checkpoint.meta, &checkpoint.meta.config);
    out!(
        "wrote {} tensors of the {} encoder ({} {} stem, width {}, {} input channel(s); \
         epoch {}) to {}",
        encoder.len(),
        side.name(),
        c.arch,
        c.stem,
        c.width,
        meta.in_channels,
        meta.epoch,
        args.out.display()
    );
    out!(
        "normalise inputs with mean {:?} and std {:?} (the training data's)",
        meta.mean,
        meta.std
    );
    Ok(Outcome::Done)
}
