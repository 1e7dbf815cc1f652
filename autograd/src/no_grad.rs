//! Switching recording off: [`no_grad`](no_grad()) runs a closure in which no op is put
//! on any tape.
//!
//! Inside it every op still computes its value, but returns a *constant*
//! [`Var`](crate::Var) (one with no place on a tape), and
//! [`Tape::param`](crate::Tape::param) hands out parameters as constants.
//! Nothing is saved for a backward pass, so nothing is kept alive: this is
//! how the BYOL target network and every evaluation pass run.
//!
//! The switch is per thread (a tape lives on one thread) and nests: leaving
//! the innermost `no_grad` restores whatever held before, even when the
//! closure panics.

use std::cell::Cell;

thread_local! {
    /// Whether ops on this thread record themselves on their tape.
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Runs `f` with recording switched off on this thread and returns its
/// result.
///
/// ```
/// use autograd::{no_grad, Param, Tape};
/// use tensor::{Device, Tensor};
///
/// let w = Param::new("w", Tensor::ones(&[2], &Device::Cpu));
/// let tape = Tape::new();
/// let y = no_grad(|| tape.param(&w).square().sum_all());
/// assert!(!y.is_tracked());
/// assert_eq!(tape.len(), 0);
/// ```
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _restore = Restore(GRAD_ENABLED.with(|g| g.replace(false)));
    f()
}

/// Whether ops on this thread are recorded (false inside [`no_grad`](no_grad())).
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Puts the previous setting back when dropped, so a panic inside
/// [`no_grad`](no_grad()) does not leave recording off.
struct Restore(bool);

impl Drop for Restore {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nests_and_restores() {
        assert!(is_grad_enabled());
        no_grad(|| {
            assert!(!is_grad_enabled());
            no_grad(|| assert!(!is_grad_enabled()));
            assert!(!is_grad_enabled());
        });
        assert!(is_grad_enabled());
    }

    #[test]
    fn restores_after_a_panic() {
        let caught = std::panic::catch_unwind(|| no_grad(|| panic!("inside")));
        assert!(caught.is_err());
        assert!(is_grad_enabled());
    }
}
