//! A complete BYOL run in a few dozen lines: pretrain a small ResNet-18 on
//! the 6,000 training images of the Fashion-MNIST subset compiled into the
//! `augment` crate (labels unused), then judge the encoder by kNN
//! classification of the 1,000 embedded test images, before and after.
//!
//! ```text
//! cargo run --release -p byol --example train_embedded [-- --epochs N]
//! ```
//!
//! The settings are [`TrainConfig::demo`] (a ResNet-18 of width 8,
//! Adam, batch 128). The default of 2 epochs (94 steps) takes about half a
//! minute on a 2-core CPU and shows the loss falling; it is too short to
//! beat the random initialisation on kNN (the accuracy dips first).
//! `--epochs 40` (about 5 minutes) is `byol demo`'s run, which does. It
//! runs on the CPU unless `BYOL_DEVICE` names another
//! device (`gpu`, or `auto`: a hardware GPU when there is one). The run
//! folder (config, metrics, checkpoints) goes to the system's temporary
//! directory and is removed at the end.

use augment::{embedded, Normalization, Split};
use byol::eval::LabelledSplits;
use byol::metrics::MetricsLog;
use byol::{Progress, TrainConfig, Trainer};
use std::path::Path;
use tensor::Device;

/// `--epochs N` from the command line, 2 when absent.
fn epochs_arg() -> Result<usize, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(2),
        [flag, n] if flag == "--epochs" => match n.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "--epochs {n}: expected a whole number of at least 1"
            )),
        },
        _ => Err(format!(
            "unexpected arguments {args:?}; usage: train_embedded [--epochs N]"
        )),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let epochs = match epochs_arg() {
        Ok(n) => n,
        Err(message) => {
            eprintln!("train_embedded: {message}");
            std::process::exit(2);
        }
    };
    // The CPU unless BYOL_DEVICE names another (`gpu`, or `auto`: a
    // hardware GPU when there is one).
    let dev = match std::env::var("BYOL_DEVICE") {
        Ok(_) => Device::from_env()?,
        Err(_) => Device::Cpu,
    };
    let run = std::env::temp_dir().join(format!("byol-train-embedded-{}", std::process::id()));
    let result = train_and_evaluate(epochs, &dev, &run);
    // The run folder goes, whether the run succeeded or not.
    if run.exists() {
        std::fs::remove_dir_all(&run)?;
    }
    result
}

fn train_and_evaluate(
    epochs: usize,
    dev: &Device,
    run: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let norm = Normalization::fashion_mnist();
    let train = embedded::fashion_mnist_subset(Split::Train)?; // 6,000 images
    let test = embedded::fashion_mnist_subset(Split::Test)?; // 1,000 images

    let config = TrainConfig {
        epochs,
        knn_every: 0,          // we evaluate below instead
        ..TrainConfig::demo()  // width 8, heads 256 -> 64, Adam, batch 128, tau 0.9
    };
    let mut trainer = Trainer::new(config, train.clone(), norm.clone(), dev, run)?;
    let c = &trainer.config;
    println!(
        "{} training images, {} test images, on {}; {} epochs of {} steps",
        train.len(),
        test.len(),
        dev.describe(),
        c.epochs,
        trainer.steps_per_epoch()
    );
    println!(
        "ResNet-18 width {}, heads {} -> {}, {} base lr {} (x batch / 256), tau {}, '{}' views",
        c.width, c.hidden, c.projection, c.optimizer, c.lr, c.tau, c.augment
    );

    // The labelled pair the encoder is judged on (kNN, k = 200, cosine).
    let splits = LabelledSplits::new(train.clone(), test.clone(), norm.clone())?;
    let pixels = splits.score_pixels(dev)?.knn;
    let before = splits.knn(&trainer.nets().online.encoder, dev)?;
    println!("kNN accuracy: raw pixels {pixels:.3}, random-init encoder {before:.3}");
    trainer.nets().set_training(true); // scoring left it in evaluation mode

    let start = std::time::Instant::now();
    let mut log = MetricsLog::open(&run.join("metrics.jsonl"))?;
    trainer.run(&mut log, None, &mut |event| match event {
        Progress::Step(s) if s.step % 10 == 0 => {
            println!(
                "  step {:3}  loss {:.3}  lr {:.2e}  tau {:.4}",
                s.step, s.loss, s.lr, s.tau
            )
        }
        Progress::Step(_) => {}
        Progress::Epoch(e) => println!(
            "epoch {}  mean loss {:.3}  collapse signal {:.3}  {:.0} images/s",
            e.epoch, e.loss, e.collapse, e.images_per_s
        ),
    })?;
    let after = splits.knn(&trainer.nets().online.encoder, dev)?;
    println!(
        "trained in {:.1} s; kNN accuracy of the online encoder: {before:.3} before, {after:.3} after",
        start.elapsed().as_secs_f32()
    );
    Ok(())
}
