//! Shape arithmetic shared by the ops: element counts, row-major strides,
//! NumPy broadcasting, and axis checks.
//!
//! Shapes are plain `&[usize]`. A scalar has shape `[]` and one element.

/// The number of elements of a tensor of this shape (1 for a scalar).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Row-major strides: `strides[i]` is how far apart (in elements) two
/// neighbours along axis `i` are. For `[2, 3, 4]` that is `[12, 4, 1]`.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// The shape two operands broadcast to, following NumPy: align the shapes at
/// their last axis; along each axis the sizes must be equal or one of them 1,
/// and the result takes the larger. Panics, naming `op` and both shapes, when
/// they do not broadcast.
pub fn broadcast_shape(a: &[usize], b: &[usize], op: &str) -> Vec<usize> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            panic!("{op}: shapes {a:?} and {b:?} do not broadcast (axis {i}: {da} vs {db})");
        };
    }
    out
}

/// The strides that read an operand of shape `shape` as if broadcast to
/// `out`: the operand's own row-major stride on axes it has with size > 1,
/// and 0 on axes it lacks or has with size 1 (so the index along them is
/// ignored). One entry per axis of `out`.
pub fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let own = strides(shape);
    let off = out.len() - shape.len();
    (0..out.len())
        .map(|i| {
            if i < off || shape[i - off] == 1 {
                0
            } else {
                own[i - off]
            }
        })
        .collect()
}

/// Checks that `axis` is a valid axis of a tensor of rank `rank` and returns
/// it; panics naming `op` otherwise.
pub fn check_axis(axis: usize, shape: &[usize], op: &str) -> usize {
    assert!(
        axis < shape.len(),
        "{op}: axis {axis} is out of range for shape {shape:?} (rank {})",
        shape.len()
    );
    axis
}

/// The `(start, len)` ranges along `axis` that `sizes` cut it into, in
/// order. Panics, naming `op`, unless the sizes add up to the axis length.
pub fn split_ranges(
    shape: &[usize],
    sizes: &[usize],
    axis: usize,
    op: &str,
) -> Vec<(usize, usize)> {
    check_axis(axis, shape, op);
    let total: usize = sizes.iter().sum();
    assert_eq!(
        total, shape[axis],
        "{op}: sizes {sizes:?} add up to {total}, axis {axis} of shape {shape:?} has {}",
        shape[axis]
    );
    let mut start = 0;
    sizes
        .iter()
        .map(|&len| {
            start += len;
            (start - len, len)
        })
        .collect()
}

/// The shape after reducing `axes`: each reduced axis becomes 1 when
/// `keep_dims` is true and disappears otherwise. Panics on a repeated or
/// out-of-range axis.
pub fn reduced_shape(shape: &[usize], axes: &[usize], keep_dims: bool, op: &str) -> Vec<usize> {
    for (i, &a) in axes.iter().enumerate() {
        check_axis(a, shape, op);
        assert!(
            !axes[..i].contains(&a),
            "{op}: axis {a} is listed twice in {axes:?} (shape {shape:?})"
        );
    }
    let mut out = Vec::with_capacity(shape.len());
    for (i, &d) in shape.iter().enumerate() {
        if axes.contains(&i) {
            if keep_dims {
                out.push(1);
            }
        } else {
            out.push(d);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_are_row_major() {
        assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(strides(&[7]), vec![1]);
        assert_eq!(strides(&[]), Vec::<usize>::new());
        assert_eq!(numel(&[]), 1);
    }

    #[test]
    fn broadcast_strides_zero_the_repeated_axes() {
        assert_eq!(broadcast_strides(&[3], &[2, 3]), vec![0, 1]);
        assert_eq!(broadcast_strides(&[2, 1, 4], &[2, 3, 4]), vec![4, 0, 1]);
        assert_eq!(broadcast_strides(&[], &[5]), vec![0]);
    }

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast_shape(&[2, 3], &[3], "t"), vec![2, 3]);
        assert_eq!(broadcast_shape(&[2, 1, 4], &[3, 1], "t"), vec![2, 3, 4]);
        assert_eq!(broadcast_shape(&[], &[5], "t"), vec![5]);
        assert_eq!(broadcast_shape(&[1], &[1], "t"), vec![1]);
    }

    #[test]
    #[should_panic(expected = "add: shapes [2, 3] and [4] do not broadcast")]
    fn broadcasting_mismatch_names_op_and_shapes() {
        broadcast_shape(&[2, 3], &[4], "add");
    }

    #[test]
    fn split_ranges_cover_the_axis_in_order() {
        assert_eq!(
            split_ranges(&[2, 7], &[3, 0, 4], 1, "t"),
            vec![(0, 3), (3, 0), (3, 4)]
        );
    }

    #[test]
    #[should_panic(expected = "split: sizes [3, 3] add up to 6, axis 1 of shape [2, 7] has 7")]
    fn split_sizes_must_add_up() {
        split_ranges(&[2, 7], &[3, 3], 1, "split");
    }

    #[test]
    fn reduced_shapes() {
        assert_eq!(reduced_shape(&[2, 3, 4], &[1], true, "t"), vec![2, 1, 4]);
        assert_eq!(reduced_shape(&[2, 3, 4], &[0, 2], false, "t"), vec![3]);
    }

    #[test]
    #[should_panic(expected = "sum: axis 3 is out of range for shape [2, 3, 4]")]
    fn bad_axis_names_op() {
        reduced_shape(&[2, 3, 4], &[3], false, "sum");
    }
}
