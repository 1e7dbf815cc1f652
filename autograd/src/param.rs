//! [`Param`]: a trainable tensor that lives outside the tape and owns its
//! gradient.
//!
//! A tape lasts one step; a parameter lasts the whole training run. So the
//! parameter keeps its value and its gradient itself, and each step's tape
//! only borrows it: [`Tape::param`](crate::Tape::param) puts the current
//! value on the tape as a leaf, and [`Tape::backward`](crate::Tape::backward)
//! adds that leaf's gradient into the parameter. Gradients *accumulate*
//! (two backward passes without [`Param::zero_grad`] in between leave their
//! sum), as in PyTorch; the optimiser reads [`Param::grad`], writes
//! [`Param::set_value`], and calls `zero_grad` before the next step.
//!
//! A `Param` is a handle: cloning it gives a second handle on the same value
//! and gradient (that is how the tape reaches it). It is `Send` and `Sync`
//! (the state sits behind a mutex), so a model can be moved between
//! threads.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use tensor::Tensor;

/// A named trainable tensor with an optional accumulated gradient.
#[derive(Clone)]
pub struct Param {
    inner: Arc<ParamInner>,
}

struct ParamInner {
    name: String,
    state: Mutex<ParamState>,
}

struct ParamState {
    value: Tensor,
    grad: Option<Tensor>,
}

impl Param {
    /// A parameter called `name` (for example `layer1.0.conv1.weight`) with
    /// an initial value and no gradient.
    pub fn new(name: impl Into<String>, value: Tensor) -> Param {
        Param {
            inner: Arc::new(ParamInner {
                name: name.into(),
                state: Mutex::new(ParamState { value, grad: None }),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, ParamState> {
        // A panic while the lock was held cannot leave the state half
        // written (every write is one assignment), so a poisoned lock is
        // still good to use.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The parameter's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The current value (a cheap clone sharing the buffer).
    pub fn value(&self) -> Tensor {
        self.state().value.clone()
    }

    /// The shape of the value.
    pub fn shape(&self) -> Vec<usize> {
        self.state().value.shape().to_vec()
    }

    /// Replaces the value (an optimiser step, an EMA update, a loaded
    /// checkpoint). Panics if the shape changes: a parameter's shape is
    /// fixed when it is made.
    pub fn set_value(&self, value: Tensor) {
        let mut s = self.state();
        assert_eq!(
            value.shape(),
            s.value.shape(),
            "Param::set_value: {} has shape {:?}, the new value has {:?}",
            self.inner.name,
            s.value.shape(),
            value.shape()
        );
        s.value = value;
    }

    /// The gradient accumulated since the last [`Param::zero_grad`], or
    /// `None` if no backward pass has reached this parameter since.
    pub fn grad(&self) -> Option<Tensor> {
        self.state().grad.clone()
    }

    /// Forgets the gradient (drops its buffer).
    pub fn zero_grad(&self) {
        self.state().grad = None;
    }

    /// Replaces the gradient, between a backward pass and the optimiser
    /// step: how data-parallel training puts back the average of every
    /// process's gradient. Panics if the shape is not the parameter's.
    pub fn set_grad(&self, g: Tensor) {
        let mut s = self.state();
        assert_eq!(
            g.shape(),
            s.value.shape(),
            "Param::set_grad: {} has shape {:?}, the gradient has {:?}",
            self.inner.name,
            s.value.shape(),
            g.shape()
        );
        s.grad = Some(g);
    }

    /// Adds `g` to the gradient: `grad ← grad + g`, or `grad ← g` when there
    /// is none. The old buffer is released, so however many times this runs
    /// the parameter holds exactly one gradient buffer.
    pub(crate) fn accumulate_grad(&self, g: &Tensor) {
        let mut s = self.state();
        assert_eq!(
            g.shape(),
            s.value.shape(),
            "autograd: gradient of shape {:?} for parameter {} of shape {:?}",
            g.shape(),
            self.inner.name,
            s.value.shape()
        );
        s.grad = Some(match s.grad.take() {
            Some(old) => old.add(g),
            None => g.clone(),
        });
    }

    /// Whether two handles refer to the same parameter.
    pub fn same_as(&self, other: &Param) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl fmt::Debug for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state();
        write!(
            f,
            "Param({}, shape={:?}, grad={})",
            self.inner.name,
            s.value.shape(),
            if s.grad.is_some() { "some" } else { "none" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::Device;

    #[test]
    fn gradients_accumulate_until_zeroed() {
        let d = Device::Cpu;
        let p = Param::new("w", Tensor::zeros(&[3], &d));
        assert!(p.grad().is_none());
        p.accumulate_grad(&Tensor::ones(&[3], &d));
        p.accumulate_grad(&Tensor::full(&[3], 2.0, &d));
        assert_eq!(p.grad().unwrap().to_vec(), vec![3.0; 3]);
        p.zero_grad();
        assert!(p.grad().is_none());
        p.set_grad(Tensor::full(&[3], 0.5, &d));
        assert_eq!(p.grad().unwrap().to_vec(), vec![0.5; 3]);
        let q = p.clone();
        q.set_value(Tensor::ones(&[3], &d));
        assert_eq!(p.value().to_vec(), vec![1.0; 3]);
        assert!(p.same_as(&q));
        assert_eq!(p.name(), "w");
    }

    #[test]
    #[should_panic(expected = "Param::set_value: w has shape [3]")]
    fn a_new_shape_is_refused() {
        let p = Param::new("w", Tensor::zeros(&[3], &Device::Cpu));
        p.set_value(Tensor::zeros(&[4], &Device::Cpu));
    }
}
