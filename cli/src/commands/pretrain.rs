//! `byol pretrain`: BYOL on a data set, into a run folder.
//!
//! A run folder holds `config.json` (every setting), `data.json` (where the
//! images came from, so `--resume` finds them again), `metrics.jsonl` (a
//! line per step and per epoch), `checkpoints/epoch-NNNN.{safetensors,json}`
//! and `plots/` (loss, kNN accuracy, collapse signal); see `byol::run`.
//!
//! Settings come from the defaults, then `--config FILE.toml`, then the
//! flags (flags win): each layer is laid over `TrainConfig` by name, so the
//! list of settings is the library's `TrainConfig` and the flags below,
//! nothing else. Ctrl-C stops after the current step with a checkpoint;
//! `--resume DIR` continues exactly where it stopped.

use crate::args::{DataArgs, DeviceArgs};
use crate::commands::{CmdResult, Outcome};
use crate::error::CliError;
use crate::progress::TrainProgress;
use crate::{group, interrupt, report};
use augment::{AugmentPreset, BrightnessMode, DataSource, Split};
use byol::eval::LabelledSplits;
use byol::metrics::MetricsLog;
use byol::optim::OptimizerKind;
use byol::schedule::Schedule;
use byol::{run as run_folder, Progress, TrainConfig, Trainer};
use clap::Args;
use collective::{Collective, Timed};
use models::{Arch, ResNet, Stem};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tensor::Device;

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

/// The training settings a user may set, each optional so that the flags,
/// the TOML file and the defaults can be layered. The names are
/// `TrainConfig`'s; only `--no-predictor` is the negation of its
/// `predictor`.
#[derive(Args, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The ResNet [default: resnet18]
    #[arg(long, value_enum, ignore_case = true)]
    pub arch: Option<Arch>,
    /// cifar (3x3 stem, for small images) or imagenet [default: cifar]
    #[arg(long, value_enum, ignore_case = true)]
    pub stem: Option<Stem>,
    /// Base width of the ResNet (64 in the paper) [default: 16]
    #[arg(long)]
    pub width: Option<usize>,
    /// Hidden width of projector and predictor (4096 in the paper) [default: 4096]
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Output width of projector and predictor (256 in the paper) [default: 256]
    #[arg(long)]
    pub projection: Option<usize>,
    /// Train without the predictor (the paper's ablation; it collapses)
    #[arg(long = "no-predictor", num_args = 0, default_missing_value = "false")]
    pub predictor: Option<bool>,
    /// Start the target as a copy of the online network (false: its own
    /// random initialisation, as the official code) [default: true]
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub target_copy: Option<bool>,
    /// Passes over the data [default: 20]
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Images per step [default: 256]
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// The optimiser [default: adam]
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerKind>,
    /// Base learning rate; the peak is lr x batch / 256 [default: 0.002]
    #[arg(long)]
    pub lr: Option<f32>,
    /// Weight decay [default: 0]
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// Epochs of linear learning-rate warm-up [default: 1]
    #[arg(long)]
    pub warmup_epochs: Option<f32>,
    /// How the learning rate moves: cosine (warm-up, then the paper's
    /// decay to 0) or constant (the peak throughout) [default: cosine]
    #[arg(long, value_enum)]
    pub lr_schedule: Option<Schedule>,
    /// tau_base of the target's moving average: 0.9 measured best for short
    /// runs on small images, 0.996 in the paper's long runs, 1 for a fixed
    /// random target, 0 for the online network as its own target
    /// [default: 0.9]
    #[arg(long)]
    pub tau: Option<f32>,
    /// How tau moves: cosine (the paper's rise from tau_base to 1) or
    /// constant (tau_base throughout) [default: constant]
    #[arg(long, value_enum)]
    pub tau_schedule: Option<Schedule>,
    /// Augmentations: byol (the paper's) or cifar (without blur)
    /// [default: cifar]
    #[arg(long, value_enum)]
    pub augment: Option<AugmentPreset>,
    /// Smallest crop area, as a fraction of the image [default: 0.2]
    #[arg(long)]
    pub min_crop: Option<f32>,
    /// Colour jitter strength as a multiple of the paper's (0.5 = half of
    /// each of brightness, contrast, saturation, hue) [default: 1]
    #[arg(long)]
    pub jitter: Option<f32>,
    /// How the jitter changes brightness: multiplicative (torchvision's
    /// factor; black stays black, measured better for small images) or
    /// additive (the paper's delta) [default: multiplicative]
    #[arg(long, value_enum)]
    pub brightness: Option<BrightnessMode>,
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
    /// Start the online and target encoders from this torchvision-named
    /// safetensors file (`byol export`'s, or a torchvision ResNet's saved
    /// with safetensors; its fc layer is ignored), e.g. an ImageNet
    /// ResNet, to adapt it to your images; --arch, --stem, --width and the
    /// channels must match it
    #[arg(long, value_name = "FILE")]
    pub init_weights: Option<PathBuf>,
    /// With --init-weights: start only the online encoder from the file,
    /// the target as --target-copy says [default: false]
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub init_online_only: Option<bool>,
    /// Keep only the newest N checkpoints, 0 for all (a width-64 ResNet-50
    /// checkpoint with its optimiser state is hundreds of MB) [default: 0]
    #[arg(long, value_name = "N")]
    pub keep_last: Option<usize>,
    /// As several processes (mpirun), normalise each batch norm over the
    /// whole batch (true) or over each process's slice (false); alone it
    /// changes nothing [default: true]
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub sync_batch_norm: Option<bool>,
}

impl Settings {
    /// Whether any setting is given.
    pub fn any(&self) -> bool {
        self != &Settings::default()
    }
}

/// `base` with each layer's given settings laid over it in turn (later
/// layers win): every layer is written as a map by name and merged into
/// `base`'s, so no setting is listed here.
pub fn overlay(base: TrainConfig, layers: &[&Settings]) -> Result<TrainConfig, CliError> {
    let as_map = |value: serde_json::Result<Value>| match value {
        Ok(Value::Object(map)) => Ok(map),
        other => Err(CliError::flag(format!(
            "the settings cannot be combined: {other:?}"
        ))),
    };
    let mut merged = as_map(serde_json::to_value(&base))?;
    for layer in layers {
        let given = as_map(serde_json::to_value(layer))?;
        merged.extend(given.into_iter().filter(|(_, v)| !v.is_null()));
    }
    serde_json::from_value(Value::Object(merged))
        .map_err(|e| CliError::flag(format!("the settings cannot be combined: {e}")))
}

/// Reads a `--config` TOML file of [`Settings`]: keys are the flags'
/// names with `-` or `_`; `no-predictor = true` is `predictor = false`. A
/// bad key or value is an error naming the file, the key, the value and
/// the choices.
pub fn read_settings_file(path: &Path) -> Result<Settings, CliError> {
    let at = |e: String| CliError::flag(format!("--config {}: {e}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| at(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| at(format!("not valid TOML: {e}")))?;
    let mut settings = Map::new();
    for (key, value) in table {
        let mut name = key.replace('-', "_");
        let mut value = serde_json::to_value(value).map_err(|e| at(e.to_string()))?;
        if name == "no_predictor" {
            name = "predictor".into();
            value = match value {
                Value::Bool(b) => Value::Bool(!b),
                other => other,
            };
        }
        // One key at a time, so that an error names its key.
        let one = Map::from_iter([(name.clone(), value.clone())]);
        Settings::deserialize(Value::Object(one)).map_err(|e| {
            at(format!(
                "{key}: {e} (the keys are the pretrain flags without --, e.g. epochs = 20)"
            ))
        })?;
        settings.insert(name, value);
    }
    Settings::deserialize(Value::Object(settings)).map_err(|e| at(e.to_string()))
}

/// Runs `byol pretrain` as rank `group.rank()` of `group` (alone: a group
/// of one). Every rank reads the data and trains its slice of each batch;
/// rank 0 alone prints, shows progress and writes the run folder.
pub fn run(args: PretrainArgs, group: Arc<dyn Collective>) -> CmdResult {
    let loud = group.rank() == 0;
    // In a group, the time each kind of collective takes is counted, and
    // rank 0 reports its share at the end.
    let timed = (group.size() > 1).then(|| Arc::new(Timed::new(group.clone())));
    let group: Arc<dyn Collective> = match &timed {
        Some(t) => t.clone(),
        None => group,
    };
    // Everything that needs no other rank, then one agreement, so a bad
    // flag or file stops every rank together before any waits on another.
    // Several processes on a machine each take their own GPU.
    let local_rank = (group.size() > 1).then(collective::local_rank).flatten();
    let prepared = group::agree(group.as_ref(), prepare(&args, local_rank, loud))?;
    let mut trainer = match prepared {
        Prepared::Start(new) => Trainer::start_in(
            group.clone(),
            new.config,
            new.data,
            new.norm,
            Some(&new.recorded),
            &new.device,
            &args.out,
        )?,
        Prepared::Resume { run, data, device } => {
            let trainer = Trainer::resume_in(group.clone(), &run, data, &device)?;
            if loud {
                say!(
                    "resuming {} at epoch {} (step {} of {})",
                    run.display(),
                    trainer.epoch,
                    trainer.step,
                    trainer.total_steps()
                );
            }
            trainer
        }
    };
    if loud && group.size() > 1 {
        say!(
            "processes: {} ({} images of each batch of {} per process)",
            group.size(),
            trainer.config.batch_size / group.size(),
            trainer.config.batch_size
        );
    }
    let device = trainer.device();
    // The kNN monitor runs on rank 0 alone.
    let monitor = if loud && trainer.config.knn_every > 0 {
        let source = run_folder::read_data_source(trainer.run_folder())?;
        match monitor_splits(&source, trainer.normalization()) {
            Ok(m) => Some(m),
            Err(why) => {
                say!("kNN monitor off: {why}");
                None
            }
        }
    } else {
        None
    };
    let started = std::time::Instant::now();
    let knn = monitor
        .as_ref()
        .map(|splits| move |_: usize, encoder: &ResNet| splits.knn(encoder, &device));
    let outcome = train(
        &mut trainer,
        knn.as_ref().map(|k| k as byol::Monitor<'_>),
        args.quiet,
    )?;
    if let (true, Some(timed)) = (loud, &timed) {
        say!(
            "{}",
            group::time_in_collectives(
                &timed.tallies(),
                trainer.time_copying_gradients(),
                started.elapsed()
            )
        );
    }
    finish(&trainer, outcome)
}

/// What each rank readies on its own before the group trains.
enum Prepared {
    /// A new run.
    Start(Box<NewRun>),
    /// A run to continue.
    Resume {
        run: PathBuf,
        data: Box<dyn augment::ViewSource>,
        device: Device,
    },
}

/// What a new run starts from.
struct NewRun {
    config: TrainConfig,
    data: Box<dyn augment::ViewSource>,
    norm: augment::Normalization,
    recorded: DataSource,
    device: Device,
}

/// Reads the settings and the data and opens the device (this process's
/// own GPU among several, by `local_rank`); `loud` prints where each came
/// from.
fn prepare(
    args: &PretrainArgs,
    local_rank: Option<usize>,
    loud: bool,
) -> Result<Prepared, CliError> {
    if let Some(run) = &args.resume {
        if args.settings.any() {
            return Err(CliError::flag(format!(
                "--resume {} continues with the run's own settings (its config.json); drop \
                 the other training flags",
                run.display()
            )));
        }
        let source = run_folder::read_data_source(run)?;
        let opened = source.open_train()?;
        source.check_fingerprint(&*opened.images)?;
        // The run's own settings decide the step `auto` times (a
        // config.json that does not read is the resume's to report).
        let config: Option<TrainConfig> = std::fs::read_to_string(run_folder::config_path(run))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let device =
            args.device
                .open_for_training(config.as_ref(), &*opened.images, local_rank, loud)?;
        if loud {
            say!("data: {}", opened.description);
            say!("device: {}", device.describe());
        }
        return Ok(Prepared::Resume {
            run: run.clone(),
            data: opened.images,
            device,
        });
    }
    let from_file = match &args.config {
        Some(path) => read_settings_file(path)?,
        None => Settings::default(),
    };
    let config = overlay(TrainConfig::default(), &[&from_file, &args.settings])?;
    config.validate()?;
    run_folder::refuse_existing(&args.out)?;
    let source = args.data.source()?;
    let opened = source.open_train()?;
    let device = args
        .device
        .open_for_training(Some(&config), &*opened.images, local_rank, loud)?;
    // The run records how the folder was held, so that a resume reads it
    // the same way (and finds the same fingerprint).
    let recorded = DataSource {
        folder_mode: opened.mode,
        ..source
    }
    .recorded(&*opened.images)?;
    if loud {
        say!("data: {}", opened.description);
        say!("device: {}", device.describe());
        say!("run folder: {}", args.out.display());
    }
    Ok(Prepared::Start(Box::new(NewRun {
        config,
        data: opened.images,
        norm: opened.normalization,
        recorded,
        device,
    })))
}

/// The labelled splits the kNN monitor scores on, or why there are none.
fn monitor_splits(
    source: &DataSource,
    norm: &augment::Normalization,
) -> Result<LabelledSplits, CliError> {
    // A streamed folder is never read whole: the monitor takes an even
    // sample of as many images as it keeps anyway.
    let train = match source.folder_mode {
        augment::FolderMode::Stream => {
            source.labelled_sample(Split::Train, byol::eval::MONITOR_TRAIN_IMAGES)?
        }
        _ => source.load(Split::Train, true)?,
    }
    .dataset;
    let test = source.load(Split::Test, true)?.dataset;
    Ok(LabelledSplits::new(train, test, norm.clone())?.monitor()?)
}

/// Trains `config` on the train split of `splits` (read from `source`) into
/// the new run folder `run`, with the kNN monitor on `splits` when
/// `config.knn_every > 0`: what `demo` and `ablate` do for each of their
/// runs. Returns the trainer and how it ended.
pub fn pretrain_into(
    config: TrainConfig,
    splits: &LabelledSplits,
    source: &DataSource,
    device: &Device,
    run: &Path,
    quiet: bool,
) -> Result<(Trainer, Outcome), CliError> {
    run_folder::refuse_existing(run)?;
    let recorded = source.recorded(&splits.train)?;
    let mut trainer = Trainer::start(
        config,
        splits.train.clone(),
        splits.norm.clone(),
        Some(&recorded),
        device,
        run,
    )?;
    let monitor = splits.monitor()?;
    let knn = move |_: usize, encoder: &ResNet| monitor.knn(encoder, device);
    let monitor = (trainer.config.knn_every > 0).then_some(&knn as byol::Monitor<'_>);
    let outcome = train(&mut trainer, monitor, quiet)?;
    Ok((trainer, outcome))
}

/// Trains to the end (or to Ctrl-C) with progress and the `monitor`
/// (the kNN accuracy, every `knn_every` epochs); in a group, rank 0 alone
/// shows progress and keeps the record.
pub fn train(
    trainer: &mut Trainer,
    monitor: Option<byol::Monitor<'_>>,
    quiet: bool,
) -> Result<Outcome, CliError> {
    let group = trainer.group();
    let loud = group.rank() == 0;
    if loud {
        for warning in trainer.warnings() {
            say!("warning: {warning}");
        }
    }
    let log = match loud {
        true => MetricsLog::open(&run_folder::metrics_path(trainer.run_folder())),
        false => Ok(MetricsLog::sink()),
    };
    let mut log = group::agree(group, log.map_err(CliError::from))?;
    interrupt::watch(trainer.stop_flag());
    let mut progress = loud.then(|| {
        TrainProgress::new(
            trainer.total_steps(),
            trainer.step,
            trainer.config.epochs,
            trainer.config.projection,
            quiet,
        )
    });
    let result = trainer.run(
        &mut log,
        monitor,
        &mut |event| match (event, progress.as_mut()) {
            (Progress::Step(r), Some(p)) => p.step(r),
            (Progress::Epoch(r), Some(p)) => p.epoch(r),
            (_, None) => {}
        },
    );
    if let Some(p) = progress {
        p.finish();
    }
    if let (true, Some(problems)) = (loud, trainer.data_problems()) {
        say!("warning: {problems}; each time, the next image of the folder took its place");
    }
    result?;
    Ok(if trainer.stopped() {
        Outcome::Interrupted
    } else {
        Outcome::Done
    })
}

fn finish(trainer: &Trainer, outcome: Outcome) -> CmdResult {
    if trainer.group().rank() != 0 {
        return Ok(outcome);
    }
    let run = trainer.run_folder();
    // The run is done and saved: a plot that cannot be drawn (a full disk,
    // a read-only plots/) is worth a warning, not a failed run.
    let plots = report::write_run_plots(run, &[]).unwrap_or_else(|e| {
        say!("warning: the plots were not drawn: {e}");
        Vec::new()
    });
    let checkpoint = trainer
        .last_checkpoint()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "none".into());
    match outcome {
        Outcome::Interrupted => say!(
            "stopped at step {} of {}; checkpoint {checkpoint}. Continue with: byol pretrain --resume {}",
            trainer.step,
            trainer.total_steps(),
            run.display()
        ),
        Outcome::Done => say!(
            "done: {} steps; checkpoint {checkpoint}; plots {}",
            trainer.step,
            plots
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
    if let Some(peak) = crate::memory::peak_resident_bytes() {
        say!("peak memory: {:.0} MB", peak as f64 / 1e6);
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("byol-settings-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let dir = scratch("layers");
        let file = dir.join("run.toml");
        std::fs::write(
            &file,
            "epochs = 3\nbatch_size = 64\nlr = 0.5\nno-predictor = true\noptimizer = \"lars\"\n",
        )
        .unwrap();
        let from_file = read_settings_file(&file).unwrap();
        let flags = Settings {
            lr: Some(0.25),
            arch: Some(Arch::ResNet34),
            ..Settings::default()
        };
        let config = overlay(TrainConfig::default(), &[&from_file, &flags]).unwrap();
        assert_eq!(config.epochs, 3);
        assert_eq!(config.batch_size, 64);
        assert_eq!(config.lr, 0.25);
        assert_eq!(config.optimizer, OptimizerKind::Lars);
        assert_eq!(config.arch, Arch::ResNet34);
        assert!(!config.predictor);
        assert_eq!(config.width, TrainConfig::default().width);
        // Nothing given: the defaults, exactly.
        assert_eq!(
            overlay(TrainConfig::default(), &[&Settings::default()]).unwrap(),
            TrainConfig::default()
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn every_bad_key_or_value_in_a_file_is_named_with_the_choices() {
        let dir = scratch("bad");
        let file = dir.join("bad.toml");
        for (text, expect) in [
            ("epoch = 3\n", vec!["bad.toml", "epoch", "unknown field"]),
            ("epochs = \"many\"\n", vec!["epochs", "many"]),
            (
                "arch = \"vgg\"\n",
                vec!["arch", "vgg", "resnet18", "resnet50"],
            ),
            (
                "stem = \"tiny\"\n",
                vec!["stem", "tiny", "imagenet", "cifar"],
            ),
            (
                "optimizer = \"rmsprop\"\n",
                vec!["optimizer", "rmsprop", "lars", "adamw"],
            ),
            (
                "augment = \"heavy\"\n",
                vec!["augment", "heavy", "byol", "cifar"],
            ),
            (
                "brightness = \"linear\"\n",
                vec!["brightness", "linear", "multiplicative"],
            ),
            ("no-predictor = 3\n", vec!["no-predictor", "3"]),
            ("lr = [1]\n", vec!["lr"]),
            ("width = -2\n", vec!["width", "-2"]),
            ("epochs = \n", vec!["not valid TOML"]),
        ] {
            std::fs::write(&file, text).unwrap();
            let e = read_settings_file(&file).unwrap_err().to_string();
            for word in expect {
                assert!(e.contains(word), "{text:?}: {word:?} not in: {e}");
            }
        }
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
                _ => {
                    real.as_str() == Some(shown)
                        || real.as_bool().map(|b| b.to_string()).as_deref() == Some(shown)
                }
            };
            assert!(
                same,
                "--{}: help says {shown}, the default is {real}",
                arg.get_id()
            );
            checked += 1;
        }
        assert_eq!(checked, 25);
    }
}
