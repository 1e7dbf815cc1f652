//! Sixteen `f32` lanes as each x86 instruction set holds them: one AVX-512
//! register, or two AVX2 ones. The convolution kernels that keep their sums
//! sixteen to a vector ([`super::row_dots`], [`super::direct`]) are written
//! once over [`Lanes16`] and compiled for both, inside a function marked
//! with that set's `target_feature`; lane by lane both compute the same
//! fused operations, so they give the same bits.

use std::arch::x86_64::*;

/// Sixteen lanes on an instruction set. Every method is `unsafe`: it
/// runs that set's instructions (the caller's function must be compiled
/// for them and the CPU have them) and reads or writes through raw
/// pointers (16 values there, unless it says fewer).
pub(super) trait Lanes16 {
    /// The 16 lanes (one AVX-512 vector, two AVX2 ones).
    type V: Copy;
    /// All zeros.
    unsafe fn zero() -> Self::V;
    /// 16 values from `p`.
    unsafe fn load(p: *const f32) -> Self::V;
    /// The first `n < 16` values from `p`, zeros after (the rest is not
    /// read).
    unsafe fn load_first(p: *const f32, n: usize) -> Self::V;
    /// The value at `p` in every lane.
    unsafe fn splat(p: *const f32) -> Self::V;
    /// `a·b + c`, fused, lane by lane.
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// The 16 lanes to `p`.
    unsafe fn store(p: *mut f32, v: Self::V);
    /// The 16 lanes added up in a fixed tree: lane `l` onto lane `l + 8`,
    /// then 8 to 4, to 2, to 1 (as `row_dots::fold16` spells out).
    unsafe fn fold(v: Self::V) -> f32;
}

/// `s[0..4] + s[4..8]`, then to 2, then to 1: the last three steps of
/// [`Lanes16::fold`] on 8 lanes.
#[inline(always)]
unsafe fn fold8(s8: __m256) -> f32 {
    let s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps::<1>(s8));
    let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps::<0x55>(s2, s2)))
}

/// AVX-512 (F): one register.
pub(super) struct Avx512;

impl Lanes16 for Avx512 {
    type V = __m512;
    #[inline(always)]
    unsafe fn zero() -> __m512 {
        _mm512_setzero_ps()
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m512 {
        _mm512_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn load_first(p: *const f32, n: usize) -> __m512 {
        _mm512_maskz_loadu_ps(((1u32 << n) - 1) as u16, p)
    }
    #[inline(always)]
    unsafe fn splat(p: *const f32) -> __m512 {
        _mm512_set1_ps(*p)
    }
    #[inline(always)]
    unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
        _mm512_fmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m512) {
        _mm512_storeu_ps(p, v)
    }
    #[inline(always)]
    unsafe fn fold(v: __m512) -> f32 {
        let lo = _mm512_castps512_ps256(v);
        let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
        fold8(_mm256_add_ps(lo, hi))
    }
}

/// AVX2 with FMA: two registers of 8 lanes.
pub(super) struct Avx2;

/// Lane masks for `_mm256_maskload_ps` and `_mm256_maskstore_ps`: reading
/// from `MASKS[8 - n..]` gives `n` lanes of all ones, then zeros.
static MASKS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

/// The mask of the first `n ≤ 8` of 8 lanes.
#[inline(always)]
pub(super) unsafe fn mask8(n: usize) -> __m256i {
    _mm256_loadu_si256(MASKS.as_ptr().add(8 - n).cast())
}

impl Lanes16 for Avx2 {
    type V = (__m256, __m256);
    #[inline(always)]
    unsafe fn zero() -> Self::V {
        (_mm256_setzero_ps(), _mm256_setzero_ps())
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self::V {
        (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)))
    }
    #[inline(always)]
    unsafe fn load_first(p: *const f32, n: usize) -> Self::V {
        if n <= 8 {
            (_mm256_maskload_ps(p, mask8(n)), _mm256_setzero_ps())
        } else {
            (
                _mm256_loadu_ps(p),
                _mm256_maskload_ps(p.add(8), mask8(n - 8)),
            )
        }
    }
    #[inline(always)]
    unsafe fn splat(p: *const f32) -> Self::V {
        let v = _mm256_broadcast_ss(&*p);
        (v, v)
    }
    #[inline(always)]
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        (
            _mm256_fmadd_ps(a.0, b.0, c.0),
            _mm256_fmadd_ps(a.1, b.1, c.1),
        )
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self::V) {
        _mm256_storeu_ps(p, v.0);
        _mm256_storeu_ps(p.add(8), v.1);
    }
    #[inline(always)]
    unsafe fn fold(v: Self::V) -> f32 {
        fold8(_mm256_add_ps(v.0, v.1))
    }
}
