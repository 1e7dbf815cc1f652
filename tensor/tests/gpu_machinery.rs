//! The GPU backend's machinery, in a test binary of its own so that no
//! other test shares the device while it counts buffers and submissions:
//! the buffer pool stays bounded over a loop of ops of changing sizes, and
//! dispatches are submitted in batches, not one by one.

use tensor::testing::gpu_device;
use tensor::{Device, Tensor};

/// One pass of a few dozen ops on tensors of changing sizes.
fn pass(gpu: &Device, seed: u64) -> f32 {
    let mut acc = Tensor::zeros(&[1], gpu);
    for (i, n) in [1usize, 3, 7, 33, 257, 1000, 33, 7].iter().enumerate() {
        let x = Tensor::randn(&[*n, 3], 0.0, 1.0, seed + i as u64, gpu);
        let y = x
            .relu()
            .add(&x.mul_scalar(0.5))
            .matmul_nt(&x)
            .sum(&[1], false);
        acc = acc.add(&y.sum_all());
    }
    acc.item()
}

#[test]
fn pool_stays_bounded_and_dispatches_are_batched() {
    let Some(gpu) = gpu_device() else { return };
    let Device::Gpu(ctx) = &gpu else {
        unreachable!()
    };

    // Pool: after a first pass fills it, twenty more create no buffer, and
    // once the tensors are gone none is in use.
    pass(&gpu, 0);
    let warm = ctx.pool_stats();
    for round in 1..=20 {
        pass(&gpu, round * 100);
        let now = ctx.pool_stats();
        assert_eq!(
            now.allocated, warm.allocated,
            "round {round}: the pool grew: {now:?} after {warm:?}"
        );
    }
    assert_eq!(
        ctx.pool_stats().in_use,
        0,
        "buffers still held: {:?}",
        ctx.pool_stats()
    );

    // Batching: 1000 tiny ops and one readback take a handful of
    // submissions (one per 256 dispatches, plus the readback), not 1000.
    let mut x = Tensor::zeros(&[7], &gpu);
    x.to_vec();
    let before = ctx.submissions();
    for _ in 0..1000 {
        x = x.add_scalar(1.0);
    }
    assert_eq!(x.to_vec(), vec![1000.0; 7]);
    let used = ctx.submissions() - before;
    assert!(
        used <= 6,
        "{used} submissions for 1000 ops and one readback"
    );
}
