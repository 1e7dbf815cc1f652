//! Pooling over the spatial axes of NCHW tensors.
//!
//! **Max-pool** with kernel `k`, stride `s`, padding `p`:
//! `y[n, c, i, j] = max over the window x[n, c, i·s + a - p, j·s + b - p]`,
//! `0 <= a, b < k`, positions in the padding never chosen (as if −∞). It
//! also returns, for each output, the flat position `r·W + q` inside its
//! input plane of the chosen element (the first maximum in row-major window
//! order), stored as `f32`. The backward pass routes each output gradient to
//! that one input: `dx[n, c, idx] += dy[n, c, i, j]`.
//!
//! **Global average pool**: `y[n, c] = (1 / HW) Σ_{r,q} x[n, c, r, q]`, the
//! end of a ResNet encoder. Backward: every input position receives
//! `dy[n, c] / HW`.

mod cpu;
mod gpu;

use crate::{Storage, Tensor};

/// Window size, stride and zero padding of a pooling op, per axis `[h, w]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dParams {
    /// Window size `[k_h, k_w]`.
    pub kernel: [usize; 2],
    /// Step between windows `[s_h, s_w]`.
    pub stride: [usize; 2],
    /// Padding on each side `[p_h, p_w]`.
    pub padding: [usize; 2],
}

impl Pool2dParams {
    /// A square window with equal stride and padding on both axes.
    pub fn new(kernel: usize, stride: usize, padding: usize) -> Pool2dParams {
        Pool2dParams {
            kernel: [kernel; 2],
            stride: [stride; 2],
            padding: [padding; 2],
        }
    }

    /// The output height and width for an `h x w` input. Panics naming the
    /// sizes when the window does not fit or the padding is more than half
    /// the window (PyTorch's rule: then a window could lie wholly in the
    /// padding).
    pub fn output_size(&self, h: usize, w: usize, op: &str) -> (usize, usize) {
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.stride;
        let [ph, pw] = self.padding;
        assert!(
            kh > 0 && kw > 0 && sh > 0 && sw > 0,
            "{op}: kernel {:?} and stride {:?} must be positive",
            self.kernel,
            self.stride
        );
        assert!(
            2 * ph <= kh && 2 * pw <= kw,
            "{op}: padding {:?} must be at most half the kernel {:?}",
            self.padding,
            self.kernel
        );
        assert!(
            h + 2 * ph >= kh && w + 2 * pw >= kw,
            "{op}: kernel {:?} does not fit a {h}x{w} input with padding {:?}",
            self.kernel,
            self.padding
        );
        ((h + 2 * ph - kh) / sh + 1, (w + 2 * pw - kw) / sw + 1)
    }
}

fn check_nchw(x: &Tensor, op: &str) {
    assert_eq!(
        x.rank(),
        4,
        "{op}: needs an [N, C, H, W] tensor, got shape {:?}",
        x.shape()
    );
}

impl Tensor {
    /// Max-pool of an `[N, C, H, W]` tensor: the pooled values and the
    /// chosen input positions (flat within each plane, as `f32`), both
    /// `[N, C, OH, OW]`.
    pub fn max_pool2d(&self, params: Pool2dParams) -> (Tensor, Tensor) {
        check_nchw(self, "max_pool2d");
        let s = self.shape();
        let (oh, ow) = params.output_size(s[2], s[3], "max_pool2d");
        let shape = [s[0], s[1], oh, ow];
        match self.storage() {
            Storage::Cpu(_) => {
                let (y, idx) = cpu::max_pool(self, params, oh, ow);
                (Tensor::cpu(y, &shape), Tensor::cpu(idx, &shape))
            }
            Storage::Gpu(_) => {
                let (y, idx) = gpu::max_pool(self, params, oh, ow);
                (Tensor::gpu(y, &shape), Tensor::gpu(idx, &shape))
            }
        }
    }

    /// The gradient of max-pool: `self` is dL/dy, `indices` the positions
    /// `max_pool2d` returned with the window `params`; the result has
    /// `input_shape`. (The CPU scatters by index alone; the GPU gathers,
    /// one invocation per input element, and needs the window for that.)
    pub fn max_pool2d_backward(
        &self,
        indices: &Tensor,
        input_shape: &[usize],
        params: Pool2dParams,
    ) -> Tensor {
        self.same_device(indices, "max_pool2d_backward");
        assert_eq!(
            self.shape(),
            indices.shape(),
            "max_pool2d_backward: gradient {:?} and indices {:?} differ in shape",
            self.shape(),
            indices.shape()
        );
        assert!(
            input_shape.len() == 4 && input_shape[..2] == self.shape()[..2],
            "max_pool2d_backward: input shape {input_shape:?} does not match gradient {:?}",
            self.shape()
        );
        let (oh, ow) = params.output_size(input_shape[2], input_shape[3], "max_pool2d_backward");
        assert_eq!(
            &self.shape()[2..],
            &[oh, ow],
            "max_pool2d_backward: gradient {:?} does not match the window {params:?} on input {input_shape:?}",
            self.shape()
        );
        match self.storage() {
            Storage::Cpu(_) => Tensor::cpu(
                cpu::max_pool_backward(self, indices, input_shape),
                input_shape,
            ),
            Storage::Gpu(_) => Tensor::gpu(
                gpu::max_pool_backward(self, indices, input_shape, params),
                input_shape,
            ),
        }
    }

    /// Global average pool: `[N, C, H, W] -> [N, C]`.
    pub fn global_avg_pool2d(&self) -> Tensor {
        check_nchw(self, "global_avg_pool2d");
        let s = self.shape();
        assert!(
            s[2] * s[3] > 0,
            "global_avg_pool2d: empty planes in shape {s:?}"
        );
        self.reshape(&[s[0], s[1], s[2] * s[3]]).mean(&[2], false)
    }

    /// The gradient of global average pool: `self` is dL/dy (`[N, C]`); the
    /// result, of `input_shape` `[N, C, H, W]`, is `dy / HW` everywhere.
    pub fn global_avg_pool2d_backward(&self, input_shape: &[usize]) -> Tensor {
        assert!(
            input_shape.len() == 4 && self.shape() == &input_shape[..2],
            "global_avg_pool2d_backward: gradient {:?} does not match input {input_shape:?}",
            self.shape()
        );
        let hw = (input_shape[2] * input_shape[3]) as f32;
        let spread = self
            .div_scalar(hw)
            .reshape(&[input_shape[0], input_shape[1], 1]);
        spread
            .add(&Tensor::zeros(
                &[1, 1, input_shape[2] * input_shape[3]],
                &self.device(),
            ))
            .reshape(input_shape)
    }
}
