//! CPU matrix products through the shared GEMM. A batch of products runs
//! one product per thread; a single product lets the GEMM use every thread.

use super::MatmulDims;
use crate::backend::cpu::gemm::{matmul_uninit, MatRef};
use crate::Tensor;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Reads `m x k` (or its transpose when `t`) from a row-major buffer.
fn operand(data: &[f32], rows: usize, cols: usize, t: bool) -> MatRef<'_> {
    // Stored row-major as [rows, cols] when not transposed, [cols, rows] when
    // transposed.
    if t {
        MatRef::transposed(data, rows)
    } else {
        MatRef::row_major(data, cols)
    }
}

/// The elements of the (batched) product.
pub fn matmul(a: &Tensor, b: &Tensor, d: MatmulDims, ta: bool, tb: bool) -> Vec<f32> {
    let (av, bv) = (a.cpu_slice("matmul"), b.cpu_slice("matmul"));
    let (sa, sb, sc) = (d.m * d.k, d.k * d.n, d.m * d.n);
    let len = d.batch * sc;
    // Not zeroed first: the products write every element (`matmul_uninit`).
    let mut out: Vec<f32> = Vec::with_capacity(len);
    if sc == 0 {
        return out;
    }
    let spare = &mut out.spare_capacity_mut()[..len];
    let one = |i: usize, c: &mut [MaybeUninit<f32>], parallel: bool| {
        let ai = operand(&av[i * sa..(i + 1) * sa], d.m, d.k, ta);
        let bi = operand(&bv[i * sb..(i + 1) * sb], d.k, d.n, tb);
        matmul_uninit(d.m, d.n, d.k, ai, bi, c, parallel);
    };
    if d.batch == 1 {
        one(0, spare, true);
    } else {
        spare
            .par_chunks_mut(sc)
            .enumerate()
            .for_each(|(i, c)| one(i, c, false));
    }
    // SAFETY: the `batch` chunks of `sc` cover `0..len`, and
    // `matmul_uninit` wrote every element of each.
    unsafe { out.set_len(len) };
    out
}

#[cfg(test)]
mod tests {
    use crate::ops::matmul::MatmulDims;
    use crate::{Device, Tensor};
    use approx::assert_abs_diff_eq;

    /// `C[b, i, j] = Σ_p A[b, i, p] B[b, p, j]` with explicit index maps for
    /// the transposed storage.
    fn reference(a: &[f32], b: &[f32], d: MatmulDims, ta: bool, tb: bool) -> Vec<f32> {
        let MatmulDims { batch, m, k, n } = d;
        let mut c = vec![0.0; batch * m * n];
        for z in 0..batch {
            for i in 0..m {
                for j in 0..n {
                    let mut s = 0.0f64;
                    for p in 0..k {
                        let x = if ta {
                            a[z * m * k + p * m + i]
                        } else {
                            a[z * m * k + i * k + p]
                        };
                        let y = if tb {
                            b[z * k * n + j * k + p]
                        } else {
                            b[z * k * n + p * n + j]
                        };
                        s += x as f64 * y as f64;
                    }
                    c[z * m * n + i * n + j] = s as f32;
                }
            }
        }
        c
    }

    #[test]
    fn all_forms_2d_and_batched_match_reference() {
        let d = Device::Cpu;
        for &(batch, m, k, n) in &[
            (1, 1, 1, 1),
            (1, 3, 7, 33),
            (1, 33, 1, 7),
            (3, 7, 33, 3),
            (2, 65, 129, 33),
        ] {
            for (ta, tb) in [(false, false), (false, true), (true, false)] {
                let sa = match (batch, ta) {
                    (1, false) => vec![m, k],
                    (1, true) => vec![k, m],
                    (_, false) => vec![batch, m, k],
                    (_, true) => vec![batch, k, m],
                };
                let sb = match (batch, tb) {
                    (1, false) => vec![k, n],
                    (1, true) => vec![n, k],
                    (_, false) => vec![batch, k, n],
                    (_, true) => vec![batch, n, k],
                };
                let a = Tensor::randn(&sa, 0.0, 1.0, 1, &d);
                let b = Tensor::randn(&sb, 0.0, 1.0, 2, &d);
                let got = match (ta, tb) {
                    (false, false) => a.matmul(&b),
                    (false, true) => a.matmul_nt(&b),
                    _ => a.matmul_tn(&b),
                };
                let dims = MatmulDims { batch, m, k, n };
                let want = reference(&a.to_vec(), &b.to_vec(), dims, ta, tb);
                for (g, w) in got.to_vec().iter().zip(&want) {
                    // f32 accumulation over k terms of size ~1: error ~ k * 2^-24 * sqrt(k).
                    assert_abs_diff_eq!(g, w, epsilon = 1e-5 * k as f32);
                }
                let last = got.shape().len();
                assert_eq!(&got.shape()[last - 2..], &[m, n]);
            }
        }
    }

    #[test]
    #[should_panic(expected = "matmul: inner sizes differ (3 vs 4) in shapes [2, 3] and [4, 5]")]
    fn inner_mismatch_panics_with_shapes() {
        let d = Device::Cpu;
        Tensor::zeros(&[2, 3], &d).matmul(&Tensor::zeros(&[4, 5], &d));
    }
}
