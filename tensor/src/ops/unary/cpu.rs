//! CPU kernel of the unary ops: one pass over the buffer, split over
//! threads when it is large.
//!
//! The `match` on the op sits outside the loop: each arm passes `map` a
//! closure of one fixed op (its parameter captured), so the loop the
//! compiler generates is straight-line and vectorised.

use super::UnaryOp;
use crate::backend::cpu::map;
use crate::Tensor;

/// The elements of `op(x)`.
pub fn unary(x: &Tensor, op: UnaryOp) -> Vec<f32> {
    use UnaryOp as U;
    let xs = x.cpu_slice("unary");
    match op {
        U::Neg => map(xs, |v| U::Neg.apply(v)),
        U::Relu => map(xs, |v| U::Relu.apply(v)),
        U::Exp => map(xs, |v| U::Exp.apply(v)),
        U::Log => map(xs, |v| U::Log.apply(v)),
        U::Sqrt => map(xs, |v| U::Sqrt.apply(v)),
        U::Rsqrt => map(xs, |v| U::Rsqrt.apply(v)),
        U::Abs => map(xs, |v| U::Abs.apply(v)),
        U::Square => map(xs, |v| U::Square.apply(v)),
        U::Powf(p) => map(xs, |v| U::Powf(p).apply(v)),
        U::AddScalar(s) => map(xs, |v| U::AddScalar(s).apply(v)),
        U::MulScalar(s) => map(xs, |v| U::MulScalar(s).apply(v)),
        U::DivScalar(s) => map(xs, |v| U::DivScalar(s).apply(v)),
        U::MaxScalar(s) => map(xs, |v| U::MaxScalar(s).apply(v)),
        U::MinScalar(s) => map(xs, |v| U::MinScalar(s).apply(v)),
        U::GtScalar(s) => map(xs, |v| U::GtScalar(s).apply(v)),
        U::GeScalar(s) => map(xs, |v| U::GeScalar(s).apply(v)),
        U::EqScalar(s) => map(xs, |v| U::EqScalar(s).apply(v)),
    }
}

#[cfg(test)]
mod tests {
    use crate::{Device, Tensor};

    /// Each method against the scalar function written out with `std`.
    #[test]
    fn each_op_matches_std() {
        let d = Device::Cpu;
        for &n in &[1usize, 3, 7, 33, 40_000] {
            let x = Tensor::randn(&[n], 0.0, 2.0, n as u64, &d);
            let xs = x.to_vec();
            let pos: Vec<f32> = xs.iter().map(|v| v.abs() + 0.1).collect();
            let p = Tensor::from_vec(pos.clone(), &[n], &d);
            let check = |got: Tensor, f: &dyn Fn(f32) -> f32, src: &[f32]| {
                let want: Vec<f32> = src.iter().map(|&v| f(v)).collect();
                assert_eq!(got.to_vec(), want);
            };
            check(x.neg(), &|v| -v, &xs);
            check(x.relu(), &|v| if v > 0.0 { v } else { 0.0 }, &xs);
            check(x.exp(), &|v| v.exp(), &xs);
            check(p.log(), &|v| v.ln(), &pos);
            check(p.sqrt(), &|v| v.sqrt(), &pos);
            check(p.rsqrt(), &|v| 1.0 / v.sqrt(), &pos);
            check(x.abs(), &|v| v.abs(), &xs);
            check(x.square(), &|v| v * v, &xs);
            check(p.powf(1.5), &|v| v.powf(1.5), &pos);
            check(x.add_scalar(0.25), &|v| v + 0.25, &xs);
            check(x.sub_scalar(0.25), &|v| v - 0.25, &xs);
            check(x.mul_scalar(-3.0), &|v| v * -3.0, &xs);
            check(x.div_scalar(7.0), &|v| v / 7.0, &xs);
            check(x.maximum_scalar(0.5), &|v| v.max(0.5), &xs);
            check(x.minimum_scalar(0.5), &|v| v.min(0.5), &xs);
            check(x.gt_scalar(0.0), &|v| if v > 0.0 { 1.0 } else { 0.0 }, &xs);
            check(x.ge_scalar(0.0), &|v| if v >= 0.0 { 1.0 } else { 0.0 }, &xs);
            check(
                x.eq_scalar(xs[0]),
                &|v| if v == xs[0] { 1.0 } else { 0.0 },
                &xs,
            );
        }
    }

    /// ReLU and its fused forms keep a NaN a NaN, as PyTorch does (a
    /// `max(x, 0)` would turn it into 0 and hide it), on the CPU and, where
    /// there is an adapter, the GPU.
    #[test]
    fn relu_lets_nan_through_everywhere() {
        let mut devices = vec![Device::Cpu];
        devices.extend(crate::testing::gpu_device());
        for d in &devices {
            let x = Tensor::from_vec(vec![f32::NAN, -1.0, 0.0, 2.0], &[4], d);
            let got = x.relu().to_vec();
            assert!(got[0].is_nan(), "relu on {d}: {got:?}");
            assert_eq!(&got[1..], &[0.0, 0.0, 2.0], "relu on {d}");
            let zero = Tensor::zeros(&[4], d);
            let got = x.add_relu(&zero).to_vec();
            assert!(got[0].is_nan(), "add_relu on {d}: {got:?}");
            assert_eq!(&got[1..], &[0.0, 0.0, 2.0], "add_relu on {d}");
            // Batch norm then ReLU over [N = 2, C = 1, L = 2]: one NaN input
            // makes a NaN output, not a 0.
            let x = Tensor::from_vec(vec![f32::NAN, -1.0, 0.5, 2.0], &[2, 1, 2], d);
            let one = Tensor::ones(&[1], d);
            let nil = Tensor::zeros(&[1], d);
            let y = x
                .normalize_scale_shift_relu(&nil, &one, &one, &nil, 0.0)
                .to_vec();
            assert!(y[0].is_nan(), "normalize+relu on {d}: {y:?}");
            assert_eq!(&y[1..], &[0.0, 0.5, 2.0], "normalize+relu on {d}");
        }
    }
}
