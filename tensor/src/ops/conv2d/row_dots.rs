//! Dot products of rows, for the weight gradient of narrow layers.
//!
//! The im2col weight gradient of one image (or group) is
//!
//! ```text
//! dWᵀ[k, o] += Σ_t  X[k, t] · dY[o, t]        t over the positions
//! ```
//!
//! with both operands stored along `t`: row `k` of the column matrix and
//! row `o` of the output gradient. Handed to a GEMM, that product has an
//! output of `K x O` and a reduction of `OH·OW` positions; the `gemm` crate
//! puts its vectors along the output's short side, which for the
//! 16-channel layers of a narrow ResNet is one vector: its narrowest
//! kernel, at about half its rate. Here the vectors run along
//! `t`, the long side, instead: each output keeps 16 partial sums (one per
//! lane, the positions `t ≡ l mod 16`), fed one fused multiply-add per 16
//! positions, and they are added up once, at the end of the row:
//!
//! ```text
//! s_l  = Σ_{t ≡ l (mod 16)} X[k, t] · dY[o, t]          (in order of t, fused)
//! out += ((s_0..7 + s_8..15) folded to 4, to 2, to 1)   (see `fold16`)
//! ```
//!
//! A block of `RK` rows of `X` and `RO` rows of `dY` keeps `RK·RO` such
//! outputs in registers (AVX-512: 6 x 4 = 24 vectors of 16; AVX2, with
//! half the lanes and half the registers: 3 x 2 outputs, each two vectors
//! of 8), so each vector loaded feeds several multiply-adds. Both
//! instruction sets sum each output in the same order, so they give the
//! same bits; [`reference()`] spells that order out in plain Rust.
//!
//! [`pays`] says where this replaces the GEMM (from the `conv_layers`
//! benchmark); without AVX2 the GEMM runs.

use crate::backend::cpu::simd::{self, Isa};

/// Lanes of partial sums per output (one AVX-512 vector, two AVX2 ones).
pub const LANES: usize = 16;

/// Whether the weight gradient of a layer with `o` output channels runs on
/// row dots rather than on the GEMM: the CPU has AVX2 (or AVX-512) and the
/// layer has at most 16 output channels, where the GEMM's output tiles are
/// one vector tall. From the `conv_layers` benchmark at width 16: faster
/// on the 16-channel 28x28 layer by about a third; on the 32-channel
/// layers, where the GEMM runs two vectors per tile, slower (the 14x14
/// layer by a quarter: there a group of two images is 392 positions, so
/// the partial sums are added up every 25 vectors).
pub fn pays(o: usize) -> bool {
    cfg!(target_arch = "x86_64") && simd::active() >= Isa::Avx2 && o <= 16
}

/// The operands of one product: rows of `len` values in `data`, each
/// starting where [`Starts`] says. Rows may overlap (they are only read):
/// the direct weight gradient reads the rows of its taps as shifted
/// windows of one padded image.
#[derive(Clone, Copy, Debug)]
pub struct Rows<'a> {
    /// The values.
    pub data: &'a [f32],
    /// How many rows.
    pub rows: usize,
    /// Where each row starts.
    pub starts: Starts<'a>,
}

/// Where the rows of a [`Rows`] start.
#[derive(Clone, Copy, Debug)]
pub enum Starts<'a> {
    /// Row `i` at `i·ld`.
    Every(usize),
    /// Row `i` at `offsets[i]`.
    At(&'a [usize]),
}

impl<'a> Rows<'a> {
    /// `rows` rows, row `i` starting at `i·ld`.
    pub fn strided(data: &'a [f32], rows: usize, ld: usize) -> Rows<'a> {
        Rows {
            data,
            rows,
            starts: Starts::Every(ld),
        }
    }

    /// One row per offset, starting there.
    pub fn at(data: &'a [f32], offsets: &'a [usize]) -> Rows<'a> {
        Rows {
            data,
            rows: offsets.len(),
            starts: Starts::At(offsets),
        }
    }

    /// Where row `i` starts.
    #[inline(always)]
    fn start(&self, i: usize) -> usize {
        match self.starts {
            Starts::Every(ld) => i * ld,
            Starts::At(offsets) => offsets[i],
        }
    }

    /// Panics unless every row of `len` values lies inside `data` (and,
    /// with [`Starts::At`], there is an offset for each row).
    fn check(&self, len: usize, name: &str) {
        if let Starts::At(offsets) = self.starts {
            assert!(
                offsets.len() >= self.rows,
                "row_dots: {name} has {} rows but {} offsets",
                self.rows,
                offsets.len()
            );
        }
        let end = (0..self.rows)
            .map(|i| self.start(i) + len)
            .max()
            .unwrap_or(0);
        assert!(
            end <= self.data.len(),
            "row_dots: {name} needs {end} values, has {}",
            self.data.len()
        );
    }
}

/// `out[i·ld_out + j] += Σ_{t < len} a[i, t] · b[j, t]` for every row `i`
/// of `a` and `j` of `b`, on this CPU's widest vectors (the [`simd`]
/// setting). Panics unless the level is AVX2 or wider, or if a row or an
/// output falls outside its slice.
pub fn add_row_dots(a: Rows, b: Rows, len: usize, out: &mut [f32], ld_out: usize) {
    add_row_dots_at(simd::active(), a, b, len, out, ld_out);
}

/// [`add_row_dots`] with the kernels of level `isa`.
pub(crate) fn add_row_dots_at(
    isa: Isa,
    a: Rows,
    b: Rows,
    len: usize,
    out: &mut [f32],
    ld_out: usize,
) {
    a.check(len, "a");
    b.check(len, "b");
    if a.rows == 0 || b.rows == 0 {
        return;
    }
    assert!(
        b.rows <= ld_out && (a.rows - 1) * ld_out + b.rows <= out.len(),
        "row_dots: an output of {} x {} does not fit {} values of rows {ld_out}",
        a.rows,
        b.rows,
        out.len()
    );
    assert!(
        isa >= Isa::Avx2 && isa.supported(),
        "row_dots: no kernels at level {} on this CPU",
        isa.name()
    );
    match isa {
        // SAFETY: the level is supported by this CPU (checked above), and
        // every row and output lies inside its slice.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { x86::avx512(a, b, len, out, ld_out) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { x86::avx2(a, b, len, out, ld_out) },
        isa => unreachable!("row_dots: no kernels at level {}", isa.name()),
    }
}

/// Adds 16 partial sums in a fixed tree: lane `l` onto lane `l + 8`'s,
/// then the 8 to 4, to 2, to 1 the same way (the order both kernels use).
pub fn fold16(s: [f32; LANES]) -> f32 {
    let mut s8 = [0.0f32; 8];
    for l in 0..8 {
        s8[l] = s[l] + s[l + 8];
    }
    let s4 = [s8[0] + s8[4], s8[1] + s8[5], s8[2] + s8[6], s8[3] + s8[7]];
    let s2 = [s4[0] + s4[2], s4[1] + s4[3]];
    s2[0] + s2[1]
}

/// The readable version, in the kernels' order: per output, 16 lanes of
/// fused multiply-adds over `t` in order, folded by [`fold16`], added to
/// `out`. (A position past `len` adds a zero product, which leaves every
/// partial sum's bits as they were.)
pub fn reference(a: Rows, b: Rows, len: usize, out: &mut [f32], ld_out: usize) {
    for i in 0..a.rows {
        for j in 0..b.rows {
            let (ra, rb) = (&a.data[a.start(i)..][..len], &b.data[b.start(j)..][..len]);
            let mut s = [0.0f32; LANES];
            for (t, (&x, &y)) in ra.iter().zip(rb).enumerate() {
                s[t % LANES] = x.mul_add(y, s[t % LANES]);
            }
            out[i * ld_out + j] += fold16(s);
        }
    }
}

/// The AVX-512 and AVX2 kernels, one generic driver over both.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::lanes16::{Avx2, Avx512, Lanes16};
    use super::{Rows, LANES};

    /// The outputs of rows `i0..i0+RK` of `a` and `j0..j0+RO` of `b`:
    /// `RK·RO` accumulators, per 16 positions `RO` loads of `b`, `RK` of
    /// `a`, `RK·RO` multiply-adds.
    #[inline(always)]
    unsafe fn block<L: Lanes16, const RK: usize, const RO: usize>(
        (a, b): (Rows, Rows),
        (i0, j0): (usize, usize),
        len: usize,
        out: &mut [f32],
        ld_out: usize,
    ) {
        let mut acc = [[L::zero(); RO]; RK];
        let pa: [*const f32; RK] = std::array::from_fn(|i| a.data.as_ptr().add(a.start(i0 + i)));
        let pb: [*const f32; RO] = std::array::from_fn(|j| b.data.as_ptr().add(b.start(j0 + j)));
        let full = len - len % LANES;
        let mut t = 0;
        while t < full {
            let vb: [L::V; RO] = std::array::from_fn(|j| L::load(pb[j].add(t)));
            for (acc, pa) in acc.iter_mut().zip(pa) {
                let va = L::load(pa.add(t));
                for (s, vb) in acc.iter_mut().zip(vb) {
                    *s = L::fma(va, vb, *s);
                }
            }
            t += LANES;
        }
        if full < len {
            let n = len - full;
            let vb: [L::V; RO] = std::array::from_fn(|j| L::load_first(pb[j].add(t), n));
            for (acc, pa) in acc.iter_mut().zip(pa) {
                let va = L::load_first(pa.add(t), n);
                for (s, vb) in acc.iter_mut().zip(vb) {
                    *s = L::fma(va, vb, *s);
                }
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            for (j, s) in acc.iter().enumerate() {
                out[(i0 + i) * ld_out + j0 + j] += L::fold(*s);
            }
        }
    }

    /// Every output in blocks of `RK x RO`; the rows left over at the ends
    /// of `a` and `b` one at a time. Blocks of `a`'s rows outermost, so a
    /// block of `a` stays in the L1 cache while `b`'s rows stream past.
    #[inline(always)]
    unsafe fn drive<L: Lanes16, const RK: usize, const RO: usize>(
        a: Rows,
        b: Rows,
        len: usize,
        out: &mut [f32],
        ld_out: usize,
    ) {
        let (ka, kb) = (a.rows - a.rows % RK, b.rows - b.rows % RO);
        for i0 in (0..ka).step_by(RK) {
            for j0 in (0..kb).step_by(RO) {
                block::<L, RK, RO>((a, b), (i0, j0), len, out, ld_out);
            }
            for j0 in kb..b.rows {
                block::<L, RK, 1>((a, b), (i0, j0), len, out, ld_out);
            }
        }
        for i0 in ka..a.rows {
            for j0 in (0..kb).step_by(RO) {
                block::<L, 1, RO>((a, b), (i0, j0), len, out, ld_out);
            }
            for j0 in kb..b.rows {
                block::<L, 1, 1>((a, b), (i0, j0), len, out, ld_out);
            }
        }
    }

    /// [`super::add_row_dots`] on AVX-512: blocks of 6 x 4 outputs (24 of
    /// the 32 vector registers).
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn avx512(a: Rows, b: Rows, len: usize, out: &mut [f32], ld_out: usize) {
        // SAFETY: the caller checked the level and the bounds.
        unsafe { drive::<Avx512, 6, 4>(a, b, len, out, ld_out) }
    }

    /// [`super::add_row_dots`] on AVX2: blocks of 3 x 2 outputs (12 of the
    /// 16 vector registers, two per output).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2(a: Rows, b: Rows, len: usize, out: &mut [f32], ld_out: usize) {
        // SAFETY: the caller checked the level and the bounds.
        unsafe { drive::<Avx2, 3, 2>(a, b, len, out, ld_out) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::simd::forced;

    /// Deterministic normal values (the tensor crate's seeded `randn`).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        crate::Tensor::randn(&[n], 0.0, 1.0, seed, &crate::Device::Cpu).to_vec()
    }

    /// Every shape the blocks and their edges see: rows below, at and past
    /// a block, lengths below, at and past a vector, with a tail.
    #[test]
    fn every_level_matches_the_reference_bit_for_bit_and_the_sum_within_rounding() {
        let shapes = [
            (1, 1, 1),
            (7, 5, 16),
            (6, 4, 15),
            (13, 9, 33),
            (144, 16, 784),
            (18, 32, 392),
            (5, 3, 9),
        ];
        for (m, n, len) in shapes {
            // Rows padded past `len`, so `ld` is not `len`.
            let (lda, ldb, ld_out) = (len + 3, len + 1, n + 2);
            let a = values(m * lda, 1);
            let b = values(n * ldb, 2);
            let rows_a = Rows::strided(&a, m, lda);
            let rows_b = Rows::strided(&b, n, ldb);
            let start = values(m * ld_out, 3);
            let mut want = start.clone();
            reference(rows_a, rows_b, len, &mut want, ld_out);
            for i in 0..m {
                for j in 0..n {
                    let exact: f64 = (0..len)
                        .map(|t| f64::from(a[i * lda + t]) * f64::from(b[j * ldb + t]))
                        .sum::<f64>()
                        + f64::from(start[i * ld_out + j]);
                    let tol = 1e-6 * (len as f64 + 1.0);
                    let got = f64::from(want[i * ld_out + j]);
                    assert!(
                        (got - exact).abs() <= tol,
                        "{m}x{n}x{len} ({i}, {j}): reference {got}, exact {exact}"
                    );
                }
                // The padding columns of each output row are not touched.
                assert_eq!(&want[i * ld_out + n..][..2], &start[i * ld_out + n..][..2]);
            }
            let runs = forced::at_every_level(|| {
                let isa = simd::active();
                (isa >= Isa::Avx2).then(|| {
                    let mut got = start.clone();
                    add_row_dots_at(isa, rows_a, rows_b, len, &mut got, ld_out);
                    got
                })
            });
            for (isa, got) in runs {
                if let Some(got) = got {
                    let same = got
                        .iter()
                        .zip(&want)
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(
                        same,
                        "{m}x{n}x{len} at {}: not the reference's bits",
                        isa.name()
                    );
                }
            }
        }
    }

    /// Rows found by offset, overlapping (shifted windows of one run of
    /// values), give the bits of the same rows copied out side by side.
    #[test]
    fn rows_by_offset_match_the_same_rows_copied() {
        let len = 37;
        let data = values(200, 5);
        let offsets = [0, 1, 2, 40, 41, 42, 80, 3, 120];
        let copied: Vec<f32> = offsets
            .iter()
            .flat_map(|&at| data[at..at + len].to_vec())
            .collect();
        let b = values(5 * len, 6);
        let rows_b = Rows::strided(&b, 5, len);
        let mut want = vec![0.0f32; offsets.len() * 5];
        reference(
            Rows::strided(&copied, offsets.len(), len),
            rows_b,
            len,
            &mut want,
            5,
        );
        let mut got = want.iter().map(|_| 0.0f32).collect::<Vec<_>>();
        reference(Rows::at(&data, &offsets), rows_b, len, &mut got, 5);
        assert_eq!(got, want);
        for (isa, got) in forced::at_every_level(|| {
            let isa = simd::active();
            (isa >= Isa::Avx2).then(|| {
                let mut got = vec![0.0f32; offsets.len() * 5];
                add_row_dots_at(isa, Rows::at(&data, &offsets), rows_b, len, &mut got, 5);
                got
            })
        }) {
            if let Some(got) = got {
                assert_eq!(got, want, "at {}", isa.name());
            }
        }
        // An offset whose row runs past the data is refused.
        let past = [0, 190];
        let refused = std::panic::catch_unwind(|| {
            let mut out = vec![0.0f32; 10];
            reference_checked(Rows::at(&data, &past), rows_b, len, &mut out);
        });
        assert!(refused.is_err());
    }

    /// [`add_row_dots_at`]'s bounds checks without needing AVX2.
    fn reference_checked(a: Rows, b: Rows, len: usize, out: &mut [f32]) {
        a.check(len, "a");
        b.check(len, "b");
        reference(a, b, len, out, b.rows);
    }

    #[test]
    fn fold16_adds_in_the_stated_tree() {
        // 1e8 swallows a 1 unless the tree pairs them as stated: lane 0
        // with lane 8 cancels the 1e8 first.
        let mut s = [0.0f32; LANES];
        s[0] = 1e8;
        s[8] = -1e8;
        s[1] = 1.0;
        assert_eq!(fold16(s), 1.0);
        let s: [f32; LANES] = std::array::from_fn(|l| l as f32);
        assert_eq!(fold16(s), 120.0);
    }

    #[test]
    fn a_row_past_its_slice_is_refused() {
        let a = [0.0f32; 10];
        let b = [0.0f32; 10];
        let mut out = [0.0f32; 4];
        let rows_a = Rows::strided(&a, 2, 6);
        let rows_b = Rows::strided(&b, 1, 6);
        let refused = std::panic::catch_unwind(move || {
            let mut out = out;
            add_row_dots_at(Isa::Avx2, rows_a, rows_b, 6, &mut out, 2);
        });
        assert!(refused.is_err());
        // Within bounds (the second row ends at 6 + 4 = 10) it runs.
        if Isa::Avx2.supported() {
            add_row_dots_at(Isa::Avx2, rows_a, rows_b, 4, &mut out, 2);
        }
    }
}
