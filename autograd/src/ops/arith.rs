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

    /// `z = max(x + y, 0)`, broadcasting: the end of a residual block (the
    /// sum, then ReLU) as one node, without writing the sum.
    ///
    /// `g = dz · [z > 0]`, then `dx = unbroadcast(g)`, `dy = unbroadcast(g)`.
    pub fn add_relu(&self, other: &Var) -> Var {
        let (xs, ys) = (self.shape().to_vec(), other.shape().to_vec());
        let z = self.value().add_relu(other.value());
        let saved = z.clone();
        Var::from_op("add_relu", z, &[self, other], move |dz, needs| {
            let g = dz.where_positive(&saved);
            vec![
                needs[0].then(|| unbroadcast(&g, &xs)),
                needs[1].then(|| unbroadcast(&g, &ys)),
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

#[cfg(test)]
mod tests {
    use crate::{Tape, Var};
    use tensor::{Device, Tensor};

    /// `add_relu` against `add` then `relu`: the same values and gradients,
    /// bit for bit, with equal shapes and with a broadcast operand.
    #[test]
    fn add_relu_equals_add_then_relu() {
        let d = Device::Cpu;
        for (sa, sb) in [(vec![4, 3, 2, 2], vec![4, 3, 2, 2]), (vec![5, 3], vec![3])] {
            let a = Tensor::randn(&sa, 0.0, 1.0, 1, &d);
            let b = Tensor::randn(&sb, 0.0, 1.0, 2, &d);
            let probe = Tensor::randn(&sa, 0.0, 1.0, 3, &d);
            let run = |fused: bool| {
                let tape = Tape::new();
                let (av, bv) = (tape.leaf(a.clone()), tape.leaf(b.clone()));
                let z = if fused {
                    av.add_relu(&bv)
                } else {
                    av.add(&bv).relu()
                };
                let loss = z.mul(&Var::constant(probe.clone())).sum_all();
                let g = tape.backward(&loss);
                let grads: Vec<Vec<f32>> = [&av, &bv]
                    .iter()
                    .map(|v| g.get(v).expect("gradient").to_vec())
                    .collect();
                (z.value().to_vec(), grads)
            };
            let (z1, g1) = run(true);
            assert!(z1.contains(&0.0), "the ReLU should cut something");
            assert_eq!(run(false), (z1, g1), "{sa:?} + {sb:?}");
        }
    }
}
