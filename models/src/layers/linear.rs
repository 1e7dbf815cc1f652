//! `Linear`: `y = x·Wᵀ + b` with `W` stored `[out, in]` as PyTorch stores it.

use crate::init::{linear_uniform, Seeds};
use crate::module::{join, Module};
use autograd::{Param, Tape, Var};
use tensor::Device;

/// A fully connected layer.
pub struct Linear {
    /// `[out, in]`.
    pub weight: Param,
    /// `[out]`, when the layer has one.
    pub bias: Option<Param>,
}

impl Linear {
    /// A layer from `in_f` to `out_f` features, with or without a bias,
    /// initialised as PyTorch's default.
    pub fn new(
        prefix: &str,
        in_f: usize,
        out_f: usize,
        bias: bool,
        seeds: &mut Seeds,
        device: &Device,
    ) -> Linear {
        let weight = Param::new(
            join(prefix, "weight"),
            linear_uniform(&[out_f, in_f], in_f, seeds, device),
        );
        let bias = bias.then(|| {
            Param::new(
                join(prefix, "bias"),
                linear_uniform(&[out_f], in_f, seeds, device),
            )
        });
        Linear { weight, bias }
    }
}

impl Module for Linear {
    fn forward(&self, tape: &Tape, x: &Var) -> Var {
        let b = self.bias.as_ref().map(|b| tape.param(b));
        x.linear(&tape.param(&self.weight), b.as_ref())
    }

    fn parameters(&self) -> Vec<Param> {
        let mut p = vec![self.weight.clone()];
        p.extend(self.bias.clone());
        p
    }

    fn set_training(&self, _training: bool) {}
}
