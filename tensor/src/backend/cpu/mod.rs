//! The CPU backend's shared pieces: the GEMM, the threading policy and the
//! run-time choice of vector instructions ([`simd`]).
//!
//! Work is spread over cores with rayon's global thread pool (its size is
//! set by `RAYON_NUM_THREADS`, default one thread per core). Splitting a
//! small loop over threads costs more than it saves, so elementwise kernels
//! go parallel only above [`PAR_MIN_ELEMS`] elements.

pub mod alloc;
pub mod gemm;
pub mod simd;

/// Below this many elements an elementwise kernel runs on one thread: the
/// cost of waking a second thread (a few microseconds) exceeds the work.
pub const PAR_MIN_ELEMS: usize = 1 << 15;

/// Whether a loop over `n` elements should be split across threads.
pub fn go_parallel(n: usize) -> bool {
    n >= PAR_MIN_ELEMS && rayon::current_num_threads() > 1
}

/// Elements per piece when an elementwise loop is split over threads:
/// large enough that scheduling a piece costs little beside its work, small
/// enough that both cores get several pieces of a layer's activations.
const PIECE: usize = 1 << 14;

/// A fresh buffer of `len` elements, filled by `fill(index, piece)` for
/// each of the consecutive pieces of `piece_len` elements (the last may be
/// shorter) that cover it, in parallel when the buffer is large.
///
/// Each piece runs at the widest vector level of the CPU
/// ([`simd::vectorised`]).
///
/// The buffer is never zeroed first: `fill` must write every element of
/// its piece (through `MaybeUninit::write`), which saves a whole pass over
/// memory; zeroing cost as much as a simple elementwise op.
///
/// # Safety
///
/// `fill` must write every element of every piece it is handed: the
/// buffer is returned as initialised `f32`s.
pub unsafe fn fill_pieces(
    len: usize,
    piece_len: usize,
    fill: impl Fn(usize, &mut [std::mem::MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    use rayon::prelude::*;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let spare = &mut out.spare_capacity_mut()[..len];
    let piece_len = piece_len.max(1);
    if go_parallel(len) {
        spare
            .par_chunks_mut(piece_len)
            .enumerate()
            .for_each(|(i, piece)| {
                simd::vectorised(
                    #[inline(always)]
                    || fill(i, piece),
                )
            });
    } else {
        spare
            .chunks_mut(piece_len)
            .enumerate()
            .for_each(|(i, piece)| {
                simd::vectorised(
                    #[inline(always)]
                    || fill(i, piece),
                )
            });
    }
    // SAFETY: the pieces cover `0..len` and the caller promised that `fill`
    // writes each element of each piece.
    unsafe { out.set_len(len) };
    out
}

/// A fresh buffer of `len` elements in consecutive pieces of `piece_len`
/// (the last may be shorter), each zeroed and then handed to
/// `fill(scratch, index, piece)` by the thread that fills it, the pieces
/// spread over the threads. `scratch` comes from `init`, once for each run
/// of pieces rayon gives a thread (a kernel's padded image or staging
/// block).
///
/// Why not `vec![0.0; len]` and then the parallel loop: with freed memory
/// kept for reuse ([`alloc::reuse_freed_memory`]) `calloc` clears the whole
/// buffer on the calling thread while the other threads wait, a serial
/// pass over memory before every convolution. Here each piece is cleared
/// by its own thread just before it is written, while it is in that
/// thread's cache; the zeros are there only so that `fill` gets ordinary
/// `f32`s to write (kernels that write every element overwrite them all).
pub fn zeroed_pieces_with<S>(
    len: usize,
    piece_len: usize,
    init: impl Fn() -> S + Sync + Send,
    fill: impl Fn(&mut S, usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    use rayon::prelude::*;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let spare = &mut out.spare_capacity_mut()[..len];
    spare
        .par_chunks_mut(piece_len.max(1))
        .enumerate()
        .for_each_init(init, |scratch, (i, piece)| fill(scratch, i, zeroed(piece)));
    // SAFETY: the pieces cover `0..len` and `zeroed` wrote every element of
    // each of them.
    unsafe { out.set_len(len) };
    out
}

/// Writes zeros over `piece` and returns it as the `f32`s it now holds.
fn zeroed(piece: &mut [std::mem::MaybeUninit<f32>]) -> &mut [f32] {
    for v in piece.iter_mut() {
        v.write(0.0);
    }
    // SAFETY: every element was just written, and `MaybeUninit<f32>` has
    // the size and alignment of `f32`.
    unsafe { &mut *(piece as *mut [std::mem::MaybeUninit<f32>] as *mut [f32]) }
}

/// `f` applied to every element of `x`, in parallel when `x` is large.
///
/// `f` should be a closure the compiler can see through (not a `match` on a
/// run-time op inside): the inner loop is then straight-line code that it
/// vectorises.
pub fn map(x: &[f32], f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
    // SAFETY: each piece is zipped with the input slice of its own
    // length, so every element is written.
    unsafe {
        fill_pieces(
            x.len(),
            PIECE,
            #[inline(always)]
            |i, out| {
                let (at, end) = (i * PIECE, i * PIECE + out.len());
                for (o, &v) in out.iter_mut().zip(&x[at..end]) {
                    o.write(f(v));
                }
            },
        )
    }
}

/// `f(x[i], y[i])` for every `i` of two equally long slices, in parallel
/// when they are large.
pub fn zip_map(x: &[f32], y: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    assert_eq!(x.len(), y.len(), "zip_map: operands differ in length");
    // SAFETY: each piece is zipped with input slices of its own length,
    // so every element is written.
    unsafe {
        fill_pieces(
            x.len(),
            PIECE,
            #[inline(always)]
            |i, out| {
                let (at, end) = (i * PIECE, i * PIECE + out.len());
                for ((o, &a), &b) in out.iter_mut().zip(&x[at..end]).zip(&y[at..end]) {
                    o.write(f(a, b));
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_and_zip_map_write_every_element_at_every_size() {
        for n in [
            0,
            1,
            17,
            PIECE - 1,
            PIECE,
            PIECE + 3,
            3 * PIECE + 5,
            PAR_MIN_ELEMS + 7,
        ] {
            let x: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let y: Vec<f32> = (0..n).map(|i| 2.0 * i as f32).collect();
            let m = map(&x, |v| v + 1.0);
            assert_eq!(m.len(), n);
            assert!(m.iter().enumerate().all(|(i, &v)| v == i as f32 + 1.0));
            let z = zip_map(&x, &y, |a, b| b - a);
            assert_eq!(z, x);
        }
    }

    /// Every piece reaches `fill` zeroed, with its index, the last one
    /// short; what `fill` writes is what the buffer holds; `fill` may
    /// stage its values in the scratch `init` made.
    #[test]
    fn zeroed_pieces_hand_out_every_piece_zeroed_once() {
        for (len, piece) in [
            (0, 4),
            (1, 4),
            (10, 4),
            (12, 4),
            (1000, 7),
            (PAR_MIN_ELEMS + 3, 512),
        ] {
            let y = zeroed_pieces_with(
                len,
                piece,
                || vec![0.0f32; piece],
                |staging, i, part| {
                    assert!(part.iter().all(|&v| v == 0.0), "piece {i} not zeroed");
                    assert_eq!(part.len(), piece.min(len - i * piece));
                    for (j, v) in staging.iter_mut().enumerate() {
                        *v = (i * piece + j) as f32 + 0.5;
                    }
                    part.copy_from_slice(&staging[..part.len()]);
                },
            );
            assert_eq!(y.len(), len);
            assert!(y.iter().enumerate().all(|(k, &v)| v == k as f32 + 0.5));
        }
    }
}
