//! One module per subcommand. Each has an `…Args` struct (its flags, with
//! the `--help` text as doc comments) and a `run` function.

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

/// How a command ended, when it did not fail.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It did all it was asked.
    Done,
    /// Ctrl-C stopped it after saving its work (exit status 130).
    Interrupted,
}

/// What every command returns: an outcome, or a one-line error naming the
/// file, flag or value and the fix.
pub type CmdResult = Result<Outcome, String>;
