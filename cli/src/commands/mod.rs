//! One module per subcommand. Each has an `…Args` struct (its flags, with
//! the `--help` text as doc comments) and a `run` function. The few steps
//! several commands share are here.

pub mod ablate;
pub mod bench;
pub mod demo;
pub mod devices;
pub mod embed;
pub mod eval;
pub mod export;
pub mod finetune;
pub mod pretrain;
pub mod preview;
pub mod study;

use crate::args::{DataArgs, EncoderArgs};
use crate::error::CliError;
use augment::{DataSource, Split};
use byol::eval::LabelledSplits;
use models::ResNet;
use tensor::Device;

/// How a command ended, when it did not fail.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It did all it was asked.
    Done,
    /// Ctrl-C stopped it after saving its work (exit status 130).
    Interrupted,
}

/// What every command returns: an outcome, or an error that `main` prints
/// as one line naming the file, flag or value and the fix.
pub type CmdResult = Result<Outcome, CliError>;

/// The encoder of `encoder` and the labelled train/test pair of `data`
/// it is judged on (`eval`, `finetune`), normalised as the encoder's
/// training data was (or, for bare weights, as the data set's kind says).
/// Prints where each came from.
pub fn encoder_and_splits(
    encoder: &EncoderArgs,
    data: &DataArgs,
    device: &Device,
) -> Result<(ResNet, LabelledSplits), CliError> {
    let loaded = encoder.load(device)?;
    let source = data.source_for(encoder.recorded_data().as_ref())?;
    let train = source.load(Split::Train, true)?;
    let test = source.load(Split::Test, true)?;
    let norm = match loaded.normalization {
        Some(n) => n,
        None => source.normalization(&train.dataset),
    };
    say!("encoder: {}", loaded.description);
    say!("train: {}", train.description);
    say!("test: {}", test.description);
    let splits = LabelledSplits::new(train.dataset, test.dataset, norm)?;
    Ok((loaded.encoder, splits))
}

/// The labelled splits of `data` (by default those a run `recorded`),
/// normalised by the train split's statistics: for scoring the pixels
/// themselves, with no encoder.
pub fn splits_only(
    data: &DataArgs,
    recorded: Option<&DataSource>,
) -> Result<LabelledSplits, CliError> {
    let source = data.source_for(recorded)?;
    let train = source.load(Split::Train, true)?;
    let test = source.load(Split::Test, true)?;
    let norm = source.normalization(&train.dataset);
    say!("train: {}", train.description);
    say!("test: {}", test.description);
    Ok(LabelledSplits::new(train.dataset, test.dataset, norm)?)
}

/// A percentage with one decimal, for tables.
pub fn percent(x: f32) -> String {
    format!("{:.1}%", x * 100.0)
}
