//! CPU softmax: one row at a time, rows split over threads when large.

use crate::backend::cpu::go_parallel;
use crate::Tensor;
use rayon::prelude::*;

/// Softmax (or log-softmax when `log`) of every row of length `n`.
pub fn softmax(x: &Tensor, n: usize, log: bool) -> Vec<f32> {
    let xs = x.cpu_slice("softmax");
    let mut out = vec![0.0f32; xs.len()];
    let row = |(o, r): (&mut [f32], &[f32])| {
        let m = r.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
        let sum: f32 = r.iter().map(|&v| (v - m).exp()).sum();
        if log {
            let lse = sum.ln();
            for (y, &v) in o.iter_mut().zip(r) {
                *y = v - m - lse;
            }
        } else {
            for (y, &v) in o.iter_mut().zip(r) {
                *y = (v - m).exp() / sum;
            }
        }
    };
    if go_parallel(xs.len()) {
        out.par_chunks_mut(n).zip(xs.par_chunks(n)).for_each(row);
    } else {
        out.chunks_mut(n).zip(xs.chunks(n)).for_each(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::{Device, Tensor};
    use approx::assert_relative_eq;

    #[test]
    fn rows_match_the_formula_and_sum_to_one() {
        let d = Device::Cpu;
        for shape in [vec![1], vec![3, 7], vec![2, 3, 33], vec![257, 10]] {
            let x = Tensor::randn(&shape, 0.0, 3.0, 21, &d);
            let n = *shape.last().unwrap();
            let (p, lp) = (x.softmax().to_vec(), x.log_softmax().to_vec());
            for (r, row) in x.to_vec().chunks(n).enumerate() {
                let denom: f64 = row.iter().map(|&v| (v as f64).exp()).sum();
                for (i, &v) in row.iter().enumerate() {
                    let want = (v as f64).exp() / denom;
                    assert_relative_eq!(
                        p[r * n + i] as f64,
                        want,
                        max_relative = 1e-5,
                        epsilon = 1e-7
                    );
                    assert_relative_eq!(
                        lp[r * n + i] as f64,
                        want.ln(),
                        max_relative = 1e-5,
                        epsilon = 1e-5
                    );
                }
                let total: f32 = p[r * n..(r + 1) * n].iter().sum();
                assert_relative_eq!(total, 1.0, epsilon = 1e-5);
            }
        }
    }

    #[test]
    fn large_inputs_do_not_overflow() {
        let x = Tensor::from_vec(vec![1000.0, 1001.0, 999.0], &[1, 3], &Device::Cpu);
        let p = x.softmax().to_vec();
        assert!(p.iter().all(|v| v.is_finite()));
        assert_relative_eq!(
            p[1],
            1.0 / (1.0 + (-1.0f32).exp() + (-2.0f32).exp()),
            max_relative = 1e-6
        );
    }
}
