//! Optimisers: how a parameter moves once its gradient is known.
//!
//! After the backward pass every trained [`Param`] holds its gradient
//! `∇w`. An [`Optimizer`] turns it into an update of `w` with the learning
//! rate of the current step (from [`crate::schedule`]), keeping whatever
//! per-parameter buffers it needs (momentum, Adam's moments) between steps.
//!
//! | optimiser | update of one parameter `w` with gradient `∇w` |
//! |---|---|
//! | [`Lars`] (the paper's) | `g = ∇w + wd·w`; `g ← g · η‖w‖/‖g‖`; `buf = μ·buf + g`; `w ← w − lr·buf` |
//! | [`Sgd`] | `g = ∇w + wd·w`; `buf = μ·buf + g`; `w ← w − lr·buf` |
//! | [`Adam`] | `g = ∇w + wd·w`; moments `m`, `v` of `g`; `w ← w − lr·m̂/(√v̂ + ε)` |
//! | [`AdamW`] | `w ← w − lr·wd·w`; then Adam on `∇w` |
//!
//! The momentum buffer starts as the first `g` (`buf₁ = g₁`), as in PyTorch
//! and in the official BYOL code (whose zero-initialised buffer gives the
//! same `0.9·0 + g₁`).
//!
//! ## Exclusions
//!
//! Biases and batch-norm scales and shifts (every parameter with at most one
//! dimension, see [`is_excluded`]) get no weight decay and, in LARS, no trust
//! ratio: their gradient goes straight into the momentum buffer. This is the
//! rule of the official BYOL code.
//!
//! ## Devices
//!
//! Every update is written with [`Tensor`] ops, so it runs where the
//! parameters live, CPU or GPU, and never reads a value back to the host:
//! even the LARS trust ratio stays a one-element tensor on the device.
//! Scalars that depend only on the step (the learning rate, Adam's bias
//! corrections) are computed on the host.
//!
//! ## State
//!
//! The buffers are kept by parameter name ([`Param::name`]), so the names of
//! the parameters given to one optimiser must be distinct. [`Optimizer::state`]
//! lists them as named tensors (`momentum.layer1.0.conv1.weight`,
//! `exp_avg.conv1.weight`, ...) for a checkpoint, and
//! [`Optimizer::load_state`] puts them back, so that a resumed run continues
//! bit for bit as if it had never stopped.

pub mod adam;
pub mod lars;
pub mod sgd;

pub use adam::{Adam, AdamW};
pub use lars::Lars;
pub use sgd::Sgd;

use crate::error::{ByolError, Result};
use autograd::Param;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use tensor::Tensor;

/// An optimiser: updates parameters from their accumulated gradients and
/// keeps the buffers it needs from one step to the next.
pub trait Optimizer: Send {
    /// One update of every parameter in `params` from its gradient
    /// ([`Param::grad`]), with learning rate `lr`, written back with
    /// [`Param::set_value`]. A parameter without a gradient is skipped and
    /// its state left as it was. Gradients are not cleared here.
    ///
    /// Panics if two parameters share a name (their buffers would be
    /// mixed up) or a loaded buffer does not have its parameter's shape.
    fn step(&mut self, params: &[Param], lr: f32);

    /// The optimiser's buffers by name (`momentum.<parameter>`, ...), in
    /// name order, for a checkpoint. Empty before the first step.
    fn state(&self) -> Vec<(String, Tensor)>;

    /// Replaces the optimiser's buffers by `tensors` (as [`Optimizer::state`]
    /// gave them). An empty map is a fresh start. A name this optimiser does
    /// not keep, or an incomplete or malformed set of buffers, is an error
    /// that says which; the state is then left empty.
    fn load_state(&mut self, tensors: &BTreeMap<String, Tensor>) -> Result<()>;

    /// The optimiser's name, its [`OptimizerKind::name`] (`"lars"`,
    /// `"sgd"`, `"adam"`, `"adamw"`).
    fn name(&self) -> &'static str;
}

/// Whether `p` is a bias or a batch-norm parameter, which get neither
/// weight decay nor the LARS trust ratio: every parameter with at most one
/// dimension (`conv1.bias`, `layer1.0.bn1.weight`, `net.0.bias` are;
/// `conv1.weight`, `net.0.weight` are not), as the official BYOL code
/// decides it.
pub fn is_excluded(p: &Param) -> bool {
    p.shape().len() <= 1
}

/// The optimisers this crate has. Written and read (JSON, TOML, flags) as
/// `lars`, `sgd`, `adam` and `adamw`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum OptimizerKind {
    /// [`Lars`], the paper's optimiser.
    Lars,
    /// [`Sgd`] with momentum.
    Sgd,
    /// [`Adam`] (weight decay added to the gradient).
    Adam,
    /// [`AdamW`] (decoupled weight decay).
    #[cfg_attr(feature = "clap", value(name = "adamw"))]
    AdamW,
}

impl OptimizerKind {
    /// Every kind, in the order of the table above.
    pub const ALL: [OptimizerKind; 4] = [
        OptimizerKind::Lars,
        OptimizerKind::Sgd,
        OptimizerKind::Adam,
        OptimizerKind::AdamW,
    ];

    /// The kind's name: `lars`, `sgd`, `adam` or `adamw`, as JSON and TOML
    /// files and flags write it.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Lars => "lars",
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
        }
    }
}

impl std::fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An optimiser of `kind` with weight decay `weight_decay` and the default
/// settings of the others: LARS η = 1e-3 and momentum 0.9 (the paper's);
/// SGD momentum 0.9; Adam and AdamW β₁ = 0.9, β₂ = 0.999, ε = 1e-8
/// (PyTorch's).
pub fn build(kind: OptimizerKind, weight_decay: f32) -> Box<dyn Optimizer> {
    match kind {
        OptimizerKind::Lars => Box::new(Lars::new(
            weight_decay,
            lars::DEFAULT_ETA,
            lars::DEFAULT_MOMENTUM,
        )),
        OptimizerKind::Sgd => Box::new(Sgd::new(weight_decay, sgd::DEFAULT_MOMENTUM)),
        OptimizerKind::Adam => Box::new(Adam::new(
            weight_decay,
            adam::DEFAULT_BETA1,
            adam::DEFAULT_BETA2,
            adam::DEFAULT_EPS,
        )),
        OptimizerKind::AdamW => Box::new(AdamW::new(
            weight_decay,
            adam::DEFAULT_BETA1,
            adam::DEFAULT_BETA2,
            adam::DEFAULT_EPS,
        )),
    }
}

// ---------------------------------------------------------------------------
// Pieces the optimisers share.

/// Panics unless the parameters' names are distinct: the buffers are kept
/// by name, and two parameters with one name would share them.
pub(crate) fn check_unique_names(params: &[Param], optimizer: &str) {
    let mut seen = BTreeSet::new();
    for p in params {
        assert!(
            seen.insert(p.name()),
            "{optimizer}: two parameters are called {}; an optimiser keeps its buffers by name",
            p.name()
        );
    }
}

/// A stored buffer made ready for an update with a tensor like `like`: on
/// the same device (a buffer loaded from a checkpoint may sit on the CPU)
/// and, checked, of the same shape.
pub(crate) fn ready_buffer(buf: &Tensor, like: &Tensor, key: &str, optimizer: &str) -> Tensor {
    assert_eq!(
        buf.shape(),
        like.shape(),
        "{optimizer}: the buffer {key} has shape {:?}, its parameter {:?}; \
         was the state loaded from another model?",
        buf.shape(),
        like.shape()
    );
    buf.to_device(&like.device())
}

/// The heavy-ball momentum shared by LARS and SGD, for the parameter
/// `name` with this step's direction `g`:
///
/// ```text
/// buf ← g              on the parameter's first step
/// buf ← μ·buf + g      after
/// ```
///
/// Stores the new buffer under `name` and returns it.
pub(crate) fn momentum_update(
    buffers: &mut BTreeMap<String, Tensor>,
    name: &str,
    g: Tensor,
    momentum: f32,
    optimizer: &str,
) -> Tensor {
    let buf = match buffers.get(name) {
        None => g,
        Some(old) => {
            let old = ready_buffer(old, &g, &format!("{MOMENTUM}{name}"), optimizer);
            old.mul_scalar(momentum).add(&g)
        }
    };
    buffers.insert(name.to_string(), buf.clone());
    buf
}

/// The prefix of momentum buffers in [`Optimizer::state`].
pub(crate) const MOMENTUM: &str = "momentum.";

/// The momentum buffers of LARS or SGD as named state.
pub(crate) fn momentum_state(buffers: &BTreeMap<String, Tensor>) -> Vec<(String, Tensor)> {
    buffers
        .iter()
        .map(|(name, buf)| (format!("{MOMENTUM}{name}"), buf.clone()))
        .collect()
}

/// Momentum buffers read back from named state: every name must be
/// `momentum.<parameter>`.
pub(crate) fn load_momentum_state(
    tensors: &BTreeMap<String, Tensor>,
    optimizer: &str,
) -> Result<BTreeMap<String, Tensor>> {
    let mut buffers = BTreeMap::new();
    for (key, t) in tensors {
        match key.strip_prefix(MOMENTUM) {
            Some(name) if !name.is_empty() => {
                buffers.insert(name.to_string(), t.clone());
            }
            _ => {
                return Err(ByolError::Input(format!(
                    "optimiser state {key}: {optimizer} keeps only {MOMENTUM}<parameter> buffers; \
                     was the checkpoint made with another optimiser?"
                )))
            }
        }
    }
    Ok(buffers)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the optimisers' tests: parameters with chosen gradients,
    //! and the reference loops' plain-vector arithmetic.

    use autograd::{Param, Tape, Var};
    use tensor::{Device, Tensor};

    /// Gives `p` exactly the gradient `g` (through a tape: the gradient of
    /// `Σ p·g` with respect to `p` is `g`).
    pub fn set_grad(p: &Param, g: &[f32]) {
        p.zero_grad();
        let dev = p.value().device();
        let tape = Tape::new();
        let c = Var::constant(Tensor::from_vec(g.to_vec(), &p.shape(), &dev));
        let loss = tape.param(p).mul(&c).sum_all();
        tape.backward(&loss);
    }

    /// A parameter called `name` of `shape` holding `values`.
    pub fn param(name: &str, shape: &[usize], values: &[f32], dev: &Device) -> Param {
        Param::new(name, Tensor::from_vec(values.to_vec(), shape, dev))
    }

    /// `n` deterministic values in about [-1, 1] (a fixed sequence, so the
    /// reference loops see exactly the tensors' values).
    pub fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let x = (i as u32)
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(seed.wrapping_mul(40_503));
                (x % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// The Euclidean norm as the CPU backend computes it: the sum of
    /// squares in `f64`, its root rounded to `f32`.
    pub fn norm(x: &[f32]) -> f32 {
        x.iter()
            .map(|&v| (v as f64) * (v as f64))
            .sum::<f64>()
            .sqrt() as f32
    }

    /// Asserts two vectors are equal to within `rel` relative (and `1e-7`
    /// absolute) error.
    pub fn assert_vec_close(got: &[f32], want: &[f32], rel: f32, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: lengths differ");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-7 + rel * b.abs(),
                "{what}: element {i} is {a}, expected {b}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{param, set_grad, values};
    use super::*;
    use tensor::Device;

    #[test]
    fn exclusion_is_by_rank() {
        let d = Device::Cpu;
        assert!(is_excluded(&param(
            "layer1.0.bn1.weight",
            &[3],
            &[1.0; 3],
            &d
        )));
        assert!(is_excluded(&param("net.0.bias", &[4], &[0.0; 4], &d)));
        assert!(is_excluded(&param("scalar", &[], &[0.5], &d)));
        assert!(!is_excluded(&param("net.0.weight", &[2, 3], &[0.0; 6], &d)));
        assert!(!is_excluded(&param(
            "conv1.weight",
            &[2, 1, 3, 3],
            &[0.0; 18],
            &d
        )));
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in OptimizerKind::ALL {
            // Checkpoints and TOML files spell them the same way.
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
            let back: OptimizerKind = serde_json::from_value(kind.name().into()).unwrap();
            assert_eq!(back, kind);
            assert_eq!(build(kind, 1e-4).name(), kind.name());
        }
    }

    /// A parameter without a gradient is not moved and gets no state;
    /// stepping again with no gradients changes nothing.
    #[test]
    fn parameters_without_gradients_are_skipped() {
        let d = Device::Cpu;
        for kind in OptimizerKind::ALL {
            let a = param("a.weight", &[2, 2], &values(4, 1), &d);
            let b = param("b.weight", &[2, 2], &values(4, 2), &d);
            set_grad(&a, &values(4, 3));
            let mut opt = build(kind, 1e-2);
            opt.step(&[a.clone(), b.clone()], 0.1);
            assert_eq!(b.value().to_vec(), values(4, 2), "{}", kind.name());
            assert_ne!(a.value().to_vec(), values(4, 1), "{}", kind.name());
            assert!(
                opt.state().iter().all(|(k, _)| !k.ends_with("b.weight")),
                "{}: state for a parameter without gradient",
                kind.name()
            );
            a.zero_grad();
            let before = opt.state();
            let a_before = a.value().to_vec();
            opt.step(&[a.clone(), b.clone()], 0.1);
            assert_eq!(a.value().to_vec(), a_before, "{}", kind.name());
            let after = opt.state();
            assert_eq!(before.len(), after.len());
            for ((k1, t1), (k2, t2)) in before.iter().zip(&after) {
                assert_eq!((k1, t1.to_vec()), (k2, t2.to_vec()), "{}", kind.name());
            }
        }
    }

    /// Two steps, save, load into a fresh optimiser, one more step on both:
    /// the parameters agree bit for bit.
    #[test]
    fn state_round_trip_resumes_bit_identically() {
        let d = Device::Cpu;
        let shapes: [(&str, &[usize]); 3] = [
            ("conv1.weight", &[2, 3, 2, 2]),
            ("bn1.weight", &[3]),
            ("net.0.bias", &[4]),
        ];
        for kind in OptimizerKind::ALL {
            let make = |offset: u32| -> Vec<Param> {
                shapes
                    .iter()
                    .enumerate()
                    .map(|(i, (name, shape))| {
                        let n = shape.iter().product();
                        param(name, shape, &values(n, i as u32 + offset), &d)
                    })
                    .collect()
            };
            let a = make(10);
            let mut opt = build(kind, 1e-2);
            for step in 0..2 {
                for (i, p) in a.iter().enumerate() {
                    set_grad(p, &values(p.value().numel(), 100 + 7 * step + i as u32));
                }
                opt.step(&a, 0.05);
            }
            let saved: BTreeMap<String, Tensor> = opt.state().into_iter().collect();
            assert!(!saved.is_empty());
            let b: Vec<Param> = a.iter().map(|p| Param::new(p.name(), p.value())).collect();
            let mut resumed = build(kind, 1e-2);
            resumed.load_state(&saved).unwrap();
            for (i, (pa, pb)) in a.iter().zip(&b).enumerate() {
                let g = values(pa.value().numel(), 200 + i as u32);
                set_grad(pa, &g);
                set_grad(pb, &g);
            }
            opt.step(&a, 0.05);
            resumed.step(&b, 0.05);
            for (pa, pb) in a.iter().zip(&b) {
                let (va, vb) = (pa.value().to_vec(), pb.value().to_vec());
                let same = va.iter().zip(&vb).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(
                    same,
                    "{}: {} differs after resuming",
                    kind.name(),
                    pa.name()
                );
            }
        }
    }

    #[test]
    fn state_of_another_optimiser_is_refused() {
        let d = Device::Cpu;
        let p = param("w.weight", &[2, 2], &values(4, 1), &d);
        set_grad(&p, &values(4, 2));
        let mut adam = build(OptimizerKind::Adam, 0.0);
        adam.step(std::slice::from_ref(&p), 0.1);
        let adam_state: BTreeMap<String, Tensor> = adam.state().into_iter().collect();
        let mut lars = build(OptimizerKind::Lars, 0.0);
        let err = lars.load_state(&adam_state).unwrap_err().to_string();
        assert!(err.contains("lars keeps only momentum."), "{err}");

        let mut sgd = build(OptimizerKind::Sgd, 0.0);
        sgd.step(std::slice::from_ref(&p), 0.1);
        let sgd_state: BTreeMap<String, Tensor> = sgd.state().into_iter().collect();
        let err = adam.load_state(&sgd_state).unwrap_err().to_string();
        assert!(err.contains("momentum.w.weight"), "{err}");
        assert!(adam.state().is_empty());
    }

    #[test]
    #[should_panic(expected = "two parameters are called w")]
    fn duplicate_names_are_refused() {
        let d = Device::Cpu;
        let a = param("w", &[2], &[1.0, 2.0], &d);
        let b = param("w", &[2], &[3.0, 4.0], &d);
        build(OptimizerKind::Sgd, 0.0).step(&[a, b], 0.1);
    }
}
