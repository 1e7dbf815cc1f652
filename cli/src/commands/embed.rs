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

use crate::args::{DataArgs, DeviceArgs, EncoderArgs, LoadedEncoder};
use crate::commands::{CmdResult, Outcome};
use crate::error::CliError;
use augment::{npy, rows_csv, DataSource, FolderMode, Normalization, Split, ViewSource};
use byol::eval::{array_features, extract_features};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
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

/// The features of a folder of images too large to hold (`--folder-mode
/// stream`, or `auto` choosing it): the images are decoded, fitted and
/// embedded a few batches at a time; the labels and the CSV of rows are
/// written as for a folder in memory. An image that does not decode is
/// left out of the features and of the CSV, and named in a warning.
fn embed_streamed(
    args: &EmbedArgs,
    source: &DataSource,
    split: Split,
    why: &str,
    loaded: &LoadedEncoder,
    device: &Device,
) -> Result<Tensor, CliError> {
    let folder = source.open_streamed(split, args.labels_out.is_some())?;
    let index = folder.index();
    say!(
        "data: {}: {} images streamed from disk ({why}), fitted to {}x{}",
        index.root.display(),
        folder.len(),
        source.image_size,
        source.image_size
    );
    let norm = match &loaded.normalization {
        Some(n) => n.clone(),
        None => folder.statistics(augment::source::STATISTICS_SAMPLE)?,
    };
    let (c, side) = (source.channels, source.image_size);
    let all: Vec<usize> = (0..folder.len()).collect();
    let (mut values, mut kept, mut dim) = (Vec::new(), Vec::new(), 0);
    let chunks = all.chunks(args.batch_size * 4);
    let count = chunks.len();
    for (k, chunk) in chunks.enumerate() {
        let (pixels, rows) = folder.fitted_batch(chunk);
        if rows.is_empty() {
            continue;
        }
        let shape = [rows.len(), c, side, side];
        let features = array_features(
            &loaded.encoder,
            pixels,
            shape,
            &norm,
            args.batch_size,
            device,
        )?;
        dim = features.shape()[1];
        values.extend(features.to_vec());
        kept.extend(rows);
        if count >= 10 && (k + 1) % (count / 10) == 0 {
            say!("embedded {} of {} images", kept.len(), folder.len());
        }
    }
    if kept.is_empty() {
        return Err(CliError::flag(format!(
            "{}: none of its images could be decoded",
            index.root.display()
        )));
    }
    if let Some(problems) = folder.problems() {
        say!("warning: {problems}; they are left out of the features and the rows");
    }
    let labels: Option<Vec<u32>> = kept.iter().map(|&i| index.entries[i].label).collect();
    let paths: Vec<PathBuf> = kept
        .iter()
        .map(|&i| index.root.join(&index.entries[i].path))
        .collect();
    write_rows(
        args,
        &index.root.display().to_string(),
        Some(&paths),
        labels.as_deref(),
        index.class_names.as_deref(),
    )?;
    Ok(Tensor::from_vec(values, &[kept.len(), dim], &Device::Cpu))
}

/// Writes what goes beside the features of a data set: `--labels-out`
/// (int64; an error when `what` has no labels) and, for a folder (`paths`
/// given), the CSV of the file, label and class of each row.
fn write_rows(
    args: &EmbedArgs,
    what: &str,
    paths: Option<&[PathBuf]>,
    labels: Option<&[u32]>,
    names: Option<&[String]>,
) -> Result<(), CliError> {
    if let Some(path) = &args.labels_out {
        let labels =
            labels.ok_or_else(|| CliError::flag(format!("--labels-out: {what} has no labels")))?;
        let values: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        npy::write_i64(path, &[values.len()], &values)?;
    }
    if let Some(paths) = paths {
        let csv = rows_path(&args.out);
        files::write_atomically(&csv, rows_csv(paths, labels, names).as_bytes())?;
        say!("rows: {} (the file and label of each row)", csv.display());
    }
    Ok(())
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
            let (mode, why) = source.resolve_folder_mode(split)?;
            if mode == FolderMode::Stream {
                embed_streamed(&args, &source, split, &why, &loaded, &device)?
            } else {
                let data = source.load(split, args.labels_out.is_some())?;
                say!("data: {}", data.description);
                let norm = match loaded.normalization {
                    Some(n) => n,
                    None => source.normalization(&data.dataset),
                };
                write_rows(
                    &args,
                    &data.description,
                    data.paths.as_deref(),
                    data.dataset.labels(),
                    data.dataset.class_names(),
                )?;
                extract_features(
                    &loaded.encoder,
                    &data.dataset,
                    &norm,
                    args.batch_size,
                    &device,
                )?
            }
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
