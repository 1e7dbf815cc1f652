//! GPU launcher of the binary ops: one invocation per output element, each
//! operand read through broadcast strides (see `binary.wgsl`).

use super::BinaryOp;
use crate::backend::gpu::{grid_1d, GpuBuffer};
use crate::shape::{broadcast_strides, numel};
use crate::Tensor;

const SOURCE: &str = include_str!("binary.wgsl");

/// The op's code in `binary.wgsl`.
fn code(op: BinaryOp) -> u32 {
    match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
        BinaryOp::Maximum => 4,
        BinaryOp::Minimum => 5,
        BinaryOp::Gt => 6,
        BinaryOp::Ge => 7,
        BinaryOp::Eq => 8,
        BinaryOp::WherePositive => 9,
        BinaryOp::AddRelu => 10,
    }
}

/// `op(a, b)` broadcast to `shape`, as a new GPU buffer.
pub fn binary(a: &Tensor, b: &Tensor, shape: &[usize], op: BinaryOp) -> GpuBuffer {
    let (ab, bb) = (a.gpu_buffer(op.name()), b.gpu_buffer(op.name()));
    let ctx = ab.context();
    let n = numel(shape);
    let out = GpuBuffer::new(ctx, n);
    if n > 0 {
        let mut params = vec![n as u32, code(op), shape.len() as u32];
        params.extend(shape.iter().map(|&d| d as u32));
        params.extend(
            broadcast_strides(a.shape(), shape)
                .iter()
                .map(|&s| s as u32),
        );
        params.extend(
            broadcast_strides(b.shape(), shape)
                .iter()
                .map(|&s| s as u32),
        );
        ctx.dispatch("binary", SOURCE, &params, &[ab, bb, &out], grid_1d(n));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::BinaryOp;
    use crate::testing::{assert_close, gpu_device};
    use crate::{Device, Tensor};

    /// Every op and broadcast pattern against the CPU. Add, sub, mul, max,
    /// min and the masks are exact; WGSL allows division 2.5 ulp of error,
    /// hence the 1e-6 relative tolerance.
    #[test]
    fn every_op_and_broadcast_matches_the_cpu() {
        let Some(gpu) = gpu_device() else { return };
        let cases: &[(&[usize], &[usize])] = &[
            (&[3, 7], &[3, 7]),
            (&[3, 7], &[7]),
            (&[3, 1], &[1, 7]),
            (&[2, 3, 1, 5], &[3, 7, 1]),
            (&[257], &[1]),
            (&[], &[3, 1]),
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
            BinaryOp::WherePositive,
            BinaryOp::AddRelu,
        ];
        for (i, (sa, sb)) in cases.iter().enumerate() {
            let a = Tensor::randn(sa, 0.0, 1.0, i as u64, &Device::Cpu);
            let b = Tensor::randn(sb, 0.0, 1.0, 50 + i as u64, &Device::Cpu);
            let (ga, gb) = (a.to_device(&gpu), b.to_device(&gpu));
            for op in ops {
                assert_close(
                    &ga.binary(&gb, op),
                    &a.binary(&b, op),
                    1e-7,
                    1e-6,
                    &format!("{op:?} {sa:?} {sb:?}"),
                );
            }
        }
    }
}
