//! `byol study`: what BYOL buys on a labelled data set at a given budget,
//! in one command that resumes: the learning curve of the BYOL run beside
//! raw pixels, the paper's ablation (Table 5a) and the few-labels
//! comparison, written as `results.md` with plots. The plan, the rows and
//! the measurements are `byol::study`'s; this module runs them in order
//! (most useful first: pixels, the BYOL run and its curve, few labels,
//! then the ablation), shows progress and rewrites the report after every
//! measurement, so a study stopped halfway reports what it has. Ctrl-C
//! stops the row in training (with a checkpoint) or the study between two
//! measurements.

mod report;

use crate::args::{DataArgs, DeviceArgs};
use crate::commands::pretrain::{overlay, read_settings_file, train, Settings};
use crate::commands::{percent, CmdResult, Outcome};
use crate::error::CliError;
use crate::interrupt;
use augment::Split;
use byol::eval::LabelledSplits;
use byol::study::{
    self, curve_key, draw_seed, epochs_key, few_key, few_label_accuracy, final_key, probe_scores,
    row_path, Cells, FeaturePair, FewLabelMethod, FinetuneSettings, ProbeScores, Row, StudyPlan,
    PIXELS_KEY,
};
use byol::{TrainConfig, Trainer};
use clap::Args;
use models::ResNet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tensor::{Device, Tensor};

/// Flags of `byol study`.
#[derive(Args, Clone, Debug)]
#[command(after_help = "Examples:
  byol study --dataset fashion-mnist --data /usr/share/datasets/fashion-mnist --epochs 5 \\
      --width 16 --hidden 4096 --projection 256 --batch-size 256 --out runs/study
  byol study --epochs 10 --no-ablation --labels-per-class 10 --draws 3 --out runs/quick
Run the same command again to continue a stopped study: every pretraining row
resumes from its checkpoint and every measurement already made is kept.")]
pub struct StudyArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// The BYOL row's training settings (the budget); each ablation row
    /// changes one of them.
    #[command(flatten)]
    pub settings: Settings,
    /// A TOML file of training settings, as `byol pretrain --config`;
    /// flags win.
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// Leave out the ablation rows (fixed random target, other tau_base,
    /// tau = 0, no predictor).
    #[arg(long)]
    pub no_ablation: bool,
    /// The few-labels part: these numbers of labelled images per class
    /// (comma-separated).
    #[arg(
        long,
        value_name = "K,...",
        value_delimiter = ',',
        default_value = "1,10,100"
    )]
    pub labels_per_class: Vec<usize>,
    /// Leave out the few-labels part.
    #[arg(long, conflicts_with = "labels_per_class")]
    pub no_few_labels: bool,
    /// Draws of the labelled images for each K.
    #[arg(long, default_value_t = 5)]
    pub draws: usize,
    /// Few labels: passes of fine-tuning (BYOL fine-tuned and from scratch).
    #[arg(long, default_value_t = FinetuneSettings::default().epochs)]
    pub finetune_epochs: usize,
    /// Few labels: fine-tuning's images per mini-batch.
    #[arg(long, default_value_t = FinetuneSettings::default().batch_size)]
    pub finetune_batch_size: usize,
    /// Few labels: fine-tuning's peak learning rate (SGD, cosine decay).
    #[arg(long, default_value_t = FinetuneSettings::default().lr)]
    pub finetune_lr: f32,
    /// The study folder: study.json, rows/<row>/ (run folders), cells/
    /// (measurements), results.md and plots/. Given again, the study
    /// continues.
    #[arg(long, value_name = "DIR", default_value = "runs/study")]
    pub out: PathBuf,
    /// Plain lines instead of progress bars.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// What every step of a study shares.
struct Context {
    plan: StudyPlan,
    splits: LabelledSplits,
    cells: Cells,
    device: Device,
    out: PathBuf,
    quiet: bool,
    /// The command as typed, for the report.
    command: String,
    /// Set by Ctrl-C between measurements.
    stop: Arc<AtomicBool>,
}

/// Runs `byol study`.
pub fn run(args: StudyArgs) -> CmdResult {
    let ctx = prepare(&args)?;
    let rows = ctx.plan.rows();
    let mut write_report = || report::write(&ctx, &rows);
    write_report()?;

    // 1. Raw pixels: the baseline every representation is held to.
    let pixels = ctx.cells.get_or(PIXELS_KEY, || {
        say!("measuring raw pixels (kNN and logistic probe)...");
        let (f_train, f_test) = ctx.splits.pixels(&ctx.device)?;
        probe_scores(&ctx.splits, &f_train, &f_test)
    })?;
    say!("raw pixels: {}", scores_line(&pixels));
    write_report()?;
    if stopped(&ctx) {
        return Ok(interrupted(&ctx));
    }

    // 2. The BYOL row, scored after every epoch: the learning curve, from
    // its random initialisation (rebuilt from the seed when its cell is
    // missing) to its final encoder.
    let byol_row = &rows[0];
    let at_init = ctx.cells.get_or(&curve_key(0), || {
        say!("{}: measuring the random initialisation...", byol_row.name);
        let channels = ctx.splits.train.channels();
        let nets = byol::ByolNetworks::new(
            byol_row.config.network(channels),
            byol_row.config.seed,
            &ctx.device,
        );
        let (f_train, f_test) = ctx.splits.features(&nets.online.encoder, &ctx.device)?;
        probe_scores(&ctx.splits, &f_train, &f_test)
    })?;
    say!("random initialisation: {}", scores_line(&at_init));
    if stopped(&ctx) {
        return Ok(interrupted(&ctx));
    }
    // Once every measurement it serves is stored, the BYOL row is not
    // needed (nor its run folder: a study can travel as study.json and
    // cells/).
    let measured: Option<ProbeScores> = if ctx.cells.has_all(&ctx.plan.byol_row_keys()) {
        ctx.cells.get(&curve_key(byol_row.config.epochs))?
    } else {
        None
    };
    if let Some(last) = measured {
        keep_epochs(&ctx, byol_row)?;
        say!(
            "{}: {} (measured; its curve and few-labels cells are all made)",
            byol_row.name,
            scores_line(&last)
        );
    } else {
        let (trainer, outcome) = train_row(&ctx, byol_row, true)?;
        write_report()?;
        if outcome == Outcome::Interrupted {
            return Ok(interrupted(&ctx));
        }
        let encoder = &trainer.nets().online.encoder;
        let last = ctx.cells.get_or(&curve_key(byol_row.config.epochs), || {
            let (f_train, f_test) = ctx.splits.features(encoder, &ctx.device)?;
            probe_scores(&ctx.splits, &f_train, &f_test)
        })?;
        say!("{}: {}", byol_row.name, scores_line(&last));
        write_report()?;

        // 3. Few labels, with the BYOL encoder.
        if few_labels(&ctx, encoder, &mut write_report)? == Outcome::Interrupted {
            return Ok(interrupted(&ctx));
        }
        drop(trainer);
    }

    // 4. The ablation rows.
    for row in &rows[1..] {
        if stopped(&ctx) {
            return Ok(interrupted(&ctx));
        }
        if let Some(scores) = ctx.cells.get::<ProbeScores>(&final_key(row))? {
            keep_epochs(&ctx, row)?;
            say!("{}: {} (measured)", row.name, scores_line(&scores));
            continue;
        }
        let (trainer, outcome) = train_row(&ctx, row, false)?;
        if outcome == Outcome::Interrupted {
            write_report()?;
            return Ok(interrupted(&ctx));
        }
        let scores = ctx.cells.get_or(&final_key(row), || {
            say!("{}: measuring the final encoder...", row.name);
            let (f_train, f_test) = ctx
                .splits
                .features(&trainer.nets().online.encoder, &ctx.device)?;
            probe_scores(&ctx.splits, &f_train, &f_test)
        })?;
        say!("{}: {}", row.name, scores_line(&scores));
        write_report()?;
    }
    if stopped(&ctx) {
        return Ok(interrupted(&ctx));
    }
    let written = write_report()?;
    out!(
        "study done: {} ({})",
        ctx.out.join("results.md").display(),
        written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(Outcome::Done)
}

/// Reads the settings and data, checks or records the plan, opens the
/// device and the cells.
fn prepare(args: &StudyArgs) -> Result<Context, CliError> {
    let from_file = match &args.config {
        Some(path) => read_settings_file(path)?,
        None => Settings::default(),
    };
    let mut base: TrainConfig = overlay(TrainConfig::default(), &[&from_file, &args.settings])?;
    // The study's own: every row checkpoints and is scored each epoch and
    // keeps one checkpoint (so these flags never make two plans differ).
    (base.checkpoint_every, base.keep_last, base.knn_every) = (1, 1, 1);
    if base.init_weights.is_some() {
        return Err(CliError::flag(
            "--init-weights: a study compares BYOL with a random initialisation; start it \
             from random weights (drop --init-weights)",
        ));
    }
    let source = args.data.source()?;
    let train_split = source.load(Split::Train, true)?;
    let test_split = source.load(Split::Test, true)?;
    let norm = source.normalization(&train_split.dataset);
    let recorded = source.recorded(&train_split.dataset)?;
    say!("train: {}", train_split.description);
    say!("test: {}", test_split.description);
    let device = args
        .device
        .open_for_training(Some(&base), &train_split.dataset, None, true)?;
    say!("device: {}", device.describe());
    let splits = LabelledSplits::new(train_split.dataset, test_split.dataset, norm)?;
    // A K the train split cannot give is refused now, not after hours of
    // pretraining.
    if !args.no_few_labels {
        let labels = byol::eval::dataset_labels(&splits.train, "train")?;
        for &k in &args.labels_per_class {
            byol::eval::per_class_fraction(labels, splits.classes, k)
                .map_err(|e| CliError::flag(format!("--labels-per-class {k}: {e}")))?;
        }
    }
    let plan = StudyPlan {
        base,
        data: recorded,
        ablation: !args.no_ablation,
        labels_per_class: if args.no_few_labels {
            Vec::new()
        } else {
            args.labels_per_class.clone()
        },
        draws: args.draws,
        finetune: FinetuneSettings {
            epochs: args.finetune_epochs,
            batch_size: args.finetune_batch_size,
            lr: args.finetune_lr,
        },
    };
    plan.validate()?;
    match study::read_plan(&args.out)? {
        Some(recorded) => {
            plan.check_same(&recorded, &args.out)?;
            say!("continuing the study in {}", args.out.display());
        }
        None => {
            std::fs::create_dir_all(&args.out)
                .map_err(|e| CliError::flag(format!("--out {}: {e}", args.out.display())))?;
            if std::fs::read_dir(&args.out).is_ok_and(|mut d| d.next().is_some()) {
                return Err(CliError::flag(format!(
                    "--out {}: the folder holds files but no study (study.json); give an empty \
                     or new folder",
                    args.out.display()
                )));
            }
            study::write_plan(&args.out, &plan)?;
            say!("new study in {}", args.out.display());
        }
    }
    let cells = Cells::open(&args.out)?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut words = vec!["byol".to_string()];
    words.extend(std::env::args().skip(1).map(|w| shell_word(&w)));
    Ok(Context {
        plan,
        splits,
        cells,
        device,
        out: args.out.clone(),
        quiet: args.quiet,
        command: words.join(" "),
        stop,
    })
}

/// A word as a shell would need it quoted.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=,:".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Whether Ctrl-C asked the study to stop (checked between measurements).
fn stopped(ctx: &Context) -> bool {
    interrupt::watch(ctx.stop.clone());
    ctx.stop.load(Ordering::SeqCst)
}

/// Says how to continue; the outcome of a stopped study.
fn interrupted(ctx: &Context) -> Outcome {
    say!(
        "study stopped; what it measured is kept. Continue with the same command (--out {}).",
        ctx.out.display()
    );
    Outcome::Interrupted
}

fn scores_line(s: &ProbeScores) -> String {
    format!(
        "kNN {}, logistic probe {}{}",
        percent(s.knn),
        percent(s.logistic),
        if s.logistic_converged {
            ""
        } else {
            " (L-BFGS not converged)"
        }
    )
}

/// Trains `row` to its end in its run folder, starting it or resuming it
/// (a finished row just loads). With `curve`, every epoch's online encoder
/// is scored on the whole splits as a learning-curve cell (epoch 0 before
/// the first step); otherwise the usual kNN monitor runs.
fn train_row(ctx: &Context, row: &Row, curve: bool) -> Result<(Trainer, Outcome), CliError> {
    let run = row_path(&ctx.out, row);
    let started = byol::run::config_path(&run).exists() || byol::checkpoint::has_trained(&run);
    let mut trainer = if started {
        let trainer = Trainer::resume(&run, ctx.splits.train.clone(), &ctx.device)?;
        if trainer.config != row.config {
            let cells = if curve {
                "cells/curve-epoch-*.json".to_string()
            } else {
                format!("cells/{}.json", final_key(row))
            };
            return Err(CliError::flag(format!(
                "{}: the run there has other settings than the study's row '{}'; to train the \
                 row again, move that folder and the row's measurements ({cells}) away",
                run.display(),
                row.name
            )));
        }
        trainer
    } else {
        std::fs::create_dir_all(run.parent().unwrap_or(Path::new(".")))
            .map_err(|e| CliError::flag(format!("{}: {e}", run.display())))?;
        Trainer::start(
            row.config.clone(),
            ctx.splits.train.clone(),
            ctx.splits.norm.clone(),
            Some(&ctx.plan.data),
            &ctx.device,
            &run,
        )?
    };
    let total = trainer.config.epochs;
    if trainer.epoch >= total {
        keep_epochs(ctx, row)?;
        return Ok((trainer, Outcome::Done));
    }
    say!(
        "{}: training, epoch {} of {} ({})",
        row.name,
        trainer.epoch + 1,
        total,
        run.display()
    );
    let score = |epoch: usize, encoder: &ResNet| -> byol::Result<ProbeScores> {
        ctx.cells.get_or(&curve_key(epoch), || {
            let (f_train, f_test) = ctx.splits.features(encoder, &ctx.device)?;
            probe_scores(&ctx.splits, &f_train, &f_test)
        })
    };
    let monitor_splits = ctx.splits.monitor()?;
    // Each curve cell is a measurement: the report is rewritten after it
    // (a report that cannot be written is a warning, not a stop).
    let rows = ctx.plan.rows();
    let curve_monitor = |epoch: usize, encoder: &ResNet| {
        let scores = score(epoch, encoder)?;
        if let Err(e) = report::write(ctx, &rows) {
            say!("warning: the study's report was not rewritten: {e}");
        }
        Ok(scores.knn)
    };
    let knn_monitor = |_: usize, encoder: &ResNet| monitor_splits.knn(encoder, &ctx.device);
    let monitor: byol::Monitor<'_> = if curve { &curve_monitor } else { &knn_monitor };
    let outcome = train(&mut trainer, Some(monitor), ctx.quiet)?;
    // Ctrl-C went to the trainer while it trained (even during its last
    // epoch's scoring); from here on it goes to the study's own flag.
    if trainer.stop_flag().load(Ordering::SeqCst) {
        ctx.stop.store(true, Ordering::SeqCst);
    }
    interrupt::watch(ctx.stop.clone());
    if outcome == Outcome::Done {
        keep_epochs(ctx, row)?;
        // Each row's own plots (loss, kNN, collapse), as pretrain draws.
        if let Err(e) = crate::report::write_run_plots(&run, &[]) {
            say!(
                "warning: the plots of {} were not drawn: {e}",
                run.display()
            );
        }
    }
    Ok((trainer, outcome))
}

/// Copies a finished row's epoch records from its `metrics.jsonl` into
/// the cells (once), so the report keeps its loss and collapse signal
/// when the run folder is gone. Nothing to copy (no run folder) is fine.
fn keep_epochs(ctx: &Context, row: &Row) -> Result<(), CliError> {
    let key = epochs_key(row);
    if ctx.cells.has(&key) {
        return Ok(());
    }
    let metrics = byol::run::metrics_path(&row_path(&ctx.out, row));
    match byol::metrics::read_metrics(&metrics) {
        Ok(m) if m.epochs.len() >= row.config.epochs => Ok(ctx.cells.put(&key, &m.epochs)?),
        _ => Ok(()),
    }
}

/// The few-labels part: every (K, draw, method) cell not measured yet.
fn few_labels(
    ctx: &Context,
    encoder: &ResNet,
    write_report: &mut dyn FnMut() -> Result<Vec<PathBuf>, CliError>,
) -> Result<Outcome, CliError> {
    let plan = &ctx.plan;
    // Features are computed once, and only when a cell needs them.
    let mut byol_features: Option<(Tensor, Tensor)> = None;
    let mut pixels: Option<(Tensor, Tensor)> = None;
    for &k in &plan.labels_per_class {
        for draw in 0..plan.draws {
            for method in FewLabelMethod::ALL {
                let key = few_key(k, method, draw);
                if ctx.cells.get::<f32>(&key)?.is_some() {
                    continue;
                }
                if stopped(ctx) {
                    return Ok(Outcome::Interrupted);
                }
                let features = match method {
                    FewLabelMethod::ByolLogistic => {
                        if byol_features.is_none() {
                            byol_features = Some(ctx.splits.features(encoder, &ctx.device)?);
                        }
                        byol_features.as_ref()
                    }
                    FewLabelMethod::PixelsLogistic => {
                        if pixels.is_none() {
                            pixels = Some(ctx.splits.pixels(&ctx.device)?);
                        }
                        pixels.as_ref()
                    }
                    _ => None,
                }
                .map(|(train, test)| FeaturePair { train, test });
                let accuracy = few_label_accuracy(
                    &plan.finetune,
                    draw_seed(plan, draw),
                    &ctx.splits,
                    method,
                    k,
                    features,
                    encoder,
                )?;
                ctx.cells.put(&key, &accuracy)?;
                say!(
                    "{k} labels per class, draw {}: {} {}",
                    draw + 1,
                    method.describe(),
                    percent(accuracy)
                );
                write_report()?;
            }
        }
    }
    Ok(Outcome::Done)
}
