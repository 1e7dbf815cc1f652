//! Softmax and log-softmax along the last axis.
//!
//! ```text
//! softmax(x)_i     = e^(x_i - m) / Σ_j e^(x_j - m)
//! log_softmax(x)_i = (x_i - m) - ln Σ_j e^(x_j - m)
//! ```
//!
//! with `m = max_j x_j`: subtracting the row maximum changes nothing
//! mathematically but keeps `e^x` from overflowing. Log-softmax is computed
//! directly rather than as `ln(softmax)`, which would lose precision for
//! small probabilities (and it is what cross-entropy needs).

mod cpu;
mod gpu;

use crate::{Storage, Tensor};

impl Tensor {
    fn last_axis_len(&self, op: &str) -> usize {
        assert!(
            self.rank() >= 1,
            "{op}: needs at least one axis, got a scalar"
        );
        let n = self.shape()[self.rank() - 1];
        assert!(n > 0, "{op}: the last axis of {:?} is empty", self.shape());
        n
    }

    /// Softmax over the last axis: each row becomes a probability vector.
    pub fn softmax(&self) -> Tensor {
        let n = self.last_axis_len("softmax");
        match self.storage() {
            Storage::Cpu(_) => Tensor::cpu(cpu::softmax(self, n, false), self.shape()),
            Storage::Gpu(_) => Tensor::gpu(gpu::softmax(self, n, false), self.shape()),
        }
    }

    /// Log-softmax over the last axis.
    pub fn log_softmax(&self) -> Tensor {
        let n = self.last_axis_len("log_softmax");
        match self.storage() {
            Storage::Cpu(_) => Tensor::cpu(cpu::softmax(self, n, true), self.shape()),
            Storage::Gpu(_) => Tensor::gpu(gpu::softmax(self, n, true), self.shape()),
        }
    }
}
