//! Softmax and log-softmax along the last axis.
//!
//! With `s = softmax(x)`, `s_i = e^(x_i) / Σ_j e^(x_j)`, the Jacobian is
//! `∂s_i/∂x_j = s_i (δ_ij - s_j)`, so for one row
//!
//! ```text
//! softmax:      dx_j = Σ_i dz_i s_i (δ_ij - s_j) = s_j (dz_j - Σ_i dz_i s_i)
//! log_softmax:  z_i = x_i - ln Σ_k e^(x_k),  ∂z_i/∂x_j = δ_ij - s_j,
//!               dx_j = dz_j - s_j Σ_i dz_i
//! ```
//!
//! The row sums are taken along the last axis with `keep_dims`, so they
//! broadcast back over the row.

use crate::Var;

impl Var {
    /// Softmax over the last axis.
    ///
    /// `dx = s · (dz - Σ_row dz·s)`, `s` the output.
    pub fn softmax(&self) -> Var {
        let s = self.value().softmax();
        let saved = s.clone();
        Var::from_op("softmax", s, &[self], move |dz, _| {
            let last = saved.rank() - 1;
            let row = dz.mul(&saved).sum(&[last], true);
            vec![Some(saved.mul(&dz.sub(&row)))]
        })
    }

    /// Log-softmax over the last axis.
    ///
    /// `dx = dz - softmax(x) · Σ_row dz`, with `softmax(x) = e^z`.
    pub fn log_softmax(&self) -> Var {
        let z = self.value().log_softmax();
        let saved = z.clone();
        Var::from_op("log_softmax", z, &[self], move |dz, _| {
            let last = saved.rank() - 1;
            let row = dz.sum(&[last], true);
            vec![Some(dz.sub(&saved.exp().mul(&row)))]
        })
    }
}
