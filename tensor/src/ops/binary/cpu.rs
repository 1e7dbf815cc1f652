//! CPU kernel of the binary ops: a straight zip when the shapes are equal,
//! otherwise ndarray's broadcasting views zipped into the output.
//!
//! Every kernel is generic over the element function, and [`binary`] picks
//! the function with one `match` outside the loops: each arm hands over a
//! closure of one fixed op, so the inner loops are straight-line code the
//! compiler vectorises (a `match` on the op inside the loop kept it scalar).

use super::BinaryOp;
use crate::backend::cpu::simd::vectorised;
use crate::backend::cpu::{go_parallel, map, zip_map};
use crate::Tensor;
use ndarray::{ArrayViewMutD, IxDyn, Zip};

/// The elements of `op(a, b)` broadcast to `shape`, row-major.
pub fn binary(a: &Tensor, b: &Tensor, shape: &[usize], op: BinaryOp) -> Vec<f32> {
    let name = op.name();
    match op {
        BinaryOp::Add => with(a, b, shape, name, |x, y| BinaryOp::Add.apply(x, y)),
        BinaryOp::Sub => with(a, b, shape, name, |x, y| BinaryOp::Sub.apply(x, y)),
        BinaryOp::Mul => with(a, b, shape, name, |x, y| BinaryOp::Mul.apply(x, y)),
        BinaryOp::Div => with(a, b, shape, name, |x, y| BinaryOp::Div.apply(x, y)),
        BinaryOp::Maximum => with(a, b, shape, name, |x, y| BinaryOp::Maximum.apply(x, y)),
        BinaryOp::Minimum => with(a, b, shape, name, |x, y| BinaryOp::Minimum.apply(x, y)),
        BinaryOp::Gt => with(a, b, shape, name, |x, y| BinaryOp::Gt.apply(x, y)),
        BinaryOp::Ge => with(a, b, shape, name, |x, y| BinaryOp::Ge.apply(x, y)),
        BinaryOp::Eq => with(a, b, shape, name, |x, y| BinaryOp::Eq.apply(x, y)),
        BinaryOp::WherePositive => with(a, b, shape, name, |x, y| {
            BinaryOp::WherePositive.apply(x, y)
        }),
        BinaryOp::AddRelu => with(a, b, shape, name, |x, y| BinaryOp::AddRelu.apply(x, y)),
    }
}

/// `f(a, b)` broadcast to `shape`, for one fixed element function `f`.
fn with(
    a: &Tensor,
    b: &Tensor,
    shape: &[usize],
    name: &str,
    f: impl Fn(f32, f32) -> f32 + Sync + Copy,
) -> Vec<f32> {
    if a.shape() == b.shape() {
        return zip_map(a.cpu_slice(name), b.cpu_slice(name), f);
    }
    if b.numel() == 1 && a.shape() == shape {
        let s = b.cpu_slice(name)[0];
        return map(a.cpu_slice(name), |x| f(x, s));
    }
    if let Some(out) = blockwise(a, b, shape, name, f) {
        return out;
    }
    let n = crate::shape::numel(shape);
    let mut out = vec![0.0f32; n];
    let av = a.cpu_view(name);
    let bv = b.cpu_view(name);
    let av = av
        .broadcast(IxDyn(shape))
        .expect("shape checked by broadcast_shape");
    let bv = bv
        .broadcast(IxDyn(shape))
        .expect("shape checked by broadcast_shape");
    let mut ov = ArrayViewMutD::from_shape(IxDyn(shape), &mut out).expect("sized above");
    let zip = Zip::from(&mut ov).and(&av).and(&bv);
    if go_parallel(n) {
        zip.par_for_each(|o, &x, &y| *o = f(x, y));
    } else {
        zip.for_each(|o, &x, &y| *o = f(x, y));
    }
    out
}

/// The fast path for the commonest broadcast: one operand has the output's
/// shape and the other is constant over a trailing block of axes (a
/// per-channel scale `[1, C, 1, 1]` against `[N, C, H, W]`, a bias `[C]`
/// against `[N, C]` is the block-of-one case handled by ndarray).
///
/// The output splits into runs of `inner` contiguous elements over which
/// the small operand is one value; each run is a tight loop against a
/// scalar, and runs are spread over threads. `None` when the shapes are not
/// of this form, or the runs are too short to be worth it.
fn blockwise(
    a: &Tensor,
    b: &Tensor,
    shape: &[usize],
    name: &str,
    f: impl Fn(f32, f32) -> f32 + Sync + Copy,
) -> Option<Vec<f32>> {
    let (full, small, small_is_b) = if a.shape() == shape {
        (a, b, true)
    } else if b.shape() == shape {
        (b, a, false)
    } else {
        return None;
    };
    // The small operand's broadcast strides; it is constant over axes
    // t.. when its stride is 0 on all of them.
    let st = crate::shape::broadcast_strides(small.shape(), shape);
    let t = (0..=shape.len())
        .rev()
        .take_while(|&t| t == shape.len() || st[t] == 0)
        .last()
        .unwrap_or(shape.len());
    let inner: usize = shape[t..].iter().product();
    if inner < 16 || t == 0 {
        return None;
    }
    let lead = &shape[..t];
    let (xs, ss) = (full.cpu_slice(name), small.cpu_slice(name));
    let mut out = vec![0.0f32; xs.len()];
    let run = |(j, (o, x)): (usize, (&mut [f32], &[f32]))| {
        // The small operand's element for run j: j's coordinates over the
        // leading axes, through its strides.
        let mut rem = j;
        let mut at = 0;
        for k in (0..lead.len()).rev() {
            at += (rem % lead[k]) * st[k];
            rem /= lead[k];
        }
        let s = ss[at];
        vectorised(
            #[inline(always)]
            || {
                if small_is_b {
                    o.iter_mut().zip(x).for_each(|(o, &x)| *o = f(x, s));
                } else {
                    o.iter_mut().zip(x).for_each(|(o, &x)| *o = f(s, x));
                }
            },
        )
    };
    if go_parallel(out.len()) {
        use rayon::prelude::*;
        out.par_chunks_mut(inner)
            .zip(xs.par_chunks(inner))
            .enumerate()
            .for_each(run);
    } else {
        out.chunks_mut(inner)
            .zip(xs.chunks(inner))
            .enumerate()
            .for_each(run);
    }
    Some(out)
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
            (&[3, 1, 1], &[3, 5, 33]),
            (&[2, 3, 5, 7], &[3, 1, 1]),
            (&[1, 3, 1, 1], &[2, 3, 4, 5]),
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
            BinaryOp::WherePositive,
            BinaryOp::AddRelu,
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

    /// ReLU's backward select keeps the gradient only where the output is
    /// positive, and drops even a NaN gradient elsewhere (a product with a
    /// 0/1 mask would keep it).
    #[test]
    fn where_positive_selects_rather_than_multiplies() {
        let d = Device::Cpu;
        let dz = Tensor::from_vec(vec![1.5, f32::NAN, -2.0, 4.0], &[4], &d);
        let z = Tensor::from_vec(vec![0.5, 0.0, 3.0, -1.0], &[4], &d);
        assert_eq!(dz.where_positive(&z).to_vec(), vec![1.5, 0.0, -2.0, 0.0]);
    }

    /// Every vector level this CPU has gives the baseline's bits, for
    /// every op on each path: equal shapes (large enough to run in
    /// parallel pieces), a scalar, a per-channel operand on either side
    /// (the blockwise runs) and a general broadcast; the inputs hold
    /// zeros, negatives, a NaN and infinities.
    #[test]
    fn every_vector_level_gives_the_baseline_bits() {
        use crate::backend::cpu::simd::forced;
        let d = Device::Cpu;
        let big = Tensor::randn(&[6, 8, 33, 33], 0.0, 2.0, 41, &d);
        let mut special = Tensor::randn(&[6, 8, 33, 33], 0.0, 2.0, 42, &d).to_vec();
        special[..5].copy_from_slice(&[0.0, -0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY]);
        let other = Tensor::from_vec(special, &[6, 8, 33, 33], &d);
        let pairs = [
            (big.clone(), other),
            (big.clone(), Tensor::scalar(0.5, &d)),
            (big.clone(), Tensor::randn(&[1, 8, 1, 1], 0.0, 1.0, 43, &d)),
            (Tensor::randn(&[8, 1, 1], 0.0, 1.0, 44, &d), big.clone()),
            (big, Tensor::randn(&[33], 0.0, 1.0, 45, &d)),
        ];
        let ops: [fn(&Tensor, &Tensor) -> Tensor; 11] = [
            Tensor::add,
            Tensor::sub,
            Tensor::mul,
            Tensor::div,
            Tensor::maximum,
            Tensor::minimum,
            Tensor::gt,
            Tensor::ge,
            Tensor::eq,
            Tensor::where_positive,
            Tensor::add_relu,
        ];
        let bits = |t: Tensor| t.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
        let runs = forced::at_every_level(|| {
            let all = pairs
                .iter()
                .flat_map(|(a, b)| ops.iter().map(move |op| op(a, b)));
            all.map(bits).collect::<Vec<_>>()
        });
        for (isa, got) in &runs[1..] {
            assert!(got == &runs[0].1, "{isa:?} differs from the baseline");
        }
    }

    #[test]
    #[should_panic(expected = "mul: shapes [2, 3] and [2] do not broadcast")]
    fn mismatch_panics_naming_the_op() {
        let d = Device::Cpu;
        Tensor::zeros(&[2, 3], &d).mul(&Tensor::zeros(&[2], &d));
    }
}
