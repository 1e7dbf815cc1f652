//! Elementwise arithmetic with broadcasting, and the ops with one scalar.
//!
//! **Broadcasting and its gradient.** `z = x + y` with `x: [N, C]` and
//! `y: [C]` adds `y` to every row: each `y[c]` reaches N outputs, so its
//! gradient is the sum of theirs, `dy[c] = Σ_n dz[n, c]`. In general the
//! gradient of an operand that was broadcast is summed over the axes it was
//! repeated along (leading axes it lacked, and axes where it had size 1),
//! then given the operand's shape. Every binary rule below ends with that
//! step, written `unbroadcast`.

use super::sum_to_shape as unbroadcast;
use crate::Var;

impl Var {
    /// `z = x + y`, broadcasting.
    ///
    /// `dx = unbroadcast(dz)`, `dy = unbroadcast(dz)`.
    pub fn add(&self, other: &Var) -> Var {
        let (xs, ys) = (self.shape().to_vec(), other.shape().to_vec());
        let z = self.value().add(other.value());
        Var::from_op("add", z, &[self, other], move |dz, needs| {
            vec![
                needs[0].then(|| unbroadcast(dz, &xs)),
                needs[1].then(|| unbroadcast(dz, &ys)),
            ]
        })
    }

    /// `z = x - y`, broadcasting.
    ///
    /// `dx = unbroadcast(dz)`, `dy = -unbroadcast(dz)`.
    pub fn sub(&self, other: &Var) -> Var {
        let (xs, ys) = (self.shape().to_vec(), other.shape().to_vec());
        let z = self.value().sub(other.value());
        Var::from_op("sub", z, &[self, other], move |dz, needs| {
            vec![
                needs[0].then(|| unbroadcast(dz, &xs)),
                needs[1].then(|| unbroadcast(dz, &ys).neg()),
            ]
        })
    }

    /// `z = x · y` elementwise, broadcasting.
    ///
    /// `dx = unbroadcast(dz · y)`, `dy = unbroadcast(dz · x)`.
    pub fn mul(&self, other: &Var) -> Var {
        let (x, y) = (self.value().clone(), other.value().clone());
        let z = x.mul(&y);
        Var::from_op("mul", z, &[self, other], move |dz, needs| {
            vec![
                needs[0].then(|| unbroadcast(&dz.mul(&y), x.shape())),
                needs[1].then(|| unbroadcast(&dz.mul(&x), y.shape())),
            ]
        })
    }

    /// `z = x / y` elementwise, broadcasting.
    ///
    /// `dx = unbroadcast(dz / y)`, `dy = unbroadcast(-dz · x / y²) =
    /// unbroadcast(-dz · z / y)`.
    pub fn div(&self, other: &Var) -> Var {
        let xs = self.shape().to_vec();
        let y = other.value().clone();
        let z = self.value().div(&y);
        let saved_z = z.clone();
        Var::from_op("div", z, &[self, other], move |dz, needs| {
            let dz_over_y = dz.div(&y);
            let dy = needs[1].then(|| unbroadcast(&dz_over_y.mul(&saved_z).neg(), y.shape()));
            let dx = needs[0].then(|| unbroadcast(&dz_over_y, &xs));
            vec![dx, dy]
        })
    }

    /// `z = x + s`.
    ///
    /// `dx = dz`.
    pub fn add_scalar(&self, s: f32) -> Var {
        Var::from_op(
            "add_scalar",
            self.value().add_scalar(s),
            &[self],
            |dz, _| vec![Some(dz.clone())],
        )
    }

    /// `z = x - s`.
    ///
    /// `dx = dz`.
    pub fn sub_scalar(&self, s: f32) -> Var {
        Var::from_op(
            "sub_scalar",
            self.value().sub_scalar(s),
            &[self],
            |dz, _| vec![Some(dz.clone())],
        )
    }

    /// `z = x · s`.
    ///
    /// `dx = s · dz`.
    pub fn mul_scalar(&self, s: f32) -> Var {
        Var::from_op(
            "mul_scalar",
            self.value().mul_scalar(s),
            &[self],
            move |dz, _| vec![Some(dz.mul_scalar(s))],
        )
    }

    /// `z = x / s`.
    ///
    /// `dx = dz / s`.
    pub fn div_scalar(&self, s: f32) -> Var {
        Var::from_op(
            "div_scalar",
            self.value().div_scalar(s),
            &[self],
            move |dz, _| vec![Some(dz.div_scalar(s))],
        )
    }
}
