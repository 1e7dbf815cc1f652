//! LARS (Layer-wise Adaptive Rate Scaling, You et al. 2017), the optimiser
//! BYOL trains with, as the official BYOL code defines it.
//!
//! For each parameter `w` with gradient `∇w`:
//!
//! ```text
//! g     = ∇w + wd·w                          weight decay, added to the gradient
//! g     = g · η‖w‖/‖g‖                       trust ratio (1 when ‖w‖ = 0 or ‖g‖ = 0)
//! buf   = g             on the first step    momentum
//! buf   = μ·buf + g     after
//! w     = w − lr·buf                         learning rate
//! ```
//!
//! Biases and batch-norm parameters ([`is_excluded`]) skip the first two
//! lines: `g = ∇w`. The paper's settings: `wd` = 1.5e-6, `η` = 1e-3,
//! `μ` = 0.9.
//!
//! The trust ratio gives every layer a step proportional to the size of its
//! own weights, whatever the scale of its gradient, which is what lets
//! large-batch training use one learning rate for the whole network. It is
//! computed on the device as a one-element tensor (the norms are never read
//! back), and multiplies `g` by broadcasting.

use super::{
    check_unique_names, is_excluded, load_momentum_state, momentum_state, momentum_update,
    Optimizer,
};
use crate::error::Result;
use autograd::Param;
use std::collections::BTreeMap;
use tensor::Tensor;

/// The paper's trust coefficient η.
pub const DEFAULT_ETA: f32 = 1e-3;

/// The paper's momentum μ.
pub const DEFAULT_MOMENTUM: f32 = 0.9;

/// LARS with momentum, weight decay and exclusions as in the official BYOL
/// code (see the module documentation for the update).
#[derive(Debug)]
pub struct Lars {
    /// Weight decay `wd`, added to the gradient (1.5e-6 in the paper).
    pub weight_decay: f32,
    /// Trust coefficient `η` (1e-3 in the paper).
    pub eta: f32,
    /// Momentum `μ` (0.9 in the paper).
    pub momentum: f32,
    /// The momentum buffer of each parameter that has had a step, by name.
    buffers: BTreeMap<String, Tensor>,
}

impl Lars {
    /// LARS with weight decay `weight_decay`, trust coefficient `eta` and
    /// momentum `momentum`, and no buffers yet.
    pub fn new(weight_decay: f32, eta: f32, momentum: f32) -> Lars {
        Lars {
            weight_decay,
            eta,
            momentum,
            buffers: BTreeMap::new(),
        }
    }
}

/// The trust ratio `η‖w‖/‖g‖`, or 1 when either norm is 0, as a
/// one-element tensor (shape `[]`) on the device of `w` and `g`; nothing is
/// read back to the host.
///
/// ```text
/// ok    = [‖w‖ > 0] · [‖g‖ > 0]                     1 or 0
/// ratio = ok ? η‖w‖ / (‖g‖ + 1 − ok) : 1 − ok
/// ```
///
/// Where `ok` is 1 the denominator is exactly `‖g‖`; where it is 0 the
/// denominator is at least 1, so no division by zero is ever computed, and
/// `1 − ok` is the 1 to use. (A non-finite norm also gives `ok` = 0.)
pub fn trust_ratio(w: &Tensor, g: &Tensor, eta: f32) -> Tensor {
    let w_norm = w.norm_l2();
    let g_norm = g.norm_l2();
    let ok = w_norm.gt_scalar(0.0).mul(&g_norm.gt_scalar(0.0));
    let not_ok = ok.mul_scalar(-1.0).add_scalar(1.0);
    let ratio = w_norm.mul_scalar(eta).div(&g_norm.add(&not_ok));
    ok.select(&ratio, &not_ok)
}

impl Optimizer for Lars {
    fn step(&mut self, params: &[Param], lr: f32) {
        check_unique_names(params, "lars");
        for p in params {
            let Some(grad) = p.grad() else {
                continue;
            };
            let w = p.value();
            let g = if is_excluded(p) {
                // Biases and batch-norm parameters: g = ∇w.
                grad
            } else {
                // g = ∇w + wd·w
                let g = grad.add(&w.mul_scalar(self.weight_decay));
                // g = g · η‖w‖/‖g‖
                g.mul(&trust_ratio(&w, &g, self.eta))
            };
            // buf = g (first step) or μ·buf + g
            let buf = momentum_update(&mut self.buffers, p.name(), g, self.momentum, "lars");
            // w = w − lr·buf
            p.set_value(w.sub(&buf.mul_scalar(lr)));
        }
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        momentum_state(&self.buffers)
    }

    fn load_state(&mut self, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
        self.buffers.clear();
        self.buffers = load_momentum_state(tensors, "lars")?;
        Ok(())
    }

    fn name(&self) -> &'static str {
        "lars"
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_vec_close, norm, param, set_grad, values};
    use super::*;
    use tensor::testing::{assert_close, gpu_device};
    use tensor::Device;

    /// The update of one parameter as a plain loop over `f32`s: the same
    /// formulas as the module documentation, in the same order.
    fn reference_step(
        w: &mut [f32],
        grad: &[f32],
        buf: &mut Option<Vec<f32>>,
        excluded: bool,
        (lr, wd, eta, mu): (f32, f32, f32, f32),
    ) {
        let mut g: Vec<f32> = grad.to_vec();
        if !excluded {
            for i in 0..g.len() {
                g[i] += w[i] * wd;
            }
            let (wn, gn) = (norm(w), norm(&g));
            let ratio = if wn > 0.0 && gn > 0.0 {
                wn * eta / gn
            } else {
                1.0
            };
            for gi in g.iter_mut() {
                *gi *= ratio;
            }
        }
        let b = match buf.take() {
            None => g,
            Some(old) => old.iter().zip(&g).map(|(b, gi)| b * mu + gi).collect(),
        };
        for i in 0..w.len() {
            w[i] -= b[i] * lr;
        }
        *buf = Some(b);
    }

    /// The parameters of the tests: an included convolution weight, two
    /// excluded ones (batch-norm scale, bias), an included weight that is
    /// zero (‖w‖ = 0) and one whose weight and gradient are both zero.
    fn setup(dev: &Device) -> Vec<(Param, bool)> {
        vec![
            (
                param("conv1.weight", &[2, 3, 2, 2], &values(24, 1), dev),
                false,
            ),
            (param("layer1.0.bn1.weight", &[3], &values(3, 2), dev), true),
            (param("net.0.bias", &[4], &values(4, 3), dev), true),
            (param("zero.weight", &[2, 3], &[0.0; 6], dev), false),
            (param("still.weight", &[3, 2], &[0.0; 6], dev), false),
        ]
    }

    fn gradient(name: &str, n: usize, step: u32) -> Vec<f32> {
        if name == "still.weight" && step == 0 {
            vec![0.0; n]
        } else {
            values(n, 50 + 13 * step + name.len() as u32)
        }
    }

    #[test]
    fn two_steps_match_the_reference_loop() {
        let dev = Device::Cpu;
        let hyper = (0.5, 1e-2, DEFAULT_ETA, DEFAULT_MOMENTUM);
        let params = setup(&dev);
        let mut opt = Lars::new(hyper.1, hyper.2, hyper.3);
        let mut want: Vec<Vec<f32>> = params.iter().map(|(p, _)| p.value().to_vec()).collect();
        let mut bufs: Vec<Option<Vec<f32>>> = vec![None; params.len()];
        let handles: Vec<Param> = params.iter().map(|(p, _)| p.clone()).collect();
        for step in 0..2 {
            for (i, (p, excluded)) in params.iter().enumerate() {
                assert_eq!(is_excluded(p), *excluded, "{}", p.name());
                let g = gradient(p.name(), want[i].len(), step);
                set_grad(p, &g);
                reference_step(&mut want[i], &g, &mut bufs[i], *excluded, hyper);
            }
            opt.step(&handles, hyper.0);
            for (i, (p, _)) in params.iter().enumerate() {
                let what = format!("{} after step {}", p.name(), step + 1);
                assert_vec_close(&p.value().to_vec(), &want[i], 1e-6, &what);
            }
        }
        // The weight and gradient of still.weight were zero at the first
        // step, so it has not moved then; at the second it has.
        assert_ne!(params[4].0.value().to_vec(), vec![0.0; 6]);
        let state = opt.state();
        assert_eq!(state.len(), 5);
        assert_eq!(state[0].0, "momentum.conv1.weight");
    }

    #[test]
    fn trust_ratio_is_one_when_either_norm_is_zero() {
        let d = Device::Cpu;
        let w = Tensor::from_vec(vec![3.0, 4.0], &[2], &d);
        let g = Tensor::from_vec(vec![0.0, 0.5], &[2], &d);
        let zero = Tensor::zeros(&[2], &d);
        assert_eq!(
            trust_ratio(&w, &g, 1e-3).to_vec(),
            vec![1e-3f32 * 5.0 / 0.5]
        );
        assert_eq!(trust_ratio(&zero, &g, 1e-3).to_vec(), vec![1.0]);
        assert_eq!(trust_ratio(&w, &zero, 1e-3).to_vec(), vec![1.0]);
        assert_eq!(trust_ratio(&zero, &zero, 1e-3).to_vec(), vec![1.0]);
        assert_eq!(trust_ratio(&w, &g, 1e-3).shape(), &[] as &[usize]);
    }

    /// Excluded parameters: the update is plain momentum SGD on the raw
    /// gradient, whatever the weight decay and η.
    #[test]
    fn excluded_parameters_get_no_decay_and_no_trust_ratio() {
        let d = Device::Cpu;
        let b = param("net.0.bias", &[3], &[1.0, 2.0, 3.0], &d);
        set_grad(&b, &[0.5, -0.5, 1.0]);
        let mut opt = Lars::new(0.1, 1e-3, 0.9);
        opt.step(std::slice::from_ref(&b), 0.5);
        assert_eq!(b.value().to_vec(), vec![0.75, 2.25, 2.5]);
    }

    #[test]
    fn one_step_on_the_gpu_matches_the_cpu() {
        let Some(gpu) = gpu_device() else {
            return;
        };
        let results: Vec<Vec<Tensor>> = [Device::Cpu, gpu]
            .iter()
            .map(|dev| {
                let params = setup(dev);
                let handles: Vec<Param> = params.iter().map(|(p, _)| p.clone()).collect();
                let mut opt = Lars::new(1e-2, DEFAULT_ETA, DEFAULT_MOMENTUM);
                for step in 0..2 {
                    for p in &handles {
                        set_grad(p, &gradient(p.name(), p.value().numel(), step));
                    }
                    opt.step(&handles, 0.5);
                }
                handles
                    .iter()
                    .map(|p| p.value().to_device(&Device::Cpu))
                    .collect()
            })
            .collect();
        let names = setup(&Device::Cpu);
        for ((cpu, gpu), (p, _)) in results[0].iter().zip(&results[1]).zip(&names) {
            assert_close(
                gpu,
                cpu,
                1e-7,
                1e-5,
                &format!("lars {} on the gpu", p.name()),
            );
        }
    }
}
