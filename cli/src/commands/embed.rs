//! `byol embed`: an encoder's features (after global average pooling, in
//! evaluation mode) of a data set or of an `.npy` array of images, written
//! as a float32 `.npy` array `[N, F]` for NumPy, scikit-learn or PyTorch.
//!
//! An `.npy` input is `(N, C, H, W)` pixel values in `[0, 1]` (what
//! torchvision's `ToTensor` gives), normalised like the encoder's training
//! data: the checkpoint's mean and standard deviation, or `--mean`/`--std`,
//! or, for bare weights without them, the array's own per-channel
//! statistics.
//!
//! A folder of images also gets, beside the features (`features.csv` for
//! `features.npy`), the file of each row with its label and class
//! (`augment::rows_csv`), so the rows can be joined back to the photos.

use crate::args::{DataArgs, DeviceArgs, EncoderArgs};
use crate::commands::{CmdResult, Outcome};
use crate::error::CliError;
use augment::{npy, rows_csv, Normalization, Split};
use byol::eval::{array_features, extract_features};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

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
    /// Also write the data set's labels as an int64 `.npy` here.
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

/// Where the list of rows goes: beside `out`, with the extension `.csv`
/// (`out.csv` when `out` already ends in `.csv`).
fn rows_path(out: &std::path::Path) -> PathBuf {
    let csv = out.with_extension("csv");
    if csv == out {
        let mut name = out.as_os_str().to_os_string();
        name.push(".csv");
        return PathBuf::from(name);
    }
    csv
}

/// Runs `byol embed`.
pub fn run(args: EmbedArgs) -> CmdResult {
    if args.batch_size == 0 {
        return Err(CliError::flag("--batch-size 0: give at least 1"));
    }
    let device = args.device.open()?;
    let loaded = args.encoder.load(&device)?;
    say!("encoder: {}", loaded.description);
    let features = match &args.npy {
        Some(path) => {
            if args.labels_out.is_some() {
                return Err(CliError::flag("--labels-out: an .npy input has no labels"));
            }
            let array = npy::read(path)?;
            let [n, c, h, w] = array.shape[..] else {
                return Err(CliError::flag(format!(
                    "--npy {}: shape {:?}; expected 4 dimensions (N, C, H, W)",
                    path.display(),
                    array.shape
                )));
            };
            // The checkpoint's statistics, or --mean/--std, or (bare
            // weights) the array's own.
            let norm = match (&args.mean, &args.std, loaded.normalization) {
                (Some(mean), Some(std), _) => Normalization {
                    mean: mean.clone(),
                    std: std.clone(),
                },
                (_, _, Some(norm)) => norm,
                _ => Normalization::from_values(&array.values, c, h * w),
            };
            array_features(
                &loaded.encoder,
                array.values,
                [n, c, h, w],
                &norm,
                args.batch_size,
                &device,
            )
            .map_err(|e| CliError::flag(format!("--npy {}: {e}", path.display())))?
        }
        None => {
            let split = match args.split {
                SplitArg::Train => Split::Train,
                SplitArg::Test => Split::Test,
            };
            let source = args
                .data
                .source_for(args.encoder.recorded_data().as_ref())?;
            let data = source.load(split, args.labels_out.is_some())?;
            say!("data: {}", data.description);
            let norm = match loaded.normalization {
                Some(n) => n,
                None => source.normalization(&data.dataset),
            };
            if let Some(path) = &args.labels_out {
                let labels = data.dataset.labels().ok_or_else(|| {
                    CliError::flag(format!("--labels-out: {} has no labels", data.description))
                })?;
                let values: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
                npy::write_i64(path, &[values.len()], &values)?;
            }
            if let Some(paths) = &data.paths {
                let csv = rows_path(&args.out);
                files::write_atomically(&csv, rows_csv(paths, &data.dataset).as_bytes())?;
                say!("rows: {} (the file and label of each row)", csv.display());
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
    out!(
        "wrote {} features of dimension {} to {}",
        shape[0],
        shape[1],
        args.out.display()
    );
    Ok(Outcome::Done)
}
