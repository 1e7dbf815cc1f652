//! Elementwise functions of one input, `z = f(x)`, whose rule is
//! `dx = dz · f'(x)`. Where `f'` is easier to write with the output, the
//! rule saves `z` instead of `x`.

use crate::Var;

impl Var {
    /// `z = -x`.
    ///
    /// `dx = -dz`.
    pub fn neg(&self) -> Var {
        Var::from_op("neg", self.value().neg(), &[self], |dz, _| {
            vec![Some(dz.neg())]
        })
    }

    /// `z = max(x, 0)`.
    ///
    /// `dx = dz · [x > 0] = dz · [z > 0]` (the gradient at exactly 0 is
    /// taken as 0, as in PyTorch). The rule saves the output, which the
    /// next op usually keeps anyway, and applies the mask as one select
    /// pass (`where_positive`) rather than building a 0/1 mask and
    /// multiplying.
    pub fn relu(&self) -> Var {
        let z = self.value().relu();
        let saved = z.clone();
        Var::from_op("relu", z, &[self], move |dz, _| {
            vec![Some(dz.where_positive(&saved))]
        })
    }

    /// `z = eˣ`.
    ///
    /// `dx = dz · eˣ = dz · z`.
    pub fn exp(&self) -> Var {
        let z = self.value().exp();
        let saved = z.clone();
        Var::from_op("exp", z, &[self], move |dz, _| vec![Some(dz.mul(&saved))])
    }

    /// `z = ln x`.
    ///
    /// `dx = dz / x`.
    pub fn log(&self) -> Var {
        let x = self.value().clone();
        Var::from_op("log", x.log(), &[self], move |dz, _| vec![Some(dz.div(&x))])
    }

    /// `z = √x`.
    ///
    /// `dx = dz / (2√x) = 0.5 · dz / z`.
    pub fn sqrt(&self) -> Var {
        let z = self.value().sqrt();
        let saved = z.clone();
        Var::from_op("sqrt", z, &[self], move |dz, _| {
            vec![Some(dz.div(&saved).mul_scalar(0.5))]
        })
    }

    /// `z = 1/√x = x^(-1/2)`.
    ///
    /// `dx = dz · (-1/2) x^(-3/2) = -0.5 · dz · z³`.
    pub fn rsqrt(&self) -> Var {
        let z = self.value().rsqrt();
        let saved = z.clone();
        Var::from_op("rsqrt", z, &[self], move |dz, _| {
            let z_cubed = saved.square().mul(&saved);
            vec![Some(dz.mul(&z_cubed).mul_scalar(-0.5))]
        })
    }

    /// `z = x²`.
    ///
    /// `dx = 2x · dz`.
    pub fn square(&self) -> Var {
        let x = self.value().clone();
        Var::from_op("square", x.square(), &[self], move |dz, _| {
            vec![Some(dz.mul(&x).mul_scalar(2.0))]
        })
    }
}
