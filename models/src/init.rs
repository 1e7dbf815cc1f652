//! Initialisation as torchvision does it, from a seed.
//!
//! * Convolutions: Kaiming normal in `fan_out` mode for ReLU networks (He et
//!   al. 2015): `w ~ N(0, 2 / fan_out)`, `fan_out = out_channels · KH · KW`.
//!   It keeps the variance of the gradients flowing backward constant from
//!   layer to layer.
//! * Linear layers: PyTorch's default, Kaiming uniform with `a = √5`, which
//!   works out to `w ~ U(-1/√fan_in, 1/√fan_in)`, and the bias from the same
//!   range.
//! * Batch norm: weight 1, bias 0 (set by the layer).
//!
//! Every tensor draws from its own seed, derived from the network's seed
//! and a counter, so the same seed builds the same network.

use tensor::{Device, Tensor};

/// Hands out one seed per initialised tensor.
#[derive(Clone, Debug)]
pub struct Seeds {
    base: u64,
    next: u64,
}

impl Seeds {
    /// A stream of seeds fixed by `seed`.
    pub fn new(seed: u64) -> Seeds {
        Seeds {
            base: seed,
            next: 0,
        }
    }

    /// The next seed: SplitMix64's mix of the base and a counter,
    /// `mix64(base ^ counter · g)` (`g` the golden gamma).
    pub fn next_seed(&mut self) -> u64 {
        self.next += 1;
        rng::mix64(self.base ^ self.next.wrapping_mul(rng::GOLDEN_GAMMA))
    }
}

/// Kaiming normal, fan-out mode, for a convolution weight `[O, C, KH, KW]`.
pub fn kaiming_normal_fan_out(shape: &[usize], seeds: &mut Seeds, device: &Device) -> Tensor {
    let fan_out = shape[0] * shape[2..].iter().product::<usize>();
    let std = (2.0 / fan_out as f32).sqrt();
    Tensor::randn(shape, 0.0, std, seeds.next_seed(), device)
}

/// PyTorch's default for a linear layer's weight `[out, in]` or bias
/// `[out]`: `U(-1/√fan_in, 1/√fan_in)`.
pub fn linear_uniform(
    shape: &[usize],
    fan_in: usize,
    seeds: &mut Seeds,
    device: &Device,
) -> Tensor {
    let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
    Tensor::rand_uniform(shape, -bound, bound, seeds.next_seed(), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kaiming_std_and_uniform_bound() {
        let d = Device::Cpu;
        let mut s = Seeds::new(1);
        let w = kaiming_normal_fan_out(&[64, 32, 3, 3], &mut s, &d).to_vec();
        let var = w.iter().map(|x| x * x).sum::<f32>() / w.len() as f32;
        // Expected variance 2 / (64·9) = 3.47e-3; 18k samples give ~1% error.
        assert!((var / (2.0 / 576.0) - 1.0).abs() < 0.05, "variance {var}");
        let l = linear_uniform(&[10, 100], 100, &mut s, &d).to_vec();
        assert!(l.iter().all(|x| x.abs() <= 0.1));
        assert!(l.iter().any(|x| x.abs() > 0.09));
        assert_ne!(Seeds::new(1).next_seed(), Seeds::new(2).next_seed());
    }
}
