//! `byol demo`: the README's first command. On the embedded Fashion-MNIST
//! subset (6,000 training and 1,000 test images, no download), it
//!
//! 1. builds a small ResNet-18 and scores its random initialisation;
//! 2. pretrains it with BYOL, without labels, with the kNN monitor;
//! 3. scores the BYOL encoder the same way (kNN and linear probe on the
//!    frozen features, with the train split's labels, on the test split);
//! 4. prints the comparison (with raw pixels for context) and writes the
//!    plots: loss, kNN per epoch, and a 2-D PCA of the test embeddings of
//!    both encoders, coloured by class.
//!
//! The settings are sized for a 2-core laptop CPU: see [`demo_config`].

use crate::args::DeviceArgs;
use crate::commands::pretrain::pretrain_into;
use crate::commands::{percent, CmdResult, Outcome};
use crate::error::CliError;
use crate::report::{self, Table};
use augment::{DataSource, Split};
use byol::eval::{pca_2d, LabelledSplits, Scores};
use byol::TrainConfig;
use charts::{scatter_panels, ScatterPanel};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;
use tensor::Tensor;

/// Flags of `byol demo`.
#[derive(Args, Clone, Debug)]
#[command(after_help = "Example:
  cargo run --release -p cli -- demo
About 5 minutes on 2 CPU cores; the results and plots go to runs/demo.")]
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
    /// The run folder to create.
    #[arg(long, value_name = "DIR", default_value = "runs/demo")]
    pub out: PathBuf,
    /// Plain lines instead of a progress bar.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// The demo's BYOL settings: [`TrainConfig::default`] (a ResNet-18 of
/// width 8, heads 256 -> 64, batch 128, Adam, crops of at least 20% of the
/// 28x28 image, τ_base 0.99, the paper's augmentations without blur),
/// measured to beat the random-init encoder on the embedded subset, with a
/// checkpoint every 5 epochs.
pub fn demo_config(epochs: usize, seed: u64) -> TrainConfig {
    TrainConfig {
        epochs,
        seed,
        checkpoint_every: 5,
        ..TrainConfig::default()
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

    let pixels = data.score_pixels(&device)?;
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
    let minutes = start.elapsed().as_secs_f32() / 60.0;
    report::write_text(&args.out.join("results.md"), &table.markdown())?;
    report::write_json(
        &args.out.join("results.json"),
        &json!({
            "raw_pixels": {"knn": pixels.knn, "linear": pixels.linear},
            "random_init": {"knn": random.knn, "linear": random.linear},
            "byol": {"knn": trained.knn, "linear": trained.linear},
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
    Ok(Outcome::Done)
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
