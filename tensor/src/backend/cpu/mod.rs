//! The CPU backend's shared pieces: the GEMM and the threading policy.
//!
//! Work is spread over cores with rayon's global thread pool (its size is
//! set by `RAYON_NUM_THREADS`, default one thread per core). Splitting a
//! small loop over threads costs more than it saves, so elementwise kernels
//! go parallel only above [`PAR_MIN_ELEMS`] elements.

pub mod gemm;

/// Below this many elements an elementwise kernel runs on one thread: the
/// cost of waking a second thread (a few microseconds) exceeds the work.
pub const PAR_MIN_ELEMS: usize = 1 << 15;

/// Whether a loop over `n` elements should be split across threads.
pub fn go_parallel(n: usize) -> bool {
    n >= PAR_MIN_ELEMS && rayon::current_num_threads() > 1
}

/// Fills `out[i] = f(i)` for every `i`, in parallel when `out` is large.
pub fn fill_indexed(out: &mut [f32], f: impl Fn(usize) -> f32 + Sync) {
    use rayon::prelude::*;
    if go_parallel(out.len()) {
        out.par_iter_mut().enumerate().for_each(|(i, o)| *o = f(i));
    } else {
        out.iter_mut().enumerate().for_each(|(i, o)| *o = f(i));
    }
}

/// `f` applied to every element of `x`, in parallel when `x` is large.
pub fn map(x: &[f32], f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
    use rayon::prelude::*;
    if go_parallel(x.len()) {
        x.par_iter().map(|&v| f(v)).collect()
    } else {
        x.iter().map(|&v| f(v)).collect()
    }
}
