//! Matrix products and the linear layer built from them.
//!
//! For `Z = X·W` (`[m, k]·[k, n]`), `Z[i, j] = Σ_p X[i, p] W[p, j]`, so
//! `∂L/∂X[i, p] = Σ_j dZ[i, j] W[p, j]` and `∂L/∂W[p, j] = Σ_i X[i, p]
//! dZ[i, j]`:
//!
//! ```text
//! dX = dZ · Wᵀ        dW = Xᵀ · dZ
//! ```
//!
//! The transposed forms follow by transposing those. Each rule uses the
//! tensor crate's `matmul_nt` (`A·Bᵀ`) and `matmul_tn` (`Aᵀ·B`), so no
//! transposed copy is ever made. 3-D operands are batches of independent
//! products and follow the same rules per batch entry.

use crate::Var;

impl Var {
    /// `Z = X·W`: `[m, k]·[k, n] -> [m, n]` (or batched, `[b, m, k]·[b, k,
    /// n]`).
    ///
    /// `dX = dZ·Wᵀ`, `dW = Xᵀ·dZ`.
    pub fn matmul(&self, other: &Var) -> Var {
        let (x, w) = (self.value().clone(), other.value().clone());
        let z = x.matmul(&w);
        Var::from_op("matmul", z, &[self, other], move |dz, needs| {
            vec![
                needs[0].then(|| dz.matmul_nt(&w)),
                needs[1].then(|| x.matmul_tn(dz)),
            ]
        })
    }

    /// `Z = X·Wᵀ`: `[m, k]·[n, k]ᵀ -> [m, n]` (a linear layer with `W`
    /// stored `[out, in]`, as PyTorch does).
    ///
    /// `dX = dZ·W`, `dW = dZᵀ·X`.
    pub fn matmul_nt(&self, other: &Var) -> Var {
        let (x, w) = (self.value().clone(), other.value().clone());
        let z = x.matmul_nt(&w);
        Var::from_op("matmul_nt", z, &[self, other], move |dz, needs| {
            vec![
                needs[0].then(|| dz.matmul(&w)),
                needs[1].then(|| dz.matmul_tn(&x)),
            ]
        })
    }

    /// `Z = Xᵀ·W`: `[k, m]ᵀ·[k, n] -> [m, n]`.
    ///
    /// `dX = W·dZᵀ`, `dW = X·dZ`.
    pub fn matmul_tn(&self, other: &Var) -> Var {
        let (x, w) = (self.value().clone(), other.value().clone());
        let z = x.matmul_tn(&w);
        Var::from_op("matmul_tn", z, &[self, other], move |dz, needs| {
            vec![
                needs[0].then(|| w.matmul_nt(dz)),
                needs[1].then(|| x.matmul(dz)),
            ]
        })
    }

    /// A linear layer, `y = x·Wᵀ + b`, with `x: [N, in]`, `W: [out, in]`
    /// and an optional bias `b: [out]`. Composed of [`Var::matmul_nt`] and
    /// [`Var::add`], whose rules give `dx = dy·W`, `dW = dyᵀ·x`,
    /// `db = Σ_n dy[n, :]`.
    pub fn linear(&self, weight: &Var, bias: Option<&Var>) -> Var {
        let y = self.matmul_nt(weight);
        match bias {
            Some(b) => y.add(b),
            None => y,
        }
    }
}
