//! What the tensor benchmarks share: one way to time a call.

use std::time::Instant;

/// The fastest of five timings of `f` (each at least 0.3 s, after one
/// warm-up call), in milliseconds per call: on a shared machine the other
/// tenants only ever slow a timing down, so the minimum is the steadiest
/// figure to compare.
#[allow(dead_code)] // the benchmarks that compare variants time them side by side
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

/// The fastest single call of each of `fs`, in milliseconds, timed in
/// turn, one call of each per round (after one warm-up call each), for at
/// least 20 rounds and until each has run about 1.5 s: on a shared machine
/// whose speed comes and goes over seconds, a slow spell then falls on
/// every variant alike instead of on whichever was being timed.
#[allow(dead_code)] // only the benchmarks that compare variants use it
pub fn millis_side_by_side(fs: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    for f in fs.iter_mut() {
        f();
    }
    let mut best = vec![f64::INFINITY; fs.len()];
    let start = Instant::now();
    let mut rounds = 0;
    while rounds < 20 || start.elapsed().as_secs_f64() < 1.5 * fs.len() as f64 {
        for (f, best) in fs.iter_mut().zip(&mut best) {
            let t = Instant::now();
            f();
            *best = best.min(t.elapsed().as_secs_f64() * 1e3);
        }
        rounds += 1;
    }
    best
}
