//! `byol augment-preview`: a PNG grid showing what the network is asked to
//! see as "the same image": each row is one image, then draws of view 1 and
//! of view 2 (the paper's Table 6 augmentations, or the `cifar` preset).

use crate::args::DataArgs;
use crate::commands::{CmdResult, Outcome};
use crate::error::CliError;
use augment::{
    render_preview, AugmentPreset, BrightnessMode, PreviewOptions, Split, TwoViewConfig,
};
use clap::Args;
use std::path::PathBuf;

/// Flags of `byol augment-preview`.
#[derive(Args, Clone, Debug)]
#[command(after_help = "Example:
  byol augment-preview --rows 6 --draws 4 --out views.png")]
pub struct PreviewArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Augmentations: byol (the paper's) or cifar (without blur).
    #[arg(long, value_enum, default_value = "byol")]
    pub augment: AugmentPreset,
    /// Smallest crop area, as a fraction of the image.
    #[arg(long, default_value_t = 0.08)]
    pub min_crop: f32,
    /// Colour jitter strength as a multiple of the paper's.
    #[arg(long, default_value_t = 1.0)]
    pub jitter: f32,
    /// How the jitter changes brightness: additive or multiplicative.
    #[arg(long, value_enum, default_value = "additive")]
    pub brightness: BrightnessMode,
    /// Images shown (one row each), the first ones of the train split.
    #[arg(long, default_value_t = 8)]
    pub rows: usize,
    /// Draws of each view per row.
    #[arg(long, default_value_t = 4)]
    pub draws: usize,
    /// Whole-number enlargement of every tile.
    #[arg(long, default_value_t = 3)]
    pub scale: usize,
    /// Seed of the draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The PNG file to write.
    #[arg(long, value_name = "FILE.png", default_value = "views.png")]
    pub out: PathBuf,
}

/// Runs `byol augment-preview`.
pub fn run(args: PreviewArgs) -> CmdResult {
    for (flag, v) in [
        ("--rows", args.rows),
        ("--draws", args.draws),
        ("--scale", args.scale),
    ] {
        if v == 0 {
            return Err(CliError::flag(format!("{flag} 0: give at least 1")));
        }
    }
    if !(args.min_crop > 0.0 && args.min_crop <= 1.0) {
        return Err(CliError::flag(format!(
            "--min-crop {}: must be in (0, 1]",
            args.min_crop
        )));
    }
    if !(0.0..=2.5).contains(&args.jitter) {
        return Err(CliError::flag(format!(
            "--jitter {}: must be between 0 and 2.5 (1 is the paper's)",
            args.jitter
        )));
    }
    let source = args.data.source()?;
    let data = source.load(Split::Train, false)?;
    let cfg = TwoViewConfig::preset(args.augment, source.normalization(&data.dataset))
        .with_min_crop(args.min_crop)
        .with_jitter_strength(args.jitter)
        .with_brightness_mode(args.brightness);
    let rows = args.rows.min(data.dataset.len());
    let opts = PreviewOptions {
        indices: (0..rows).collect(),
        draws: args.draws,
        run_seed: args.seed,
        scale: args.scale,
    };
    let picture = render_preview(&data.dataset, &cfg, &opts)?;
    picture.write_png(&args.out)?;
    out!(
        "wrote {} ({}x{} pixels): {rows} images from {}, each followed by {} draws of view 1 \
         and {} of view 2",
        args.out.display(),
        picture.width,
        picture.height,
        data.description,
        args.draws,
        args.draws
    );
    Ok(Outcome::Done)
}
