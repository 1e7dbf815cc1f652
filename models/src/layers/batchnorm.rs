//! `BatchNorm`: batch normalisation over axis 1, for `[N, C]` (PyTorch's
//! BatchNorm1d) and `[N, C, H, W]` (BatchNorm2d) alike.
//!
//! Training mode normalises by the batch's mean and biased variance and
//! updates the running estimates with momentum 0.1:
//!
//! ```text
//! running_mean ← 0.9 · running_mean + 0.1 · batch mean
//! running_var  ← 0.9 · running_var  + 0.1 · batch variance · m / (m - 1)
//! ```
//!
//! (the running variance averages the *unbiased* batch variance, `m` values
//! per channel). Evaluation mode normalises by the running estimates. `eps`
//! is 1e-5. The running statistics update in training mode whether or not
//! gradients are recorded: the BYOL target network runs so, under
//! `no_grad`, and keeps its own statistics.

use crate::module::{join, Module};
use autograd::{Param, Tape, Var};
use std::sync::atomic::{AtomicBool, Ordering};
use tensor::{Device, Tensor};

/// Added to the variance before the square root.
pub const EPS: f32 = 1e-5;
/// Weight of the newest batch in the running averages.
pub const MOMENTUM: f32 = 0.1;

/// A batch-norm layer with its running statistics.
pub struct BatchNorm {
    /// γ, `[C]`, initialised to 1.
    pub weight: Param,
    /// β, `[C]`, initialised to 0.
    pub bias: Param,
    /// Running mean, `[C]` (a buffer).
    pub running_mean: Param,
    /// Running variance, `[C]` (a buffer).
    pub running_var: Param,
    /// The number of training batches seen, a one-element buffer (saved as
    /// an integer, as torchvision's `num_batches_tracked`).
    pub num_batches_tracked: Param,
    training: AtomicBool,
}

impl BatchNorm {
    /// A layer over `channels`, in training mode.
    pub fn new(prefix: &str, channels: usize, device: &Device) -> BatchNorm {
        let named = |n: &str, v: Tensor| Param::new(join(prefix, n), v);
        BatchNorm {
            weight: named("weight", Tensor::ones(&[channels], device)),
            bias: named("bias", Tensor::zeros(&[channels], device)),
            running_mean: named("running_mean", Tensor::zeros(&[channels], device)),
            running_var: named("running_var", Tensor::ones(&[channels], device)),
            num_batches_tracked: named("num_batches_tracked", Tensor::zeros(&[], device)),
            training: AtomicBool::new(true),
        }
    }

    /// Whether the layer is in training mode.
    pub fn is_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }
}

impl BatchNorm {
    /// The layer followed by ReLU, as a ResNet applies them: in training
    /// mode one fused node (`Var::batch_norm_relu_train`, whose forward pass
    /// writes the ReLU's output without the normalised tensor), in
    /// evaluation mode the two ops. Values, gradients and running
    /// statistics are the same as `relu(forward(x))`.
    pub fn forward_relu(&self, tape: &Tape, x: &Var) -> Var {
        self.apply(tape, x, true)
    }

    /// Normalises `x` (training or evaluation mode), then applies ReLU when
    /// `relu`; in training mode also updates the running statistics.
    fn apply(&self, tape: &Tape, x: &Var, relu: bool) -> Var {
        let (w, b) = (tape.param(&self.weight), tape.param(&self.bias));
        if !self.is_training() {
            let y = x.batch_norm_eval(
                &w,
                &b,
                &self.running_mean.value(),
                &self.running_var.value(),
                EPS,
            );
            return if relu { y.relu() } else { y };
        }
        let out = if relu {
            x.batch_norm_relu_train(&w, &b, EPS)
        } else {
            x.batch_norm_train(&w, &b, EPS)
        };
        let blend = |old: Tensor, new: &Tensor| {
            old.mul_scalar(1.0 - MOMENTUM)
                .add(&new.mul_scalar(MOMENTUM))
        };
        self.running_mean
            .set_value(blend(self.running_mean.value(), &out.mean));
        self.running_var
            .set_value(blend(self.running_var.value(), &out.unbiased_var()));
        self.num_batches_tracked
            .set_value(self.num_batches_tracked.value().add_scalar(1.0));
        out.y
    }
}

impl Module for BatchNorm {
    fn forward(&self, tape: &Tape, x: &Var) -> Var {
        self.apply(tape, x, false)
    }

    fn parameters(&self) -> Vec<Param> {
        vec![self.weight.clone(), self.bias.clone()]
    }

    fn buffers(&self) -> Vec<Param> {
        vec![
            self.running_mean.clone(),
            self.running_var.clone(),
            self.num_batches_tracked.clone(),
        ]
    }

    fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }
}
