//! SGD with momentum, as PyTorch's `torch.optim.SGD` (no dampening, no
//! Nesterov), with the BYOL exclusions for weight decay.
//!
//! For each parameter `w` with gradient `∇w`:
//!
//! ```text
//! g     = ∇w + wd·w                          weight decay (not for biases and batch norm)
//! buf   = g             on the first step    momentum
//! buf   = μ·buf + g     after
//! w     = w − lr·buf
//! ```
//!
//! This is LARS without the trust ratio; it is here as the baseline the
//! LARS ablation compares with.

use super::{
    check_unique_names, is_excluded, load_momentum_state, momentum_state, momentum_update,
    Optimizer,
};
use crate::error::Result;
use autograd::Param;
use std::collections::BTreeMap;
use tensor::Tensor;

/// The default momentum μ.
pub const DEFAULT_MOMENTUM: f32 = 0.9;

/// SGD with heavy-ball momentum and weight decay added to the gradient
/// (see the module documentation for the update).
#[derive(Debug)]
pub struct Sgd {
    /// Weight decay `wd`, added to the gradient of parameters that are not
    /// [`is_excluded`].
    pub weight_decay: f32,
    /// Momentum `μ`.
    pub momentum: f32,
    /// The momentum buffer of each parameter that has had a step, by name.
    buffers: BTreeMap<String, Tensor>,
}

impl Sgd {
    /// SGD with weight decay `weight_decay` and momentum `momentum`, and no
    /// buffers yet.
    pub fn new(weight_decay: f32, momentum: f32) -> Sgd {
        Sgd {
            weight_decay,
            momentum,
            buffers: BTreeMap::new(),
        }
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &[Param], lr: f32) {
        check_unique_names(params, "sgd");
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
            // buf = g (first step) or μ·buf + g
            let buf = momentum_update(&mut self.buffers, p.name(), g, self.momentum, "sgd");
            // w = w − lr·buf
            p.set_value(w.sub(&buf.mul_scalar(lr)));
        }
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        momentum_state(&self.buffers)
    }

    fn load_state(&mut self, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
        self.buffers.clear();
        self.buffers = load_momentum_state(tensors, "sgd")?;
        Ok(())
    }

    fn name(&self) -> &'static str {
        "sgd"
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{param, set_grad, values};
    use super::*;
    use tensor::Device;

    /// PyTorch's SGD on plain vectors.
    fn reference_step(
        w: &mut [f32],
        grad: &[f32],
        buf: &mut Option<Vec<f32>>,
        excluded: bool,
        (lr, wd, mu): (f32, f32, f32),
    ) {
        let g: Vec<f32> = if excluded {
            grad.to_vec()
        } else {
            grad.iter()
                .zip(w.iter())
                .map(|(gi, wi)| gi + wi * wd)
                .collect()
        };
        let b = match buf.take() {
            None => g,
            Some(old) => old.iter().zip(&g).map(|(b, gi)| b * mu + gi).collect(),
        };
        for i in 0..w.len() {
            w[i] -= b[i] * lr;
        }
        *buf = Some(b);
    }

    #[test]
    fn three_steps_match_the_reference_loop() {
        let dev = Device::Cpu;
        let hyper = (0.1, 1e-2, 0.9);
        let params = [
            (
                param("conv1.weight", &[2, 3, 2, 2], &values(24, 1), &dev),
                false,
            ),
            (param("bn1.weight", &[3], &values(3, 2), &dev), true),
            (param("fc.bias", &[5], &values(5, 3), &dev), true),
        ];
        let handles: Vec<Param> = params.iter().map(|(p, _)| p.clone()).collect();
        let mut opt = Sgd::new(hyper.1, hyper.2);
        let mut want: Vec<Vec<f32>> = handles.iter().map(|p| p.value().to_vec()).collect();
        let mut bufs: Vec<Option<Vec<f32>>> = vec![None; params.len()];
        for step in 0..3 {
            for (i, (p, excluded)) in params.iter().enumerate() {
                let g = values(want[i].len(), 30 + 11 * step + i as u32);
                set_grad(p, &g);
                reference_step(&mut want[i], &g, &mut bufs[i], *excluded, hyper);
            }
            opt.step(&handles, hyper.0);
            for (i, p) in handles.iter().enumerate() {
                // Same operations in the same order: equal to the last bit.
                assert_eq!(
                    p.value().to_vec(),
                    want[i],
                    "{} after step {}",
                    p.name(),
                    step + 1
                );
            }
        }
    }

    /// With momentum the second step moves by μ·g₁ + g₂; checked by hand.
    #[test]
    fn momentum_by_hand() {
        let d = Device::Cpu;
        let w = param("fc.bias", &[1], &[1.0], &d);
        let mut opt = Sgd::new(0.0, 0.5);
        set_grad(&w, &[1.0]);
        opt.step(std::slice::from_ref(&w), 0.25);
        assert_eq!(w.value().to_vec(), vec![0.75]);
        set_grad(&w, &[2.0]);
        opt.step(std::slice::from_ref(&w), 0.25);
        // buf = 0.5·1 + 2 = 2.5; w = 0.75 − 0.25·2.5
        assert_eq!(w.value().to_vec(), vec![0.125]);
    }
}
