//! GPU launcher of the unary ops: one invocation per element, the op chosen
//! by a code in the parameter block (one compiled kernel serves them all).

use super::UnaryOp;
use crate::backend::gpu::{grid_1d, GpuBuffer};
use crate::Tensor;

const SOURCE: &str = include_str!("unary.wgsl");

/// The op's code in `unary.wgsl` and its scalar (0 when it has none).
fn code(op: UnaryOp) -> (u32, f32) {
    match op {
        UnaryOp::Neg => (0, 0.0),
        UnaryOp::Relu => (1, 0.0),
        UnaryOp::Exp => (2, 0.0),
        UnaryOp::Log => (3, 0.0),
        UnaryOp::Sqrt => (4, 0.0),
        UnaryOp::Rsqrt => (5, 0.0),
        UnaryOp::Abs => (6, 0.0),
        UnaryOp::Square => (7, 0.0),
        UnaryOp::Powf(s) => (8, s),
        UnaryOp::AddScalar(s) => (9, s),
        UnaryOp::MulScalar(s) => (10, s),
        UnaryOp::DivScalar(s) => (11, s),
        UnaryOp::MaxScalar(s) => (12, s),
        UnaryOp::MinScalar(s) => (13, s),
        UnaryOp::GtScalar(s) => (14, s),
        UnaryOp::GeScalar(s) => (15, s),
        UnaryOp::EqScalar(s) => (16, s),
    }
}

/// `op(x)` as a new GPU buffer.
pub fn unary(x: &Tensor, op: UnaryOp) -> GpuBuffer {
    let xb = x.gpu_buffer("unary");
    let ctx = xb.context();
    let n = x.numel();
    let out = GpuBuffer::new(ctx, n);
    if n > 0 {
        let (c, s) = code(op);
        ctx.dispatch(
            "unary",
            SOURCE,
            &[n as u32, c, s.to_bits()],
            &[xb, &out],
            grid_1d(n),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::UnaryOp;
    use crate::testing::{assert_close, gpu_device};
    use crate::{Device, Tensor};

    /// Every op on the GPU against the CPU. Tolerance: exp, log, sqrt, pow
    /// may differ by a few ulps between implementations (1e-5 relative);
    /// the rest are exact.
    #[test]
    fn every_op_matches_the_cpu() {
        let Some(gpu) = gpu_device() else { return };
        let ops = [
            UnaryOp::Neg,
            UnaryOp::Relu,
            UnaryOp::Exp,
            UnaryOp::Log,
            UnaryOp::Sqrt,
            UnaryOp::Rsqrt,
            UnaryOp::Abs,
            UnaryOp::Square,
            UnaryOp::Powf(1.7),
            UnaryOp::AddScalar(0.5),
            UnaryOp::MulScalar(-2.0),
            UnaryOp::DivScalar(3.0),
            UnaryOp::MaxScalar(0.1),
            UnaryOp::MinScalar(0.1),
            UnaryOp::GtScalar(0.0),
            UnaryOp::GeScalar(0.0),
            UnaryOp::EqScalar(0.0),
        ];
        for n in [1usize, 3, 7, 33, 257, 70_000] {
            let x = Tensor::randn(&[n], 0.0, 2.0, n as u64, &Device::Cpu);
            // Positive inputs for log, sqrt, rsqrt and pow.
            let pos = x.abs().add_scalar(0.1);
            for op in ops {
                let input = match op {
                    UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt | UnaryOp::Powf(_) => &pos,
                    _ => &x,
                };
                let want = input.unary(op);
                let got = input.to_device(&gpu).unary(op);
                assert_eq!(got.device(), gpu);
                assert_close(&got, &want, 1e-6, 1e-5, &format!("{op:?} n={n}"));
            }
        }
    }
}
