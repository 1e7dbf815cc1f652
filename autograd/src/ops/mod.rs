//! The differentiable ops, one small unit each: the forward pass (a call to
//! the tensor op of the same name) and the backward rule side by side, with
//! the rule written as math in the doc comment.
//!
//! Notation in the docs: `x`, `y` are inputs, `z` the output, and `dz` the
//! gradient of the loss with respect to `z` (what arrives at the op in the
//! backward walk); `dx` is what the rule returns for `x`. Every rule uses
//! only [`Tensor`] ops, never loops over raw
//! buffers, so it runs wherever the tensors live (CPU or GPU).
//!
//! | file | ops |
//! |---|---|
//! | [`arith`] | `add`, `sub`, `mul`, `div` (broadcasting), `*_scalar` |
//! | [`unary`] | `neg`, `relu`, `exp`, `log`, `sqrt`, `rsqrt`, `square` |
//! | [`matmul`] | `matmul`, `matmul_nt`, `matmul_tn`, `linear` |
//! | [`reduce`] | `sum`, `mean` over axes, `sum_all`, `mean_all` |
//! | [`shape`] | `reshape`, `transpose`, `permute`, `concat`, `split`, `narrow`, `index_select` |
//! | [`conv`] | `conv2d` |
//! | [`pool`] | `max_pool2d`, `global_avg_pool2d` |
//! | [`batchnorm`] | `batch_norm_train` (fused), `batch_norm_eval` |
//! | [`softmax`] | `softmax`, `log_softmax` |
//! | [`loss`] | `cross_entropy` |
//! | [`normalize`] | `l2_normalize`, `cosine_similarity` |

pub mod arith;
pub mod batchnorm;
pub mod conv;
pub mod loss;
pub mod matmul;
pub mod normalize;
pub mod pool;
pub mod reduce;
pub mod shape;
pub mod softmax;
pub mod unary;

use tensor::Tensor;

/// Sums a gradient `g` (of a broadcast result) down to `shape`, the shape of
/// the operand that was broadcast: over the leading axes the operand lacked,
/// and over the axes where it had size 1 and the result did not. The adjoint
/// of broadcasting.
pub(crate) fn sum_to_shape(g: &Tensor, shape: &[usize]) -> Tensor {
    if g.shape() == shape {
        return g.clone();
    }
    let lead = g.rank() - shape.len();
    let axes: Vec<usize> = (0..g.rank())
        .filter(|&a| a < lead || (shape[a - lead] == 1 && g.shape()[a] != 1))
        .collect();
    let summed = if axes.is_empty() {
        g.clone()
    } else {
        g.sum(&axes, true)
    };
    summed.reshape(shape)
}

/// `t` repeated to `shape` along its size-1 (and missing leading) axes.
///
/// Composed as `zeros(shape) + t`, because the tensor crate has no
/// broadcast-copy op; a dedicated `broadcast_to` kernel would save the
/// zeros buffer and one read.
pub(crate) fn broadcast_to(t: &Tensor, shape: &[usize]) -> Tensor {
    if t.shape() == shape {
        return t.clone();
    }
    Tensor::zeros(shape, &t.device()).add(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::Device;

    #[test]
    fn sum_to_shape_reduces_broadcast_axes() {
        let d = Device::Cpu;
        let g = Tensor::ones(&[2, 3, 4], &d);
        assert_eq!(sum_to_shape(&g, &[4]).to_vec(), vec![6.0; 4]);
        assert_eq!(sum_to_shape(&g, &[3, 1]).to_vec(), vec![8.0; 3]);
        assert_eq!(sum_to_shape(&g, &[2, 1, 4]).shape(), &[2, 1, 4]);
        assert_eq!(sum_to_shape(&g, &[]).to_vec(), vec![24.0]);
        assert_eq!(sum_to_shape(&g, &[2, 3, 4]).to_vec(), g.to_vec());
    }

    #[test]
    fn broadcast_to_repeats() {
        let d = Device::Cpu;
        let t = Tensor::from_vec(vec![1.0, 2.0], &[2, 1], &d);
        assert_eq!(
            broadcast_to(&t, &[2, 3]).to_vec(),
            vec![1., 1., 1., 2., 2., 2.]
        );
    }
}
