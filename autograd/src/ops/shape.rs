//! Ops that move elements without changing them: reshape, transpose,
//! permute, concat, split, narrow, index-select.
//!
//! Each output element is one input element, so each rule moves the
//! gradient back where the element came from: the inverse rearrangement.
//! Where one input element feeds several outputs (`index_select` with a
//! repeated index) the gradients of those outputs add up.

use crate::Var;
use tensor::Tensor;

impl Var {
    /// The same elements with a new shape.
    ///
    /// `dx = reshape(dz, shape of x)`.
    pub fn reshape(&self, shape: &[usize]) -> Var {
        let old = self.shape().to_vec();
        Var::from_op(
            "reshape",
            self.value().reshape(shape),
            &[self],
            move |dz, _| vec![Some(dz.reshape(&old))],
        )
    }

    /// Swaps axes `a` and `b`.
    ///
    /// `dx = transpose(dz, a, b)` (a swap is its own inverse).
    pub fn transpose(&self, a: usize, b: usize) -> Var {
        let z = self.value().transpose(a, b);
        Var::from_op("transpose", z, &[self], move |dz, _| {
            vec![Some(dz.transpose(a, b))]
        })
    }

    /// Reorders axes: axis `i` of `z` is axis `perm[i]` of `x`.
    ///
    /// `dx = permute(dz, perm⁻¹)`, where `perm⁻¹[perm[i]] = i`.
    pub fn permute(&self, perm: &[usize]) -> Var {
        let z = self.value().permute(perm);
        let mut inverse = vec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        Var::from_op("permute", z, &[self], move |dz, _| {
            vec![Some(dz.permute(&inverse))]
        })
    }

    /// Joins `parts` along `axis`.
    ///
    /// `d(parts[k]) = dz` sliced to the rows `parts[k]` filled: `dz` split
    /// along `axis` into the parts' sizes.
    pub fn concat(parts: &[&Var], axis: usize) -> Var {
        let values: Vec<&Tensor> = parts.iter().map(|p| p.value()).collect();
        let sizes: Vec<usize> = parts.iter().map(|p| p.shape()[axis]).collect();
        let z = Tensor::concat(&values, axis);
        Var::from_op("concat", z, parts, move |dz, needs| {
            dz.split(&sizes, axis)
                .into_iter()
                .zip(needs)
                .map(|(piece, &need)| need.then_some(piece))
                .collect()
        })
    }

    /// The slice `start..start + len` along `axis`.
    ///
    /// `dx` is `dz` in that slice and zero elsewhere: `concat(zeros, dz,
    /// zeros)` along `axis`.
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Var {
        let shape = self.shape().to_vec();
        let z = self.value().narrow(axis, start, len);
        Var::from_op("narrow", z, &[self], move |dz, _| {
            let zeros_of = |n: usize| {
                let mut s = shape.clone();
                s[axis] = n;
                Tensor::zeros(&s, &dz.device())
            };
            let rest = shape[axis] - start - len;
            let (before, after) = (zeros_of(start), zeros_of(rest));
            let mut parts = Vec::with_capacity(3);
            if start > 0 {
                parts.push(&before);
            }
            parts.push(dz);
            if rest > 0 {
                parts.push(&after);
            }
            vec![Some(Tensor::concat(&parts, axis))]
        })
    }

    /// Splits along `axis` into pieces of the given sizes: one
    /// [`Var::narrow`] per piece (so each piece is its own node, and the
    /// gradients of the pieces add up in `x`).
    pub fn split(&self, sizes: &[usize], axis: usize) -> Vec<Var> {
        tensor::shape::split_ranges(self.shape(), sizes, axis, "split")
            .into_iter()
            .map(|(start, len)| self.narrow(axis, start, len))
            .collect()
    }

    /// Gathers the slices at `indices` along `axis`:
    /// `z[.., j, ..] = x[.., indices[j], ..]`.
    ///
    /// `dx[.., i, ..] = Σ_{j : indices[j] = i} dz[.., j, ..]`, a scatter-add.
    /// Written with tensor ops as a product with the one-hot selection
    /// matrix `S[j, i] = [indices[j] = i]` (`z = S·x` along `axis`, so
    /// `dx = Sᵀ·dz`): move `axis` to the front, flatten the rest, multiply,
    /// and move it back.
    pub fn index_select(&self, axis: usize, indices: &[usize]) -> Var {
        let shape = self.shape().to_vec();
        let idx = indices.to_vec();
        let z = self.value().index_select(axis, indices);
        Var::from_op("index_select", z, &[self], move |dz, _| {
            let front = if axis == 0 {
                dz.clone()
            } else {
                dz.transpose(0, axis)
            };
            let j = idx.len();
            let rest = dz.numel() / j.max(1);
            let select = Tensor::one_hot(&idx, shape[axis], &dz.device());
            let gathered = select.matmul_tn(&front.reshape(&[j, rest]));
            let mut front_shape = front.shape().to_vec();
            front_shape[0] = shape[axis];
            let dx_front = gathered.reshape(&front_shape);
            let dx = if axis == 0 {
                dx_front
            } else {
                dx_front.transpose(0, axis)
            };
            vec![Some(dx)]
        })
    }
}
