//! The BYOL networks: an online encoder, projector and predictor, and a
//! target encoder and projector of the same shapes.
//!
//! ```text
//! view ─► online encoder ─► projector ─► predictor ─► p      (trained)
//! view ─► target encoder ─► projector ─────────────► z      (moving average, no gradient)
//! ```
//!
//! * The target starts from its own random initialisation, as in the
//!   official code ([`TargetInit::Random`]); [`TargetInit::CopyOnline`]
//!   starts it as a copy of the online network instead.
//! * Each view goes through the networks on its own, so batch norm takes
//!   statistics per view, as in the official code.
//! * The target runs in training mode (batch statistics) under `no_grad`,
//!   and keeps its own running statistics.
//! * Parameters are keyed `online.encoder.conv1.weight`,
//!   `online.projector.net.0.weight`, `online.predictor.net.3.weight`,
//!   `target.encoder...`, `target.projector...`: the encoder's own names are
//!   torchvision's, so it exports as it is.

use crate::loss::symmetric_loss;
use autograd::{no_grad, Param, Tape, Var};
use models::init::Seeds;
use models::weights::{self, LoadMode, WeightsError};
use models::{MlpHead, Module, ResNet, ResNetConfig};
use std::collections::BTreeMap;
use std::path::Path;
use tensor::{Device, Tensor};

/// Which of the two networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The online network, trained by gradients (what evaluation uses by
    /// default).
    Online,
    /// The target network, the moving average of the online one.
    Target,
}

impl Side {
    /// `online` or `target`: the first part of this side's keys.
    pub fn name(self) -> &'static str {
        match self {
            Side::Online => "online",
            Side::Target => "target",
        }
    }
}

/// How the target network starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetInit {
    /// Its own random initialisation (the official code).
    Random,
    /// A copy of the online network's initial weights.
    CopyOnline,
}

/// The sizes of the networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkConfig {
    /// The encoder.
    pub encoder: ResNetConfig,
    /// Hidden width of the projector and the predictor (4096 in the paper).
    pub hidden: usize,
    /// Output width of the projector and the predictor (256 in the paper).
    pub projection: usize,
    /// Whether the online network has a predictor (the paper's ablation
    /// without one collapses).
    pub predictor: bool,
    /// How the target starts.
    pub target_init: TargetInit,
}

/// An encoder followed by a projector.
pub struct Branch {
    /// The ResNet.
    pub encoder: ResNet,
    /// The projection MLP.
    pub projector: MlpHead,
}

impl Branch {
    fn new(config: &NetworkConfig, seed: u64, device: &Device) -> Branch {
        let encoder = ResNet::new(config.encoder, seed, device);
        let mut seeds = Seeds::new(seed ^ 0x5052_4f4a);
        let projector = MlpHead::new(
            "projector",
            encoder.feature_dim(),
            config.hidden,
            config.projection,
            &mut seeds,
            device,
        );
        Branch { encoder, projector }
    }

    /// Encoder then projector.
    pub fn project(&self, tape: &Tape, x: &Var) -> Var {
        self.projector.forward(tape, &self.encoder.forward(tape, x))
    }

    /// The tensors `pick` lists from the encoder and the projector, keyed
    /// `prefix.encoder.<name>` and `prefix.<name>` (the projector's names
    /// already start with `projector`).
    fn keyed(
        &self,
        prefix: &str,
        pick: impl Fn(&dyn Module) -> Vec<Param>,
    ) -> Vec<(String, Param)> {
        let encoder = pick(&self.encoder)
            .into_iter()
            .map(|p| (format!("{prefix}.encoder.{}", p.name()), p));
        let projector = pick(&self.projector)
            .into_iter()
            .map(|p| (format!("{prefix}.{}", p.name()), p));
        encoder.chain(projector).collect()
    }

    fn state(&self, prefix: &str) -> Vec<(String, Param)> {
        self.keyed(prefix, |m| m.state())
    }

    fn parameters(&self, prefix: &str) -> Vec<(String, Param)> {
        self.keyed(prefix, |m| m.parameters())
    }

    fn buffers(&self, prefix: &str) -> Vec<(String, Param)> {
        self.keyed(prefix, |m| m.buffers())
    }

    fn set_training(&self, training: bool) {
        self.encoder.set_training(training);
        self.projector.set_training(training);
    }
}

/// What one forward pass of a step gives.
pub struct StepOutput {
    /// The symmetric loss, recorded on the step's tape.
    pub loss: Var,
    /// The online projections of view 1, `[N, projection]` (for the
    /// collapse signal).
    pub online_projection: Tensor,
}

/// The online and target networks.
pub struct ByolNetworks {
    /// Encoder and projector trained by gradients.
    pub online: Branch,
    /// The online network's predictor (absent in the no-predictor ablation).
    pub predictor: Option<MlpHead>,
    /// Encoder and projector updated by the moving average.
    pub target: Branch,
    config: NetworkConfig,
}

impl ByolNetworks {
    /// Fresh networks fixed by `seed`.
    pub fn new(config: NetworkConfig, seed: u64, device: &Device) -> ByolNetworks {
        let online = Branch::new(&config, seed, device);
        let predictor = config.predictor.then(|| {
            let mut seeds = Seeds::new(seed ^ 0x5052_4544);
            MlpHead::new(
                "predictor",
                config.projection,
                config.hidden,
                config.projection,
                &mut seeds,
                device,
            )
        });
        let target = Branch::new(&config, seed.wrapping_add(0x7461_7267), device);
        let nets = ByolNetworks {
            online,
            predictor,
            target,
            config,
        };
        if config.target_init == TargetInit::CopyOnline {
            for ((_, t), (_, o)) in nets
                .target
                .state("target")
                .iter()
                .zip(nets.online.state("online"))
            {
                t.set_value(o.value());
            }
        }
        nets
    }

    /// Starts the online encoder (and, with `target_too`, the target
    /// encoder) from torchvision-named weights: a `byol export` file, or a
    /// torchvision ResNet's state dict saved with safetensors (its
    /// classifier, `fc.*`, is not part of the encoder and is left out).
    /// Every tensor of the encoder must be there with its shape, and no
    /// other: the error names the missing, unexpected and mis-shaped ones
    /// (`source` is the file, for the message). Heads stay as they are.
    pub fn load_encoders(
        &self,
        tensors: &BTreeMap<String, Tensor>,
        source: &Path,
        target_too: bool,
    ) -> Result<(), WeightsError> {
        let mut encoder_only = tensors.clone();
        encoder_only.retain(|k, _| !k.starts_with("fc."));
        weights::apply(
            &self.online.encoder,
            &encoder_only,
            "",
            LoadMode::Strict,
            source,
        )?;
        if target_too {
            weights::apply(
                &self.target.encoder,
                &encoder_only,
                "",
                LoadMode::Strict,
                source,
            )?;
        }
        Ok(())
    }

    /// The settings.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// The key prefix of a side's encoder in [`ByolNetworks::state`]:
    /// `online.encoder.` (followed by torchvision's names).
    pub fn encoder_prefix(side: Side) -> String {
        format!("{}.encoder.", side.name())
    }

    /// The name of a side's head (`projector`, or `predictor` on the
    /// online side) in [`ByolNetworks::state`]: `online.projector`.
    pub fn head_prefix(side: Side, head: &str) -> String {
        format!("{}.{head}", side.name())
    }

    /// The trained parameters (online encoder, projector, predictor) with
    /// their keys.
    pub fn online_parameters(&self) -> Vec<(String, Param)> {
        let mut p = self.online.parameters("online");
        if let Some(pred) = &self.predictor {
            p.extend(
                pred.parameters()
                    .into_iter()
                    .map(|q| (format!("online.{}", q.name()), q)),
            );
        }
        p
    }

    /// The buffers (batch norm's running statistics and counters) of both
    /// networks, with their keys.
    pub fn buffers(&self) -> Vec<(String, Param)> {
        let mut b = self.online.buffers("online");
        if let Some(pred) = &self.predictor {
            b.extend(
                pred.buffers()
                    .into_iter()
                    .map(|q| (format!("online.{}", q.name()), q)),
            );
        }
        b.extend(self.target.buffers("target"));
        b
    }

    /// Every parameter and buffer of both networks, with its key: what a
    /// checkpoint saves.
    pub fn state(&self) -> Vec<(String, Param)> {
        let mut s = self.online.state("online");
        if let Some(pred) = &self.predictor {
            s.extend(
                pred.state()
                    .into_iter()
                    .map(|q| (format!("online.{}", q.name()), q)),
            );
        }
        s.extend(self.target.state("target"));
        s
    }

    /// Training mode for both networks (the target always trains in
    /// training mode, as the official code does).
    pub fn set_training(&self, training: bool) {
        self.online.set_training(training);
        if let Some(p) = &self.predictor {
            p.set_training(training);
        }
        self.target.set_training(training);
    }

    /// The online prediction of a view: encoder, projector, predictor.
    fn predict(&self, tape: &Tape, x: &Var) -> (Var, Var) {
        let z = self.online.project(tape, x);
        let p = match &self.predictor {
            Some(pred) => pred.forward(tape, &z),
            None => z.clone(),
        };
        (z, p)
    }

    /// The forward pass of one step on two batches of views: each view
    /// through the online network (recorded on `tape`) and through the
    /// target (under `no_grad`), and the symmetric loss.
    pub fn forward(&self, tape: &Tape, view1: &Tensor, view2: &Tensor) -> StepOutput {
        let (v1, v2) = (Var::constant(view1.clone()), Var::constant(view2.clone()));
        let (z1, p1) = self.predict(tape, &v1);
        let (_, p2) = self.predict(tape, &v2);
        let (t1, t2) = no_grad(|| {
            (
                self.target.project(tape, &v1),
                self.target.project(tape, &v2),
            )
        });
        let loss = symmetric_loss(&p1, &t2, &p2, &t1);
        StepOutput {
            loss,
            online_projection: z1.value().clone(),
        }
    }

    /// The moving-average update of the target's parameters:
    /// `target ← τ · target + (1 − τ) · online`. Buffers (running
    /// statistics) are the target's own and are not averaged.
    pub fn update_target(&self, tau: f32) {
        let online = self.online.parameters("online");
        for ((tk, t), (ok, o)) in self.target.parameters("target").iter().zip(&online) {
            debug_assert_eq!(
                tk.trim_start_matches("target"),
                ok.trim_start_matches("online")
            );
            let mixed = t
                .value()
                .mul_scalar(tau)
                .add(&o.value().mul_scalar(1.0 - tau));
            t.set_value(mixed);
        }
    }
}

/// The collapse signal: the standard deviation over the batch of the
/// l2-normalised projections, averaged over dimensions. About `1/√D` for
/// well-spread projections of dimension `D`; it falls towards 0 when every
/// image maps to the same point.
pub fn collapse_signal(projections: &Tensor) -> f32 {
    collapse_signal_tensor(projections).item()
}

/// [`collapse_signal`] left on the projections' device as a one-element
/// tensor, so the trainer can read it back together with the loss (one
/// wait per step on a GPU instead of two).
pub fn collapse_signal_tensor(projections: &Tensor) -> Tensor {
    let norm = projections
        .square()
        .sum(&[1], true)
        .sqrt()
        .maximum_scalar(crate::loss::NORM_EPS);
    let unit = projections.div(&norm);
    unit.var(&[0], false, false).sqrt().mean_all().reshape(&[1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::{Arch, Stem};

    fn tiny(width: usize) -> NetworkConfig {
        NetworkConfig {
            encoder: ResNetConfig {
                arch: Arch::ResNet18,
                stem: Stem::Cifar,
                in_channels: 1,
                width,
            },
            hidden: 8,
            projection: 4,
            predictor: true,
            target_init: TargetInit::Random,
        }
    }

    /// The encoder tensors of a network, by torchvision name.
    fn encoder_tensors(encoder: &ResNet) -> BTreeMap<String, Tensor> {
        encoder
            .state()
            .into_iter()
            .map(|p| (p.name().to_string(), p.value()))
            .collect()
    }

    /// Loading an encoder file sets the online encoder (and the target's
    /// when asked), ignores a classifier (`fc.*`), leaves the heads alone,
    /// and refuses a file of another width naming what differs.
    #[test]
    fn encoders_start_from_a_file_and_a_misfit_is_named() {
        let d = Device::Cpu;
        let source = ByolNetworks::new(tiny(2), 1, &d);
        let mut file = encoder_tensors(&source.online.encoder);
        file.insert("fc.weight".into(), Tensor::zeros(&[10, 16], &d));
        let path = Path::new("pretrained.safetensors");
        let bits = |m: &BTreeMap<String, Tensor>| -> Vec<(String, Vec<u32>)> {
            m.iter()
                .filter(|(k, _)| !k.starts_with("fc."))
                .map(|(k, t)| (k.clone(), t.to_vec().iter().map(|x| x.to_bits()).collect()))
                .collect()
        };
        for target_too in [true, false] {
            let nets = ByolNetworks::new(tiny(2), 9, &d);
            let projector_before = nets.online.projector.state()[0].value().to_vec();
            nets.load_encoders(&file, path, target_too).unwrap();
            assert_eq!(bits(&encoder_tensors(&nets.online.encoder)), bits(&file));
            let target_loaded = bits(&encoder_tensors(&nets.target.encoder)) == bits(&file);
            assert_eq!(target_loaded, target_too);
            assert_eq!(
                nets.online.projector.state()[0].value().to_vec(),
                projector_before
            );
        }
        let wider = ByolNetworks::new(tiny(4), 9, &d);
        let e = wider
            .load_encoders(&file, path, true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("pretrained.safetensors")
                && e.contains("conv1.weight has shape [2, 1, 3, 3]"),
            "{e}"
        );
    }
}
