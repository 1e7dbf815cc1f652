//! GPU matrix products: one register-blocked kernel (`matmul.wgsl`) reads
//! its operands through strides, so `A·B`, `A·Bᵀ`, `Aᵀ·B` and batches of
//! them are all one dispatch; when both operands are plainly row-major and
//! the sizes multiples of 4, a variant with vec4 loads (`matmul_vec4.wgsl`)
//! runs instead. The convolution reuses [`gemm`] with buffer
//! offsets and a zero batch stride for a shared weight.

use super::MatmulDims;
use crate::backend::gpu::GpuBuffer;
use crate::Tensor;

const SOURCE: &str = include_str!("matmul.wgsl");
const SOURCE_VEC4: &str = include_str!("matmul_vec4.wgsl");

/// One operand of a GPU product: a buffer, the element offset where it
/// starts, its row and column strides, and its stride between batches (0
/// when every product of the batch shares it).
#[derive(Clone, Copy)]
pub struct GpuMat<'a> {
    /// The buffer holding it.
    pub buf: &'a GpuBuffer,
    /// Element offset of the first batch's `(0, 0)`.
    pub offset: usize,
    /// Distance between vertically adjacent elements.
    pub row_stride: usize,
    /// Distance between horizontally adjacent elements.
    pub col_stride: usize,
    /// Distance between consecutive batches.
    pub batch_stride: usize,
}

/// Records `C = A·B` (or `C += A·B` when `accumulate`) for `batch`
/// products of `m x k` by `k x n`; `C` is row-major `m x n` per batch,
/// batches `m·n` apart, starting at `c_offset`.
pub fn gemm(
    d: MatmulDims,
    a: GpuMat<'_>,
    b: GpuMat<'_>,
    c: &GpuBuffer,
    c_offset: usize,
    accumulate: bool,
) {
    if d.m == 0 || d.n == 0 || d.batch == 0 {
        return;
    }
    let params = [
        d.m,
        d.n,
        d.k,
        a.row_stride,
        a.col_stride,
        b.row_stride,
        b.col_stride,
        a.batch_stride,
        b.batch_stride,
        d.m * d.n,
        a.offset,
        b.offset,
        c_offset,
        accumulate as usize,
    ]
    .map(|v| u32::try_from(v).expect("GPU matmul: an index exceeds 32 bits"));
    let groups = [
        d.n.div_ceil(64) as u32,
        d.m.div_ceil(64) as u32,
        d.batch as u32,
    ];
    // Both operands plainly row-major, everything a multiple of 4: the
    // vec4 kernel applies.
    let aligned = |v: usize| v.is_multiple_of(4);
    let vec4 = a.col_stride == 1
        && b.col_stride == 1
        && a.row_stride == d.k
        && b.row_stride == d.n
        && [
            d.k,
            d.n,
            a.offset,
            b.offset,
            c_offset,
            a.batch_stride,
            b.batch_stride,
        ]
        .iter()
        .all(|&v| aligned(v));
    let (name, source) = if vec4 {
        ("matmul_vec4", SOURCE_VEC4)
    } else {
        ("matmul", SOURCE)
    };
    c.context()
        .dispatch(name, source, &params, &[a.buf, b.buf, c], groups);
}

/// The (batched) product of two GPU tensors, read transposed as asked.
pub fn matmul(a: &Tensor, b: &Tensor, d: MatmulDims, ta: bool, tb: bool) -> GpuBuffer {
    let (ab, bb) = (a.gpu_buffer("matmul"), b.gpu_buffer("matmul"));
    if d.k == 0 {
        // An empty sum: zeros.
        return ab.context().upload(&vec![0; d.batch * d.m * d.n]);
    }
    let out = GpuBuffer::new(ab.context(), d.batch * d.m * d.n);
    // Stored as [rows, cols] row-major, or [cols, rows] when read transposed.
    let operand = |buf, rows: usize, cols: usize, t: bool| GpuMat {
        buf,
        offset: 0,
        row_stride: if t { 1 } else { cols },
        col_stride: if t { rows } else { 1 },
        batch_stride: rows * cols,
    };
    gemm(
        d,
        operand(ab, d.m, d.k, ta),
        operand(bb, d.k, d.n, tb),
        &out,
        0,
        false,
    );
    out
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_close, gpu_device};
    use crate::{Device, Tensor};

    /// Sums of k products in a different order than the CPU GEMM: the
    /// tolerance grows with k (1e-5·k absolute on N(0,1) inputs).
    #[test]
    fn all_forms_match_the_cpu() {
        let Some(gpu) = gpu_device() else { return };
        let cpu = Device::Cpu;
        // (2, 65, 128, 68) and (1, 33, 4, 8) take the vec4 kernel.
        for &(batch, m, k, n) in &[
            (1, 1, 1, 1),
            (1, 3, 7, 33),
            (1, 33, 1, 7),
            (3, 7, 33, 3),
            (2, 65, 129, 67),
            (1, 257, 3, 5),
            (2, 65, 128, 68),
            (1, 33, 4, 8),
        ] {
            let shape = |r: usize, c: usize| {
                if batch == 1 {
                    vec![r, c]
                } else {
                    vec![batch, r, c]
                }
            };
            let a = Tensor::randn(&shape(m, k), 0.0, 1.0, 1, &cpu);
            let b = Tensor::randn(&shape(k, n), 0.0, 1.0, 2, &cpu);
            let bt = Tensor::randn(&shape(n, k), 0.0, 1.0, 3, &cpu);
            let at = Tensor::randn(&shape(k, m), 0.0, 1.0, 4, &cpu);
            let tol = 1e-5 * k as f32;
            let (ga, gb, gbt, gat) = (
                a.to_device(&gpu),
                b.to_device(&gpu),
                bt.to_device(&gpu),
                at.to_device(&gpu),
            );
            assert_close(
                &ga.matmul(&gb),
                &a.matmul(&b),
                tol,
                1e-5,
                &format!("A·B {batch}x{m}x{k}x{n}"),
            );
            assert_close(
                &ga.matmul_nt(&gbt),
                &a.matmul_nt(&bt),
                tol,
                1e-5,
                &format!("A·Bᵀ {batch}x{m}x{k}x{n}"),
            );
            assert_close(
                &gat.matmul_tn(&gb),
                &at.matmul_tn(&b),
                tol,
                1e-5,
                &format!("Aᵀ·B {batch}x{m}x{k}x{n}"),
            );
        }
    }
}
