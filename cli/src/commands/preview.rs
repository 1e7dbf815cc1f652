//! `byol augment-preview`: a PNG grid showing what the network is asked to
//! see as "the same image": each row is one image, then draws of view 1 and
//! of view 2 (the paper's Table 6 augmentations, or the `cifar` preset).

use crate::commands::{CmdResult, Outcome};
use crate::data::DataArgs;
use augment::views::jitter::BrightnessMode;
use augment::{render_preview, PreviewOptions, Split, TwoViewConfig};
use clap::Args;
use std::path::PathBuf;

/// Flags of `byol augment-preview`.
#[derive(Args, Clone, Debug)]
#[command(after_help = "Example:
  byol augment-preview --rows 6 --draws 4 --out views.png")]
pub struct PreviewArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Augmentation preset: byol or cifar (byol without blur).
    #[arg(long, default_value = "byol")]
    pub augment: String,
    /// Smallest crop area, as a fraction of the image.
    #[arg(long, default_value_t = 0.08)]
    pub min_crop: f32,
    /// Colour jitter strength as a multiple of the paper's.
    #[arg(long, default_value_t = 1.0)]
    pub jitter: f32,
    /// How the jitter changes brightness: additive or multiplicative.
    #[arg(long, default_value = "additive")]
    pub brightness: String,
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
            return Err(format!("{flag} 0: give at least 1"));
        }
    }
    if !(args.min_crop > 0.0 && args.min_crop <= 1.0) {
        return Err(format!("--min-crop {}: must be in (0, 1]", args.min_crop));
    }
    if !(0.0..=2.5).contains(&args.jitter) {
        return Err(format!(
            "--jitter {}: must be between 0 and 2.5 (1 is the paper's)",
            args.jitter
        ));
    }
    let data = args.data.load(Split::Train, false)?;
    let norm = args.data.normalization(&data.dataset)?;
    let cfg = TwoViewConfig::preset(&args.augment, norm)
        .map_err(|e| format!("--augment: {e}"))?
        .with_min_crop(args.min_crop)
        .with_jitter_strength(args.jitter)
        .with_brightness_mode(BrightnessMode::from_name(&args.brightness).ok_or_else(|| {
            format!(
                "--brightness {}: expected additive or multiplicative",
                args.brightness
            )
        })?);
    let rows = args.rows.min(data.dataset.len());
    let opts = PreviewOptions {
        indices: (0..rows).collect(),
        draws: args.draws,
        run_seed: args.seed,
        scale: args.scale,
    };
    let picture = render_preview(&data.dataset, &cfg, &opts).map_err(|e| e.to_string())?;
    picture.write_png(&args.out).map_err(|e| e.to_string())?;
    println!(
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
