//! CPU kernels of the reductions. Axis reductions fold one axis at a time
//! with ndarray (highest axis first, so the remaining axis numbers stay
//! valid); whole-tensor sums accumulate in `f64` over chunks in parallel.

use super::ReduceOp;
use crate::backend::cpu::go_parallel;
use crate::Tensor;
use ndarray::{ArrayD, Axis};
use rayon::prelude::*;

/// The reduced elements, row-major (the same order with or without kept
/// dimensions).
pub fn reduce(x: &Tensor, axes: &[usize], op: ReduceOp) -> Vec<f32> {
    let mut sorted = axes.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let view = x.cpu_view("reduce");
    let fold = |acc: f32, v: f32| match op {
        ReduceOp::Sum => acc + v,
        ReduceOp::Max => {
            if v > acc || acc.is_nan() {
                v
            } else {
                acc
            }
        }
    };
    let init = match op {
        ReduceOp::Sum => 0.0,
        ReduceOp::Max => f32::NEG_INFINITY,
    };
    let mut current: Option<ArrayD<f32>> = None;
    for &axis in &sorted {
        let next = match &current {
            None => view.fold_axis(Axis(axis), init, |&a, &v| fold(a, v)),
            Some(arr) => arr.fold_axis(Axis(axis), init, |&a, &v| fold(a, v)),
        };
        current = Some(next);
    }
    match current {
        None => view.iter().copied().collect(),
        Some(arr) => arr.as_standard_layout().iter().copied().collect(),
    }
}

/// Index of the first maximum along `axis` for every other position.
pub fn argmax(x: &Tensor, axis: usize) -> Vec<f32> {
    let view = x.cpu_view("argmax");
    let out = view.map_axis(Axis(axis), |lane| {
        let mut best = 0usize;
        let mut best_v = f32::NEG_INFINITY;
        let mut seen = false;
        for (i, &v) in lane.iter().enumerate() {
            if !v.is_nan() && (!seen || v > best_v) {
                best = i;
                best_v = v;
                seen = true;
            }
        }
        best as f32
    });
    out.as_standard_layout().iter().copied().collect()
}

/// `Σ x` (or `Σ x²` when `squares`) over the whole buffer, in `f64`.
///
/// Deterministic: the buffer is cut into fixed chunks whatever the thread
/// count, each chunk is summed in order, and the chunk sums are added in
/// order. (Letting rayon combine partial sums as its work-stealing splits
/// fall would change the last bits from run to run, and a resumed training
/// run must reproduce its losses exactly.)
pub fn sum_all(x: &Tensor, squares: bool) -> f64 {
    let data = x.cpu_slice("sum_all");
    let term = |v: f32| {
        let v = v as f64;
        if squares {
            v * v
        } else {
            v
        }
    };
    let chunk_sum = |c: &[f32]| c.iter().map(|&v| term(v)).sum::<f64>();
    let partial: Vec<f64> = if go_parallel(data.len()) {
        data.par_chunks(1 << 14).map(chunk_sum).collect()
    } else {
        data.chunks(1 << 14).map(chunk_sum).collect()
    };
    partial.iter().sum()
}

#[cfg(test)]
mod tests {
    use crate::shape::{numel, strides};
    use crate::{Device, Tensor};
    use approx::assert_relative_eq;

    /// Reference: walk every input element and add it into the output slot
    /// its non-reduced coordinates name.
    fn reference(x: &Tensor, axes: &[usize], max: bool) -> Vec<f32> {
        let shape = x.shape();
        let out_shape: Vec<usize> = (0..shape.len())
            .map(|i| if axes.contains(&i) { 1 } else { shape[i] })
            .collect();
        let ost = strides(&out_shape);
        let ist = strides(shape);
        let init = if max { f64::NEG_INFINITY } else { 0.0 };
        let mut out = vec![init; numel(&out_shape)];
        for (flat, &v) in x.to_vec().iter().enumerate() {
            let o: usize = (0..shape.len())
                .map(|i| {
                    if axes.contains(&i) {
                        0
                    } else {
                        (flat / ist[i]) % shape[i] * ost[i]
                    }
                })
                .sum();
            out[o] = if max {
                out[o].max(v as f64)
            } else {
                out[o] + v as f64
            };
        }
        out.iter().map(|&v| v as f32).collect()
    }

    #[test]
    fn sum_mean_max_over_axes_match_reference() {
        let d = Device::Cpu;
        let x = Tensor::randn(&[3, 7, 1, 33], 0.0, 1.0, 4, &d);
        let axis_sets: &[&[usize]] = &[
            &[0],
            &[1],
            &[2],
            &[3],
            &[0, 2],
            &[1, 3],
            &[3, 0, 1],
            &[0, 1, 2, 3],
        ];
        for &axes in axis_sets {
            let n: usize = axes.iter().map(|&a| x.dim(a)).product();
            let want = reference(&x, axes, false);
            let got = x.sum(axes, true);
            let kept: Vec<usize> = (0..4)
                .map(|i| if axes.contains(&i) { 1 } else { x.dim(i) })
                .collect();
            assert_eq!(got.shape(), kept.as_slice());
            for (g, w) in got.to_vec().iter().zip(&want) {
                assert_relative_eq!(g, w, epsilon = 1e-5, max_relative = 1e-5);
            }
            let mean = x.mean(axes, false).to_vec();
            for (g, w) in mean.iter().zip(&want) {
                assert_relative_eq!(*g, w / n as f32, epsilon = 1e-6, max_relative = 1e-5);
            }
            // Max involves no rounding: exact.
            assert_eq!(x.max(axes, false).to_vec(), reference(&x, axes, true));
        }
    }

    #[test]
    fn variance_biased_and_unbiased() {
        let d = Device::Cpu;
        let x = Tensor::randn(&[7, 33], 1.0, 2.0, 8, &d);
        let v = x.to_vec();
        for &unbiased in &[false, true] {
            let got = x.var(&[0], unbiased, false).to_vec();
            for c in 0..33 {
                let col: Vec<f64> = (0..7).map(|r| v[r * 33 + c] as f64).collect();
                let m = col.iter().sum::<f64>() / 7.0;
                let ss: f64 = col.iter().map(|x| (x - m) * (x - m)).sum();
                let want = ss / if unbiased { 6.0 } else { 7.0 };
                assert_relative_eq!(got[c] as f64, want, max_relative = 1e-5);
            }
        }
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        let d = Device::Cpu;
        let x = Tensor::from_vec(vec![1., 5., 5., 0., 2., 9., 9., 3.], &[2, 4], &d);
        assert_eq!(x.argmax(1, false).to_vec(), vec![1.0, 1.0]);
        assert_eq!(x.argmax(0, true).shape(), &[1, 4]);
        assert_eq!(x.argmax(0, true).to_vec(), vec![1.0, 1.0, 1.0, 1.0]);
        let r = Tensor::randn(&[3, 33], 0.0, 1.0, 2, &d);
        let rv = r.to_vec();
        let got = r.argmax(1, false).to_vec();
        for row in 0..3 {
            let lane = &rv[row * 33..row * 33 + 33];
            let want = (0..33).fold(0, |b, i| if lane[i] > lane[b] { i } else { b });
            assert_eq!(got[row], want as f32);
        }
    }

    #[test]
    fn whole_tensor_sum_mean_norm() {
        let d = Device::Cpu;
        for &n in &[1usize, 7, 33, 100_003] {
            let x = Tensor::randn(&[n], 0.5, 1.0, n as u64, &d);
            let v = x.to_vec();
            let s: f64 = v.iter().map(|&a| a as f64).sum();
            let q: f64 = v.iter().map(|&a| a as f64 * a as f64).sum();
            assert_relative_eq!(
                x.sum_all().item() as f64,
                s,
                max_relative = 1e-6,
                epsilon = 1e-6
            );
            assert_relative_eq!(
                x.mean_all().item() as f64,
                s / n as f64,
                max_relative = 1e-6,
                epsilon = 1e-6
            );
            assert_relative_eq!(x.norm_l2().item() as f64, q.sqrt(), max_relative = 1e-6);
            assert_eq!(x.sum_all().shape(), &[] as &[usize]);
        }
    }

    #[test]
    #[should_panic(expected = "sum: axis 2 is out of range for shape [3, 4]")]
    fn bad_axis_panics() {
        Tensor::zeros(&[3, 4], &Device::Cpu).sum(&[2], false);
    }
}
