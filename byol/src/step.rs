//! One BYOL step, in one place.
//!
//! [`ByolStep`] holds what a step changes: the online and target networks,
//! the optimiser and its buffers, and the list of trained parameters. A
//! step on two batches of views (`[N, C, H, W]` each) is:
//!
//! ```text
//! 1. zero the gradients of the online parameters
//! 2. forward: each view through the online network (on a fresh tape) and
//!    the target (no_grad); the symmetric loss (ByolNetworks::forward)
//! 3. read back the loss and the collapse signal, together: the one wait
//!    per step on a GPU; a NaN or infinite loss, or a failure of the device,
//!    stops here, before any weight changes
//! 4. backward: the tape fills every online parameter's gradient
//!    ── the gradient point: gradients may be transformed here ──
//! 5. the optimiser step with this step's learning rate
//! 6. the target's moving average with this step's τ
//! ```
//!
//! [`ByolStep::step`] does all six. The same step in two halves,
//! [`ByolStep::forward_backward`] (1-4) and [`ByolStep::update`] (5-6),
//! leaves the gradient point open: whatever runs between the two sees
//! every trained parameter's gradient through [`ByolStep::parameters`] and
//! may change it. Data-parallel training averages the gradients of all
//! processes there, after which the optimiser step and the moving average
//! agree on every process without more communication.
//!
//! The learning rate and τ come from the caller (the [`crate::Trainer`]
//! asks [`crate::schedule`]), so a benchmark or a test can run steps with
//! fixed values.

use crate::error::{ByolError, Result};
use crate::network::{collapse_signal_tensor, ByolNetworks, NetworkConfig};
use crate::optim::{self, Optimizer, OptimizerKind};
use autograd::{with_batch_norm_group, Param, Tape};
use collective::Collective;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use tensor::{Device, DeviceError, Tensor};

/// What a step measured, read back from the device together.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// The symmetric BYOL loss (between 0 and 8).
    pub loss: f32,
    /// The collapse signal of the online projections of view 1 (see
    /// [`crate::collapse_signal`]).
    pub collapse: f32,
}

/// Why a step stopped before changing any weight.
#[derive(Clone, Debug, PartialEq)]
pub enum StepError {
    /// The loss was NaN or infinite; what was read back.
    NonFinite(StepStats),
    /// The device failed (a lost GPU, a driver error, a tensor too large
    /// for the adapter): what was read back cannot be trusted.
    Device(DeviceError),
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::NonFinite(stats) => write!(
                f,
                "the loss became {}; the step stopped before updating the weights",
                stats.loss
            ),
            StepError::Device(e) => write!(f, "{e}; the step stopped before updating the weights"),
        }
    }
}

impl std::error::Error for StepError {}

/// The networks, the optimiser and the trained parameters of a BYOL run:
/// everything one step reads and changes.
pub struct ByolStep {
    /// The online and target networks.
    pub nets: ByolNetworks,
    optimizer: Box<dyn Optimizer>,
    params: Vec<Param>,
    /// The group batch norm is synchronised over, in data-parallel
    /// training (see `autograd::sync`).
    batch_norm_group: Option<Arc<dyn Collective>>,
}

impl ByolStep {
    /// Fresh networks of `config` fixed by `seed` on `device`, trained by an
    /// optimiser of `kind` with weight decay `weight_decay`.
    pub fn new(
        config: NetworkConfig,
        seed: u64,
        kind: OptimizerKind,
        weight_decay: f32,
        device: &Device,
    ) -> ByolStep {
        ByolStep::from_parts(
            ByolNetworks::new(config, seed, device),
            optim::build(kind, weight_decay),
        )
    }

    /// A step over given networks and optimiser (e.g. networks loaded from
    /// a checkpoint).
    pub fn from_parts(nets: ByolNetworks, optimizer: Box<dyn Optimizer>) -> ByolStep {
        let params = nets
            .online_parameters()
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        ByolStep {
            nets,
            optimizer,
            params,
            batch_norm_group: None,
        }
    }

    /// Synchronises every training-mode batch norm of the forward pass over
    /// `group` (its statistics over the whole global batch), or, with
    /// `None`, not.
    pub fn set_batch_norm_group(&mut self, group: Option<Arc<dyn Collective>>) {
        self.batch_norm_group = group;
    }

    /// The trained parameters (online encoder, projector, predictor). After
    /// [`ByolStep::forward_backward`] each holds its gradient.
    pub fn parameters(&self) -> &[Param] {
        &self.params
    }

    /// The optimiser (its buffers go into a checkpoint).
    pub fn optimizer(&self) -> &dyn Optimizer {
        self.optimizer.as_ref()
    }

    /// Replaces the optimiser's buffers by `tensors`, named as
    /// [`Optimizer::state`] names them (`<buffer>.<parameter>`, e.g.
    /// `momentum.conv1.weight`), after checking that each belongs to a
    /// trained parameter and, but for the one-number step counts, has its
    /// shape: a buffer that does not fit is an error here, not a panic at
    /// the next step.
    pub fn load_optimizer_state(&mut self, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
        for (key, t) in tensors {
            let (buffer, name) = key.split_once('.').unwrap_or(("", key));
            let param = self.params.iter().find(|p| p.name() == name);
            match param {
                None => {
                    return Err(ByolError::Input(format!(
                        "optimiser state {key}: there is no trained parameter {name}"
                    )))
                }
                Some(p) if buffer != "step" && t.shape() != p.shape().as_slice() => {
                    return Err(ByolError::Input(format!(
                        "optimiser state {key} has shape {:?}, its parameter {:?}",
                        t.shape(),
                        p.shape()
                    )))
                }
                Some(_) => {}
            }
        }
        self.optimizer.load_state(tensors)
    }

    /// The device the networks live on.
    pub fn device(&self) -> Device {
        self.params[0].value().device()
    }

    /// One whole step on two batches of views with learning rate `lr` and
    /// moving-average rate `tau`: [`ByolStep::forward_backward`] then
    /// [`ByolStep::update`]. A non-finite loss is an error and changes
    /// nothing.
    pub fn step(
        &mut self,
        view1: &Tensor,
        view2: &Tensor,
        lr: f32,
        tau: f32,
    ) -> std::result::Result<StepStats, StepError> {
        let stats = self.forward_backward(view1, view2)?;
        self.update(lr, tau);
        Ok(stats)
    }

    /// Steps 1-4: gradients cleared, forward, the loss and collapse signal
    /// read back (an error, before the backward pass, if the loss is not
    /// finite), backward. Afterwards every trained parameter holds its
    /// gradient, to be transformed if need be before [`ByolStep::update`].
    pub fn forward_backward(
        &mut self,
        view1: &Tensor,
        view2: &Tensor,
    ) -> std::result::Result<StepStats, StepError> {
        for p in &self.params {
            p.zero_grad();
        }
        let tape = Tape::new();
        let out = with_batch_norm_group(self.batch_norm_group.clone(), || {
            self.nets.forward(&tape, view1, view2)
        });
        // The one read-back of the step: the loss (checked before any
        // weight changes) and the collapse signal, together.
        let collapse = collapse_signal_tensor(&out.online_projection);
        let read = Tensor::concat(&[&out.loss.value().reshape(&[1]), &collapse], 0).to_vec();
        let stats = StepStats {
            loss: read[0],
            collapse: read[1],
        };
        // On a GPU, a failure since the last step makes the values read
        // back meaningless: it is reported, not trained on.
        if let Some(e) = self.device().take_error() {
            return Err(StepError::Device(e));
        }
        if !stats.loss.is_finite() {
            return Err(StepError::NonFinite(stats));
        }
        tape.backward(&out.loss);
        Ok(stats)
    }

    /// Steps 5-6: the optimiser step with learning rate `lr` from the
    /// gradients the parameters hold, then the target's moving average
    /// with rate `tau`.
    pub fn update(&mut self, lr: f32, tau: f32) {
        self.optimizer.step(&self.params, lr);
        self.nets.update_target(tau);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::TargetInit;
    use models::{Arch, Module, ResNetConfig, Stem};

    fn tiny(optimizer: OptimizerKind) -> ByolStep {
        tiny_on(optimizer, &Device::Cpu)
    }

    /// A ResNet-18 of width 2 with heads 8 -> 4 on `device`.
    fn tiny_on(optimizer: OptimizerKind, device: &Device) -> ByolStep {
        let config = NetworkConfig {
            encoder: ResNetConfig {
                arch: Arch::ResNet18,
                stem: Stem::Cifar,
                in_channels: 1,
                width: 2,
            },
            hidden: 8,
            projection: 4,
            predictor: true,
            target_init: TargetInit::Random,
        };
        ByolStep::new(config, 3, optimizer, 0.0, device)
    }

    fn views() -> (Tensor, Tensor) {
        let d = Device::Cpu;
        (
            Tensor::randn(&[4, 1, 8, 8], 0.0, 1.0, 1, &d),
            Tensor::randn(&[4, 1, 8, 8], 0.0, 1.0, 2, &d),
        )
    }

    #[test]
    fn a_step_in_two_halves_is_the_whole_step() {
        let (v1, v2) = views();
        let mut whole = tiny(OptimizerKind::Adam);
        let mut halves = tiny(OptimizerKind::Adam);
        for _ in 0..3 {
            let a = whole.step(&v1, &v2, 1e-2, 0.9).unwrap();
            let b = halves.forward_backward(&v1, &v2).unwrap();
            halves.update(1e-2, 0.9);
            assert_eq!(a, b);
        }
        for ((k, p), (_, q)) in whole.nets.state().iter().zip(halves.nets.state()) {
            assert_eq!(p.value().to_vec(), q.value().to_vec(), "{k}");
        }
    }

    #[test]
    fn gradients_changed_at_the_gradient_point_change_the_update() {
        let (v1, v2) = views();
        let mut plain = tiny(OptimizerKind::Sgd);
        let mut zeroed = tiny(OptimizerKind::Sgd);
        plain.step(&v1, &v2, 0.1, 1.0).unwrap();
        zeroed.forward_backward(&v1, &v2).unwrap();
        for p in zeroed.parameters() {
            assert!(p.grad().is_some(), "{} has no gradient", p.name());
            p.zero_grad();
        }
        let before: Vec<Vec<f32>> = zeroed
            .parameters()
            .iter()
            .map(|p| p.value().to_vec())
            .collect();
        zeroed.update(0.1, 1.0);
        // Zero gradients (and no weight decay) leave SGD's weights where
        // they were; the plain step moved them.
        for (p, b) in zeroed.parameters().iter().zip(&before) {
            assert_eq!(&p.value().to_vec(), b, "{}", p.name());
        }
        let moved = plain
            .parameters()
            .iter()
            .zip(&before)
            .any(|(p, b)| &p.value().to_vec() != b);
        assert!(moved);
    }

    #[test]
    fn a_non_finite_loss_changes_no_weight() {
        let (v1, v2) = views();
        let mut s = tiny(OptimizerKind::Sgd);
        // A predictor whose last layer is NaN predicts NaN: the loss is NaN.
        let last = s
            .parameters()
            .iter()
            .find(|p| p.name() == "predictor.net.3.weight")
            .expect("the predictor's last layer")
            .clone();
        last.set_value(Tensor::full(&last.shape(), f32::NAN, &Device::Cpu));
        // The forward pass moves batch norm's running statistics (buffers,
        // as in PyTorch); the weights, online and target, must not move.
        let weights = |s: &ByolStep| -> Vec<Vec<u32>> {
            let target = s.nets.target.encoder.parameters();
            s.parameters()
                .iter()
                .chain(&target)
                .map(|p| p.value().to_vec().iter().map(|x| x.to_bits()).collect())
                .collect()
        };
        let before = weights(&s);
        let err = s.step(&v1, &v2, 0.1, 0.5).unwrap_err();
        assert!(matches!(err, StepError::NonFinite(stats) if stats.loss.is_nan()));
        assert!(err.to_string().contains("before updating"), "{err}");
        assert_eq!(before, weights(&s));
    }

    /// A failure of the GPU (here, a tensor too large for the adapter made
    /// just before) stops the step before any weight moves, as an error,
    /// not a panic.
    #[test]
    fn a_failed_device_stops_the_step_before_any_weight_moves() {
        // A context of its own: the failure provoked here must not reach
        // another test running on the shared one.
        let Some(gpu) = tensor::testing::own_gpu_device() else {
            return;
        };
        let mut s = tiny_on(OptimizerKind::Sgd, &gpu);
        let (v1, v2) = views();
        let (v1, v2) = (v1.to_device(&gpu), v2.to_device(&gpu));
        let weights = |s: &ByolStep| -> Vec<Vec<f32>> {
            s.parameters().iter().map(|p| p.value().to_vec()).collect()
        };
        let before = weights(&s);
        let Device::Gpu(ctx) = &gpu else { return };
        let too_large = (ctx.limits().max_storage_buffer_binding_size / 4 + 1) as usize;
        if too_large > 1 << 28 {
            eprintln!("skipped: this adapter's buffers are too large to overflow in a test");
            return;
        }
        drop(Tensor::zeros(&[too_large], &gpu));
        match s.step(&v1, &v2, 0.1, 0.5) {
            Err(StepError::Device(e)) => assert!(e.to_string().contains("larger than"), "{e}"),
            other => panic!("expected a device error, got {other:?}"),
        }
        assert_eq!(weights(&s), before);
        // The failure taken, the step runs.
        s.step(&v1, &v2, 0.1, 0.5).unwrap();
    }
}
