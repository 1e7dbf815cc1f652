//! Synchronised batch norm: a scope in which every training-mode batch
//! norm takes its statistics over the whole global batch of a group of
//! processes, not over this process's slice of it.
//!
//! In data-parallel training each of `P` ranks holds `B/P` images of every
//! batch. Batch norm over `B/P` images (8 per core in the paper's 512-core
//! runs) is noisy and differs from the single-process model; its code
//! computes the statistics across replicas (`cross_replica_axis`). Here
//! the same, per channel, with `m_r` values on rank `r` and `M = Σ m_r`:
//!
//! ```text
//! forward:   [Σ m_r·μ_r, Σ m_r·(σ²_r + μ_r²), Σ m_r]   one sum over the ranks (f64)
//!            μ = S₁ / M      σ² = S₂ / M − μ²           the global statistics
//! backward:  [Σ dy, Σ dy·x̂]                           one sum over the ranks
//!            dx = γ·r/M · (M·dy − Σ dy − x̂·Σ dy·x̂)     with the global sums
//!            dγ = Σ_local dy·x̂,  dβ = Σ_local dy        (averaged with every other gradient)
//! ```
//!
//! The backward pass runs the fused single-process kernel on the slice,
//! then adds a per-channel affine correction of `x̂` for the global sums
//! (one more pass; see `synced_backward` in `ops/batchnorm.rs`).
//! The scale and shift gradients stay local: they go through the ordinary
//! gradient average with every other parameter, not a second time. The
//! running statistics the layer keeps come from the global `μ`, `σ²` and
//! `M`, so they are the same on every rank.
//!
//! The scope is per thread, like [`no_grad`](crate::no_grad()): the forward
//! pass of a training step runs inside [`with_batch_norm_group`], and each
//! batch-norm node keeps the group for its backward pass.

use collective::Collective;
use std::cell::RefCell;
use std::sync::Arc;

thread_local! {
    static GROUP: RefCell<Option<Arc<dyn Collective>>> = const { RefCell::new(None) };
}

/// Runs `f` with training-mode batch norms synchronised over `group` (or,
/// with `None` or a group of one, not) on this thread.
pub fn with_batch_norm_group<R>(group: Option<Arc<dyn Collective>>, f: impl FnOnce() -> R) -> R {
    let previous = GROUP.with(|g| g.replace(group.filter(|g| g.size() > 1)));
    let _restore = Restore(Some(previous));
    f()
}

/// The group batch norms are synchronised over on this thread, if any.
pub(crate) fn batch_norm_group() -> Option<Arc<dyn Collective>> {
    GROUP.with(|g| g.borrow().clone())
}

/// Puts the previous group back when dropped, even on a panic.
struct Restore(Option<Option<Arc<dyn Collective>>>);

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(previous) = self.0.take() {
            GROUP.with(|g| *g.borrow_mut() = previous);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Param, Tape, Var};
    use collective::Local;
    use tensor::{Device, Tensor};

    /// A batch norm's output, statistics and the gradients of `Σ y·c`.
    struct Seen {
        y: Vec<f32>,
        dx: Vec<f32>,
        dw: Vec<f32>,
        db: Vec<f32>,
        mean: Vec<f32>,
        var: Vec<f32>,
    }

    /// What one process computes on its batch `x`.
    fn whole(x: &Tensor, c: &Tensor, relu: bool) -> Seen {
        let d = Device::Cpu;
        let (w, b) = (
            Param::new("w", Tensor::from_vec(vec![1.5, 0.5, -1.0], &[3], &d)),
            Param::new("b", Tensor::from_vec(vec![0.1, -0.2, 0.3], &[3], &d)),
        );
        let tape = Tape::new();
        let xv = tape.leaf(x.clone());
        let out = if relu {
            xv.batch_norm_relu_train(&tape.param(&w), &tape.param(&b), 1e-5)
        } else {
            xv.batch_norm_train(&tape.param(&w), &tape.param(&b), 1e-5)
        };
        let loss = out.y.mul(&Var::constant(c.clone())).sum_all();
        let g = tape.backward(&loss);
        Seen {
            y: out.y.value().to_vec(),
            dx: g.get(&xv).unwrap().to_vec(),
            dw: w.grad().unwrap().to_vec(),
            db: b.grad().unwrap().to_vec(),
            mean: out.mean.to_vec(),
            var: out.unbiased_var().to_vec(),
        }
    }

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-5 + 1e-4 * y.abs(), "{what}: {x} vs {y}");
        }
    }

    /// Two ranks, each with half of the batch, synchronised, compute what
    /// one process computes on the whole batch: outputs, input gradients,
    /// the sum of their scale and shift gradients, and the statistics.
    #[test]
    fn two_halves_synchronised_are_the_whole_batch() {
        let d = Device::Cpu;
        for relu in [false, true] {
            let x = Tensor::randn(&[6, 3, 2, 2], 0.5, 2.0, 11, &d);
            let c = Tensor::randn(&[6, 3, 2, 2], 0.0, 1.0, 12, &d);
            let want = whole(&x, &c, relu);
            let halves: Vec<Seen> = std::thread::scope(|s| {
                Local::group(2)
                    .into_iter()
                    .map(|g| {
                        let (x, c) = (x.narrow(0, 3 * g.rank(), 3), c.narrow(0, 3 * g.rank(), 3));
                        s.spawn(move || {
                            let group: Arc<dyn Collective> = Arc::new(g);
                            with_batch_norm_group(Some(group), || whole(&x, &c, relu))
                        })
                    })
                    .collect::<Vec<_>>()
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .collect()
            });
            let joined =
                |f: fn(&Seen) -> &Vec<f32>| [f(&halves[0]).clone(), f(&halves[1]).clone()].concat();
            let summed = |f: fn(&Seen) -> &Vec<f32>| -> Vec<f32> {
                f(&halves[0])
                    .iter()
                    .zip(f(&halves[1]))
                    .map(|(p, q)| p + q)
                    .collect()
            };
            close(&joined(|h| &h.y), &want.y, "y");
            close(&joined(|h| &h.dx), &want.dx, "dx");
            close(&summed(|h| &h.dw), &want.dw, "dγ summed over the ranks");
            close(&summed(|h| &h.db), &want.db, "dβ summed over the ranks");
            for h in &halves {
                close(&h.mean, &want.mean, "mean");
                close(&h.var, &want.var, "unbiased variance");
            }
        }
    }

    #[test]
    fn outside_the_scope_nothing_is_synchronised() {
        assert!(batch_norm_group().is_none());
        let group: Arc<dyn Collective> = Arc::new(collective::Single);
        // A group of one is no group.
        with_batch_norm_group(Some(group), || assert!(batch_norm_group().is_none()));
    }
}
