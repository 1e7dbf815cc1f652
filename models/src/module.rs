//! The [`Module`] idea: a piece of a network with named parameters, named
//! buffers, a forward pass, and a training or evaluation mode.
//!
//! * **Parameters** are the tensors training changes ([`Param`]s, which own
//!   their gradient). Each has its full torchvision name, such as
//!   `layer2.0.downsample.1.weight`, fixed when the layer is built from its
//!   prefix (`layer2.0.downsample.1`).
//! * **Buffers** are state that is saved and loaded but never trained: the
//!   running mean and variance of batch norm, and its step count. They are
//!   `Param`s too (a named tensor whose value can be replaced), but no
//!   forward pass puts them on a tape, so they never receive a gradient.
//! * **Modes**: in training mode batch norm normalises by the batch's
//!   statistics and updates its running ones; in evaluation mode it uses
//!   the running ones. [`Module::set_training`] switches a whole network.
//!
//! A forward pass takes the step's [`Tape`]: each layer puts its parameters
//! on it ([`Tape::param`]) and runs its ops on [`Var`]s. Inside
//! [`autograd::no_grad`] the same code records nothing.

use autograd::{Param, Tape, Var};

/// A network or a piece of one.
pub trait Module {
    /// The forward pass of `x`, recorded on `tape`.
    fn forward(&self, tape: &Tape, x: &Var) -> Var;

    /// Every trainable parameter, in a fixed order, with its full name.
    fn parameters(&self) -> Vec<Param>;

    /// Every buffer (state that is saved but not trained), with its name.
    fn buffers(&self) -> Vec<Param> {
        Vec::new()
    }

    /// Switches training mode (batch statistics) or evaluation mode
    /// (running statistics) for this module and everything inside it.
    fn set_training(&self, training: bool);

    /// The number of trainable values.
    fn param_count(&self) -> usize {
        self.parameters().iter().map(|p| p.value().numel()).sum()
    }

    /// Parameters and buffers together: what a weights file holds.
    fn state(&self) -> Vec<Param> {
        let mut s = self.parameters();
        s.extend(self.buffers());
        s
    }
}

/// `prefix.name`, or `name` when the prefix is empty.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}
