//! `Conv2d`: a 2-D convolution with a `[O, C, KH, KW]` weight, no bias by
//! default (a batch norm follows every convolution of a ResNet, and its
//! shift makes a bias redundant).

use crate::init::{kaiming_normal_fan_out, linear_uniform, Seeds};
use crate::module::{join, Module};
use autograd::{Param, Tape, Var};
use tensor::{Conv2dParams, Device};

/// A convolution layer: `weight` (`prefix.weight`) and an optional `bias`.
pub struct Conv2d {
    /// `[out, in, kernel, kernel]`.
    pub weight: Param,
    /// `[out]`, when the layer has one.
    pub bias: Option<Param>,
    /// Stride and padding.
    pub params: Conv2dParams,
}

impl Conv2d {
    /// A square `kernel` convolution from `in_ch` to `out_ch` channels,
    /// without bias, Kaiming-initialised.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        prefix: &str,
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        seeds: &mut Seeds,
        device: &Device,
    ) -> Conv2d {
        let shape = [out_ch, in_ch, kernel, kernel];
        Conv2d {
            weight: Param::new(
                join(prefix, "weight"),
                kaiming_normal_fan_out(&shape, seeds, device),
            ),
            bias: None,
            params: Conv2dParams::new(stride, padding),
        }
    }

    /// The same layer with a bias, initialised as PyTorch does
    /// (`U(-1/√fan_in, 1/√fan_in)`, `fan_in = in·KH·KW`).
    pub fn with_bias(mut self, seeds: &mut Seeds) -> Conv2d {
        let s = self.weight.shape();
        let name = self.weight.name().trim_end_matches("weight").to_string() + "bias";
        let fan_in = s[1] * s[2] * s[3];
        self.bias = Some(Param::new(
            name,
            linear_uniform(&[s[0]], fan_in, seeds, &self.weight.value().device()),
        ));
        self
    }
}

impl Module for Conv2d {
    fn forward(&self, tape: &Tape, x: &Var) -> Var {
        let y = x.conv2d(&tape.param(&self.weight), self.params);
        match &self.bias {
            Some(b) => {
                let c = b.shape()[0];
                y.add(&tape.param(b).reshape(&[1, c, 1, 1]))
            }
            None => y,
        }
    }

    fn parameters(&self) -> Vec<Param> {
        let mut p = vec![self.weight.clone()];
        p.extend(self.bias.clone());
        p
    }

    fn set_training(&self, _training: bool) {}
}
