//! GPU batch-norm kernels, for an `[N, C, rest..]` tensor seen as `N·C`
//! planes of `L = Π rest` values.
//!
//! - [`channel_stats`]: one workgroup per channel (and part of the batch,
//!   when the channels are few and long) reduces its values twice, for the
//!   mean and then the mean squared deviation (`channel_stats.wgsl`); the
//!   parts' statistics are then merged (`channel_stats_combine.wgsl`). The
//!   sums are `f32` (WGSL has no `f64`), split over 256 partial sums and a
//!   pairwise tree, so they differ from the CPU's `f64` sums in the last
//!   bits.
//! - [`normalize`]: one invocation per element computes its channel's
//!   `scale` and `shift` and writes `x · scale + shift`, or its ReLU
//!   (`normalize.wgsl`).
//!
//! The backward pass (with or without a ReLU mask) is composed from
//! general tensor ops in `mod.rs`.
//!
//! Parameter layouts (`p[k]`):
//! - `channel_stats.wgsl`, `channel_stats_combine.wgsl`: p[0] = N,
//!   p[1] = C, p[2] = L, p[3] = parts, p[4] = images per part.
//! - `normalize.wgsl`: p[0] = number of elements, p[1] = C, p[2] = L,
//!   p[3] = eps (`f32` bits), p[4] = 1 to apply ReLU.

use crate::backend::gpu::{grid_1d, grid_for_groups, GpuBuffer};
use crate::Tensor;

const STATS: &str = include_str!("channel_stats.wgsl");
const COMBINE: &str = include_str!("channel_stats_combine.wgsl");
const NORMALIZE: &str = include_str!("normalize.wgsl");

/// `(N, C, L)`: the batch, channel and plane sizes of `x`.
fn dims(x: &Tensor) -> (usize, usize, usize) {
    let s = x.shape();
    (s[0], s[1], s[2..].iter().product())
}

/// The fewest values of a channel one workgroup reduces when channels
/// are cut into parts.
const MIN_PART: usize = 4096;
/// Workgroups the statistics of few channels are cut into, at most:
/// enough to keep every compute unit of a large GPU reading.
const TARGET_GROUPS: usize = 512;

/// `(parts, images per part)` for the statistics of `c` channels of `n`
/// images of `l` values: one part of the whole batch, unless the channels
/// are too few to give [`TARGET_GROUPS`] workgroups and each has enough
/// values for parts of at least [`MIN_PART`]. Parts are whole images, so
/// none is empty.
fn parts(n: usize, c: usize, l: usize) -> (usize, usize) {
    let wanted = TARGET_GROUPS
        .div_ceil(c.max(1))
        .min(n * l / MIN_PART)
        .min(n);
    let per_part = n.div_ceil(wanted.max(1)).max(1);
    (n.div_ceil(per_part).max(1), per_part)
}

/// Per-channel mean and biased variance, each `C` values: in one dispatch,
/// or, for few channels of many values, per part of the batch and then
/// merged (`channel_stats_combine.wgsl`).
pub fn channel_stats(x: &Tensor) -> (GpuBuffer, GpuBuffer) {
    let xb = x.gpu_buffer("channel_stats");
    let ctx = xb.context();
    let (n, c, l) = dims(x);
    let (parts, per_part) = parts(n, c, l);
    let mean = GpuBuffer::new(ctx, c);
    let var = GpuBuffer::new(ctx, c);
    // `Tensor::channel_stats` has checked that every channel has values.
    if c == 0 || n * l == 0 {
        return (mean, var);
    }
    let params = [n, c, l, parts, per_part].map(|v| v as u32);
    if parts == 1 {
        ctx.dispatch(
            "channel_stats",
            STATS,
            &params,
            &[xb, &mean, &var],
            grid_for_groups(c),
        );
        return (mean, var);
    }
    let (part_mean, part_var) = (
        GpuBuffer::new(ctx, c * parts),
        GpuBuffer::new(ctx, c * parts),
    );
    ctx.dispatch(
        "channel_stats",
        STATS,
        &params,
        &[xb, &part_mean, &part_var],
        grid_for_groups(c * parts),
    );
    ctx.dispatch(
        "channel_stats_combine",
        COMBINE,
        &params,
        &[&part_mean, &part_var, &mean, &var],
        grid_1d(c),
    );
    (mean, var)
}

/// `y = x · scale[c] + shift[c]` with `scale = w / sqrt(var + eps)` and
/// `shift = b - mean · scale`.
pub fn normalize(
    x: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    w: &Tensor,
    b: &Tensor,
    eps: f32,
    relu: bool,
) -> GpuBuffer {
    let op = "normalize_scale_shift";
    let xb = x.gpu_buffer(op);
    let ctx = xb.context();
    let (_, c, l) = dims(x);
    let n = x.numel();
    let out = GpuBuffer::new(ctx, n);
    if n > 0 {
        let params = [n as u32, c as u32, l as u32, eps.to_bits(), relu as u32];
        let buffers = [
            xb,
            mean.gpu_buffer(op),
            var.gpu_buffer(op),
            w.gpu_buffer(op),
            b.gpu_buffer(op),
            &out,
        ];
        ctx.dispatch(
            "normalize_scale_shift",
            NORMALIZE,
            &params,
            &buffers,
            grid_1d(n),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_close, gpu_device};
    use crate::{Device, Tensor};

    /// Shapes of rank 2 (BatchNorm1d, L = 1) and 4, odd sizes, one value
    /// per channel, and channels with more values than a workgroup has
    /// threads.
    const SHAPES: &[&[usize]] = &[
        &[7, 3],
        &[1, 1],
        &[3, 5, 7, 1],
        &[2, 3, 3, 33],
        &[257, 7],
        &[5, 2, 9, 11],
        &[2, 1, 257],
    ];

    /// Statistics against the CPU. The GPU sums in `f32` in a different
    /// order than the CPU's `f64` sums: 1e-5 relative, plus 1e-6 absolute
    /// for means near zero (the data has mean 0.5 and std 2).
    #[test]
    fn channel_stats_match_the_cpu() {
        let Some(gpu) = gpu_device() else { return };
        for (k, &shape) in SHAPES.iter().enumerate() {
            let x = Tensor::randn(shape, 0.5, 2.0, 70 + k as u64, &Device::Cpu);
            let (mean, var) = x.channel_stats();
            let (g_mean, g_var) = x.to_device(&gpu).channel_stats();
            assert_eq!(g_mean.device(), gpu);
            assert_close(&g_mean, &mean, 1e-6, 1e-5, &format!("mean {shape:?}"));
            assert_close(&g_var, &var, 1e-6, 1e-5, &format!("var {shape:?}"));
        }
    }

    /// Few channels of many values are reduced in parts of whole images
    /// (the last part shorter) and merged: the same statistics as the CPU,
    /// also under a large offset.
    #[test]
    fn channel_stats_in_parts_match_the_cpu() {
        assert_eq!(super::parts(256, 16, 784), (32, 8));
        assert_eq!(super::parts(37, 3, 256), (2, 19));
        assert_eq!(super::parts(256, 512, 16), (1, 256));
        assert_eq!(super::parts(7, 3, 1), (1, 7));
        let Some(gpu) = gpu_device() else { return };
        for (shape, offset, spread) in [
            ([37usize, 3, 16, 16], 0.5, 2.0),
            ([40, 2, 32, 32], 0.5, 2.0),
            ([40, 2, 32, 32], 1000.0, 1e-2),
        ] {
            // Each image a little higher than the last, so the parts'
            // means differ and their merge must count the differences.
            let noise = Tensor::randn(&shape, offset, spread, 75, &Device::Cpu);
            let image = shape[1..].iter().product::<usize>();
            let ramp: Vec<f32> = (0..noise.numel())
                .map(|i| (i / image) as f32 * spread / 4.0)
                .collect();
            let x = noise.add(&Tensor::from_vec(ramp, &shape, &Device::Cpu));
            let (mean, var) = x.channel_stats();
            let (g_mean, g_var) = x.to_device(&gpu).channel_stats();
            let what = format!("{shape:?} around {offset}");
            assert_close(&g_mean, &mean, 1e-5, 1e-5, &format!("mean {what}"));
            assert_close(&g_var, &var, 1e-6, 1e-3, &format!("var {what}"));
        }
    }

    /// A large offset does not cancel: two passes keep the variance of
    /// `1000 + N(0, 1e-2)` accurate where `E[x²] - E[x]²` would lose it all
    /// in `f32` (x² ~ 1e6 has a spacing of 0.06, the variance is 1e-4). The
    /// mean is good to 1e-5 relative (the f32 spacing at 1000 is 6e-5). An
    /// error δ in the f32 mean biases the variance by δ² (~1e-9 against
    /// 1e-4), so 1e-3 relative is ample for the variance.
    #[test]
    fn variance_survives_a_large_offset() {
        let Some(gpu) = gpu_device() else { return };
        let x = Tensor::randn(&[33, 3, 7], 1000.0, 1e-2, 80, &Device::Cpu);
        let (mean, var) = x.channel_stats();
        let (g_mean, g_var) = x.to_device(&gpu).channel_stats();
        assert_close(&g_mean, &mean, 0.0, 1e-5, "mean with offset");
        assert_close(&g_var, &var, 0.0, 1e-3, "var with offset");
    }

    /// Normalisation against the CPU, with the CPU's statistics on both
    /// sides. WGSL's sqrt and division may be off by a few ulps, and a GPU
    /// may fuse `x · scale + shift` into one rounding where the CPU rounds
    /// the product first (NVIDIA's Vulkan driver does, Mesa's llvmpipe does
    /// not): the two then differ by up to an ulp of `x · scale`, which can
    /// be far larger than the output (`scale = w/√(var + ε)` is ~300·w on
    /// a channel of one value, where the variance is 0). So 1e-5 relative,
    /// plus 1e-5 absolute for outputs near zero, plus 4 ulps of the
    /// largest `|x · scale|`.
    #[test]
    fn normalize_matches_the_cpu() {
        let Some(gpu) = gpu_device() else { return };
        for (k, &shape) in SHAPES.iter().enumerate() {
            let c = shape[1];
            let x = Tensor::randn(shape, 0.5, 2.0, 90 + k as u64, &Device::Cpu);
            let (mean, var) = x.channel_stats();
            let w = Tensor::randn(&[c], 1.0, 0.5, 91, &Device::Cpu);
            let b = Tensor::randn(&[c], 0.0, 0.5, 92, &Device::Cpu);
            let largest = |v: Vec<f32>| v.iter().fold(0.0f32, |m, e| m.max(e.abs()));
            let scale: Vec<f32> = (w.to_vec().iter().zip(var.to_vec()))
                .map(|(w, v)| w / (v + 1e-5).sqrt())
                .collect();
            let fused = 4.0 * f32::EPSILON * largest(x.to_vec()) * largest(scale);
            let abs = 1e-5 + fused;
            let want = x.normalize_scale_shift(&mean, &var, &w, &b, 1e-5);
            let on_gpu: Vec<Tensor> = [&x, &mean, &var, &w, &b]
                .iter()
                .map(|t| t.to_device(&gpu))
                .collect();
            let got = on_gpu[0]
                .normalize_scale_shift(&on_gpu[1], &on_gpu[2], &on_gpu[3], &on_gpu[4], 1e-5);
            assert_eq!(got.device(), gpu);
            assert_close(&got, &want, abs, 1e-5, &format!("normalize {shape:?}"));
            let want = x.normalize_scale_shift_relu(&mean, &var, &w, &b, 1e-5);
            let got = on_gpu[0]
                .normalize_scale_shift_relu(&on_gpu[1], &on_gpu[2], &on_gpu[3], &on_gpu[4], 1e-5);
            assert_close(&got, &want, abs, 1e-5, &format!("normalize+relu {shape:?}"));
        }
    }

    /// The fused ReLU + batch-norm backward (composed on the GPU) against
    /// the CPU's fused kernel.
    #[test]
    fn relu_backward_matches_the_cpu() {
        let Some(gpu) = gpu_device() else { return };
        for (k, &shape) in SHAPES.iter().enumerate() {
            let c = shape[1];
            let x = Tensor::randn(shape, 0.5, 2.0, 70 + k as u64, &Device::Cpu);
            let dz = Tensor::randn(shape, 0.0, 1.0, 71, &Device::Cpu);
            let w = Tensor::randn(&[c], 1.0, 0.5, 72, &Device::Cpu);
            let b = Tensor::randn(&[c], 0.0, 0.5, 73, &Device::Cpu);
            let (mean, var) = x.channel_stats();
            let z = x.normalize_scale_shift_relu(&mean, &var, &w, &b, 1e-5);
            let r = var.add_scalar(1e-5).rsqrt();
            let want = dz.batch_norm_relu_backward(&z, &x, &mean, &r, &w);
            let g: Vec<Tensor> = [&dz, &z, &x, &mean, &r, &w]
                .iter()
                .map(|t| t.to_device(&gpu))
                .collect();
            let got = g[0].batch_norm_relu_backward(&g[1], &g[2], &g[3], &g[4], &g[5]);
            assert_close(&got.0, &want.0, 1e-4, 1e-4, &format!("dx {shape:?}"));
            assert_close(&got.1, &want.1, 1e-4, 1e-4, &format!("dgamma {shape:?}"));
            assert_close(&got.2, &want.2, 1e-4, 1e-4, &format!("dbeta {shape:?}"));
        }
    }

    /// An empty plane axis gives an empty output without a dispatch.
    #[test]
    fn normalize_empty() {
        let Some(gpu) = gpu_device() else { return };
        let x = Tensor::zeros(&[2, 3, 0], &gpu);
        let c = Tensor::zeros(&[3], &gpu);
        let y = x.normalize_scale_shift(&c, &c, &c, &c, 1e-5);
        assert_eq!(y.shape(), &[2, 3, 0]);
        assert!(y.to_vec().is_empty());
    }
}
