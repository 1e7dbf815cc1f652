//! L2-normalisation along the last axis, and the cosine similarity of rows
//! (the two halves of the BYOL loss, `2 - 2 cos(p, z)`).
//!
//! **L2-normalise.** `y = x / n̄` with `n = ‖x‖ = √(Σ x²)` along the last axis
//! and `n̄ = max(n, ε)`, as PyTorch's `F.normalize` (whose default ε is
//! 1e-12). Where `n > ε`, `∂y_i/∂x_j = (δ_ij - y_i y_j) / n`; where the
//! clamp holds, `y = x/ε` and `∂y_i/∂x_j = δ_ij / ε`. Both at once, with the
//! mask `k = [n > ε]`:
//!
//! ```text
//! dx = (dy - k · y · Σ_row(dy · y)) / n̄
//! ```
//!
//! **Cosine similarity.** `c = â · b̂` summed along the last axis, with
//! `â = a / max(‖a‖, ε)` and `b̂` likewise; the last axis is dropped. Since
//! `c = Σ_i â_i b̂_i`, the rule above with `dy = b̂` gives
//!
//! ```text
//! da = dc · (b̂ - k_a · â · c) / max(‖a‖, ε)
//! db = dc · (â - k_b · b̂ · c) / max(‖b‖, ε)
//! ```
//!
//! (PyTorch's `F.cosine_similarity` clamps each norm at ε = 1e-8 in the
//! same way in recent versions; the two agree whenever no norm is below ε.)

use crate::Var;
use tensor::Tensor;

/// The last axis's norms, clamped: `(max(‖x‖, ε), [‖x‖ > ε])`, both with the
/// last axis kept as size 1.
fn clamped_norm(x: &Tensor, eps: f32) -> (Tensor, Tensor) {
    let last = x.rank() - 1;
    let norm = x.square().sum(&[last], true).sqrt();
    (norm.maximum_scalar(eps), norm.gt_scalar(eps))
}

fn check_rank(x: &Var, op: &str) {
    assert!(x.rank() >= 1, "{op}: needs at least one axis, got a scalar");
}

impl Var {
    /// `y = x / max(‖x‖, eps)` along the last axis (`eps` = 1e-12 matches
    /// PyTorch's `F.normalize`).
    ///
    /// `dx = (dy - [‖x‖ > eps] · y · Σ_row(dy·y)) / max(‖x‖, eps)`.
    pub fn l2_normalize(&self, eps: f32) -> Var {
        check_rank(self, "l2_normalize");
        let (norm, unclamped) = clamped_norm(self.value(), eps);
        let y = self.value().div(&norm);
        let saved = y.clone();
        Var::from_op("l2_normalize", y, &[self], move |dy, _| {
            let last = saved.rank() - 1;
            let along = dy.mul(&saved).sum(&[last], true);
            let dx = dy.sub(&saved.mul(&along).mul(&unclamped)).div(&norm);
            vec![Some(dx)]
        })
    }

    /// The cosine similarity of `self` and `other` (same shape) along the
    /// last axis, each norm clamped at `eps`: the shape without its last
    /// axis (`[N]` for `[N, D]` rows).
    ///
    /// `da = dc·(b̂ - [‖a‖ > eps]·â·c) / max(‖a‖, eps)`, and `db` likewise.
    pub fn cosine_similarity(&self, other: &Var, eps: f32) -> Var {
        check_rank(self, "cosine_similarity");
        assert_eq!(
            self.shape(),
            other.shape(),
            "cosine_similarity: shapes {:?} and {:?} differ",
            self.shape(),
            other.shape()
        );
        let last = self.rank() - 1;
        let (a, b) = (self.value(), other.value());
        let (norm_a, unclamped_a) = clamped_norm(a, eps);
        let (norm_b, unclamped_b) = clamped_norm(b, eps);
        let (a_hat, b_hat) = (a.div(&norm_a), b.div(&norm_b));
        let c_kept = a_hat.mul(&b_hat).sum(&[last], true);
        let c = c_kept.reshape(&self.shape()[..last]);
        Var::from_op("cosine_similarity", c, &[self, other], move |dc, needs| {
            let dc = dc.reshape(c_kept.shape());
            let grad = |own_hat: &Tensor, other_hat: &Tensor, norm: &Tensor, unclamped: &Tensor| {
                other_hat
                    .sub(&own_hat.mul(&c_kept).mul(unclamped))
                    .div(norm)
                    .mul(&dc)
            };
            vec![
                needs[0].then(|| grad(&a_hat, &b_hat, &norm_a, &unclamped_a)),
                needs[1].then(|| grad(&b_hat, &a_hat, &norm_b, &unclamped_b)),
            ]
        })
    }
}
