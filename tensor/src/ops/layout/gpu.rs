//! GPU layout ops, all through one strided-copy kernel: a permute reads the
//! source with permuted strides, a narrow from an offset, and a concat
//! writes each part into its slice of the output.

use crate::backend::gpu::{grid_1d, GpuBuffer};
use crate::shape::{numel, strides};
use crate::Tensor;

const SOURCE: &str = include_str!("strided_copy.wgsl");

/// Where and how the copy reads and writes.
struct Strided<'a> {
    shape: &'a [usize],
    src_offset: usize,
    src_strides: &'a [usize],
    dst_offset: usize,
    dst_strides: &'a [usize],
}

/// Records one strided copy from `src` into `dst`.
fn strided_copy(src: &GpuBuffer, dst: &GpuBuffer, s: Strided<'_>) {
    let n = numel(s.shape);
    if n == 0 {
        return;
    }
    let mut params = vec![
        n as u32,
        s.shape.len() as u32,
        s.src_offset as u32,
        s.dst_offset as u32,
    ];
    params.extend(s.shape.iter().map(|&d| d as u32));
    params.extend(s.src_strides.iter().map(|&d| d as u32));
    params.extend(s.dst_strides.iter().map(|&d| d as u32));
    src.context()
        .dispatch("strided_copy", SOURCE, &params, &[src, dst], grid_1d(n));
}

/// `x` with axes reordered by `perm`.
pub fn permute(x: &Tensor, perm: &[usize]) -> GpuBuffer {
    let xb = x.gpu_buffer("permute");
    let out = GpuBuffer::new(xb.context(), x.numel());
    let own = strides(x.shape());
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape()[p]).collect();
    let src_strides: Vec<usize> = perm.iter().map(|&p| own[p]).collect();
    let dst_strides = strides(&shape);
    strided_copy(
        xb,
        &out,
        Strided {
            shape: &shape,
            src_offset: 0,
            src_strides: &src_strides,
            dst_offset: 0,
            dst_strides: &dst_strides,
        },
    );
    out
}

/// `x[.., start..start + len, ..]` along `axis`.
pub fn narrow(x: &Tensor, axis: usize, start: usize, len: usize) -> GpuBuffer {
    let xb = x.gpu_buffer("narrow");
    let own = strides(x.shape());
    let mut shape = x.shape().to_vec();
    shape[axis] = len;
    let out = GpuBuffer::new(xb.context(), numel(&shape));
    let dst_strides = strides(&shape);
    strided_copy(
        xb,
        &out,
        Strided {
            shape: &shape,
            src_offset: start * own[axis],
            src_strides: &own,
            dst_offset: 0,
            dst_strides: &dst_strides,
        },
    );
    out
}

/// The parts joined along `axis`.
pub fn concat(parts: &[&Tensor], axis: usize) -> GpuBuffer {
    let first = parts[0].gpu_buffer("concat");
    let mut shape = parts[0].shape().to_vec();
    shape[axis] = parts.iter().map(|p| p.shape()[axis]).sum();
    let out = GpuBuffer::new(first.context(), numel(&shape));
    let dst_strides = strides(&shape);
    let mut start = 0;
    for p in parts {
        strided_copy(
            p.gpu_buffer("concat"),
            &out,
            Strided {
                shape: p.shape(),
                src_offset: 0,
                src_strides: &strides(p.shape()),
                dst_offset: start * dst_strides[axis],
                dst_strides: &dst_strides,
            },
        );
        start += p.shape()[axis];
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_close, gpu_device};
    use crate::{Device, Tensor};

    /// Layout ops copy values: exact.
    #[test]
    fn permute_narrow_concat_split_match_the_cpu() {
        let Some(gpu) = gpu_device() else { return };
        let x = Tensor::randn(&[3, 1, 7, 33], 0.0, 1.0, 1, &Device::Cpu);
        let g = x.to_device(&gpu);
        for perm in [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]] {
            assert_close(
                &g.permute(&perm),
                &x.permute(&perm),
                0.0,
                0.0,
                &format!("permute {perm:?}"),
            );
        }
        assert_close(&g.narrow(3, 5, 7), &x.narrow(3, 5, 7), 0.0, 0.0, "narrow");
        let y = Tensor::randn(&[3, 1, 2, 33], 0.0, 1.0, 2, &Device::Cpu);
        let both = Tensor::concat(&[&g, &y.to_device(&gpu), &g], 2);
        assert_close(&both, &Tensor::concat(&[&x, &y, &x], 2), 0.0, 0.0, "concat");
        let parts = both.split(&[7, 2, 7], 2);
        assert_close(&parts[1], &y, 0.0, 0.0, "split");
        assert_eq!(parts[0].device(), gpu);
    }
}
