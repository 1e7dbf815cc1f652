//! Batch normalisation as fused ops: training mode (batch statistics, with
//! its own backward rule) and evaluation mode (running statistics, a plain
//! per-channel affine map).
//!
//! Channels are axis 1 of `x: [N, C]` or `[N, C, H, W]`; statistics are
//! taken per channel over the `m = N·H·W` values of every other axis.
//!
//! **Training mode.**
//!
//! ```text
//! μ = (1/m) Σ x        σ² = (1/m) Σ (x - μ)²        (biased)
//! r = 1 / √(σ² + ε)    x̂ = (x - μ) · r              y = γ · x̂ + β
//! ```
//!
//! Backward, with sums per channel over the `m` values:
//!
//! ```text
//! dβ = Σ dy
//! dγ = Σ dy · x̂
//! dx = γ · r / m · (m · dy - Σ dy - x̂ · Σ (dy · x̂))
//! ```
//!
//! The last line is the chain rule through `μ` and `σ²`, which depend on
//! every `x` of the channel: `∂x̂_i/∂x_j = r (δ_ij - 1/m - x̂_i x̂_j / m)`.
//! Recording the composed ops instead (mean, sub, square, mean, rsqrt, mul,
//! ...) gives the same gradient through about ten nodes and their saved
//! tensors; the fused op keeps one node that saves `x`, `μ`, `r` and `γ`,
//! and recomputes `x̂` in the backward pass. The tests check the two
//! against each other and against PyTorch.
//!
//! The running statistics are the layer's business (the `models` crate):
//! the op returns the batch mean and biased variance, and
//! [`BatchNormTrain::unbiased_var`] gives the `σ² · m/(m-1)` that PyTorch's
//! running variance averages.
//!
//! **Evaluation mode** uses fixed running statistics `μ_r, σ²_r`, so
//! `y = γ · (x - μ_r) · r + β` with `r = 1/√(σ²_r + ε)` is affine in `x`:
//!
//! ```text
//! dx = dy · γ · r      dγ = Σ dy · (x - μ_r) · r      dβ = Σ dy
//! ```

use crate::sync::batch_norm_group;
use crate::Var;
use collective::Collective;
use tensor::Tensor;

/// The output of a training-mode batch norm.
pub struct BatchNormTrain {
    /// The normalised, scaled and shifted output (same shape as `x`).
    pub y: Var,
    /// The batch mean per channel, `[C]`.
    pub mean: Tensor,
    /// The biased batch variance per channel, `[C]` (what normalised `x`).
    pub var: Tensor,
    /// The number `m = N·H·W` of values each channel's statistics cover.
    pub count: usize,
}

impl BatchNormTrain {
    /// The unbiased batch variance `σ² · m / (m - 1)`, which PyTorch's
    /// running variance averages.
    pub fn unbiased_var(&self) -> Tensor {
        let m = self.count as f32;
        self.var.mul_scalar(m / (m - 1.0))
    }
}

/// The shape `[1, C, 1, ..]` that broadcasts a `[C]` tensor along axis 1
/// of a tensor of `shape`.
fn channel_shape(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    s[1] = shape[1];
    s
}

/// Every axis but the channel axis 1.
fn non_channel_axes(rank: usize) -> Vec<usize> {
    (0..rank).filter(|&a| a != 1).collect()
}

fn check_channels(x: &Var, tensors: &[(&str, &[usize])], op: &str) -> usize {
    assert!(
        x.rank() >= 2,
        "{op}: needs [N, C, ...] with channels on axis 1, got shape {:?}",
        x.shape()
    );
    let c = x.shape()[1];
    for (name, shape) in tensors {
        assert_eq!(
            *shape,
            &[c],
            "{op}: {name} has shape {shape:?}, input {:?} needs [{c}]",
            x.shape()
        );
    }
    c
}

impl Var {
    /// Training-mode batch norm of `self` with scale `weight` (γ) and shift
    /// `bias` (β), both `[C]`, normalising by the batch statistics.
    ///
    /// Rule (see the [module docs](self)): `dβ = Σ dy`, `dγ = Σ dy·x̂`,
    /// `dx = γ·r/m · (m·dy - Σ dy - x̂·Σ(dy·x̂))`. Panics if a channel has a
    /// single value (`m = 1`), as PyTorch does in training mode.
    pub fn batch_norm_train(&self, weight: &Var, bias: &Var, eps: f32) -> BatchNormTrain {
        self.batch_norm_train_with(weight, bias, eps, false)
    }

    /// Training-mode batch norm followed by ReLU, `z = max(y, 0)`, as one
    /// node: the same values and gradients as
    /// `self.batch_norm_train(..).y.relu()`, with one node and one saved
    /// tensor fewer, and a forward pass that writes `z` without writing `y`.
    ///
    /// Rule: `dy = dz · [z > 0]`, then the batch-norm rule above.
    pub fn batch_norm_relu_train(&self, weight: &Var, bias: &Var, eps: f32) -> BatchNormTrain {
        self.batch_norm_train_with(weight, bias, eps, true)
    }

    fn batch_norm_train_with(
        &self,
        weight: &Var,
        bias: &Var,
        eps: f32,
        relu: bool,
    ) -> BatchNormTrain {
        let op = if relu {
            "batch_norm_relu_train"
        } else {
            "batch_norm_train"
        };
        let c = check_channels(
            self,
            &[("weight", weight.shape()), ("bias", bias.shape())],
            op,
        );
        let count = self.value().numel() / c.max(1);
        assert!(
            count > 1,
            "{op}: each channel needs more than one value in training mode, shape {:?}",
            self.shape()
        );
        let (x, gamma) = (self.value().clone(), weight.value().clone());
        let (mean, var) = x.channel_stats();
        // Inside `with_batch_norm_group`: the statistics of the whole global
        // batch of the group (see crate::sync).
        let group = batch_norm_group();
        let (mean, var, count) = match &group {
            None => (mean, var, count),
            Some(g) => global_stats(g.as_ref(), &mean, &var, count),
        };
        let y = if relu {
            x.normalize_scale_shift_relu(&mean, &var, &gamma, bias.value(), eps)
        } else {
            x.normalize_scale_shift(&mean, &var, &gamma, bias.value(), eps)
        };
        let inv_std = var.add_scalar(eps).rsqrt();
        let (saved_mean, saved_var, saved_inv_std) = (mean.clone(), var.clone(), inv_std);
        // With ReLU the rule needs the output for its mask.
        let saved_out = relu.then(|| y.clone());
        let y = Var::from_op(op, y, &[self, weight, bias], move |dy, needs| {
            let (dx, dgamma, dbeta) = match (&group, &saved_out) {
                // One fused tensor op (two passes on the CPU) computes all three.
                (None, Some(z)) => {
                    dy.batch_norm_relu_backward(z, &x, &saved_mean, &saved_inv_std, &gamma)
                }
                (None, None) => dy.batch_norm_backward(&x, &saved_mean, &saved_inv_std, &gamma),
                (Some(g), out) => synced_backward(
                    g.as_ref(),
                    dy,
                    out.as_ref(),
                    &x,
                    (&saved_mean, &saved_var, &saved_inv_std),
                    (&gamma, eps),
                    count,
                ),
            };
            vec![
                needs[0].then_some(dx),
                needs[1].then_some(dgamma),
                needs[2].then_some(dbeta),
            ]
        });
        BatchNormTrain {
            y,
            mean,
            var,
            count,
        }
    }

    /// Evaluation-mode batch norm: normalises by fixed `running_mean` and
    /// `running_var` (constants, `[C]`), then scales by `weight` and shifts
    /// by `bias`.
    ///
    /// `dx = dy·γ·r`, `dγ = Σ dy·(x - μ_r)·r`, `dβ = Σ dy`, with
    /// `r = 1/√(σ²_r + ε)`.
    pub fn batch_norm_eval(
        &self,
        weight: &Var,
        bias: &Var,
        running_mean: &Tensor,
        running_var: &Tensor,
        eps: f32,
    ) -> Var {
        let op = "batch_norm_eval";
        let c = check_channels(
            self,
            &[
                ("weight", weight.shape()),
                ("bias", bias.shape()),
                ("running_mean", running_mean.shape()),
                ("running_var", running_var.shape()),
            ],
            op,
        );
        let (x, gamma) = (self.value().clone(), weight.value().clone());
        let y = x.normalize_scale_shift(running_mean, running_var, &gamma, bias.value(), eps);
        let (mean, inv_std) = (running_mean.clone(), running_var.add_scalar(eps).rsqrt());
        Var::from_op(op, y, &[self, weight, bias], move |dy, needs| {
            let bshape = channel_shape(x.shape());
            let axes = non_channel_axes(x.rank());
            let inv = inv_std.reshape(&bshape);
            let dx = needs[0].then(|| dy.mul(&gamma.reshape(&bshape).mul(&inv)));
            let dgamma = needs[1].then(|| {
                let x_hat = x.sub(&mean.reshape(&bshape)).mul(&inv);
                dy.mul(&x_hat).sum(&axes, false).reshape(&[c])
            });
            let dbeta = needs[2].then(|| dy.sum(&axes, false).reshape(&[c]));
            vec![dx, dgamma, dbeta]
        })
    }
}

/// The mean and biased variance per channel over the whole global batch
/// of `group`, from this rank's `mean` and `var` over `count` values each,
/// and the global count: one sum over the ranks of
/// `[m·μ, m·(σ² + μ²), m]`, in f64 (see crate::sync).
fn global_stats(
    group: &dyn Collective,
    mean: &Tensor,
    var: &Tensor,
    count: usize,
) -> (Tensor, Tensor, usize) {
    let (mu, v) = (mean.to_vec(), var.to_vec());
    let m = count as f64;
    let c = mu.len();
    let mut sums: Vec<f64> = mu.iter().map(|&x| m * x as f64).collect();
    sums.extend(
        mu.iter()
            .zip(&v)
            .map(|(&x, &s)| m * (s as f64 + (x as f64) * (x as f64))),
    );
    sums.push(m);
    group.sum_f64(&mut sums);
    let total = sums[2 * c];
    let global_mean: Vec<f64> = sums[..c].iter().map(|s| s / total).collect();
    let global_var: Vec<f32> = sums[c..2 * c]
        .iter()
        .zip(&global_mean)
        .map(|(s, mu)| (s / total - mu * mu).max(0.0) as f32)
        .collect();
    let device = mean.device();
    (
        Tensor::from_vec(
            global_mean.iter().map(|&x| x as f32).collect(),
            &[c],
            &device,
        ),
        Tensor::from_vec(global_var, &[c], &device),
        total as usize,
    )
}

/// The backward pass of a synchronised batch norm (see crate::sync), from
/// the fused single-process kernel and one correction.
///
/// With the global statistics (`μ`, `σ²`, `r = 1/√(σ²+ε)`, `M` values per
/// channel in the whole batch), the kernel returns this rank's sums
/// `s₁ = Σ dy`, `s₂ = Σ dy·x̂` (the shift and scale gradients of its slice,
/// which the gradient average later sums) and the input gradient as if
/// the slice's `m` values were all: `γ·r/m·(m·dy − s₁ − x̂·s₂)`. The true
/// one uses the sums over the group, `S₁`, `S₂`, and `M`; the difference
/// is an affine function of `x̂` per channel,
///
/// `dx = dx_slice + a + b·x̂`, `a = γ·r·(s₁/m − S₁/M)`, `b = γ·r·(s₂/m − S₂/M)`,
///
/// which the normalise-scale-shift kernel writes in one pass. With ReLU
/// (`z` given), `dy` is masked by `z > 0` throughout, inside the kernel.
fn synced_backward(
    group: &dyn Collective,
    dy: &Tensor,
    z: Option<&Tensor>,
    x: &Tensor,
    (mean, var, inv_std): (&Tensor, &Tensor, &Tensor),
    (gamma, eps): (&Tensor, f32),
    total: usize,
) -> (Tensor, Tensor, Tensor) {
    let (dx_slice, dgamma, dbeta) = match z {
        Some(z) => dy.batch_norm_relu_backward(z, x, mean, inv_std, gamma),
        None => dy.batch_norm_backward(x, mean, inv_std, gamma),
    };
    let (s1, s2) = (dbeta.to_vec(), dgamma.to_vec());
    let c = s1.len();
    let mut sums: Vec<f64> = s1.iter().chain(&s2).map(|&v| v as f64).collect();
    group.sum_f64(&mut sums);
    let (m, big_m) = ((x.numel() / c.max(1)) as f64, total as f64);
    let (g, r) = (gamma.to_vec(), inv_std.to_vec());
    let per = |i: usize, local: f32, global: f64| {
        (g[i] as f64 * r[i] as f64 * (local as f64 / m - global / big_m)) as f32
    };
    let a: Vec<f32> = (0..c).map(|i| per(i, s1[i], sums[i])).collect();
    let b: Vec<f32> = (0..c).map(|i| per(i, s2[i], sums[c + i])).collect();
    let device = x.device();
    let (a, b) = (
        Tensor::from_vec(a, &[c], &device),
        Tensor::from_vec(b, &[c], &device),
    );
    let correction = x.normalize_scale_shift(mean, var, &b, &a, eps);
    (dx_slice.add(&correction), dgamma, dbeta)
}

#[cfg(test)]
mod tests {
    use crate::Tape;
    use tensor::{Device, Tensor};

    /// The fused node against batch norm then ReLU as two nodes: the same
    /// output and the same three gradients, bit for bit (the kernels do the
    /// same arithmetic), for a conv-shaped and a linear-shaped input.
    #[test]
    fn fused_relu_equals_batch_norm_then_relu() {
        let d = Device::Cpu;
        for shape in [vec![4, 3, 5, 5], vec![6, 4]] {
            let c = shape[1];
            let x = Tensor::randn(&shape, 0.3, 1.5, 1, &d);
            let w = Tensor::randn(&[c], 1.0, 0.3, 2, &d);
            let b = Tensor::randn(&[c], 0.0, 0.5, 3, &d);
            let probe = Tensor::randn(&shape, 0.0, 1.0, 4, &d);
            let run = |fused: bool| {
                let tape = Tape::new();
                let (xv, wv, bv) = (
                    tape.leaf(x.clone()),
                    tape.leaf(w.clone()),
                    tape.leaf(b.clone()),
                );
                let z = if fused {
                    xv.batch_norm_relu_train(&wv, &bv, 1e-5).y
                } else {
                    xv.batch_norm_train(&wv, &bv, 1e-5).y.relu()
                };
                let loss = z.mul(&crate::Var::constant(probe.clone())).sum_all();
                let g = tape.backward(&loss);
                let grads: Vec<Vec<f32>> = [&xv, &wv, &bv]
                    .iter()
                    .map(|v| g.get(v).expect("gradient").to_vec())
                    .collect();
                (z.value().to_vec(), grads)
            };
            let (z1, g1) = run(true);
            let (z2, g2) = run(false);
            assert!(z1.contains(&0.0), "the ReLU should cut something");
            assert_eq!(z1, z2, "{shape:?}");
            assert_eq!(g1, g2, "{shape:?}");
        }
    }
}
