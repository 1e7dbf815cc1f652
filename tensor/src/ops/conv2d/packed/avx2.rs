//! The packed convolution's kernels in AVX2 with FMA: 8 `f32` lanes per
//! vector, 16 vector registers. With half the lanes and half the registers
//! of AVX-512, a whole panel row no longer fits beside the accumulators:
//! the forward kernel takes the panel's 64 positions in four strips of 16
//! (`NR` channels x 2 vectors = 12 accumulators, 2 loads and 6 broadcasts
//! per `k`), the weight gradient `dY`'s channels in strips of 16 the same
//! way. Each output sums its terms in the same order as the AVX-512
//! kernels (one fused multiply-add per `k` or position, in order, then one
//! add onto the staging block), so both give the same bits.
//!
//! AVX2 masks are vectors, not bit masks: lane `l`'s mask is all ones when
//! bit `l` is set ([`lane_mask`]); masked-off lanes are neither read nor
//! faulted on, as with AVX-512.

use super::{Kernels, Lanes, NR, PANEL};
use crate::ops::conv2d::ConvGeometry;
use std::arch::x86_64::*;

/// The AVX2 kernels.
pub(super) struct Avx2;

/// [`super::run`] compiled for AVX2, so the kernels inline into it.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn run(xs: &[f32], packed: &[f32], g: &ConvGeometry, y: &mut [f32]) {
    // SAFETY: the caller checked that the CPU has AVX2 and FMA.
    unsafe { super::run::<Avx2>(xs, packed, g, y) }
}

/// [`super::run_weight_gradient`] compiled for AVX2.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn run_weight_gradient(
    xs: &[f32],
    dys: &[f32],
    g: &ConvGeometry,
    dwt: &mut [f32],
) {
    // SAFETY: the caller checked that the CPU has AVX2 and FMA.
    unsafe { super::run_weight_gradient::<Avx2>(xs, dys, g, dwt) }
}

/// The 8-bit lane mask `bits` as an AVX2 mask vector: lane `l` all ones
/// when bit `l` is set, else zero.
#[target_feature(enable = "avx2")]
unsafe fn lane_mask(bits: u16) -> __m256i {
    let lane_bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    let set = _mm256_and_si256(_mm256_set1_epi32(i32::from(bits)), lane_bits);
    _mm256_cmpeq_epi32(set, lane_bits)
}

/// [`super::winograd::run_weight_gradient`] compiled for AVX2.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn winograd_weight_gradient(
    xs: &[f32],
    dys: &[f32],
    g: &ConvGeometry,
    dut: &mut [f32],
) {
    // SAFETY: the caller checked that the CPU has AVX2 and FMA.
    unsafe { super::winograd::run_weight_gradient::<Avx2>(xs, dys, g, dut) }
}

/// [`super::winograd::run`] compiled for AVX2.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn winograd(xs: &[f32], u: &[f32], g: &ConvGeometry, y: &mut [f32]) {
    // SAFETY: the caller checked that the CPU has AVX2 and FMA.
    unsafe { super::winograd::run::<Avx2>(xs, u, g, y) }
}

impl Kernels for Avx2 {
    /// Per half of a 16-lane vector: zeros where no lane is inside the
    /// image, a masked load where the lanes are consecutive, else a masked
    /// gather.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn gather(src: &[f32], lanes: &Lanes, offset: i32, masks: &[u16; 4], dst: &mut [f32]) {
        let off = _mm256_set1_epi32(offset);
        for h in 0..PANEL / 8 {
            let (v, bits) = (h / 2, (masks[h / 2] >> (8 * (h % 2))) & 0xff);
            let got = if bits == 0 {
                _mm256_setzero_ps()
            } else if lanes.consecutive[v] {
                // Masked-off lanes are not read (no fault), so the address
                // may point before or past the image for them.
                let at = src
                    .as_ptr()
                    .wrapping_offset((lanes.base[8 * h] + offset) as isize);
                _mm256_maskload_ps(at, lane_mask(bits))
            } else {
                let idx = _mm256_add_epi32(
                    _mm256_loadu_si256(lanes.base.as_ptr().add(8 * h).cast()),
                    off,
                );
                _mm256_mask_i32gather_ps::<4>(
                    _mm256_setzero_ps(),
                    src.as_ptr(),
                    idx,
                    _mm256_castsi256_ps(lane_mask(bits)),
                )
            };
            _mm256_storeu_ps(dst.as_mut_ptr().add(8 * h), got);
        }
    }

    /// Four strips of 16 positions; per strip 12 accumulators (`NR`
    /// channels x 2 vectors), per `k` one broadcast weight per channel and
    /// two loads of the panel row.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn kernel(kc: usize, w: &[f32], panel: &[f32], out: &mut [f32], add: bool) {
        let (w, x) = (w.as_ptr(), panel.as_ptr());
        for s in (0..PANEL).step_by(16) {
            let mut acc = [[_mm256_setzero_ps(); 2]; NR];
            for kk in 0..kc {
                let row = x.add(kk * PANEL + s);
                let v = [_mm256_loadu_ps(row), _mm256_loadu_ps(row.add(8))];
                for (i, acc) in acc.iter_mut().enumerate() {
                    let wi = _mm256_broadcast_ss(&*w.add(kk * NR + i));
                    for (a, v) in acc.iter_mut().zip(v) {
                        *a = _mm256_fmadd_ps(wi, v, *a);
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                for (v, a) in acc.iter().enumerate() {
                    let at = out.as_mut_ptr().add(i * PANEL + s + 8 * v);
                    let sum = if add {
                        _mm256_add_ps(*a, _mm256_loadu_ps(at))
                    } else {
                        *a
                    };
                    _mm256_storeu_ps(at, sum);
                }
            }
        }
    }

    /// Strips of 16 channels; per strip 12 accumulators (`NR` rows x 2
    /// vectors), per position two loads of `dY` and `NR` broadcasts of the
    /// panel.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn kernel_dw(x: &[f32], d: &[f32], ld: usize, out: &mut [f32], rows: usize) {
        let x = x.as_ptr();
        for o0 in (0..ld).step_by(16) {
            let d = d.as_ptr().add(o0);
            let mut acc = [[_mm256_setzero_ps(); 2]; NR];
            for l in 0..PANEL {
                let row = d.add(l * ld);
                let v = [_mm256_loadu_ps(row), _mm256_loadu_ps(row.add(8))];
                for (i, acc) in acc.iter_mut().enumerate() {
                    let xi = _mm256_broadcast_ss(&*x.add(i * PANEL + l));
                    for (a, v) in acc.iter_mut().zip(v) {
                        *a = _mm256_fmadd_ps(xi, v, *a);
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate().take(rows) {
                for (j, a) in acc.iter().enumerate() {
                    let at = out.as_mut_ptr().add(i * ld + o0 + 8 * j);
                    _mm256_storeu_ps(at, _mm256_add_ps(*a, _mm256_loadu_ps(at)));
                }
            }
        }
    }
}
