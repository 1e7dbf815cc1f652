//! [`Var`]: a value in a forward pass, and its place on the tape.
//!
//! A `Var` is a [`Tensor`] plus, when the value is *tracked*, a handle on
//! the tape and the index of the node that produced it. Ops are methods on
//! `Var` (`x.matmul(&w)`, `x.conv2d(&w, p)`, ...; they live in
//! [`ops`](crate::ops)); each computes its value with the tensor op of the
//! same name and, when any input is tracked and recording is on, records a
//! node with its backward rule.
//!
//! An untracked var is a *constant*: data, labels, the output of a
//! [`no_grad`](crate::no_grad()) region, or a [`Var::detach`]ed value. No
//! gradient flows into a constant, and ops whose inputs are all constants
//! record nothing.

use crate::no_grad::is_grad_enabled;
use crate::tape::{Backward, Tape};
use std::fmt;
use tensor::{Device, Tensor};

/// A value of the forward pass: a tensor, tracked on a tape or constant.
///
/// Cloning is cheap (the tensor's buffer and the tape are shared).
#[derive(Clone)]
pub struct Var {
    value: Tensor,
    node: Option<(Tape, usize)>,
}

impl Var {
    /// A constant: a value no gradient flows into, on no tape.
    pub fn constant(value: Tensor) -> Var {
        Var { value, node: None }
    }

    /// A var for node `index` of `tape`.
    pub(crate) fn on_tape(value: Tensor, tape: Tape, index: usize) -> Var {
        Var {
            value,
            node: Some((tape, index)),
        }
    }

    /// The result of an op: records it on the tape of its tracked inputs
    /// with `backward` as its rule, or returns a constant when no input is
    /// tracked or recording is off. Panics, naming `op`, if the tracked
    /// inputs are on different tapes.
    pub(crate) fn from_op(
        op: &'static str,
        value: Tensor,
        inputs: &[&Var],
        backward: impl FnOnce(&Tensor, &[bool]) -> Vec<Option<Tensor>> + 'static,
    ) -> Var {
        if !is_grad_enabled() {
            return Var::constant(value);
        }
        let Some(tape) = inputs.iter().find_map(|v| v.node.as_ref().map(|n| &n.0)) else {
            return Var::constant(value);
        };
        let tape = tape.clone();
        let ids: Vec<Option<usize>> = inputs
            .iter()
            .map(|v| {
                v.node.as_ref().map(|(t, i)| {
                    assert!(
                        t.same_as(&tape),
                        "{op}: the inputs were recorded on different tapes"
                    );
                    *i
                })
            })
            .collect();
        let rule: Backward = Box::new(backward);
        let index = tape.record(op, value.shape(), ids, rule);
        Var::on_tape(value, tape, index)
    }

    /// The value.
    pub fn value(&self) -> &Tensor {
        &self.value
    }

    /// The value's shape.
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    /// The number of axes.
    pub fn rank(&self) -> usize {
        self.value.rank()
    }

    /// The device holding the value.
    pub fn device(&self) -> Device {
        self.value.device()
    }

    /// The value of a one-element var (a loss), read back to the host.
    pub fn item(&self) -> f32 {
        self.value.item()
    }

    /// Whether the value is on a tape (so gradients can flow through it).
    pub fn is_tracked(&self) -> bool {
        self.node.is_some()
    }

    /// The tape and node index, when tracked.
    pub(crate) fn node(&self) -> Option<(&Tape, usize)> {
        self.node.as_ref().map(|(t, i)| (t, *i))
    }

    /// The same value as a constant: gradients stop here. (`stop_gradient`
    /// in JAX, `.detach()` in PyTorch.)
    pub fn detach(&self) -> Var {
        Var::constant(self.value.clone())
    }
}

impl From<Tensor> for Var {
    /// A constant.
    fn from(value: Tensor) -> Var {
        Var::constant(value)
    }
}

impl fmt::Debug for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some((_, i)) => write!(f, "Var(node {i}, {:?})", self.value),
            None => write!(f, "Var(constant, {:?})", self.value),
        }
    }
}
