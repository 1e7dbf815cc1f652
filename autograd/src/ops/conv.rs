//! 2-D convolution (no bias; add one with a broadcasting [`Var::add`]).
//!
//! `y[n, o, i, j] = Σ_{c, a, b} w[o, c, a, b] · x[n, c, i·s + a - p, j·s + b - p]`.
//! The output is linear in each of `x` and `w`, so each gradient is the
//! adjoint of that linear map, and the tensor crate has both as kernels:
//!
//! ```text
//! dx[n, c, r, q]  = Σ_{o, i, j, a, b : i·s + a - p = r, j·s + b - p = q} w[o, c, a, b] · dy[n, o, i, j]
//!                 = conv2d_backward_input(dy, w)       (a transposed convolution)
//! dw[o, c, a, b]  = Σ_{n, i, j} dy[n, o, i, j] · x[n, c, i·s + a - p, j·s + b - p]
//!                 = conv2d_backward_weight(dy, x)      (a correlation of x with dy)
//! ```

use crate::Var;
use tensor::Conv2dParams;

impl Var {
    /// The convolution of `self` (`[N, C, H, W]`) with `weight`
    /// (`[O, C, KH, KW]`) at the given stride and padding:
    /// `[N, O, OH, OW]`.
    ///
    /// `dx = conv2d_backward_input(dy, w)`, `dw = conv2d_backward_weight(dy, x)`.
    pub fn conv2d(&self, weight: &Var, params: Conv2dParams) -> Var {
        let (x, w) = (self.value().clone(), weight.value().clone());
        let y = x.conv2d(&w, params);
        Var::from_op("conv2d", y, &[self, weight], move |dy, needs| {
            vec![
                needs[0].then(|| dy.conv2d_backward_input(&w, x.shape(), params)),
                needs[1].then(|| dy.conv2d_backward_weight(&x, w.shape(), params)),
            ]
        })
    }
}
