//! CPU kernel of the unary ops: one pass over the buffer, split over
//! threads when it is large.

use super::UnaryOp;
use crate::backend::cpu::map;
use crate::Tensor;

/// The elements of `op(x)`.
pub fn unary(x: &Tensor, op: UnaryOp) -> Vec<f32> {
    map(x.cpu_slice("unary"), |v| op.apply(v))
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
}
