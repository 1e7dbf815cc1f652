//! Cross-entropy with integer class labels, as one fused op.
//!
//! For logits `z: [N, K]` and labels `y_i ∈ 0..K`:
//!
//! ```text
//! L = (1/N) Σ_i -log_softmax(z_i)[y_i]  =  (1/N) Σ_i ( ln Σ_k e^(z_ik) - z_i,y_i )
//! ∂L/∂z_ik = (softmax(z_i)_k - [k = y_i]) / N
//! ```
//!
//! so `dz = dL · (softmax(z) - onehot(y)) / N`. The fused op saves the
//! log-softmax (the softmax is its exponential) and the one-hot matrix.

use crate::Var;
use tensor::Tensor;

impl Var {
    /// The mean cross-entropy of logits `self` (`[N, K]`) against integer
    /// `labels` (`N` of them, each below `K`): a one-element var of shape
    /// `[]`.
    ///
    /// `dz = dL · (softmax(z) - onehot(labels)) / N`.
    pub fn cross_entropy(&self, labels: &[usize]) -> Var {
        assert!(
            self.rank() == 2 && self.shape()[0] == labels.len() && !labels.is_empty(),
            "cross_entropy: needs logits [N, K] and N labels, got shape {:?} and {} labels",
            self.shape(),
            labels.len()
        );
        let (n, k) = (self.shape()[0], self.shape()[1]);
        let log_probs = self.value().log_softmax();
        let one_hot = Tensor::one_hot(labels, k, &self.device());
        let loss = log_probs
            .mul(&one_hot)
            .sum_all()
            .mul_scalar(-1.0 / n as f32);
        Var::from_op("cross_entropy", loss, &[self], move |dl, _| {
            let per_logit = log_probs.exp().sub(&one_hot);
            vec![Some(per_logit.mul(&dl.div_scalar(n as f32)))]
        })
    }
}
