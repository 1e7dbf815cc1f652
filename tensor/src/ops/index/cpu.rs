//! CPU kernel of `index_select`: copy whole contiguous blocks.

use crate::Tensor;

/// The elements of `x` gathered at `indices` along `axis`.
pub fn index_select(x: &Tensor, axis: usize, indices: &[usize]) -> Vec<f32> {
    // Row-major: for each index of the axes before `axis`, the axis is a run
    // of `len` blocks of `inner` contiguous elements.
    let shape = x.shape();
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let len = shape[axis];
    let data = x.cpu_slice("index_select");
    let mut out = Vec::with_capacity(outer * indices.len() * inner);
    for o in 0..outer {
        for &i in indices {
            let start = (o * len + i) * inner;
            out.extend_from_slice(&data[start..start + inner]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::{Device, Tensor};

    #[test]
    fn gathers_rows_and_inner_axes() {
        let d = Device::Cpu;
        let x = Tensor::from_vec((0..21).map(|i| i as f32).collect(), &[7, 3], &d);
        let rows = x.index_select(0, &[6, 0, 6]);
        assert_eq!(rows.shape(), &[3, 3]);
        assert_eq!(
            rows.to_vec(),
            vec![18., 19., 20., 0., 1., 2., 18., 19., 20.]
        );
        let cols = x.index_select(1, &[2, 1]);
        assert_eq!(cols.shape(), &[7, 2]);
        for r in 0..7 {
            assert_eq!(
                &cols.to_vec()[r * 2..r * 2 + 2],
                &[(r * 3 + 2) as f32, (r * 3 + 1) as f32]
            );
        }
        assert_eq!(x.index_select(0, &[]).shape(), &[0, 3]);
    }

    #[test]
    fn one_hot_rows() {
        let t = Tensor::one_hot(&[2, 0, 1], 3, &Device::Cpu);
        assert_eq!(t.to_vec(), vec![0., 0., 1., 1., 0., 0., 0., 1., 0.]);
    }

    #[test]
    #[should_panic(expected = "index_select: index 7 is out of range for axis 0 of shape [7, 3]")]
    fn out_of_range_index_panics() {
        Tensor::zeros(&[7, 3], &Device::Cpu).index_select(0, &[7]);
    }

    #[test]
    #[should_panic(expected = "one_hot: label 3 is not below the class count 3")]
    fn bad_label_panics() {
        Tensor::one_hot(&[3], 3, &Device::Cpu);
    }
}
