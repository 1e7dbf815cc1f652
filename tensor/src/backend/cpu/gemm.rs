//! General matrix multiply (GEMM) on the CPU: `C = A·B` or `C += A·B`.
//!
//! Almost all the arithmetic of a ResNet is here: linear layers directly,
//! convolutions after `im2col` lowers them to a matrix product. We call the
//! `gemm` crate, whose kernels use AVX-512 when the processor has it (picked
//! at run time through its `x86-v4` feature) and fall back to AVX2 or plain
//! code otherwise. Measured on the 2-core development machine, it ran about
//! three times faster than ndarray's default `matrixmultiply` on 512-1024
//! square products (see the crate's benchmark).
//!
//! Each operand is described by a slice plus a *row stride* and a *column
//! stride*: element `(i, j)` of `A` is `a[i * a_rs + j * a_cs]`. A row-major
//! `m x k` matrix has strides `(k, 1)`; the same buffer read as its
//! transpose has strides `(1, k)`. That is how `A·Bᵀ` and `Aᵀ·B` run without
//! copying a transposed operand.
//!
//! Tensors are `f32`; the same product in `f64` serves host-side fits that
//! need the precision (the logistic-regression probe's full-batch
//! objective).

use gemm::Parallelism;

/// The element types the product is defined for: `f32` and `f64`.
pub trait Element: Copy + Send + Sync + 'static + private::Sealed {
    /// The additive identity.
    const ZERO: Self;
    /// The multiplicative identity.
    const ONE: Self;
}

impl Element for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
}

impl Element for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
}

mod private {
    /// Only the two float types: the `gemm` crate has kernels for these.
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// One operand of a product: a slice and the strides that read it as a
/// matrix (`element (i, j) = data[i * row_stride + j * col_stride]`).
#[derive(Clone, Copy)]
pub struct MatRef<'a, T: Element = f32> {
    /// The elements, somewhere in which the matrix lives.
    pub data: &'a [T],
    /// Distance between vertically adjacent elements.
    pub row_stride: usize,
    /// Distance between horizontally adjacent elements.
    pub col_stride: usize,
}

impl<'a, T: Element> MatRef<'a, T> {
    /// A row-major matrix with `cols` columns.
    pub fn row_major(data: &'a [T], cols: usize) -> MatRef<'a, T> {
        MatRef {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of a row-major matrix that has `cols` columns (so the
    /// view has `cols` rows).
    pub fn transposed(data: &'a [T], cols: usize) -> MatRef<'a, T> {
        MatRef {
            data,
            row_stride: 1,
            col_stride: cols,
        }
    }

    /// Panics unless every element of a `rows x cols` view is inside `data`.
    fn check(&self, rows: usize, cols: usize, name: &str) {
        if rows == 0 || cols == 0 {
            return;
        }
        let last = (rows - 1) * self.row_stride + (cols - 1) * self.col_stride;
        assert!(
            last < self.data.len(),
            "gemm: operand {name} ({rows}x{cols}, strides {}x{}) reaches element {last} \
             of a buffer of {}",
            self.row_stride,
            self.col_stride,
            self.data.len()
        );
    }
}

/// Products smaller than this many multiply-adds run on one thread.
const PAR_MIN_FLOPS: usize = 96 * 96 * 96;

/// `c = a·b` (or `c += a·b` when `accumulate`), with `a` an `m x k` view,
/// `b` a `k x n` view and `c` a row-major `m x n` buffer.
///
/// `parallel` lets the GEMM split the product over rayon's threads; callers
/// that already run one product per thread (a convolution over a batch) pass
/// `false`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_into<T: Element>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [T],
    accumulate: bool,
    parallel: bool,
) {
    check_output(c.len(), m, n);
    // SAFETY: `c` is an exclusively borrowed, initialised m*n buffer.
    unsafe { product(m, n, k, a, b, c.as_mut_ptr(), accumulate, parallel) }
}

/// `c = a·b` into a buffer not yet written: as [`matmul_into`] without
/// `accumulate`, for a fresh output (`Vec::spare_capacity_mut`), which then
/// holds the product in every element. The product writes each element
/// without reading it, so the buffer needs no zeroing first (the pass over
/// memory `vec![0.0; m * n]` makes on the calling thread alone).
pub fn matmul_uninit<T: Element>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [std::mem::MaybeUninit<T>],
    parallel: bool,
) {
    check_output(c.len(), m, n);
    // SAFETY: `c` is an exclusively borrowed m*n buffer; with `accumulate`
    // false the product only writes it (the `gemm` crate sets its `alpha`
    // to zero and its kernels then store without loading the destination;
    // k = 0 is handled in `product` by writing zeros), and a written
    // `MaybeUninit<T>` is a `T` of the same size and alignment.
    unsafe { product(m, n, k, a, b, c.as_mut_ptr().cast::<T>(), false, parallel) }
}

/// Panics unless an output buffer of `len` elements fits an `m x n` product.
fn check_output(len: usize, m: usize, n: usize) {
    assert_eq!(
        len,
        m * n,
        "gemm: output buffer holds {len} elements, needs {m}x{n}"
    );
}

/// The product behind [`matmul_into`] and [`matmul_uninit`].
///
/// # Safety
///
/// `c` must point to `m * n` elements the caller holds exclusively; they
/// are read only when `accumulate`.
#[allow(clippy::too_many_arguments)]
unsafe fn product<T: Element>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: *mut T,
    accumulate: bool,
    parallel: bool,
) {
    a.check(m, k, "A");
    b.check(k, n, "B");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m * n {
                // SAFETY: i < m*n, inside the caller's buffer.
                unsafe { c.add(i).write(T::ZERO) };
            }
        }
        return;
    }
    let threads = rayon::current_num_threads();
    let parallelism = if parallel && threads > 1 && m * n * k >= PAR_MIN_FLOPS {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: `check` above proved every element the strides reach lies
    // inside its slice, and the caller holds `c`'s m*n elements, written
    // with row stride n and column stride 1 (and read only when
    // `accumulate`, gemm's `read_dst`).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c,
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(m: usize, n: usize, k: usize, a: MatRef, b: MatRef) -> Vec<f32> {
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for p in 0..k {
                    s += a.data[i * a.row_stride + p * a.col_stride] as f64
                        * b.data[p * b.row_stride + j * b.col_stride] as f64;
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    fn seq(len: usize, salt: f32) -> Vec<f32> {
        (0..len).map(|i| (i as f32 * 0.37 + salt).sin()).collect()
    }

    /// A `rows x cols` operand stored row-major, or (when `t`) as its
    /// transpose, `[cols, rows]`.
    fn view(data: &[f32], rows: usize, cols: usize, t: bool) -> MatRef<'_> {
        if t {
            MatRef::transposed(data, rows)
        } else {
            MatRef::row_major(data, cols)
        }
    }

    #[test]
    fn all_stride_forms_match_a_plain_loop() {
        for &(m, n, k) in &[(1, 1, 1), (3, 7, 33), (33, 3, 7), (7, 33, 1), (65, 97, 130)] {
            let a = seq(m * k, 0.1);
            let b = seq(k * n, 0.7);
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let (av, bv) = (view(&a, m, k, ta), view(&b, k, n, tb));
                let want = reference(m, n, k, av, bv);
                let mut got = vec![0.0; m * n];
                matmul_into(m, n, k, av, bv, &mut got, false, true);
                for (g, w) in got.iter().zip(&want) {
                    approx::assert_abs_diff_eq!(g, w, epsilon = 1e-4 * (k as f32).sqrt());
                }
                // Accumulating adds the product once more.
                matmul_into(m, n, k, av, bv, &mut got, true, false);
                for (g, w) in got.iter().zip(&want) {
                    approx::assert_abs_diff_eq!(g, &(2.0 * w), epsilon = 2e-4 * (k as f32).sqrt());
                }
            }
        }
    }

    /// `matmul_uninit` writes every element without reading any: its
    /// output starts as NaNs (which any read would carry into the sum, as
    /// `0 · NaN = NaN`) and ends as the product, on every path of the
    /// `gemm` crate (one row or column, the small-output kernels for a
    /// row-major `A` and column-major `B`, the packed kernels on one or
    /// all threads) and for k = 0 (zeros).
    #[test]
    fn uninit_output_is_written_never_read() {
        use std::mem::MaybeUninit;
        for &(m, n, k) in &[
            (1, 1, 1),
            (1, 33, 7),
            (33, 1, 7),
            (16, 16, 5),
            (3, 7, 33),
            (65, 97, 130),
            (200, 300, 100),
            (4, 5, 0),
        ] {
            let a = seq(m * k, 0.3);
            let b = seq(k * n, 0.9);
            for (ta, tb) in [(false, false), (false, true), (true, false)] {
                let (av, bv) = (view(&a, m, k, ta), view(&b, k, n, tb));
                let want = reference(m, n, k, av, bv);
                let mut got = vec![MaybeUninit::new(f32::NAN); m * n];
                matmul_uninit(m, n, k, av, bv, &mut got, true);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    // SAFETY: every element was initialised (NaN) above.
                    let g = unsafe { g.assume_init() };
                    assert!(
                        (g - w).abs() <= 1e-4 * (k.max(1) as f32).sqrt(),
                        "{m}x{n}x{k} ta={ta} tb={tb}: element {i} is {g}, want {w}"
                    );
                }
            }
        }
    }

    /// The `f64` product keeps `f64`'s precision: a sum whose terms
    /// cancel to far below `f32`'s resolution comes out exact.
    #[test]
    fn the_f64_product_is_computed_in_f64() {
        let (m, n, k) = (5, 3, 200);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.11).cos()).collect();
        let mut got = vec![0f64; m * n];
        matmul_into(
            m,
            n,
            k,
            MatRef::row_major(&a, k),
            MatRef::transposed(&b, k),
            &mut got,
            false,
            true,
        );
        for i in 0..m {
            for j in 0..n {
                let want: f64 = (0..k).map(|p| a[i * k + p] * b[j * k + p]).sum();
                assert!((got[i * n + j] - want).abs() < 1e-12, "{i},{j}");
            }
        }
        // 1 + 1e-12 - 1: lost in f32, kept in f64.
        let (x, y) = (vec![1.0, 1e-12, -1.0], vec![1.0, 1.0, 1.0]);
        let mut c = vec![0f64; 1];
        let (xv, yv) = (MatRef::row_major(&x, 3), MatRef::transposed(&y, 3));
        matmul_into(1, 1, 3, xv, yv, &mut c, false, false);
        assert!((c[0] - 1e-12).abs() < 1e-20, "{}", c[0]);
    }

    #[test]
    #[should_panic(expected = "gemm: operand B")]
    fn short_operand_is_caught() {
        let a = vec![0.0; 6];
        let b = vec![0.0; 5];
        let mut c = vec![0.0; 4];
        matmul_into(
            2,
            2,
            3,
            MatRef::row_major(&a, 3),
            MatRef::row_major(&b, 2),
            &mut c,
            false,
            false,
        );
    }
}
