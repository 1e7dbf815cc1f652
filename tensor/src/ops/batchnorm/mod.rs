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
//! passes the running ones. Running averages belong to the layers above.
//!
//! The backward pass of training-mode normalisation (with batch
//! statistics, `x̂ = (x − mean)·r`, `r = 1/√(var + eps)`) is one op too,
//! [`Tensor::batch_norm_backward`]:
//!
//! ```text
//! dβ[c] = Σ dy          dγ[c] = Σ dy · x̂
//! dx    = γ·r/m · (m·dy − dβ − x̂·dγ)
//! ```
//!
//! On the CPU it is two passes over the data (the two channel sums, then
//! dx) instead of the ten or so that composing it from elementwise ops
//! takes, which matters because batch norm sits after every convolution.

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

/// The training-mode batch-norm backward written with general tensor ops:
/// the GPU's path, and the CPU kernel's reference in the tests.
fn batch_norm_backward_composed(
    dy: &Tensor,
    x: &Tensor,
    mean: &Tensor,
    inv_std: &Tensor,
    weight: &Tensor,
) -> (Tensor, Tensor, Tensor) {
    let c = x.shape()[1];
    let mut bshape = vec![1; x.rank()];
    bshape[1] = c;
    let axes: Vec<usize> = (0..x.rank()).filter(|&a| a != 1).collect();
    let m = (x.numel() / c.max(1)) as f32;
    let r = inv_std.reshape(&bshape);
    let x_hat = x.sub(&mean.reshape(&bshape)).mul(&r);
    let dbeta = dy.sum(&axes, true);
    let dgamma = dy.mul(&x_hat).sum(&axes, true);
    let coeff = weight.reshape(&bshape).mul(&r).div_scalar(m);
    let dx = dy
        .mul_scalar(m)
        .sub(&dbeta)
        .sub(&x_hat.mul(&dgamma))
        .mul(&coeff);
    (dx, dgamma.reshape(&[c]), dbeta.reshape(&[c]))
}

impl Tensor {
    /// The gradients of training-mode batch norm: `self` is dL/dy; `x` the
    /// input, `mean` and `inv_std` (`1/√(var + eps)`) the batch statistics
    /// the forward pass used, `weight` γ. Returns `(dx, dγ, dβ)`.
    pub fn batch_norm_backward(
        &self,
        x: &Tensor,
        mean: &Tensor,
        inv_std: &Tensor,
        weight: &Tensor,
    ) -> (Tensor, Tensor, Tensor) {
        let c = channels(x, "batch_norm_backward");
        assert_eq!(
            self.shape(),
            x.shape(),
            "batch_norm_backward: gradient {:?} and input {:?} differ",
            self.shape(),
            x.shape()
        );
        for (name, t) in [("mean", mean), ("inv_std", inv_std), ("weight", weight)] {
            self.same_device(t, "batch_norm_backward");
            assert_eq!(
                t.shape(),
                &[c],
                "batch_norm_backward: {name} has shape {:?}, input {:?} needs [{c}]",
                t.shape(),
                x.shape()
            );
        }
        match self.storage() {
            Storage::Cpu(_) => {
                let (dx, dg, db) = cpu::batch_norm_backward(self, x, mean, inv_std, weight);
                (
                    Tensor::cpu(dx, x.shape()),
                    Tensor::cpu(dg, &[c]),
                    Tensor::cpu(db, &[c]),
                )
            }
            // On the GPU the composed form runs as a handful of dispatches.
            Storage::Gpu(_) => batch_norm_backward_composed(self, x, mean, inv_std, weight),
        }
    }

    /// The gradients of batch norm followed by ReLU, `z = max(y, 0)`:
    /// `self` is dL/dz and `z` the output. It is
    /// `self.where_positive(z).batch_norm_backward(..)`: a CPU kernel that
    /// applied the mask inside its sums measured slower than the separate
    /// select pass (the masked sums did not vectorise), so the fusion is in
    /// the forward pass only and this method keeps the pair in one call.
    pub fn batch_norm_relu_backward(
        &self,
        z: &Tensor,
        x: &Tensor,
        mean: &Tensor,
        inv_std: &Tensor,
        weight: &Tensor,
    ) -> (Tensor, Tensor, Tensor) {
        assert_eq!(
            z.shape(),
            x.shape(),
            "batch_norm_relu_backward: output {:?} and input {:?} differ",
            z.shape(),
            x.shape()
        );
        self.same_device(z, "batch_norm_relu_backward");
        self.where_positive(z)
            .batch_norm_backward(x, mean, inv_std, weight)
    }

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
        self.normalize_with(mean, var, weight, bias, eps, false)
    }

    /// [`Tensor::normalize_scale_shift`] followed by ReLU, `max(y, 0)`, in
    /// the same pass: batch norm then ReLU, as a ResNet applies them, without
    /// writing and re-reading the normalised tensor.
    pub fn normalize_scale_shift_relu(
        &self,
        mean: &Tensor,
        var: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        eps: f32,
    ) -> Tensor {
        self.normalize_with(mean, var, weight, bias, eps, true)
    }

    /// The normalisation, with ReLU applied when `relu`.
    fn normalize_with(
        &self,
        mean: &Tensor,
        var: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        eps: f32,
        relu: bool,
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
                cpu::normalize(self, mean, var, weight, bias, eps, relu),
                self.shape(),
            ),
            Storage::Gpu(_) => Tensor::gpu(
                gpu::normalize(self, mean, var, weight, bias, eps, relu),
                self.shape(),
            ),
        }
    }
}
