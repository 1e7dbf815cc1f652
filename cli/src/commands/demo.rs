//! `byol demo`: the README's first command. On the embedded Fashion-MNIST
//! subset (6,000 training and 1,000 test images, no download), it
//!
//! 1. builds a small ResNet-18 and scores its random initialisation;
//! 2. pretrains it with BYOL, without labels, with the kNN monitor;
//! 3. scores the BYOL encoder the same way (kNN and linear probe on the
//!    frozen features, with the train split's labels, on the test split);
//! 4. prints the comparison (with raw pixels for context) and writes the
//!    plots: loss, kNN per epoch, and a 2-D PCA of the test embeddings of
//!    both encoders, coloured by class;
//! 5. asks what BYOL buys when labels are few (the question of the paper's
//!    Table 2): with 1 and 10 labelled images per class, over a few draws
//!    of them, a logistic regression on the BYOL features and the BYOL
//!    encoder fine-tuned, against the same ResNet trained from scratch on
//!    those labels and a logistic regression on the raw pixels, and plots
//!    it (`plots/few-labels.png`).
//!
//! The settings are sized for a 2-core laptop CPU: see [`demo_config`].

use crate::args::DeviceArgs;
use crate::commands::pretrain::pretrain_into;
use crate::commands::{percent, CmdResult, Outcome};
use crate::error::CliError;
use crate::interrupt;
use crate::report::few_labels_chart;
use crate::report::{self, Table};
use augment::{DataSource, Split};
use byol::eval::{pca_2d, LabelledSplits, Scores, Spread};
use byol::study::{
    check_few_labels, few_label_accuracy, FeaturePair, FewLabelMethod, FinetuneSettings,
};
use byol::TrainConfig;
use charts::{scatter_panels, ScatterPanel};
use clap::Args;
use models::ResNet;
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tensor::Tensor;

/// Flags of `byol demo`.
#[derive(Args, Clone, Debug)]
#[command(after_help = "Example:
  cargo run --release -p cli -- demo
About 7 minutes on 2 CPU cores; the results and plots go to runs/demo.")]
pub struct DemoArgs {
    /// Passes of BYOL over the 6,000 training images.
    #[arg(long, default_value_t = 40)]
    pub epochs: usize,
    /// Base width of the ResNet-18 (8: 64-d features; 16 is about twice as
    /// slow).
    #[arg(long, default_value_t = 8)]
    pub width: usize,
    /// Use only the first N images of each split (a quicker, weaker demo).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Seed of the weights, the order and the views.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The few-labels comparison's numbers of labelled images per class.
    #[arg(
        long,
        value_name = "K,...",
        value_delimiter = ',',
        default_value = "1,10"
    )]
    pub labels_per_class: Vec<usize>,
    /// Draws of the labelled images for each K (the table gives mean ± sd).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub draws: usize,
    /// Skip the few-labels comparison.
    #[arg(long, conflicts_with = "labels_per_class")]
    pub no_few_labels: bool,
    /// The run folder to create.
    #[arg(long, value_name = "DIR", default_value = "runs/demo")]
    pub out: PathBuf,
    /// Plain lines instead of a progress bar.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// The demo's BYOL settings: [`TrainConfig::demo`] (a ResNet-18 of
/// width 8, heads 256 -> 64, batch 128, Adam, crops of at least 20% of the
/// 28x28 image, τ 0.9 held constant, the paper's augmentations without blur),
/// measured to beat the random-init encoder on the embedded subset, with a
/// checkpoint every 5 epochs. (The defaults of `pretrain` and `study` are
/// the larger recipe for small images, [`TrainConfig::default`]: about
/// 100 minutes on the full Fashion-MNIST.)
pub fn demo_config(epochs: usize, seed: u64) -> TrainConfig {
    TrainConfig {
        epochs,
        seed,
        checkpoint_every: 5,
        ..TrainConfig::demo()
    }
}

/// The embedded data (or the first `limit` images of each split) as a
/// labelled pair, and the source it was read from.
pub fn embedded_splits(limit: Option<usize>) -> Result<(DataSource, LabelledSplits), CliError> {
    let source = DataSource {
        limit,
        ..DataSource::default()
    };
    let train = source.load(Split::Train, true)?;
    let test = source.load(Split::Test, true)?;
    say!("data: {}", train.description);
    say!("      {}", test.description);
    let norm = source.normalization(&train.dataset);
    let splits = LabelledSplits::new(train.dataset, test.dataset, norm)?;
    Ok((source, splits))
}

/// Runs `byol demo`.
pub fn run(args: DemoArgs) -> CmdResult {
    let start = Instant::now();
    if !args.no_few_labels {
        check_few_label_flags(&args.labels_per_class, args.draws)?;
    }
    let (source, data) = embedded_splits(args.limit)?;
    let config = TrainConfig {
        width: args.width,
        ..demo_config(args.epochs, args.seed)
    };
    config.validate()?;
    let device = args
        .device
        .open_for_training(Some(&config), &data.train, None, true)?;
    say!("device: {}", device.describe());

    // The pixels as features: scored here, and the few-labels baseline.
    let pixel_features = data.pixels(&device)?;
    let pixels = data.score_features(&pixel_features.0, &pixel_features.1)?;
    say!(
        "raw pixels: kNN {}, linear probe {}",
        percent(pixels.knn),
        percent(pixels.linear)
    );
    // The network the trainer starts from (the same seed builds the same
    // weights), scored before any step.
    let at_init =
        byol::ByolNetworks::new(config.network(data.train.channels()), config.seed, &device);
    let (random, random_features) = data.score_encoder(&at_init.online.encoder, &device)?;
    drop(at_init);
    say!(
        "random-init encoder: kNN {}, linear probe {}",
        percent(random.knn),
        percent(random.linear)
    );
    // The kNN plot shows where the encoder starts and what it must beat.
    let baselines = [
        ("raw pixels (no network)", pixels.knn),
        ("random init", random.knn),
    ];
    say!(
        "pretraining with BYOL for {} epochs (no labels)...",
        config.epochs
    );
    let (trainer, outcome) = pretrain_into(config, &data, &source, &device, &args.out, args.quiet)?;
    if outcome == Outcome::Interrupted {
        say!(
            "stopped; checkpoint in {}. Continue the training with: byol pretrain --resume {}",
            args.out.display(),
            args.out.display()
        );
        report::write_run_plots(&args.out, &baselines)?;
        return Ok(outcome);
    }
    let (trained, trained_features) =
        data.score_encoder(&trainer.nets().online.encoder, &device)?;

    let table = results_table(&pixels, &random, &trained);
    out!("\n{}\n", table.text());
    let verdict = if trained.knn > random.knn && trained.linear > random.linear {
        format!(
            "BYOL beat the random-init encoder by {:.1} points (kNN) and {:.1} points (linear \
             probe), without using a label.",
            (trained.knn - random.knn) * 100.0,
            (trained.linear - random.linear) * 100.0
        )
    } else {
        "BYOL did not beat the random-init encoder on both measures at this budget; try \
         more --epochs (the kNN curve in plots/knn.png shows the trend)."
            .to_string()
    };
    out!("{verdict}");

    let mut plots = report::write_run_plots(&args.out, &baselines)?;
    let pca = scatter_panels(
        "Test images, first two principal components of the encoder's features",
        &[
            panel("random-init encoder", &random_features, &data)?,
            panel("BYOL encoder", &trained_features, &data)?,
        ],
        &class_names(&data)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let pca_path = args.out.join("plots").join("pca.png");
    pca.save_png(&pca_path)?;
    plots.push(pca_path);
    let mut markdown = table.markdown();
    let few = if args.no_few_labels {
        None
    } else {
        let few = few_labels(
            &args,
            &data,
            &trainer.nets().online.encoder,
            &pixel_features,
            &device,
        )?;
        let table = few.table();
        out!("\n{}\n", table.text());
        out!("{}", few.verdict());
        markdown += &format!(
            "\n## Few labels ({} draws each)\n\n{}",
            args.draws,
            table.markdown()
        );
        let chart = few_labels_chart(&few.per_class, &FewLabelMethod::ALL, few.means());
        let path = args.out.join("plots").join("few-labels.png");
        chart.save_png(&path)?;
        plots.push(path);
        Some(few)
    };
    let minutes = start.elapsed().as_secs_f32() / 60.0;
    report::write_text(&args.out.join("results.md"), &markdown)?;
    report::write_json(
        &args.out.join("results.json"),
        &json!({
            "raw_pixels": {"knn": pixels.knn, "linear": pixels.linear},
            "random_init": {"knn": random.knn, "linear": random.linear},
            "byol": {"knn": trained.knn, "linear": trained.linear},
            "few_labels": few.as_ref().map(FewLabels::json),
            "epochs": trainer.config.epochs,
            "train_images": data.train.len(),
            "test_images": data.test.len(),
            "device": device.describe(),
            "minutes": minutes,
        }),
    )?;
    out!(
        "\nwrote {}/results.md, results.json and the plots {} ({minutes:.1} minutes)",
        args.out.display(),
        plots
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(match few {
        Some(f) if f.stopped => Outcome::Interrupted,
        _ => Outcome::Done,
    })
}

/// Refuses a few-labels request that cannot run, before any training.
fn check_few_label_flags(per_class: &[usize], draws: usize) -> Result<(), CliError> {
    check_few_labels(per_class, draws).map_err(|e| {
        CliError::flag(format!(
            "--labels-per-class {per_class:?} --draws {draws}: {e} (or --no-few-labels)"
        ))
    })
}

/// The few-labels comparison's accuracies: `accuracy[k][m]` holds one
/// value per finished draw for `per_class[k]` and method
/// `FewLabelMethod::ALL[m]`.
struct FewLabels {
    per_class: Vec<usize>,
    accuracy: Vec<Vec<Vec<f32>>>,
    draws: usize,
    /// Whether Ctrl-C stopped it before every draw was made.
    stopped: bool,
}

impl FewLabels {
    /// The summary of one cell, if any draw of it is done.
    fn spread(&self, k: usize, m: usize) -> Option<Spread> {
        Spread::of(self.accuracy[k][m].clone()).ok()
    }

    /// Mean ± sd of each cell, K by K.
    fn table(&self) -> Table {
        let mut header = vec!["labels per class".to_string()];
        header.extend(FewLabelMethod::ALL.iter().map(|m| m.describe().to_string()));
        let rows = (0..self.per_class.len())
            .map(|k| {
                let mut line = vec![self.per_class[k].to_string()];
                for m in 0..FewLabelMethod::ALL.len() {
                    line.push(match self.spread(k, m) {
                        Some(s) => s.cell(self.draws),
                        None => "not measured".into(),
                    });
                }
                line
            })
            .collect();
        Table { header, rows }
    }

    /// Mean accuracy in percent, method by method (NaN where not measured),
    /// as the bar chart takes it.
    fn means(&self) -> Vec<Vec<f32>> {
        (0..FewLabelMethod::ALL.len())
            .map(|m| {
                (0..self.per_class.len())
                    .map(|k| self.spread(k, m).map_or(f32::NAN, |s| s.mean() * 100.0))
                    .collect()
            })
            .collect()
    }

    /// What the comparison says, K by K: BYOL's better way (logistic or
    /// fine-tuned) against training from scratch and against the pixels,
    /// with the gap in points, whichever way it goes.
    fn verdict(&self) -> String {
        let mean = |k: usize, m: FewLabelMethod| {
            let at = FewLabelMethod::ALL.iter().position(|x| *x == m)?;
            Some(self.spread(k, at)?.mean() * 100.0)
        };
        let mut lines = Vec::new();
        for (k, per_class) in self.per_class.iter().enumerate() {
            let byol = [FewLabelMethod::ByolLogistic, FewLabelMethod::ByolFinetuned]
                .into_iter()
                .filter_map(|m| Some((mean(k, m)?, m)))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            let (Some((best, how)), Some(scratch), Some(pixels)) = (
                byol,
                mean(k, FewLabelMethod::Scratch),
                mean(k, FewLabelMethod::PixelsLogistic),
            ) else {
                continue;
            };
            let versus = |other: f32, what: &str| {
                let gap = best - other;
                if gap >= 0.0 {
                    format!("{gap:.1} points above {what} ({other:.1}%)")
                } else {
                    format!("{:.1} points below {what} ({other:.1}%)", -gap)
                }
            };
            lines.push(format!(
                "with {per_class} label{} per class, BYOL ({}) reached {best:.1}%: {}, {}.",
                if *per_class == 1 { "" } else { "s" },
                how.describe(),
                versus(
                    scratch,
                    "the same ResNet trained from scratch on those labels"
                ),
                versus(pixels, "logistic regression on the raw pixels"),
            ));
        }
        lines.join("\n")
    }

    /// The comparison for `results.json`: each cell's draws, mean and sd.
    fn json(&self) -> serde_json::Value {
        let cells: Vec<serde_json::Value> = self
            .per_class
            .iter()
            .enumerate()
            .flat_map(|(k, per_class)| {
                FewLabelMethod::ALL
                    .iter()
                    .enumerate()
                    .map(move |(m, method)| {
                        let s = self.spread(k, m);
                        json!({
                            "labels_per_class": per_class,
                            "method": method.key(),
                            "accuracies": self.accuracy[k][m],
                            "mean": s.as_ref().map(Spread::mean),
                            "std": s.as_ref().map(Spread::std),
                        })
                    })
            })
            .collect();
        json!({"draws": self.draws, "complete": !self.stopped, "cells": cells})
    }
}

/// Measures the few-labels comparison of the demo's BYOL `encoder`: for
/// each K and draw, every method of [`FewLabelMethod::ALL`] on the same
/// labelled images (draw `d` is drawn with seed `seed + d`), with `pixels`
/// (the train and test splits' pixel features) as the baseline. Ctrl-C
/// stops it between two measurements, keeping what is done.
fn few_labels(
    args: &DemoArgs,
    data: &LabelledSplits,
    encoder: &ResNet,
    pixels: &(Tensor, Tensor),
    device: &tensor::Device,
) -> Result<FewLabels, CliError> {
    say!(
        "few labels: {} labelled images per class, {} draws each (logistic regression on BYOL \
         features and on pixels, BYOL fine-tuned, the same ResNet from scratch)...",
        args.labels_per_class
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(" and "),
        args.draws
    );
    let stop = Arc::new(AtomicBool::new(false));
    interrupt::watch(stop.clone());
    let byol = data.features(encoder, device)?;
    let settings = FinetuneSettings::default();
    let mut few = FewLabels {
        per_class: args.labels_per_class.clone(),
        accuracy: vec![vec![Vec::new(); FewLabelMethod::ALL.len()]; args.labels_per_class.len()],
        draws: args.draws,
        stopped: false,
    };
    for (k, &per_class) in args.labels_per_class.iter().enumerate() {
        for draw in 0..args.draws {
            for (m, &method) in FewLabelMethod::ALL.iter().enumerate() {
                if stop.load(Ordering::SeqCst) {
                    say!("few labels: stopped; the table below holds the draws made so far");
                    few.stopped = true;
                    return Ok(few);
                }
                let features = match method {
                    FewLabelMethod::ByolLogistic => Some(&byol),
                    FewLabelMethod::PixelsLogistic => Some(pixels),
                    _ => None,
                }
                .map(|(train, test)| FeaturePair { train, test });
                let seed = args.seed + draw as u64;
                let accuracy = few_label_accuracy(
                    &settings, seed, data, method, per_class, features, encoder,
                )?;
                if !args.quiet {
                    say!(
                        "  {per_class} per class, draw {}: {} {}",
                        draw + 1,
                        method.describe(),
                        percent(accuracy)
                    );
                }
                few.accuracy[k][m].push(accuracy);
            }
        }
    }
    Ok(few)
}

fn results_table(pixels: &Scores, random: &Scores, trained: &Scores) -> Table {
    let row = |name: &str, s: &Scores| vec![name.to_string(), percent(s.knn), percent(s.linear)];
    Table {
        header: vec![
            "features of the test images".into(),
            "kNN top-1".into(),
            "linear probe top-1".into(),
        ],
        rows: vec![
            row("raw pixels (no network)", pixels),
            row("random-init ResNet-18", random),
            row("BYOL-pretrained ResNet-18", trained),
        ],
    }
}

/// A scatter panel of the test images' features, coloured by class.
fn panel(title: &str, features: &Tensor, data: &LabelledSplits) -> Result<ScatterPanel, CliError> {
    let shape = features.shape().to_vec();
    let labels = byol::eval::dataset_labels(&data.test, "test")?.to_vec();
    Ok(ScatterPanel {
        title: title.to_string(),
        points: pca_2d(&features.to_vec(), shape[0], shape[1]),
        labels,
    })
}

/// The names of the test split's classes, or their numbers.
fn class_names(data: &LabelledSplits) -> Vec<String> {
    match data.test.class_names() {
        Some(names) => names.to_vec(),
        None => (0..data.classes).map(|c| c.to_string()).collect(),
    }
}
