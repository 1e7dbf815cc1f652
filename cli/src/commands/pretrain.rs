//! `byol pretrain`: BYOL on a data set, into a run folder.
//!
//! A run folder holds `config.json` (every setting), `data.json` (where the
//! images came from, so `--resume` finds them again), `metrics.jsonl` (a
//! line per step and per epoch), `checkpoints/epoch-NNNN.{safetensors,json}`
//! and `plots/` (loss, kNN accuracy, collapse signal).
//!
//! Settings come from the defaults, then `--config FILE.toml`, then the
//! flags (flags win). Ctrl-C stops after the current step with a
//! checkpoint; `--resume DIR` continues exactly where it stopped.

use crate::args::DeviceArgs;
use crate::commands::{CmdResult, Outcome};
use crate::data::{DataArgs, DatasetKind};
use crate::progress::TrainProgress;
use crate::{interrupt, report};
use augment::{Dataset, Normalization, Split};
use byol::eval::features::{dataset_labels, extract_features};
use byol::eval::knn::{knn_accuracy, DEFAULT_K, DEFAULT_TEMPERATURE};
use byol::metrics::MetricsLog;
use byol::{Progress, TrainConfig, Trainer};
use clap::Args;
use models::ResNet;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tensor::Device;

/// The most training images the kNN monitor compares against (it runs
/// every few epochs; all 60,000 of Fashion-MNIST would cost more than an
/// epoch).
pub const MONITOR_TRAIN_IMAGES: usize = 10_000;

/// Flags of `byol pretrain`.
#[derive(Args, Clone, Debug, Default)]
#[command(after_help = "Examples:
  byol pretrain --epochs 60 --out runs/fmnist
  byol pretrain --dataset folder --data photos/ --image-size 64 --channels 3 --out runs/photos
  byol pretrain --config byol.toml --lr 0.5
  byol pretrain --resume runs/fmnist      (after Ctrl-C, or to finish a run)")]
pub struct PretrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub settings: Settings,
    /// A TOML file of settings, with the same names as the flags
    /// (`batch-size = 128` or `batch_size = 128`); flags win.
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// The run folder to create (it must not already hold a run).
    #[arg(long, value_name = "DIR", default_value = "runs/pretrain")]
    pub out: PathBuf,
    /// Continue the run in this folder from its latest checkpoint, with its
    /// own settings and data.
    #[arg(long, value_name = "DIR", conflicts_with = "config")]
    pub resume: Option<PathBuf>,
    /// Plain lines instead of a progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// The training settings a user may set, all optional so that the flags,
/// the TOML file and the defaults can be layered.
#[derive(Args, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// resnet18, resnet34 or resnet50 [default: resnet18]
    #[arg(long)]
    pub arch: Option<String>,
    /// cifar (3x3 stem, for small images) or imagenet [default: cifar]
    #[arg(long)]
    pub stem: Option<String>,
    /// Base width of the ResNet (64 in the paper) [default: 8]
    #[arg(long)]
    pub width: Option<usize>,
    /// Hidden width of projector and predictor (4096 in the paper) [default: 256]
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Output width of projector and predictor (256 in the paper) [default: 64]
    #[arg(long)]
    pub projection: Option<usize>,
    /// Train without the predictor (the paper's ablation; it collapses)
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub no_predictor: Option<bool>,
    /// Start the target as a copy of the online network (default: its own
    /// random initialisation, as the official code)
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub target_copy: Option<bool>,
    /// Passes over the data [default: 40]
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Images per step [default: 128]
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// lars, sgd, adam or adamw [default: adam]
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Base learning rate; the peak is lr x batch / 256 [default: 0.004]
    #[arg(long)]
    pub lr: Option<f32>,
    /// Weight decay [default: 1.5e-6]
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// Epochs of linear learning-rate warm-up [default: 1]
    #[arg(long)]
    pub warmup_epochs: Option<f32>,
    /// tau_base of the target's moving average: 0.99 for short runs, 0.996
    /// in the paper, 1 for a fixed random target, 0 for the online network
    /// as its own target [default: 0.99]
    #[arg(long)]
    pub tau: Option<f32>,
    /// Augmentation preset: byol (the paper's) or cifar (without blur)
    /// [default: cifar]
    #[arg(long)]
    pub augment: Option<String>,
    /// Smallest crop area, as a fraction of the image [default: 0.2]
    #[arg(long)]
    pub min_crop: Option<f32>,
    /// Colour jitter strength as a multiple of the paper's (0.5 = half of
    /// each of brightness, contrast, saturation, hue) [default: 1]
    #[arg(long)]
    pub jitter: Option<f32>,
    /// How the jitter changes brightness: additive (the paper's delta) or
    /// multiplicative (torchvision's factor) [default: additive]
    #[arg(long)]
    pub brightness: Option<String>,
    /// Seed of weights, shuffling and views [default: 0]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write a checkpoint every N epochs (and at the end) [default: 1]
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Run the kNN monitor every N epochs, 0 for never (needs labels)
    /// [default: 1]
    #[arg(long)]
    pub knn_every: Option<usize>,
}

impl Settings {
    /// `self` where set, `other` elsewhere.
    pub fn or(self, other: Settings) -> Settings {
        Settings {
            arch: self.arch.or(other.arch),
            stem: self.stem.or(other.stem),
            width: self.width.or(other.width),
            hidden: self.hidden.or(other.hidden),
            projection: self.projection.or(other.projection),
            no_predictor: self.no_predictor.or(other.no_predictor),
            target_copy: self.target_copy.or(other.target_copy),
            epochs: self.epochs.or(other.epochs),
            batch_size: self.batch_size.or(other.batch_size),
            optimizer: self.optimizer.or(other.optimizer),
            lr: self.lr.or(other.lr),
            weight_decay: self.weight_decay.or(other.weight_decay),
            warmup_epochs: self.warmup_epochs.or(other.warmup_epochs),
            tau: self.tau.or(other.tau),
            augment: self.augment.or(other.augment),
            min_crop: self.min_crop.or(other.min_crop),
            jitter: self.jitter.or(other.jitter),
            brightness: self.brightness.or(other.brightness),
            seed: self.seed.or(other.seed),
            checkpoint_every: self.checkpoint_every.or(other.checkpoint_every),
            knn_every: self.knn_every.or(other.knn_every),
        }
    }

    /// Whether any setting is given.
    pub fn any(&self) -> bool {
        self != &Settings::default()
    }

    /// The full configuration: these settings over `base`.
    pub fn apply(self, base: TrainConfig) -> TrainConfig {
        TrainConfig {
            arch: self.arch.unwrap_or(base.arch),
            stem: self.stem.unwrap_or(base.stem),
            width: self.width.unwrap_or(base.width),
            hidden: self.hidden.unwrap_or(base.hidden),
            projection: self.projection.unwrap_or(base.projection),
            predictor: self.no_predictor.map(|no| !no).unwrap_or(base.predictor),
            target_copy: self.target_copy.unwrap_or(base.target_copy),
            epochs: self.epochs.unwrap_or(base.epochs),
            batch_size: self.batch_size.unwrap_or(base.batch_size),
            optimizer: self.optimizer.unwrap_or(base.optimizer),
            lr: self.lr.unwrap_or(base.lr),
            weight_decay: self.weight_decay.unwrap_or(base.weight_decay),
            warmup_epochs: self.warmup_epochs.unwrap_or(base.warmup_epochs),
            tau: self.tau.unwrap_or(base.tau),
            augment: self.augment.unwrap_or(base.augment),
            min_crop: self.min_crop.unwrap_or(base.min_crop),
            jitter: self.jitter.unwrap_or(base.jitter),
            brightness: self.brightness.unwrap_or(base.brightness),
            seed: self.seed.unwrap_or(base.seed),
            checkpoint_every: self.checkpoint_every.unwrap_or(base.checkpoint_every),
            knn_every: self.knn_every.unwrap_or(base.knn_every),
        }
    }
}

/// Reads a `--config` TOML file of [`Settings`]; names may use `-` or `_`.
pub fn read_settings_file(path: &Path) -> Result<Settings, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--config {}: {e}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("--config {}: not valid TOML: {e}", path.display()))?;
    let normalised: toml::Table = table
        .into_iter()
        .map(|(k, v)| (k.replace('_', "-"), v))
        .collect();
    Settings::deserialize(normalised).map_err(|e| {
        format!(
            "--config {}: {e} (the keys are the pretrain flags without --, e.g. epochs = 20)",
            path.display()
        )
    })
}

/// Where a run's images came from (`data.json`), so `--resume` can read
/// them again without the flags.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DataRecord {
    /// The data set kind, as `--dataset` names it.
    pub dataset: DatasetKind,
    /// `--data`, if given.
    pub data: Option<PathBuf>,
    /// `--test-data`, if given.
    pub test_data: Option<PathBuf>,
    /// `--image-size`.
    pub image_size: usize,
    /// `--channels`.
    pub channels: usize,
    /// `--limit`, if given.
    pub limit: Option<usize>,
}

impl DataRecord {
    fn of(args: &DataArgs) -> Result<DataRecord, String> {
        Ok(DataRecord {
            dataset: args.kind()?,
            data: args.data.clone(),
            test_data: args.test_data.clone(),
            image_size: args.image_size,
            channels: args.channels,
            limit: args.limit,
        })
    }

    fn args(&self) -> DataArgs {
        DataArgs {
            dataset: Some(self.dataset),
            data: self.data.clone(),
            test_data: self.test_data.clone(),
            image_size: self.image_size,
            channels: self.channels,
            limit: self.limit,
        }
    }
}

/// The images a kNN monitor compares: labelled train (up to
/// [`MONITOR_TRAIN_IMAGES`]) and test splits.
pub struct MonitorData {
    /// Labelled training images (the memory bank).
    pub train: Dataset,
    /// Labelled test images (the queries).
    pub test: Dataset,
    /// Their normalisation.
    pub norm: Normalization,
    /// Number of classes.
    pub classes: usize,
}

impl MonitorData {
    /// The monitor's data from `args`, or why there is none.
    pub fn load(args: &DataArgs, norm: &Normalization) -> Result<MonitorData, String> {
        let train = args.load(Split::Train, true)?.dataset;
        let test = args.load(Split::Test, true)?.dataset;
        let train = if train.len() > MONITOR_TRAIN_IMAGES {
            train
                .subset(&(0..MONITOR_TRAIN_IMAGES).collect::<Vec<_>>())
                .map_err(|e| e.to_string())?
        } else {
            train
        };
        let classes = train.num_classes().max(test.num_classes());
        Ok(MonitorData {
            train,
            test,
            norm: norm.clone(),
            classes,
        })
    }

    /// kNN top-1 accuracy of `encoder` (left in evaluation mode).
    pub fn knn(&self, encoder: &ResNet, device: &Device) -> Result<f32, String> {
        let f_train = extract_features(encoder, &self.train, &self.norm, 256, device)?;
        let f_test = extract_features(encoder, &self.test, &self.norm, 256, device)?;
        knn_accuracy(
            &f_train,
            dataset_labels(&self.train, "kNN monitor (train)")?,
            &f_test,
            dataset_labels(&self.test, "kNN monitor (test)")?,
            self.classes,
            DEFAULT_K,
            DEFAULT_TEMPERATURE,
        )
    }
}

/// Runs `byol pretrain`.
pub fn run(args: PretrainArgs) -> CmdResult {
    let device = args.device.open()?;
    let mut trainer = match &args.resume {
        Some(run) => resume(&args, run, &device)?,
        None => start(&args, &device)?,
    };
    let run = trainer.run_folder().to_path_buf();
    let record: DataRecord = read_data_record(&run)?;
    let monitor = if trainer.config.knn_every > 0 {
        match MonitorData::load(&record.args(), trainer.normalization()) {
            Ok(m) => Some(m),
            Err(why) => {
                eprintln!("kNN monitor off: {why}");
                None
            }
        }
    } else {
        None
    };
    let outcome = train(&mut trainer, monitor.as_ref(), &device, args.quiet)?;
    finish(&trainer, outcome)
}

fn start(args: &PretrainArgs, device: &Device) -> Result<Trainer, String> {
    let from_file = match &args.config {
        Some(path) => read_settings_file(path)?,
        None => Settings::default(),
    };
    let config = args
        .settings
        .clone()
        .or(from_file)
        .apply(TrainConfig::default());
    config
        .validate()
        .map_err(|e| format!("{e} (a flag or a --config key)"))?;
    refuse_existing_run(&args.out)?;
    let loaded = args.data.load(Split::Train, false)?;
    let norm = args.data.normalization(&loaded.dataset)?;
    eprintln!("data: {}", loaded.description);
    eprintln!("device: {}", device.describe());
    eprintln!("run folder: {}", args.out.display());
    let trainer =
        Trainer::new(config, loaded.dataset, norm, device, &args.out).map_err(|e| e.to_string())?;
    write_data_record(&args.out, &args.data)?;
    Ok(trainer)
}

/// Writes `run/data.json`: where the images came from, for `--resume`.
pub fn write_data_record(run: &Path, args: &DataArgs) -> Result<(), String> {
    let record = DataRecord::of(args)?;
    report::write_json(
        &run.join("data.json"),
        &serde_json::to_value(&record).map_err(|e| e.to_string())?,
    )
}

/// Errors when `out` already holds a run: its checkpoints are someone's
/// work, never to be overwritten.
pub fn refuse_existing_run(out: &Path) -> Result<(), String> {
    if out.join("config.json").exists() || out.join("checkpoints").exists() {
        return Err(format!(
            "--out {}: already holds a run; continue it with --resume {}, or choose another --out",
            out.display(),
            out.display()
        ));
    }
    Ok(())
}

fn read_data_record(run: &Path) -> Result<DataRecord, String> {
    let path = run.join("data.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e} (a run folder made by `byol pretrain` has it)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn resume(args: &PretrainArgs, run: &Path, device: &Device) -> Result<Trainer, String> {
    if args.settings.any() {
        return Err(format!(
            "--resume {} continues with the run's own settings (its config.json); \
             drop the other training flags",
            run.display()
        ));
    }
    let record = read_data_record(run)?;
    let loaded = record.args().load(Split::Train, false)?;
    eprintln!("data: {}", loaded.description);
    eprintln!("device: {}", device.describe());
    let trainer = Trainer::resume(run, loaded.dataset, device).map_err(|e| e.to_string())?;
    eprintln!(
        "resuming {} at epoch {} (step {} of {})",
        run.display(),
        trainer.epoch,
        trainer.step,
        trainer.total_steps()
    );
    Ok(trainer)
}

/// Trains to the end (or to Ctrl-C) with progress and the kNN monitor.
pub fn train(
    trainer: &mut Trainer,
    monitor: Option<&MonitorData>,
    device: &Device,
    quiet: bool,
) -> Result<Outcome, String> {
    let run = trainer.run_folder().to_path_buf();
    let mut log = MetricsLog::open(&run.join("metrics.jsonl"))
        .map_err(|e| format!("{}: {e}", run.join("metrics.jsonl").display()))?;
    interrupt::watch(trainer.stop_flag());
    let mut progress = TrainProgress::new(
        trainer.total_steps(),
        trainer.step,
        trainer.config.epochs,
        trainer.config.projection,
        quiet,
    );
    let knn = |encoder: &ResNet| -> Result<f32, String> {
        monitor
            .expect("only given with a monitor")
            .knn(encoder, device)
    };
    let result = trainer.run(
        &mut log,
        monitor.map(|_| &knn as byol::Monitor<'_>),
        &mut |event| match event {
            Progress::Step(r) => progress.step(r),
            Progress::Epoch(r) => progress.epoch(r),
        },
    );
    progress.finish();
    result.map_err(|e| e.to_string())?;
    Ok(if trainer.stopped() {
        Outcome::Interrupted
    } else {
        Outcome::Done
    })
}

fn finish(trainer: &Trainer, outcome: Outcome) -> CmdResult {
    let run = trainer.run_folder();
    let plots = report::write_run_plots(run, None)?;
    let checkpoint = trainer
        .last_checkpoint()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "none".into());
    match outcome {
        Outcome::Interrupted => eprintln!(
            "stopped at step {} of {}; checkpoint {checkpoint}. Continue with: byol pretrain --resume {}",
            trainer.step,
            trainer.total_steps(),
            run.display()
        ),
        Outcome::Done => eprintln!(
            "done: {} steps; checkpoint {checkpoint}; plots {}",
            trainer.step,
            plots
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let dir = std::env::temp_dir().join(format!("byol-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("run.toml");
        std::fs::write(
            &file,
            "epochs = 3\nbatch_size = 64\nlr = 0.5\nno-predictor = true\n",
        )
        .unwrap();
        let from_file = read_settings_file(&file).unwrap();
        let flags = Settings {
            lr: Some(0.25),
            ..Settings::default()
        };
        let config = flags.or(from_file).apply(TrainConfig::default());
        assert_eq!(config.epochs, 3);
        assert_eq!(config.batch_size, 64);
        assert_eq!(config.lr, 0.25);
        assert!(!config.predictor);
        assert_eq!(config.width, TrainConfig::default().width);

        std::fs::write(&file, "epoch = 3\n").unwrap();
        let e = read_settings_file(&file).unwrap_err();
        assert!(e.contains("run.toml") && e.contains("epoch"), "{e}");
        std::fs::write(&file, "epochs = \"many\"\n").unwrap();
        assert!(read_settings_file(&file).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_defaults_in_the_help_are_the_real_ones() {
        use clap::Args as _;
        let defaults = serde_json::to_value(TrainConfig::default()).unwrap();
        let command = Settings::augment_args(clap::Command::new("pretrain"));
        let mut checked = 0;
        for arg in command.get_arguments() {
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let Some(start) = help.find("[default: ") else {
                continue;
            };
            let shown = help[start + 10..].trim_end_matches(']').trim();
            let real = &defaults[arg.get_id().as_str()];
            let same = match (shown.parse::<f64>(), real.as_f64()) {
                (Ok(a), Some(b)) => (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                _ => real.as_str() == Some(shown),
            };
            assert!(
                same,
                "--{}: help says {shown}, the default is {real}",
                arg.get_id()
            );
            checked += 1;
        }
        assert_eq!(checked, 19);
    }

    #[test]
    fn an_existing_run_is_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("byol-existing-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("checkpoints")).unwrap();
        let e = refuse_existing_run(&dir).unwrap_err();
        assert!(e.contains("--resume"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(refuse_existing_run(&dir).is_ok());
    }
}
