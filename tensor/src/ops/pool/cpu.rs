//! CPU max-pool and its backward scatter, one `(n, c)` plane per task.

use super::Pool2dParams;
use crate::Tensor;
use rayon::prelude::*;

/// The pooled values and the flat in-plane index of each chosen element.
pub fn max_pool(x: &Tensor, p: Pool2dParams, oh: usize, ow: usize) -> (Vec<f32>, Vec<f32>) {
    let s = x.shape();
    let (h, w) = (s[2], s[3]);
    let xs = x.cpu_slice("max_pool2d");
    let planes = s[0] * s[1];
    let mut y = vec![0.0f32; planes * oh * ow];
    let mut idx = vec![0.0f32; planes * oh * ow];
    if y.is_empty() {
        return (y, idx);
    }
    let [kh, kw] = p.kernel;
    let [sh, sw] = p.stride;
    let [ph, pw] = p.padding;
    y.par_chunks_mut(oh * ow)
        .zip(idx.par_chunks_mut(oh * ow))
        .enumerate()
        .for_each(|(plane, (yp, ip))| {
            let xp = &xs[plane * h * w..(plane + 1) * h * w];
            for i in 0..oh {
                for j in 0..ow {
                    let mut best = f32::NEG_INFINITY;
                    let mut at = usize::MAX;
                    for a in 0..kh {
                        let r = (i * sh + a) as isize - ph as isize;
                        if r < 0 || r as usize >= h {
                            continue;
                        }
                        for b in 0..kw {
                            let q = (j * sw + b) as isize - pw as isize;
                            if q < 0 || q as usize >= w {
                                continue;
                            }
                            let flat = r as usize * w + q as usize;
                            let v = xp[flat];
                            // `at == MAX` takes the first in-image element
                            // even when it is -inf or NaN.
                            if at == usize::MAX || v > best || (v.is_nan() && !best.is_nan()) {
                                best = v;
                                at = flat;
                            }
                        }
                    }
                    yp[i * ow + j] = best;
                    ip[i * ow + j] = at as f32;
                }
            }
        });
    (y, idx)
}

/// Scatters `gy` onto the input positions named by `indices`.
pub fn max_pool_backward(gy: &Tensor, indices: &Tensor, input_shape: &[usize]) -> Vec<f32> {
    let hw = input_shape[2] * input_shape[3];
    let planes = input_shape[0] * input_shape[1];
    let out_hw = gy.shape()[2] * gy.shape()[3];
    let (g, ix) = (
        gy.cpu_slice("max_pool2d_backward"),
        indices.cpu_slice("max_pool2d_backward"),
    );
    let mut dx = vec![0.0f32; planes * hw];
    if dx.is_empty() || out_hw == 0 {
        return dx;
    }
    dx.par_chunks_mut(hw).enumerate().for_each(|(plane, d)| {
        let gp = &g[plane * out_hw..(plane + 1) * out_hw];
        let ip = &ix[plane * out_hw..(plane + 1) * out_hw];
        for (&v, &at) in gp.iter().zip(ip) {
            let at = at as usize;
            assert!(
                at < hw,
                "max_pool2d_backward: index {at} is outside a plane of {hw}"
            );
            d[at] += v;
        }
    });
    dx
}

#[cfg(test)]
mod tests {
    use crate::ops::pool::Pool2dParams;
    use crate::{Device, Tensor};
    use approx::assert_relative_eq;

    /// Reference max-pool by the definition, returning values and indices.
    fn reference(
        x: &[f32],
        s: [usize; 4],
        p: Pool2dParams,
    ) -> (Vec<f32>, Vec<usize>, usize, usize) {
        let (oh, ow) = p.output_size(s[2], s[3], "ref");
        let mut y = vec![];
        let mut ix = vec![];
        for plane in 0..s[0] * s[1] {
            for i in 0..oh {
                for j in 0..ow {
                    let mut cands = vec![];
                    for a in 0..p.kernel[0] {
                        for b in 0..p.kernel[1] {
                            let r = (i * p.stride[0] + a) as isize - p.padding[0] as isize;
                            let q = (j * p.stride[1] + b) as isize - p.padding[1] as isize;
                            if r >= 0 && q >= 0 && (r as usize) < s[2] && (q as usize) < s[3] {
                                let flat = r as usize * s[3] + q as usize;
                                cands.push((x[plane * s[2] * s[3] + flat], flat));
                            }
                        }
                    }
                    let best = cands
                        .iter()
                        .fold(cands[0], |b, &c| if c.0 > b.0 { c } else { b });
                    y.push(best.0);
                    ix.push(best.1);
                }
            }
        }
        (y, ix, oh, ow)
    }

    #[test]
    fn max_pool_values_indices_and_backward() {
        let d = Device::Cpu;
        for (shape, p) in [
            ([2, 3, 7, 7], Pool2dParams::new(3, 2, 1)),
            ([1, 1, 1, 1], Pool2dParams::new(1, 1, 0)),
            ([3, 2, 33, 9], Pool2dParams::new(2, 2, 0)),
            (
                [1, 2, 8, 5],
                Pool2dParams {
                    kernel: [3, 2],
                    stride: [1, 2],
                    padding: [1, 1],
                },
            ),
        ] {
            let x = Tensor::randn(&shape, 0.0, 1.0, 5, &d);
            let (y, ix) = x.max_pool2d(p);
            let (ry, rix, oh, ow) = reference(&x.to_vec(), shape, p);
            assert_eq!(y.shape(), &[shape[0], shape[1], oh, ow]);
            assert_eq!(y.to_vec(), ry);
            assert_eq!(
                ix.to_vec(),
                rix.iter().map(|&i| i as f32).collect::<Vec<_>>()
            );
            // Backward: each output's gradient lands on its argmax.
            let gy = Tensor::randn(y.shape(), 0.0, 1.0, 6, &d);
            let dx = gy.max_pool2d_backward(&ix, &shape, p).to_vec();
            let mut want = vec![0.0f32; x.numel()];
            let hw = shape[2] * shape[3];
            for (k, g) in gy.to_vec().iter().enumerate() {
                want[k / (oh * ow) * hw + rix[k]] += g;
            }
            assert_eq!(dx, want);
        }
    }

    #[test]
    fn global_average_pool_and_backward() {
        let d = Device::Cpu;
        let x = Tensor::randn(&[3, 7, 5, 3], 0.0, 1.0, 2, &d);
        let y = x.global_avg_pool2d();
        assert_eq!(y.shape(), &[3, 7]);
        let xv = x.to_vec();
        for (k, v) in y.to_vec().iter().enumerate() {
            let want: f32 = xv[k * 15..(k + 1) * 15].iter().sum::<f32>() / 15.0;
            assert_relative_eq!(*v, want, epsilon = 1e-6, max_relative = 1e-5);
        }
        let gy = Tensor::randn(&[3, 7], 0.0, 1.0, 3, &d);
        let dx = gy.global_avg_pool2d_backward(&[3, 7, 5, 3]).to_vec();
        for (i, v) in dx.iter().enumerate() {
            assert_eq!(*v, gy.to_vec()[i / 15] / 15.0);
        }
    }

    #[test]
    #[should_panic(expected = "max_pool2d: padding [2, 2] must be at most half the kernel [3, 3]")]
    fn too_much_padding_panics() {
        Tensor::zeros(&[1, 1, 5, 5], &Device::Cpu).max_pool2d(Pool2dParams::new(3, 1, 2));
    }
}
