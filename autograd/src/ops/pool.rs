//! Max-pooling and global average pooling over the spatial axes of NCHW
//! tensors.
//!
//! **Max-pool.** Each output is one input element, the largest in its
//! window, so its gradient goes to that element alone; an element that wins
//! several overlapping windows collects the sum. The forward pass saves the
//! position of each winner (the tensor op returns them), and the rule
//! scatters `dy` there:
//! `dx[n, c, idx[n, c, i, j]] += dy[n, c, i, j]`.
//!
//! **Global average pool.** `y[n, c] = (1/HW) Σ_{r,q} x[n, c, r, q]`, so every
//! input position receives `dx[n, c, r, q] = dy[n, c] / HW`.

use crate::Var;
use tensor::Pool2dParams;

impl Var {
    /// Max-pool of an `[N, C, H, W]` var with the given window, stride and
    /// padding (padding never wins).
    ///
    /// `dx = scatter-add of dy to the saved argmax positions`.
    pub fn max_pool2d(&self, params: Pool2dParams) -> Var {
        let shape = self.shape().to_vec();
        let (y, indices) = self.value().max_pool2d(params);
        Var::from_op("max_pool2d", y, &[self], move |dy, _| {
            vec![Some(dy.max_pool2d_backward(&indices, &shape, params))]
        })
    }

    /// Global average pool, `[N, C, H, W] -> [N, C]`.
    ///
    /// `dx[n, c, r, q] = dy[n, c] / (H·W)`.
    pub fn global_avg_pool2d(&self) -> Var {
        let shape = self.shape().to_vec();
        let y = self.value().global_avg_pool2d();
        Var::from_op("global_avg_pool2d", y, &[self], move |dy, _| {
            vec![Some(dy.global_avg_pool2d_backward(&shape))]
        })
    }
}
