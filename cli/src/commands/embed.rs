//! `byol embed`: an encoder's features (after global average pooling, in
//! evaluation mode) of a data set or of an `.npy` array of images, written
//! as a float32 `.npy` array `[N, F]` for NumPy, scikit-learn or PyTorch.
//!
//! An `.npy` input is `(N, C, H, W)` pixel values in `[0, 1]` (what
//! torchvision's `ToTensor` gives), normalised like the encoder's training
//! data: the checkpoint's mean and standard deviation, or `--mean`/`--std`,
//! or, for bare weights without them, the array's own per-channel
//! statistics.

use crate::args::DeviceArgs;
use crate::commands::{CmdResult, Outcome};
use crate::data::DataArgs;
use crate::encoder::EncoderArgs;
use crate::npy;
use augment::{Normalization, Split};
use autograd::{no_grad, Tape, Var};
use byol::eval::features::extract_features;
use clap::{Args, ValueEnum};
use models::{Module, ResNet};
use std::path::{Path, PathBuf};
use tensor::{Device, Tensor};

/// Which split of a data set to embed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    /// The training split.
    Train,
    /// The test split.
    Test,
}

/// Flags of `byol embed`.
#[derive(Args, Clone, Debug)]
#[command(after_help = "Examples:
  byol embed --checkpoint runs/pretrain --split test --out test_features.npy
  byol embed --weights encoder.safetensors --npy images.npy --out features.npy
Read the result in Python with numpy.load(\"features.npy\").")]
pub struct EmbedArgs {
    #[command(flatten)]
    pub encoder: EncoderArgs,
    /// Embed this float32 array of shape (N, C, H, W), values in [0, 1],
    /// instead of a data set.
    #[arg(long, value_name = "FILE.npy")]
    pub npy: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Which split of the data set.
    #[arg(long, value_enum, default_value = "test")]
    pub split: SplitArg,
    /// Per-channel mean for --npy input (comma-separated), overriding the
    /// checkpoint's.
    #[arg(long, value_delimiter = ',', requires = "std")]
    pub mean: Option<Vec<f32>>,
    /// Per-channel standard deviation for --npy input (comma-separated).
    #[arg(long, value_delimiter = ',', requires = "mean")]
    pub std: Option<Vec<f32>>,
    /// Also write the data set's labels as int-valued float32 `.npy` here.
    #[arg(long, value_name = "FILE.npy")]
    pub labels_out: Option<PathBuf>,
    /// The features file to write.
    #[arg(long, value_name = "FILE.npy")]
    pub out: PathBuf,
    /// Images per forward pass.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Runs `byol embed`.
pub fn run(args: EmbedArgs) -> CmdResult {
    if args.batch_size == 0 {
        return Err("--batch-size 0: give at least 1".into());
    }
    let device = args.device.open()?;
    let loaded = args.encoder.load(&device)?;
    eprintln!("encoder: {}", loaded.description);
    let features = match &args.npy {
        Some(path) => {
            if args.labels_out.is_some() {
                return Err("--labels-out: an .npy input has no labels".into());
            }
            let given = match (&args.mean, &args.std) {
                (Some(mean), Some(std)) => Some(Normalization {
                    mean: mean.clone(),
                    std: std.clone(),
                }),
                _ => loaded.normalization.clone(),
            };
            embed_npy(&loaded.encoder, path, given, args.batch_size, &device)?
        }
        None => {
            let split = match args.split {
                SplitArg::Train => Split::Train,
                SplitArg::Test => Split::Test,
            };
            let data = args.data.load(split, false)?;
            eprintln!("data: {}", data.description);
            let norm = match loaded.normalization.clone() {
                Some(n) => n,
                None => args.data.normalization(&data.dataset)?,
            };
            if let Some(path) = &args.labels_out {
                let labels = data
                    .dataset
                    .labels()
                    .ok_or_else(|| format!("--labels-out: {} has no labels", data.description))?;
                let values: Vec<f32> = labels.iter().map(|&l| l as f32).collect();
                npy::write_f32(path, &[values.len()], &values)?;
            }
            extract_features(
                &loaded.encoder,
                &data.dataset,
                &norm,
                args.batch_size,
                &device,
            )?
        }
    };
    let shape = features.shape().to_vec();
    npy::write_f32(&args.out, &shape, &features.to_vec())?;
    println!(
        "wrote {} features of dimension {} to {}",
        shape[0],
        shape[1],
        args.out.display()
    );
    Ok(Outcome::Done)
}

/// Features of an `(N, C, H, W)` array in `[0, 1]`.
fn embed_npy(
    encoder: &ResNet,
    path: &Path,
    norm: Option<Normalization>,
    batch_size: usize,
    device: &Device,
) -> Result<Tensor, String> {
    let array = npy::read(path)?;
    let [n, c, h, w] = array.shape[..] else {
        return Err(format!(
            "--npy {}: shape {:?}; expected 4 dimensions (N, C, H, W)",
            path.display(),
            array.shape
        ));
    };
    let expected = encoder.config().in_channels;
    if c != expected {
        return Err(format!(
            "--npy {}: {c} channel(s) but the encoder takes {expected}; the array must be \
             (N, C, H, W), channels first",
            path.display()
        ));
    }
    if n == 0 || h == 0 || w == 0 {
        return Err(format!("--npy {}: the array is empty", path.display()));
    }
    let norm = norm.unwrap_or_else(|| channel_statistics(&array.values, c, h * w));
    if norm.mean.len() != c || norm.std.len() != c {
        return Err(format!(
            "--mean/--std: {} and {} values for {c} channel(s); give one per channel",
            norm.mean.len(),
            norm.std.len()
        ));
    }
    if let Some(s) = norm.std.iter().find(|s| s.is_nan() || **s <= 0.0) {
        return Err(format!(
            "--std {s}: every standard deviation must be positive"
        ));
    }
    let mut values = array.values;
    for (i, v) in values.iter_mut().enumerate() {
        let ch = (i / (h * w)) % c;
        *v = (*v - norm.mean[ch]) / norm.std[ch];
    }
    encoder.set_training(false);
    let image = c * h * w;
    let mut parts = Vec::new();
    for start in (0..n).step_by(batch_size) {
        let end = (start + batch_size).min(n);
        let x = Tensor::from_vec(
            values[start * image..end * image].to_vec(),
            &[end - start, c, h, w],
            device,
        );
        let features = no_grad(|| encoder.forward(&Tape::new(), &Var::constant(x)));
        parts.push(features.value().clone());
    }
    let refs: Vec<&Tensor> = parts.iter().collect();
    Ok(Tensor::concat(&refs, 0))
}

/// Mean and standard deviation of each channel of `(N, C, plane)` values.
fn channel_statistics(values: &[f32], channels: usize, plane: usize) -> Normalization {
    let mut sum = vec![0f64; channels];
    let mut sq = vec![0f64; channels];
    for (i, &v) in values.iter().enumerate() {
        let ch = (i / plane) % channels;
        sum[ch] += v as f64;
        sq[ch] += (v as f64) * (v as f64);
    }
    let count = (values.len() / channels) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
    let std = sq
        .iter()
        .zip(&mean)
        .map(|(q, m)| ((q / count - m * m).max(0.0).sqrt() as f32).max(1e-6))
        .collect();
    Normalization {
        mean: mean.iter().map(|&m| m as f32).collect(),
        std,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_statistics_are_per_channel() {
        // Two images of two channels of two pixels: channel 0 holds 0 and 1,
        // channel 1 holds 5 everywhere.
        let values = [0.0, 1.0, 5.0, 5.0, 1.0, 0.0, 5.0, 5.0];
        let n = channel_statistics(&values, 2, 2);
        assert_eq!(n.mean, vec![0.5, 5.0]);
        assert!((n.std[0] - 0.5).abs() < 1e-6);
        assert!(n.std[1] > 0.0 && n.std[1] < 1e-5);
    }
}
