//! Matrix products: `C = A·B`, and the two transposed forms the backward
//! passes need, `A·Bᵀ` and `Aᵀ·B`.
//!
//! `C[i, j] = Σ_p A[i, p] B[p, j]`. For 2-D operands `[m, k]·[k, n] ->
//! [m, n]`; for 3-D operands the leading axis is a batch of independent
//! products, `[b, m, k]·[b, k, n] -> [b, m, n]`.
//!
//! Why the transposed forms: a linear layer computes `y = x·Wᵀ` (PyTorch
//! stores `W` as `[out, in]`), and its backward pass needs `dx = dy·W` and
//! `dW = dyᵀ·x`. The GEMM reads a transposed operand through its strides,
//! so none of these copies a transposed matrix.

mod cpu;
pub(crate) mod gpu;

use crate::{Storage, Tensor};

/// The sizes of one product: batch count and `m, k, n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulDims {
    /// Number of independent products (1 for 2-D operands).
    pub batch: usize,
    /// Rows of the result.
    pub m: usize,
    /// The summed-over length.
    pub k: usize,
    /// Columns of the result.
    pub n: usize,
}

impl Tensor {
    /// Checks the operand shapes of a product whose operands are read
    /// transposed (`ta`, `tb`) and returns its dimensions.
    fn matmul_dims(&self, other: &Tensor, ta: bool, tb: bool, op: &str) -> MatmulDims {
        self.same_device(other, op);
        let (sa, sb) = (self.shape(), other.shape());
        let ok_rank = (sa.len() == 2 && sb.len() == 2) || (sa.len() == 3 && sb.len() == 3);
        assert!(
            ok_rank,
            "{op}: needs two 2-D or two 3-D operands, got shapes {sa:?} and {sb:?}"
        );
        let r = sa.len();
        let batch = if r == 3 { sa[0] } else { 1 };
        assert!(
            r == 2 || sa[0] == sb[0],
            "{op}: batch sizes differ in shapes {sa:?} and {sb:?}"
        );
        let (m, ka) = if ta {
            (sa[r - 1], sa[r - 2])
        } else {
            (sa[r - 2], sa[r - 1])
        };
        let (kb, n) = if tb {
            (sb[r - 1], sb[r - 2])
        } else {
            (sb[r - 2], sb[r - 1])
        };
        assert!(
            ka == kb,
            "{op}: inner sizes differ ({ka} vs {kb}) in shapes {sa:?} and {sb:?}"
        );
        MatmulDims { batch, m, k: ka, n }
    }

    fn matmul_general(&self, other: &Tensor, ta: bool, tb: bool, op: &str) -> Tensor {
        let d = self.matmul_dims(other, ta, tb, op);
        let shape: Vec<usize> = if self.rank() == 3 {
            vec![d.batch, d.m, d.n]
        } else {
            vec![d.m, d.n]
        };
        match (self.storage(), other.storage()) {
            (Storage::Cpu(_), Storage::Cpu(_)) => {
                Tensor::cpu(cpu::matmul(self, other, d, ta, tb), &shape)
            }
            _ => Tensor::gpu(gpu::matmul(self, other, d, ta, tb), &shape),
        }
    }

    /// `A·B`: `[m, k]·[k, n] -> [m, n]`, or batched over a leading axis.
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        self.matmul_general(other, false, false, "matmul")
    }

    /// `A·Bᵀ`: `[m, k]·[n, k]ᵀ -> [m, n]` (a linear layer's forward pass).
    pub fn matmul_nt(&self, other: &Tensor) -> Tensor {
        self.matmul_general(other, false, true, "matmul_nt")
    }

    /// `Aᵀ·B`: `[k, m]ᵀ·[k, n] -> [m, n]` (a weight gradient).
    pub fn matmul_tn(&self, other: &Tensor) -> Tensor {
        self.matmul_general(other, true, false, "matmul_tn")
    }
}
