//! The two kernels of batch normalisation: per-channel statistics, and the
//! fused normalise-scale-shift.
//!
//! Channels are axis 1 of an `[N, C]` or `[N, C, H, W]` (any rank ≥ 2)
//! tensor; statistics are taken over every other axis, `m = N·H·W` values
//! per channel:
//!
//! ```text
//! mean[c] = (1/m) Σ x[n, c, ..]
//! var[c]  = (1/m) Σ (x[n, c, ..] - mean[c])²          (biased)
//! y[n, c, ..] = (x[n, c, ..] - mean[c]) / sqrt(var[c] + eps) · weight[c] + bias[c]
//! ```
//!
//! The second line is folded into one multiply-add per element:
//! `scale = weight / sqrt(var + eps)`, `shift = bias - mean · scale`,
//! `y = x · scale + shift`. Training uses the batch's statistics; evaluation
//! passes the running ones. Running averages and the backward pass belong to
//! the layers above.

mod cpu;
mod gpu;

use crate::{Storage, Tensor};

fn channels(x: &Tensor, op: &str) -> usize {
    assert!(
        x.rank() >= 2,
        "{op}: needs [N, C, ...] with channels on axis 1, got shape {:?}",
        x.shape()
    );
    x.shape()[1]
}

impl Tensor {
    /// Per-channel mean and biased variance over every axis but axis 1;
    /// both of shape `[C]`.
    pub fn channel_stats(&self) -> (Tensor, Tensor) {
        let c = channels(self, "channel_stats");
        assert!(
            self.numel() > 0,
            "channel_stats: no values per channel in shape {:?}",
            self.shape()
        );
        match self.storage() {
            Storage::Cpu(_) => {
                let (m, v) = cpu::channel_stats(self);
                (Tensor::cpu(m, &[c]), Tensor::cpu(v, &[c]))
            }
            Storage::Gpu(_) => {
                let (m, v) = gpu::channel_stats(self);
                (Tensor::gpu(m, &[c]), Tensor::gpu(v, &[c]))
            }
        }
    }

    /// `(x - mean) / sqrt(var + eps) · weight + bias`, each of the four
    /// `[C]` tensors applied along axis 1.
    pub fn normalize_scale_shift(
        &self,
        mean: &Tensor,
        var: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        eps: f32,
    ) -> Tensor {
        let c = channels(self, "normalize_scale_shift");
        for (name, t) in [
            ("mean", mean),
            ("var", var),
            ("weight", weight),
            ("bias", bias),
        ] {
            self.same_device(t, "normalize_scale_shift");
            assert_eq!(
                t.shape(),
                &[c],
                "normalize_scale_shift: {name} has shape {:?}, input {:?} needs [{c}]",
                t.shape(),
                self.shape()
            );
        }
        match self.storage() {
            Storage::Cpu(_) => Tensor::cpu(
                cpu::normalize(self, mean, var, weight, bias, eps),
                self.shape(),
            ),
            Storage::Gpu(_) => Tensor::gpu(
                gpu::normalize(self, mean, var, weight, bias, eps),
                self.shape(),
            ),
        }
    }
}
