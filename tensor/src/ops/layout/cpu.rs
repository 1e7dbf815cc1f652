//! CPU kernels of the layout ops, on ndarray views: permuting a view's axes
//! is free, and copying it out in standard (row-major) order does the work.

use crate::Tensor;
use ndarray::{Axis, Slice};

/// The elements of `x` with axes reordered by `perm`, row-major.
pub fn permute(x: &Tensor, perm: &[usize]) -> Vec<f32> {
    let view = x.cpu_view("permute").permuted_axes(perm.to_vec());
    view.as_standard_layout().iter().copied().collect()
}

/// The elements of the tensors joined along `axis`.
pub fn concat(parts: &[&Tensor], axis: usize) -> Vec<f32> {
    // Row-major: the result is, for each index of the axes before `axis`, the
    // blocks of every part in turn.
    let outer: usize = parts[0].shape()[..axis].iter().product();
    let total: usize = parts.iter().map(|p| p.numel()).sum();
    let mut out = Vec::with_capacity(total);
    let blocks: Vec<(&[f32], usize)> = parts
        .iter()
        .map(|p| {
            let block: usize = p.shape()[axis..].iter().product();
            (p.cpu_slice("concat"), block)
        })
        .collect();
    for o in 0..outer {
        for &(data, block) in &blocks {
            out.extend_from_slice(&data[o * block..(o + 1) * block]);
        }
    }
    out
}

/// The elements of `x[.., start..start + len, ..]` along `axis`.
pub fn narrow(x: &Tensor, axis: usize, start: usize, len: usize) -> Vec<f32> {
    let view = x.cpu_view("narrow");
    let part = view.slice_axis(Axis(axis), Slice::from(start..start + len));
    part.as_standard_layout().iter().copied().collect()
}

#[cfg(test)]
mod tests {
    use crate::shape::{numel, strides};
    use crate::{Device, Tensor};

    fn ramp(shape: &[usize]) -> Tensor {
        Tensor::from_vec(
            (0..numel(shape)).map(|i| i as f32).collect(),
            shape,
            &Device::Cpu,
        )
    }

    #[test]
    fn permute_matches_index_reference() {
        let x = ramp(&[3, 1, 7, 2]);
        let perm = [2, 0, 3, 1];
        let y = x.permute(&perm);
        assert_eq!(y.shape(), &[7, 3, 2, 1]);
        let (xs, ys) = (strides(x.shape()), strides(y.shape()));
        let yv = y.to_vec();
        for (flat, &v) in x.to_vec().iter().enumerate() {
            let idx: Vec<usize> = (0..4).map(|a| flat / xs[a] % x.shape()[a]).collect();
            let yflat: usize = (0..4).map(|a| idx[perm[a]] * ys[a]).sum();
            assert_eq!(yv[yflat], v);
        }
        // Transposing twice is the identity; t() of a matrix.
        assert_eq!(x.transpose(0, 2).transpose(0, 2).to_vec(), x.to_vec());
        let m = ramp(&[3, 33]);
        let mt = m.t();
        assert_eq!(mt.shape(), &[33, 3]);
        // mt[0, 1] = m[1, 0] = 33.
        assert_eq!(mt.to_vec()[1], 33.0);
    }

    #[test]
    fn reshape_keeps_order() {
        let x = ramp(&[3, 7]);
        let y = x.reshape(&[7, 3]);
        assert_eq!(y.to_vec(), x.to_vec());
        assert_eq!(y.shape(), &[7, 3]);
    }

    #[test]
    fn concat_then_split_round_trips_on_every_axis() {
        let a = ramp(&[2, 3, 5]);
        let b = ramp(&[2, 3, 5]).add_scalar(100.0);
        for axis in 0..3 {
            let mut sb = vec![2, 3, 5];
            sb[axis] = 1;
            let c = Tensor::randn(&sb, 0.0, 1.0, 1, &Device::Cpu);
            let joined = Tensor::concat(&[&a, &c, &b], axis);
            let mut want = vec![2, 3, 5];
            want[axis] = a.shape()[axis] * 2 + 1;
            assert_eq!(joined.shape(), want.as_slice());
            let parts = joined.split(&[a.shape()[axis], 1, b.shape()[axis]], axis);
            assert_eq!(parts[0].to_vec(), a.to_vec());
            assert_eq!(parts[1].to_vec(), c.to_vec());
            assert_eq!(parts[2].to_vec(), b.to_vec());
        }
        // Axis 1 by hand: rows of a then rows of b for each outer index.
        let j = Tensor::concat(&[&ramp(&[2, 1]), &ramp(&[2, 2]).add_scalar(10.0)], 1);
        assert_eq!(j.to_vec(), vec![0.0, 10.0, 11.0, 1.0, 12.0, 13.0]);
    }

    #[test]
    #[should_panic(expected = "concat: shape [2, 4] does not fit [2, 3] along axis 0")]
    fn concat_mismatch_panics() {
        Tensor::concat(&[&ramp(&[2, 3]), &ramp(&[2, 4])], 0);
    }

    #[test]
    #[should_panic(
        expected = "reshape: cannot reshape [3, 7] (21 elements) to [4, 5] (20 elements)"
    )]
    fn reshape_mismatch_panics() {
        ramp(&[3, 7]).reshape(&[4, 5]);
    }
}
