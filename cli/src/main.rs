//! # The `byol` command
//!
//! The command line is the thin top of the stack: it parses arguments,
//! shows progress and prints, and calls the library crates for everything
//! else (`byol` for training, checkpoints and evaluation, `augment` for data
//! sets and `.npy` arrays, `models` for weights, `charts` for plots,
//! `tensor` for devices). No training logic lives here. Each subcommand is
//! one file under `commands/`; the flag groups they share are in `args`,
//! the one error type in `error`, progress bars in `progress`, tables and
//! plots in `report`.
//!
//! Errors are one line, `error: <what> (<fix>)`, on standard error with
//! exit status 1; bad flags are clap's usage errors with status 2; a run
//! stopped by Ctrl-C exits with 130 after writing its checkpoint.

/// Like `eprintln!`, but a closed or broken standard error (a log pipe
/// whose reader died, `2>&-`) is ignored instead of ending the program: a
/// long run must not die because nobody reads its progress.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Like `println!`, with the same care for a closed standard output (`byol
/// eval ... | head -1`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod args;
mod commands;
mod error;
mod group;
mod interrupt;
mod memory;
mod progress;
mod report;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// BYOL (Bootstrap Your Own Latent): self-supervised pretraining of image
/// encoders on unlabelled images, on a deep-learning stack written in Rust.
///
/// Start with `byol demo`: it pretrains a small ResNet on the embedded
/// Fashion-MNIST subset and shows that its features beat a random
/// network's. `byol <command> --help` explains each command.
#[derive(Parser)]
#[command(name = "byol", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pretrain an encoder with BYOL on unlabelled images.
    Pretrain(commands::pretrain::PretrainArgs),
    /// Evaluate a frozen encoder by kNN or a linear probe.
    Eval(commands::eval::EvalArgs),
    /// Fine-tune an encoder and a linear head on a fraction of the labels.
    Finetune(commands::finetune::FinetuneArgs),
    /// Write an encoder's features of a data set or an .npy array as .npy.
    Embed(commands::embed::EmbedArgs),
    /// Write a checkpoint's encoder as torchvision-named safetensors.
    Export(commands::export::ExportArgs),
    /// The paper's experiment at small scale: what makes BYOL work.
    Ablate(commands::ablate::AblateArgs),
    /// What BYOL buys on a labelled data set: learning curve, ablation and
    /// few labels, written as results.md with plots; resumes.
    Study(commands::study::StudyArgs),
    /// Write a PNG grid of the two augmented views of some images.
    AugmentPreview(commands::preview::PreviewArgs),
    /// Time the tensor, model and BYOL-step benchmarks on a device.
    Bench(commands::bench::BenchArgs),
    /// List the GPU adapters this machine offers.
    Devices,
    /// Pretrain a small encoder on the embedded data and compare it with a
    /// random one (a few minutes on 2 CPU cores).
    Demo(commands::demo::DemoArgs),
}

fn main() -> ExitCode {
    quiet_vulkan_loader();
    // Training allocates and frees large buffers every step: keep them for
    // reuse instead of page-faulting fresh ones (see the tensor crate).
    tensor::reuse_freed_memory();
    let cli = Cli::parse();
    // Under mpirun (built with `--features mpi`) this process is one rank
    // of a group; alone, a group of one.
    let group = match group::join() {
        Ok(group) => group,
        Err(error) => {
            say!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    group::share_cores(group.as_ref());
    let result = match cli.command {
        Command::Pretrain(a) => commands::pretrain::run(a, group.clone()),
        _ if group.size() > 1 => Err(error::CliError::NotAlone {
            command: cli.command.name(),
            size: group.size(),
        }),
        Command::Eval(a) => commands::eval::run(a),
        Command::Finetune(a) => commands::finetune::run(a),
        Command::Embed(a) => commands::embed::run(a),
        Command::Export(a) => commands::export::run(a),
        Command::Ablate(a) => commands::ablate::run(a),
        Command::Study(a) => commands::study::run(a),
        Command::AugmentPreview(a) => commands::preview::run(a),
        Command::Bench(a) => commands::bench::run(a),
        Command::Devices => commands::devices::run(),
        Command::Demo(a) => commands::demo::run(a),
    };
    match result {
        Ok(commands::Outcome::Done) => ExitCode::SUCCESS,
        Ok(commands::Outcome::Interrupted) => ExitCode::from(130),
        Err(error) => {
            group::fail(group.as_ref(), &error);
            ExitCode::FAILURE
        }
    }
}

impl Command {
    /// The subcommand as typed.
    fn name(&self) -> &'static str {
        match self {
            Command::Pretrain(_) => "pretrain",
            Command::Eval(_) => "eval",
            Command::Finetune(_) => "finetune",
            Command::Embed(_) => "embed",
            Command::Export(_) => "export",
            Command::Ablate(_) => "ablate",
            Command::Study(_) => "study",
            Command::AugmentPreview(_) => "augment-preview",
            Command::Bench(_) => "bench",
            Command::Devices => "devices",
            Command::Demo(_) => "demo",
        }
    }
}

/// Mesa's Vulkan drivers print "error: XDG_RUNTIME_DIR is invalid or not
/// set" while wgpu looks for adapters on machines without a desktop
/// session (servers, containers, CI). Nothing is wrong, but the line reads
/// like a failure, so point the variable at the temporary folder first.
/// (Done before any thread starts, as changing the environment requires.)
fn quiet_vulkan_loader() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
}
