//! Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), as
//! PyTorch's `torch.optim.Adam` and `torch.optim.AdamW` compute them, with
//! the BYOL exclusions for weight decay.
//!
//! For each parameter `w` with gradient `∇w`, at its `t`-th step
//! (`t` = 1, 2, ...; `m₀ = v₀ = 0`):
//!
//! ```text
//! Adam:   g = ∇w + wd·w                        L2 penalty, added to the gradient
//! AdamW:  g = ∇w;  w = w·(1 − lr·wd)           decoupled weight decay
//!
//! m = β₁·m + (1 − β₁)·g                        first moment
//! v = β₂·v + (1 − β₂)·g²                       second moment
//! step_size = lr / (1 − β₁ᵗ)                   bias corrections (on the host)
//! denom     = √v / √(1 − β₂ᵗ) + ε
//! w = w − step_size · m / denom
//! ```
//!
//! Weight decay (of either kind) skips biases and batch-norm parameters
//! ([`is_excluded`]). Defaults: β₁ = 0.9, β₂ = 0.999, ε = 1e-8.
//!
//! The step count `t` is kept per parameter, as PyTorch does (a parameter
//! without a gradient skips the step and its count stays), and saved with
//! the moments: `exp_avg.<name>` (m), `exp_avg_sq.<name>` (v) and
//! `step.<name>` (t, a one-element `f32` tensor: exact up to 2²⁴ ≈ 16.7
//! million steps).
//!
//! PyTorch updates `m` with `lerp`, which can differ from the formula above
//! in the last bit; the formula is what is written here.

use super::{check_unique_names, is_excluded, ready_buffer, Optimizer};
use crate::error::{ByolError, Result};
use autograd::Param;
use std::collections::BTreeMap;
use tensor::Tensor;

/// The default decay of the first moment, β₁.
pub const DEFAULT_BETA1: f32 = 0.9;

/// The default decay of the second moment, β₂.
pub const DEFAULT_BETA2: f32 = 0.999;

/// The default ε added to the denominator.
pub const DEFAULT_EPS: f32 = 1e-8;

/// The largest step count an `f32` holds exactly (2²⁴).
const MAX_EXACT_STEP: u64 = 1 << 24;

/// Adam with the L2 penalty added to the gradient (see the module
/// documentation for the update).
#[derive(Debug)]
pub struct Adam {
    /// Weight decay `wd`, added to the gradient of parameters that are not
    /// [`is_excluded`].
    pub weight_decay: f32,
    /// Decay of the first moment, `β₁`.
    pub beta1: f32,
    /// Decay of the second moment, `β₂`.
    pub beta2: f32,
    /// Added to the denominator, `ε`.
    pub eps: f32,
    moments: Moments,
}

/// AdamW: Adam with decoupled weight decay `w ← w·(1 − lr·wd)` before the
/// update (see the module documentation).
#[derive(Debug)]
pub struct AdamW {
    /// Decoupled weight decay `wd`, applied to parameters that are not
    /// [`is_excluded`].
    pub weight_decay: f32,
    /// Decay of the first moment, `β₁`.
    pub beta1: f32,
    /// Decay of the second moment, `β₂`.
    pub beta2: f32,
    /// Added to the denominator, `ε`.
    pub eps: f32,
    moments: Moments,
}

impl Adam {
    /// Adam with weight decay `weight_decay`, moment decays `beta1` and
    /// `beta2` and denominator term `eps`, and no moments yet.
    pub fn new(weight_decay: f32, beta1: f32, beta2: f32, eps: f32) -> Adam {
        Adam {
            weight_decay,
            beta1,
            beta2,
            eps,
            moments: Moments::default(),
        }
    }
}

impl AdamW {
    /// AdamW with decoupled weight decay `weight_decay`, moment decays
    /// `beta1` and `beta2` and denominator term `eps`, and no moments yet.
    pub fn new(weight_decay: f32, beta1: f32, beta2: f32, eps: f32) -> AdamW {
        AdamW {
            weight_decay,
            beta1,
            beta2,
            eps,
            moments: Moments::default(),
        }
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: &[Param], lr: f32) {
        check_unique_names(params, "adam");
        for p in params {
            let Some(grad) = p.grad() else {
                continue;
            };
            let w = p.value();
            let g = if is_excluded(p) {
                grad
            } else {
                // g = ∇w + wd·w
                grad.add(&w.mul_scalar(self.weight_decay))
            };
            let hyper = (lr, self.beta1, self.beta2, self.eps);
            let w = self.moments.update(p.name(), &w, &g, hyper, "adam");
            p.set_value(w);
        }
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        self.moments.state()
    }

    fn load_state(&mut self, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
        self.moments.load(tensors, "adam")
    }

    fn name(&self) -> &'static str {
        "adam"
    }
}

impl Optimizer for AdamW {
    fn step(&mut self, params: &[Param], lr: f32) {
        check_unique_names(params, "adamw");
        for p in params {
            let Some(grad) = p.grad() else {
                continue;
            };
            let mut w = p.value();
            if !is_excluded(p) {
                // w = w·(1 − lr·wd)
                let keep = (1.0 - lr as f64 * self.weight_decay as f64) as f32;
                w = w.mul_scalar(keep);
            }
            let hyper = (lr, self.beta1, self.beta2, self.eps);
            let w = self.moments.update(p.name(), &w, &grad, hyper, "adamw");
            p.set_value(w);
        }
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        self.moments.state()
    }

    fn load_state(&mut self, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
        self.moments.load(tensors, "adamw")
    }

    fn name(&self) -> &'static str {
        "adamw"
    }
}

// ---------------------------------------------------------------------------
// The moments and the update Adam and AdamW share.

/// Prefix of the first moments in the state.
const EXP_AVG: &str = "exp_avg.";
/// Prefix of the second moments in the state.
const EXP_AVG_SQ: &str = "exp_avg_sq.";
/// Prefix of the step counts in the state.
const STEP: &str = "step.";

/// One parameter's moments and step count.
#[derive(Debug, Clone)]
struct Slot {
    /// First moment `m`.
    exp_avg: Tensor,
    /// Second moment `v`.
    exp_avg_sq: Tensor,
    /// Steps taken, `t`.
    step: u64,
}

/// Every parameter's moments, by name.
#[derive(Debug, Default)]
struct Moments {
    slots: BTreeMap<String, Slot>,
}

impl Moments {
    /// The Adam update of the parameter `name` with value `w` along `g`
    /// (weight decay already applied); returns the new value and keeps the
    /// new moments. `hyper` is (lr, β₁, β₂, ε).
    fn update(
        &mut self,
        name: &str,
        w: &Tensor,
        g: &Tensor,
        (lr, beta1, beta2, eps): (f32, f32, f32, f32),
        optimizer: &str,
    ) -> Tensor {
        // With m₀ = v₀ = 0 the first step's β·0 + x is exactly x, so a
        // missing slot needs no tensor of zeros.
        let g_part = g.mul_scalar(1.0 - beta1);
        let g2_part = g.square().mul_scalar(1.0 - beta2);
        let (m, v, t) = match self.slots.get(name) {
            None => (g_part, g2_part, 1),
            Some(slot) => {
                let m = ready_buffer(&slot.exp_avg, g, &format!("{EXP_AVG}{name}"), optimizer);
                let v = ready_buffer(
                    &slot.exp_avg_sq,
                    g,
                    &format!("{EXP_AVG_SQ}{name}"),
                    optimizer,
                );
                // m = β₁·m + (1 − β₁)·g
                let m = m.mul_scalar(beta1).add(&g_part);
                // v = β₂·v + (1 − β₂)·g²
                let v = v.mul_scalar(beta2).add(&g2_part);
                (m, v, slot.step + 1)
            }
        };
        // Bias corrections, on the host in f64 as PyTorch computes them.
        let bias_correction1 = 1.0 - (beta1 as f64).powf(t as f64);
        let bias_correction2 = 1.0 - (beta2 as f64).powf(t as f64);
        let step_size = (lr as f64 / bias_correction1) as f32;
        // denom = √v / √(1 − β₂ᵗ) + ε
        let denom = v
            .sqrt()
            .div_scalar(bias_correction2.sqrt() as f32)
            .add_scalar(eps);
        // w = w − step_size · m / denom
        let w = w.sub(&m.mul_scalar(step_size).div(&denom));
        let slot = Slot {
            exp_avg: m,
            exp_avg_sq: v,
            step: t,
        };
        self.slots.insert(name.to_string(), slot);
        w
    }

    /// The moments and step counts as named tensors, in name order.
    fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (name, slot) in &self.slots {
            let device = slot.exp_avg.device();
            out.push((format!("{EXP_AVG}{name}"), slot.exp_avg.clone()));
            out.push((format!("{EXP_AVG_SQ}{name}"), slot.exp_avg_sq.clone()));
            let step = Tensor::scalar(slot.step as f32, &device);
            out.push((format!("{STEP}{name}"), step));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Replaces the slots by those in `tensors`; on an error, none are
    /// kept.
    fn load(&mut self, tensors: &BTreeMap<String, Tensor>, optimizer: &str) -> Result<()> {
        self.slots.clear();
        let slots = Moments::parse(tensors, optimizer)?;
        self.slots = slots;
        Ok(())
    }

    /// Groups `exp_avg.<name>`, `exp_avg_sq.<name>` and `step.<name>` into
    /// one slot per name, checking that every name has all three, that the
    /// two moments have one shape, and that the count is a whole number.
    fn parse(
        tensors: &BTreeMap<String, Tensor>,
        optimizer: &str,
    ) -> Result<BTreeMap<String, Slot>> {
        let mut exp_avg = BTreeMap::new();
        let mut exp_avg_sq = BTreeMap::new();
        let mut steps = BTreeMap::new();
        for (key, t) in tensors {
            let (map, name) = if let Some(name) = key.strip_prefix(EXP_AVG) {
                (&mut exp_avg, name)
            } else if let Some(name) = key.strip_prefix(EXP_AVG_SQ) {
                (&mut exp_avg_sq, name)
            } else if let Some(name) = key.strip_prefix(STEP) {
                (&mut steps, name)
            } else {
                return Err(ByolError::Input(format!(
                    "optimiser state {key}: {optimizer} keeps only {EXP_AVG}, {EXP_AVG_SQ} and \
                     {STEP}<parameter> tensors; was the checkpoint made with another optimiser?"
                )));
            };
            map.insert(name.to_string(), t.clone());
        }
        let mut names: Vec<&String> = exp_avg
            .keys()
            .chain(exp_avg_sq.keys())
            .chain(steps.keys())
            .collect();
        names.sort();
        names.dedup();
        let mut slots = BTreeMap::new();
        for name in names {
            let missing = |prefix: &str| {
                ByolError::Input(format!(
                    "optimiser state: {optimizer} has no {prefix}{name}"
                ))
            };
            let m: &Tensor = exp_avg.get(name).ok_or_else(|| missing(EXP_AVG))?;
            let v: &Tensor = exp_avg_sq.get(name).ok_or_else(|| missing(EXP_AVG_SQ))?;
            let t: &Tensor = steps.get(name).ok_or_else(|| missing(STEP))?;
            if m.shape() != v.shape() {
                return Err(ByolError::Input(format!(
                    "optimiser state: {EXP_AVG}{name} has shape {:?} but {EXP_AVG_SQ}{name} {:?}",
                    m.shape(),
                    v.shape()
                )));
            }
            let count = t.to_vec();
            let step = match count.as_slice() {
                [c] if *c >= 1.0 && c.fract() == 0.0 && (*c as u64) <= MAX_EXACT_STEP => *c as u64,
                _ => {
                    return Err(ByolError::Input(format!(
                        "optimiser state: {STEP}{name} should be one whole number of steps \
                         from 1 to 2^24, it is {count:?}"
                    )))
                }
            };
            let slot = Slot {
                exp_avg: m.clone(),
                exp_avg_sq: v.clone(),
                step,
            };
            slots.insert(name.clone(), slot);
        }
        Ok(slots)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_vec_close, param, set_grad, values};
    use super::*;
    use tensor::testing::{assert_close, gpu_device};
    use tensor::Device;

    /// The moments of one parameter in the reference loop.
    struct RefSlot {
        m: Vec<f32>,
        v: Vec<f32>,
        t: u64,
    }

    /// Adam or AdamW on plain vectors, the formulas of the module
    /// documentation in the same order.
    fn reference_step(
        w: &mut [f32],
        grad: &[f32],
        slot: &mut RefSlot,
        excluded: bool,
        decoupled: bool,
        (lr, wd, b1, b2, eps): (f32, f32, f32, f32, f32),
    ) {
        let mut g = grad.to_vec();
        if !excluded && !decoupled {
            for i in 0..g.len() {
                g[i] += w[i] * wd;
            }
        }
        if !excluded && decoupled {
            let keep = (1.0 - lr as f64 * wd as f64) as f32;
            for wi in w.iter_mut() {
                *wi *= keep;
            }
        }
        slot.t += 1;
        let bc1 = 1.0 - (b1 as f64).powf(slot.t as f64);
        let bc2 = 1.0 - (b2 as f64).powf(slot.t as f64);
        let step_size = (lr as f64 / bc1) as f32;
        for i in 0..w.len() {
            slot.m[i] = slot.m[i] * b1 + g[i] * (1.0 - b1);
            slot.v[i] = slot.v[i] * b2 + g[i] * g[i] * (1.0 - b2);
            let denom = slot.v[i].sqrt() / (bc2.sqrt() as f32) + eps;
            w[i] -= slot.m[i] * step_size / denom;
        }
    }

    fn check_three_steps(decoupled: bool) {
        let dev = Device::Cpu;
        let (lr, wd) = (0.01, 0.1);
        let hyper = (lr, wd, DEFAULT_BETA1, DEFAULT_BETA2, DEFAULT_EPS);
        let params = [
            (
                param("conv1.weight", &[2, 3, 2, 2], &values(24, 1), &dev),
                false,
            ),
            (
                param("layer1.0.bn1.weight", &[3], &values(3, 2), &dev),
                true,
            ),
            (param("net.0.bias", &[4], &values(4, 3), &dev), true),
            (param("net.0.weight", &[4, 3], &values(12, 4), &dev), false),
        ];
        let handles: Vec<Param> = params.iter().map(|(p, _)| p.clone()).collect();
        let mut opt: Box<dyn Optimizer> = if decoupled {
            Box::new(AdamW::new(wd, DEFAULT_BETA1, DEFAULT_BETA2, DEFAULT_EPS))
        } else {
            Box::new(Adam::new(wd, DEFAULT_BETA1, DEFAULT_BETA2, DEFAULT_EPS))
        };
        let mut want: Vec<Vec<f32>> = handles.iter().map(|p| p.value().to_vec()).collect();
        let mut slots: Vec<RefSlot> = want
            .iter()
            .map(|w| RefSlot {
                m: vec![0.0; w.len()],
                v: vec![0.0; w.len()],
                t: 0,
            })
            .collect();
        for step in 0..3 {
            for (i, (p, excluded)) in params.iter().enumerate() {
                let g = values(want[i].len(), 70 + 5 * step + i as u32);
                set_grad(p, &g);
                reference_step(&mut want[i], &g, &mut slots[i], *excluded, decoupled, hyper);
            }
            opt.step(&handles, lr);
            for (i, p) in handles.iter().enumerate() {
                let what = format!("{} {} after step {}", opt.name(), p.name(), step + 1);
                assert_vec_close(&p.value().to_vec(), &want[i], 1e-6, &what);
            }
        }
        let state: BTreeMap<String, Tensor> = opt.state().into_iter().collect();
        assert_eq!(state.len(), 3 * params.len());
        assert_eq!(state["step.conv1.weight"].to_vec(), vec![3.0]);
    }

    #[test]
    fn adam_three_steps_match_the_reference_loop() {
        check_three_steps(false);
    }

    #[test]
    fn adamw_three_steps_match_the_reference_loop() {
        check_three_steps(true);
    }

    /// The first Adam step has a closed form: m̂ = g and v̂ = g², so
    /// w₁ = w₀ − lr·g/(|g| + ε) ≈ w₀ − lr·sign(g).
    #[test]
    fn first_adam_step_moves_by_lr_times_the_sign() {
        let d = Device::Cpu;
        let w = param("fc.bias", &[4], &[1.0, -2.0, 0.5, 3.0], &d);
        set_grad(&w, &[0.3, -4.0, 1e-3, -0.02]);
        let mut opt = Adam::new(0.0, DEFAULT_BETA1, DEFAULT_BETA2, DEFAULT_EPS);
        opt.step(std::slice::from_ref(&w), 0.1);
        let want = [1.0 - 0.1, -2.0 + 0.1, 0.5 - 0.1, 3.0 + 0.1];
        assert_vec_close(&w.value().to_vec(), &want, 1e-5, "first adam step");
    }

    #[test]
    fn malformed_state_is_refused() {
        let d = Device::Cpu;
        let mut opt = Adam::new(0.0, 0.9, 0.999, 1e-8);
        let mut state = BTreeMap::new();
        state.insert("exp_avg.w".to_string(), Tensor::zeros(&[2], &d));
        state.insert("exp_avg_sq.w".to_string(), Tensor::zeros(&[2], &d));
        let err = opt.load_state(&state).unwrap_err().to_string();
        assert!(err.contains("no step.w"), "{err}");
        state.insert("step.w".to_string(), Tensor::scalar(2.5, &d));
        let err = opt.load_state(&state).unwrap_err().to_string();
        assert!(err.contains("whole number"), "{err}");
        state.insert("step.w".to_string(), Tensor::scalar(2.0, &d));
        opt.load_state(&state).unwrap();
        assert_eq!(opt.state().len(), 3);
        state.insert("exp_avg_sq.w".to_string(), Tensor::zeros(&[3], &d));
        let err = opt.load_state(&state).unwrap_err().to_string();
        assert!(err.contains("shape"), "{err}");
        assert!(opt.state().is_empty());
    }

    #[test]
    fn adamw_on_the_gpu_matches_the_cpu() {
        let Some(gpu) = gpu_device() else {
            return;
        };
        let results: Vec<Vec<Tensor>> = [Device::Cpu, gpu]
            .iter()
            .map(|dev| {
                let w = param("conv.weight", &[3, 2, 3, 3], &values(54, 1), dev);
                let b = param("conv.bias", &[3], &values(3, 2), dev);
                let handles = [w, b];
                let mut opt = AdamW::new(0.05, DEFAULT_BETA1, DEFAULT_BETA2, DEFAULT_EPS);
                for step in 0..2 {
                    for (i, p) in handles.iter().enumerate() {
                        set_grad(p, &values(p.value().numel(), 9 + step + 3 * i as u32));
                    }
                    opt.step(&handles, 0.01);
                }
                handles
                    .iter()
                    .map(|p| p.value().to_device(&Device::Cpu))
                    .collect()
            })
            .collect();
        for (cpu, gpu) in results[0].iter().zip(&results[1]) {
            assert_close(gpu, cpu, 1e-7, 1e-5, "adamw on the gpu");
        }
    }
}
