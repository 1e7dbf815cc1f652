//! Schedules: the learning rate and the target's moving-average rate τ as
//! functions of the training step, as in the paper and its official code.
//!
//! Steps are counted from 0; a run has `K` = `total_steps` of them
//! (0, 1, ..., K − 1).
//!
//! **Learning rate** ([`lr_at`]): the peak is scaled with the batch size
//! ([`scaled_lr`], `base·batch/256`), reached by a linear warm-up over the
//! first `W` steps and then decayed to 0 along a half cosine:
//!
//! ```text
//! lr(k) = peak · k / W                                 k < W
//! lr(k) = peak · (1 + cos(π·(k − W)/(K − W))) / 2      W ≤ k ≤ K
//! lr(k) = 0                                            k ≥ K
//! ```
//!
//! The warm-up starts at 0 (the first step does not move the weights), as
//! the official code's `global_step / warmup_steps · lr` does; the cosine
//! starts at the peak at `k = W`.
//!
//! **Target decay** ([`tau_at`]): τ rises from τ_base to 1 along a half
//! cosine:
//!
//! ```text
//! τ(k) = 1 − (1 − τ_base) · (cos(π·k/K) + 1) / 2       (k clamped to K)
//! ```
//!
//! The arithmetic is done in `f64` and rounded to `f32` once.
//!
//! **Constant** ([`Schedule::Constant`]): either value may instead stay
//! where it starts, the learning rate at its peak from the first step (no
//! warm-up) and τ at τ_base, as many short re-implementations run (and the
//! PyTorch reference run `docs/trajectory.md` compares with).

use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// How a value moves over a run. Written and read (JSON, TOML, flags) as
/// `cosine` and `constant`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Schedule {
    /// The paper's: the learning rate warms up then decays along a half
    /// cosine ([`lr_at`]); τ rises from τ_base to 1 ([`tau_at`]).
    #[default]
    Cosine,
    /// The value it starts with, at every step.
    Constant,
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Schedule::Cosine => "cosine",
            Schedule::Constant => "constant",
        })
    }
}

/// The fraction of a schedule of `length` steps done at `step`, clamped to
/// [0, 1]. A schedule of no steps is already over (1).
fn progress(step: usize, length: usize) -> f64 {
    if length == 0 {
        1.0
    } else {
        step.min(length) as f64 / length as f64
    }
}

/// `(1 + cos(π·x)) / 2`: 1 at `x = 0`, 1/2 at `x = 1/2`, 0 at `x = 1`.
fn half_cosine(x: f64) -> f64 {
    (1.0 + (PI * x).cos()) / 2.0
}

/// The peak learning rate for a batch of `batch_size`: `base_lr ·
/// batch_size / 256` (the paper's base is 0.2 for LARS at batch 4096, so
/// 3.2).
pub fn scaled_lr(base_lr: f32, batch_size: usize) -> f32 {
    (base_lr as f64 * batch_size as f64 / 256.0) as f32
}

/// The learning rate at `step` (from 0) of a run of `total_steps`:
/// a linear warm-up from 0 over `warmup_steps`, `peak_lr · k / W` at step
/// `k < W`, then a cosine decay from `peak_lr` at step `W` to 0 at step
/// `total_steps`, `peak_lr · (1 + cos(π·(k − W)/(K − W)))/2`. 0 from
/// `total_steps` on (and for every step past the warm-up when
/// `total_steps ≤ warmup_steps`). With `warmup_steps` = 0 the first step
/// has the peak.
pub fn lr_at(step: usize, total_steps: usize, warmup_steps: usize, peak_lr: f32) -> f32 {
    let peak = peak_lr as f64;
    if step < warmup_steps {
        // Warm-up: peak · k / W
        return (peak * step as f64 / warmup_steps as f64) as f32;
    }
    // Cosine decay: peak · (1 + cos(π·(k − W)/(K − W))) / 2
    let decay_steps = total_steps.saturating_sub(warmup_steps);
    let x = progress(step - warmup_steps, decay_steps);
    (peak * half_cosine(x)) as f32
}

/// The target's moving-average rate τ at `step` (from 0) of a run of
/// `total_steps`: `1 − (1 − τ_base)·(cos(π·k/K) + 1)/2`, which is τ_base at
/// step 0, `1 − (1 − τ_base)/2` halfway, and 1 at step K (and after).
///
/// Edge cases, exactly as the formula gives them: τ_base = 1 gives 1 at
/// every step (a fixed target); τ_base = 0 gives 0 at step 0 rising to 1,
/// *not* a constant 0. The paper's τ = 0 row (the online network as its own
/// target at every step) is therefore not this schedule: the trainer treats
/// τ_base = 0 specially and uses τ = 0 throughout. A run of no steps
/// (`total_steps` = 0) gives 1.
pub fn tau_at(step: usize, total_steps: usize, tau_base: f32) -> f32 {
    let base = tau_base as f64;
    // τ = 1 − (1 − τ_base)·(cos(π·k/K) + 1)/2
    (1.0 - (1.0 - base) * half_cosine(progress(step, total_steps))) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() <= 1e-6 * b.abs().max(1.0)
    }

    #[test]
    fn scaled_lr_is_linear_in_the_batch() {
        assert_eq!(scaled_lr(0.2, 256), 0.2);
        assert_eq!(scaled_lr(0.2, 4096), 3.2);
        assert_eq!(scaled_lr(1.0, 64), 0.25);
    }

    #[test]
    fn learning_rate_at_known_steps() {
        let (total, warmup, peak) = (110, 10, 2.0);
        // Warm-up: 0 at the start, peak·k/W on the way, the peak at W.
        assert_eq!(lr_at(0, total, warmup, peak), 0.0);
        assert!(close(lr_at(1, total, warmup, peak), 0.2));
        assert!(close(lr_at(9, total, warmup, peak), 1.8));
        assert_eq!(lr_at(10, total, warmup, peak), 2.0);
        // Cosine: half the peak halfway through the decay (10 + 100/2).
        assert!(close(lr_at(60, total, warmup, peak), 1.0));
        let quarter = lr_at(35, total, warmup, peak);
        assert!(close(quarter, 2.0 * (1.0 + (PI / 4.0).cos() as f32) / 2.0));
        // The last step is nearly 0, the end exactly 0, and after it too.
        let last = lr_at(total - 1, total, warmup, peak);
        assert!(last > 0.0 && last < 1e-3, "{last}");
        assert_eq!(lr_at(total, total, warmup, peak), 0.0);
        assert_eq!(lr_at(total + 5, total, warmup, peak), 0.0);
        // Decreasing after the warm-up.
        for k in warmup..total {
            assert!(lr_at(k + 1, total, warmup, peak) <= lr_at(k, total, warmup, peak));
        }
    }

    #[test]
    fn learning_rate_edge_cases() {
        // No warm-up: the peak at step 0.
        assert_eq!(lr_at(0, 100, 0, 0.5), 0.5);
        assert!(close(lr_at(50, 100, 0, 0.5), 0.25));
        // All warm-up: the schedule ends at the warm-up's end.
        assert!(close(lr_at(5, 10, 10, 1.0), 0.5));
        assert_eq!(lr_at(10, 10, 10, 1.0), 0.0);
        assert_eq!(lr_at(0, 0, 0, 1.0), 0.0);
    }

    #[test]
    fn tau_at_known_steps() {
        let total = 1000;
        assert!(close(tau_at(0, total, 0.99), 0.99));
        assert!(close(tau_at(500, total, 0.99), 1.0 - 0.01 / 2.0));
        assert_eq!(tau_at(total, total, 0.99), 1.0);
        assert_eq!(tau_at(total + 1, total, 0.99), 1.0);
        for k in 0..total {
            assert!(tau_at(k + 1, total, 0.996) >= tau_at(k, total, 0.996));
        }
    }

    #[test]
    fn tau_edge_cases_follow_the_formula() {
        // τ_base = 1: a fixed target.
        for k in [0, 1, 500, 999, 1000] {
            assert_eq!(tau_at(k, 1000, 1.0), 1.0);
        }
        // τ_base = 0: 0 at the start, 1/2 halfway, 1 at the end (the
        // trainer holds it at 0 instead).
        assert_eq!(tau_at(0, 1000, 0.0), 0.0);
        assert!(close(tau_at(500, 1000, 0.0), 0.5));
        assert_eq!(tau_at(1000, 1000, 0.0), 1.0);
        // A run of no steps.
        assert_eq!(tau_at(0, 0, 0.99), 1.0);
    }
}
