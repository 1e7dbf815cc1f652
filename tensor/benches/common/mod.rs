//! What the tensor benchmarks share: one way to time a call.

use std::time::Instant;

/// The fastest of five timings of `f` (each at least 0.3 s, after one
/// warm-up call), in milliseconds per call: on a shared machine the other
/// tenants only ever slow a timing down, so the minimum is the steadiest
/// figure to compare.
pub fn millis(mut f: impl FnMut()) -> f64 {
    f();
    (0..5)
        .map(|_| {
            let start = Instant::now();
            let mut iters = 0u32;
            while start.elapsed().as_secs_f64() < 0.3 {
                f();
                iters += 1;
            }
            start.elapsed().as_secs_f64() * 1e3 / iters as f64
        })
        .fold(f64::INFINITY, f64::min)
}
