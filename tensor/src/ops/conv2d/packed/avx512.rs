//! The packed convolution's kernels in AVX-512: 16 `f32` lanes per
//! vector, 32 vector registers. A panel row of 64 positions is four
//! vectors; the forward kernel keeps all 64 positions of [`NR`] channels
//! in 24 registers, the weight gradient's all 64 channels of a block of
//! `dY` for [`NR`] rows of `k`. Masked loads and gathers take a 16-bit
//! lane mask directly.

use super::{Kernels, Lanes, NR, PANEL};
use crate::ops::conv2d::ConvGeometry;
use std::arch::x86_64::*;

/// The AVX-512 kernels.
pub(super) struct Avx512;

/// [`super::run`] compiled for AVX-512, so the kernels inline into it.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn run(xs: &[f32], packed: &[f32], g: &ConvGeometry, y: &mut [f32]) {
    // SAFETY: the caller checked that the CPU has AVX-512.
    unsafe { super::run::<Avx512>(xs, packed, g, y) }
}

/// [`super::run_weight_gradient`] compiled for AVX-512.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn run_weight_gradient(
    xs: &[f32],
    dys: &[f32],
    g: &ConvGeometry,
    dwt: &mut [f32],
) {
    // SAFETY: the caller checked that the CPU has AVX-512.
    unsafe { super::run_weight_gradient::<Avx512>(xs, dys, g, dwt) }
}

/// [`super::winograd::run_weight_gradient`] compiled for AVX-512.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn winograd_weight_gradient(
    xs: &[f32],
    dys: &[f32],
    g: &ConvGeometry,
    dut: &mut [f32],
) {
    // SAFETY: the caller checked that the CPU has AVX-512.
    unsafe { super::winograd::run_weight_gradient::<Avx512>(xs, dys, g, dut) }
}

/// [`super::winograd::run`] compiled for AVX-512.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn winograd(xs: &[f32], u: &[f32], g: &ConvGeometry, y: &mut [f32]) {
    // SAFETY: the caller checked that the CPU has AVX-512.
    unsafe { super::winograd::run::<Avx512>(xs, u, g, y) }
}

impl Kernels for Avx512 {
    /// Per vector of 16 lanes: zeros where no lane falls inside the image,
    /// a masked load where the lanes are consecutive, else a masked gather.
    #[target_feature(enable = "avx512f")]
    unsafe fn gather(src: &[f32], lanes: &Lanes, offset: i32, masks: &[u16; 4], dst: &mut [f32]) {
        let off = _mm512_set1_epi32(offset);
        for (v, &mask) in masks.iter().enumerate() {
            let got = if mask == 0 {
                _mm512_setzero_ps()
            } else if lanes.consecutive[v] {
                // Masked-off lanes are not read (no fault), so the address
                // may point before or past the image for them.
                let at = src
                    .as_ptr()
                    .wrapping_offset((lanes.base[16 * v] + offset) as isize);
                _mm512_maskz_loadu_ps(mask, at)
            } else {
                let idx = _mm512_add_epi32(
                    _mm512_loadu_si512(lanes.base.as_ptr().add(16 * v).cast()),
                    off,
                );
                _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, idx, src.as_ptr().cast())
            };
            _mm512_storeu_ps(dst.as_mut_ptr().add(16 * v), got);
        }
    }

    /// 24 accumulators: `NR` channels x 4 vectors; per `k` one broadcast
    /// weight per channel and four loads of the panel row.
    #[target_feature(enable = "avx512f")]
    unsafe fn kernel(kc: usize, w: &[f32], panel: &[f32], out: &mut [f32], add: bool) {
        let mut acc = [[_mm512_setzero_ps(); 4]; NR];
        let (w, x) = (w.as_ptr(), panel.as_ptr());
        for kk in 0..kc {
            let row = x.add(kk * PANEL);
            let v = [
                _mm512_loadu_ps(row),
                _mm512_loadu_ps(row.add(16)),
                _mm512_loadu_ps(row.add(32)),
                _mm512_loadu_ps(row.add(48)),
            ];
            for (i, acc) in acc.iter_mut().enumerate() {
                let wi = _mm512_set1_ps(*w.add(kk * NR + i));
                for (a, v) in acc.iter_mut().zip(v) {
                    *a = _mm512_fmadd_ps(wi, v, *a);
                }
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            for (v, a) in acc.iter().enumerate() {
                let at = out.as_mut_ptr().add(i * PANEL + 16 * v);
                let sum = if add {
                    _mm512_add_ps(*a, _mm512_loadu_ps(at))
                } else {
                    *a
                };
                _mm512_storeu_ps(at, sum);
            }
        }
    }

    /// Blocks of up to 64 channels (`block::<V>`, `V` vectors of 16).
    #[target_feature(enable = "avx512f")]
    unsafe fn kernel_dw(x: &[f32], d: &[f32], ld: usize, out: &mut [f32], rows: usize) {
        for o0 in (0..ld).step_by(64) {
            let (d, out) = (&d[o0..], &mut out[o0..]);
            match (ld - o0) / 16 {
                1 => block_dw::<1>(x, d, ld, out, rows),
                2 => block_dw::<2>(x, d, ld, out, rows),
                3 => block_dw::<3>(x, d, ld, out, rows),
                _ => block_dw::<4>(x, d, ld, out, rows),
            }
        }
    }
}

/// [`Kernels::kernel_dw`] on `16·V` channels: `NR·V` accumulators; per
/// position `V` loads of `dY` and `NR` broadcasts of the panel.
#[target_feature(enable = "avx512f")]
unsafe fn block_dw<const V: usize>(x: &[f32], d: &[f32], ld: usize, out: &mut [f32], rows: usize) {
    let mut acc = [[_mm512_setzero_ps(); V]; NR];
    let (x, d) = (x.as_ptr(), d.as_ptr());
    for l in 0..PANEL {
        let row = d.add(l * ld);
        let mut v = [_mm512_setzero_ps(); V];
        for (j, v) in v.iter_mut().enumerate() {
            *v = _mm512_loadu_ps(row.add(16 * j));
        }
        for (i, acc) in acc.iter_mut().enumerate() {
            let xi = _mm512_set1_ps(*x.add(i * PANEL + l));
            for (a, v) in acc.iter_mut().zip(v) {
                *a = _mm512_fmadd_ps(xi, v, *a);
            }
        }
    }
    for (i, acc) in acc.iter().enumerate().take(rows) {
        for (j, a) in acc.iter().enumerate() {
            let at = out.as_mut_ptr().add(i * ld + 16 * j);
            _mm512_storeu_ps(at, _mm512_add_ps(*a, _mm512_loadu_ps(at)));
        }
    }
}
