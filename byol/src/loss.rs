//! The BYOL loss: the normalised mean squared error between the online
//! network's prediction of one view and the target's projection of the
//! other.
//!
//! For one pair of vectors, with `p̂ = p / ‖p‖` and `ẑ = z / ‖z‖`,
//!
//! ```text
//! ‖p̂ − ẑ‖² = 2 − 2 · ⟨p̂, ẑ⟩ = 2 − 2 cos(p, z)
//! ```
//!
//! which is 0 when the prediction points where the target points and 4 when
//! it points the opposite way. The loss of a batch is its mean over the
//! rows; BYOL symmetrises it over the two views (prediction of view 1
//! against the target of view 2, and the reverse) and adds the two.
//! The target side is a constant (computed under `no_grad`), so no
//! gradient reaches the target network.

use autograd::Var;

/// Norms below this are clamped before dividing (as `F.normalize` does).
pub const NORM_EPS: f32 = 1e-12;

/// `mean over rows of 2 − 2 cos(p, z)` for `[N, D]` predictions and
/// targets.
pub fn regression_loss(p: &Var, z: &Var) -> Var {
    p.cosine_similarity(z, NORM_EPS)
        .mul_scalar(-2.0)
        .add_scalar(2.0)
        .mean_all()
}

/// The symmetric loss of a step: `L(p1, z2) + L(p2, z1)`.
pub fn symmetric_loss(p1: &Var, z2: &Var, p2: &Var, z1: &Var) -> Var {
    regression_loss(p1, z2).add(&regression_loss(p2, z1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use autograd::Tape;
    use tensor::{Device, Tensor};

    #[test]
    fn identical_directions_give_zero_and_opposite_give_four() {
        let d = Device::Cpu;
        let p = Var::constant(Tensor::from_vec(
            vec![1.0, 2.0, 3.0, -1.0, 0.5, 2.0],
            &[2, 3],
            &d,
        ));
        let same = Var::constant(p.value().mul_scalar(3.0));
        let opposite = Var::constant(p.value().mul_scalar(-0.5));
        assert!(regression_loss(&p, &same).item().abs() < 1e-6);
        assert!((regression_loss(&p, &opposite).item() - 4.0).abs() < 1e-5);
        // Orthogonal rows: cos 0, loss 2.
        let a = Var::constant(Tensor::from_vec(vec![1.0, 0.0], &[1, 2], &d));
        let b = Var::constant(Tensor::from_vec(vec![0.0, 5.0], &[1, 2], &d));
        assert!((regression_loss(&a, &b).item() - 2.0).abs() < 1e-6);
        // The gradient flows into the prediction only.
        let tape = Tape::new();
        let pl = tape.leaf(p.value().clone());
        let loss = regression_loss(&pl, &opposite);
        let g = tape.backward(&loss);
        assert!(g.get(&pl).is_some());
        assert!(!opposite.is_tracked());
    }
}
