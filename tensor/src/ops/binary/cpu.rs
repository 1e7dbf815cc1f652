//! CPU kernel of the binary ops: a straight zip when the shapes are equal,
//! otherwise ndarray's broadcasting views zipped into the output.

use super::BinaryOp;
use crate::backend::cpu::{fill_indexed, go_parallel};
use crate::Tensor;
use ndarray::{ArrayViewMutD, IxDyn, Zip};

/// The elements of `op(a, b)` broadcast to `shape`, row-major.
pub fn binary(a: &Tensor, b: &Tensor, shape: &[usize], op: BinaryOp) -> Vec<f32> {
    let n = crate::shape::numel(shape);
    let mut out = vec![0.0f32; n];
    if a.shape() == b.shape() {
        let (x, y) = (a.cpu_slice(op.name()), b.cpu_slice(op.name()));
        fill_indexed(&mut out, |i| op.apply(x[i], y[i]));
        return out;
    }
    if b.numel() == 1 && a.shape() == shape {
        let (x, s) = (a.cpu_slice(op.name()), b.cpu_slice(op.name())[0]);
        fill_indexed(&mut out, |i| op.apply(x[i], s));
        return out;
    }
    let av = a.cpu_view(op.name());
    let bv = b.cpu_view(op.name());
    let av = av
        .broadcast(IxDyn(shape))
        .expect("shape checked by broadcast_shape");
    let bv = bv
        .broadcast(IxDyn(shape))
        .expect("shape checked by broadcast_shape");
    let mut ov = ArrayViewMutD::from_shape(IxDyn(shape), &mut out).expect("sized above");
    let zip = Zip::from(&mut ov).and(&av).and(&bv);
    if go_parallel(n) {
        zip.par_for_each(|o, &x, &y| *o = op.apply(x, y));
    } else {
        zip.for_each(|o, &x, &y| *o = op.apply(x, y));
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::ops::binary::BinaryOp;
    use crate::shape::{broadcast_shape, numel, strides};
    use crate::{Device, Tensor};

    /// The plain reference: for every output index, find the input element
    /// each operand contributes by clamping broadcast axes to 0.
    fn reference(a: &Tensor, b: &Tensor, op: BinaryOp) -> Vec<f32> {
        let shape = broadcast_shape(a.shape(), b.shape(), "ref");
        let (av, bv) = (a.to_vec(), b.to_vec());
        let source = |t: &Tensor, idx: &[usize]| -> usize {
            let off = shape.len() - t.rank();
            let st = strides(t.shape());
            (0..t.rank())
                .map(|i| {
                    if t.shape()[i] == 1 {
                        0
                    } else {
                        idx[i + off] * st[i]
                    }
                })
                .sum()
        };
        let ost = strides(&shape);
        (0..numel(&shape))
            .map(|flat| {
                let idx: Vec<usize> = (0..shape.len())
                    .map(|i| (flat / ost[i]) % shape[i])
                    .collect();
                op.apply(av[source(a, &idx)], bv[source(b, &idx)])
            })
            .collect()
    }

    #[test]
    fn every_op_and_broadcast_matches_reference() {
        let d = Device::Cpu;
        let cases: &[(&[usize], &[usize])] = &[
            (&[3, 7], &[3, 7]),
            (&[3, 7], &[7]),
            (&[3, 1], &[1, 7]),
            (&[2, 3, 1, 5], &[3, 7, 1]),
            (&[33], &[1]),
            (&[1], &[33]),
            (&[], &[3, 1]),
            (&[257, 129], &[129]),
            (&[7, 3, 33, 33], &[1, 3, 1, 1]),
        ];
        let ops = [
            BinaryOp::Add,
            BinaryOp::Sub,
            BinaryOp::Mul,
            BinaryOp::Div,
            BinaryOp::Maximum,
            BinaryOp::Minimum,
            BinaryOp::Gt,
            BinaryOp::Ge,
            BinaryOp::Eq,
        ];
        for (i, (sa, sb)) in cases.iter().enumerate() {
            let a = Tensor::randn(sa, 0.0, 1.0, 10 + i as u64, &d);
            // Round b so that equality comparisons meet some equal pairs.
            let b = Tensor::randn(sb, 0.5, 1.0, 20 + i as u64, &d);
            let b = Tensor::from_vec(
                b.to_vec().iter().map(|x| (x * 2.0).round() / 2.0).collect(),
                sb,
                &d,
            );
            for op in ops {
                let got = a.binary(&b, op);
                assert_eq!(got.shape(), broadcast_shape(sa, sb, "t").as_slice());
                // Each element is one exactly rounded f32 operation: the
                // kernel and the reference must agree bit for bit.
                assert_eq!(got.to_vec(), reference(&a, &b, op), "{op:?} {sa:?} {sb:?}");
            }
        }
    }

    #[test]
    fn masks_are_zero_or_one() {
        let d = Device::Cpu;
        let a = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3], &d);
        let b = Tensor::scalar(2.0, &d);
        assert_eq!(a.gt(&b).to_vec(), vec![0.0, 0.0, 1.0]);
        assert_eq!(a.ge(&b).to_vec(), vec![0.0, 1.0, 1.0]);
        assert_eq!(a.eq(&b).to_vec(), vec![0.0, 1.0, 0.0]);
    }

    #[test]
    #[should_panic(expected = "mul: shapes [2, 3] and [2] do not broadcast")]
    fn mismatch_panics_naming_the_op() {
        let d = Device::Cpu;
        Tensor::zeros(&[2, 3], &d).mul(&Tensor::zeros(&[2], &d));
    }
}
