//! # The `byol` command
//!
//! The command line is the thin top of the stack: it parses arguments and
//! calls the library crates; no training logic lives here. Today only the
//! argument parser exists. The subcommands (`pretrain`, `eval`, `finetune`,
//! `embed`, `export`, `ablate`, `augment-preview`, `bench`, `devices`,
//! `demo`) arrive with issue 8, once the layers below them are built; each
//! one listed here says so plainly instead of pretending to run.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// BYOL (Bootstrap Your Own Latent): self-supervised pretraining of image
/// encoders on unlabelled images, on a deep-learning stack written in Rust.
#[derive(Parser)]
#[command(name = "byol", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pretrain a small encoder on the embedded Fashion-MNIST subset and
    /// compare it with a random-init encoder (not built yet: issue 8).
    Demo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => {
            eprintln!(
                "byol demo: not built yet. The demo needs the autograd, models and byol \
                 layers (issues 4, 6, 7) and the CLI issue (8); today only the tensor \
                 crate works. Run `cargo bench -p tensor` to see it."
            );
            ExitCode::from(2)
        }
    }
}
