//! Sums and means over axes.
//!
//! Summing copies nothing into the output but adds: each input element
//! contributes once to the one output it is summed into, so its gradient is
//! that output's gradient. The rule *spreads* `dz` back: give `dz` its
//! reduced axes back as size 1 (if `keep_dims` dropped them), then repeat it
//! along them. A mean divides by the count `n` of elements reduced over.

use super::broadcast_to;
use crate::Var;
use tensor::shape::reduced_shape;
use tensor::Tensor;

/// `dz` of a reduction over `axes`, spread back over an input of `shape`.
fn spread(dz: &Tensor, shape: &[usize], axes: &[usize]) -> Tensor {
    let kept = reduced_shape(shape, axes, true, "sum backward");
    broadcast_to(&dz.reshape(&kept), shape)
}

impl Var {
    /// `z = Σ_axes x` (reduced axes dropped unless `keep_dims`).
    ///
    /// `dx[i] = dz[i with the reduced axes collapsed]`: `dz` repeated along
    /// the reduced axes.
    pub fn sum(&self, axes: &[usize], keep_dims: bool) -> Var {
        let (shape, axes) = (self.shape().to_vec(), axes.to_vec());
        let z = self.value().sum(&axes, keep_dims);
        Var::from_op("sum", z, &[self], move |dz, _| {
            vec![Some(spread(dz, &shape, &axes))]
        })
    }

    /// `z = (1/n) Σ_axes x`, `n` the number of elements reduced over.
    ///
    /// `dx = dz / n`, repeated along the reduced axes.
    pub fn mean(&self, axes: &[usize], keep_dims: bool) -> Var {
        let (shape, axes) = (self.shape().to_vec(), axes.to_vec());
        let n: usize = axes.iter().map(|&a| shape[a]).product();
        let z = self.value().mean(&axes, keep_dims);
        Var::from_op("mean", z, &[self], move |dz, _| {
            vec![Some(spread(&dz.div_scalar(n as f32), &shape, &axes))]
        })
    }

    /// `z = Σ x` over every element, shape `[]`.
    ///
    /// `dx = dz` everywhere.
    pub fn sum_all(&self) -> Var {
        let shape = self.shape().to_vec();
        Var::from_op("sum_all", self.value().sum_all(), &[self], move |dz, _| {
            vec![Some(broadcast_to(dz, &shape))]
        })
    }

    /// `z = (1/n) Σ x` over all `n` elements, shape `[]`.
    ///
    /// `dx = dz / n` everywhere.
    pub fn mean_all(&self) -> Var {
        let shape = self.shape().to_vec();
        let n = self.value().numel() as f32;
        Var::from_op(
            "mean_all",
            self.value().mean_all(),
            &[self],
            move |dz, _| vec![Some(broadcast_to(&dz.div_scalar(n), &shape))],
        )
    }
}
