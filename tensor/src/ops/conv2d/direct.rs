//! Direct convolution on AVX2 or AVX-512 for layers of stride 1 or 2
//! whose output channels come in sixteens: no column matrix, no GEMM, the
//! sum taken straight from the (padded) image.
//!
//! **The sum.** For one image, with the input padded by `p` zeros on every
//! side (`x̃`, planes of `(H + 2p_h) x (W + 2p_w)`) and stride `s`:
//!
//! ```text
//! y[o, i, j] = Σ_c Σ_a Σ_b  w[o, c, a, b] · x̃[c, s·i + a, s·j + b]
//! ```
//!
//! **The kernel.** One AVX-512 vector (two AVX2 ones) holds 16 output
//! channels at one position. A strip of `RP` neighbouring positions of one output row and
//! `RO` blocks of 16 channels keeps `RO·RP ≤ 28` such vectors in registers
//! (of the 32). For each tap `(c, a, b)` it loads the `RO` weight vectors
//! `w[o₀..o₀+16·RO, c, a, b]` (the weights are laid out `[c][a][b][o]`
//! once per call, so those are contiguous) and, for each position `j`,
//! broadcasts the one input value `x̃[c, i + a, j + b]` and adds
//! `w · x` into its `RO` vectors: `RO·RP` fused multiply-adds per
//! `RO + RP` loads. The input values are read in place from the padded
//! image, which stays in the cache; nothing is copied per tap, where
//! im2col writes (and the GEMM packs again) `C·KH·KW` values per position.
//! This is the layout oneDNN's direct kernels use, with channels in
//! sixteens; here the tensors stay `[N, C, H, W]` and only the strip's
//! results are turned: they go to a staging block `[O/16][OH·OW][16]`,
//! copied into `[O, OH·OW]` once per image (16 x 16, or with AVX2 8 x 8,
//! transposes in registers).
//!
//! Each output sums its taps in the order `c`, then `a`, then `b`, one
//! fused multiply-add each, starting from zero; [`reference()`] spells that
//! order out in plain Rust (`f32::mul_add`) and the tests hold the kernel
//! to it bit for bit, on both instruction sets (so they give the same
//! bits). The zeros of the padding take part like any other value, as they
//! do there.
//!
//! **Strips.** With AVX-512, `RO` is 4, 2 or 1 (64, 32 or 16 channels per
//! pass over the taps) and `RP` the longest of 28, 14, 7, 4, 2, 1 that fits
//! `RO·RP ≤ 28` and the row; with AVX2 (16 registers of 8 lanes) `RO` is 1
//! and `RP` at most 7 (14 registers of sums; the weights and the broadcast
//! value take the rest). One block and a kernel 3 wide (the 16-channel
//! layers) would broadcast a value per multiply-add; on AVX-512 each
//! broadcast is used three times there instead (`strip_row3`: input
//! column `q` is tap `b` of output `q - b`), in strips of at most 14. A
//! row whose width `RP` does not divide ends in a strip that computes past
//! the row's end (reading the next row of the padded image, or the slack
//! after the last) and keeps only the positions inside it.
//!
//! **The input gradient** of a stride-1 layer is a forward convolution of
//! the output gradient with the kernel turned half a turn
//! ([`packed::as_forward`](super::packed)), so it runs here when the layer's
//! *input* channels come in sixteens.
//!
//! **The weight gradient** reads the same padded image: [`weight_gradient`]
//! (its own module) runs the row dots over the padded width, with the
//! kernel's taps as shifted windows of the image instead of an im2col
//! matrix.
//!
//! **Stride 2** moves the strip's broadcasts two input columns apart and
//! its rows two input rows apart; the rest is the same (no `strip_row3`:
//! neighbouring outputs share one input column there, not two).
//!
//! **Where it runs**: [`applies`] (AVX2 or AVX-512, stride 1 or 2, output
//! channels a multiple of 16); [`pays`] says where [`super::CpuConv::for_layer`] takes
//! it, from the `conv_layers` benchmark ([`weight_gradient_applies`] and
//! [`weight_gradient_pays`] for the weight gradient).

use super::ConvGeometry;
use crate::backend::cpu::simd::{self, Isa};
use crate::backend::cpu::zeroed_pieces_with;

mod weight_gradient;
pub use weight_gradient::{weight_gradient, weight_gradient_applies, weight_gradient_pays};

/// Output channels per vector.
pub const LANES: usize = 16;
/// Strip lengths, longest first.
const STRIPS: [usize; 6] = [28, 14, 7, 4, 2, 1];

/// Whether the direct kernel computes the forward pass of `g`: the CPU
/// runs AVX2 and FMA or AVX-512 (at the `BYOL_CPU_SIMD` level), the layer
/// has stride 1 or 2 (the same both ways) and a multiple of 16 output
/// channels.
pub fn applies(g: &ConvGeometry) -> bool {
    cfg!(target_arch = "x86_64") && simd::active() >= Isa::Avx2 && shape_fits(g)
}

/// The shape half of [`applies`].
fn shape_fits(g: &ConvGeometry) -> bool {
    matches!(g.params.stride, [1, 1] | [2, 2]) && g.o > 0 && g.o.is_multiple_of(LANES) && g.c > 0
}

/// Whether [`super::CpuConv::for_layer`] takes the direct kernel where it
/// [`applies`]: with AVX-512, for stride-1 layers of at most 32 output
/// channels on planes of at least 14x14, and for stride-2 layers with a
/// kernel wider than 1x1, at most 64 output channels and output planes of
/// at least 7x7. From `conv_layers --width 16` (AMD EPYC Zen 5, batch 256,
/// 2 threads, fastest call): the 32-channel 14x14 layer, forward 2.9 ->
/// 1.9 ms and input gradient 2.9 -> 1.9 (im2col; the packed implicit GEMM
/// 2.8); the 16-channel 28x28 layer, forward 2.9 -> 2.3 and input gradient
/// 3.9 -> 2.3; the 3x3 stride-2 layers 16 -> 32 on 28x28, forward 2.2 ->
/// 1.2, and 32 -> 64 on 14x14, 1.5 (packed) -> 1.3. Not on the 3x3
/// stride-2 layer 64 -> 128 on 7x7 (1.8 against packed 1.6), the 1x1
/// stride-2 shortcuts (level with im2col) or the stride-1 64-channel 7x7
/// and 128-channel 4x4 layers, where Winograd F(4x4, 3x3) is faster (2.4
/// and 2.7 against 1.9 and 1.6). Not with AVX2 alone: its kernels, timed
/// on that machine with `BYOL_CPU_SIMD=avx2`, took 7.6 ms forward on the
/// 16-channel layer and 6.9 on the 32-channel one (im2col 3.0-3.3 there
/// with the GEMM's AVX-512; the packed AVX2 kernels 7.3 and 5.0). On an
/// AVX2-only CPU the `dir` columns of `conv_layers` say whether that holds
/// there.
pub fn pays(g: &ConvGeometry) -> bool {
    simd::active() >= Isa::Avx512
        && match g.params.stride {
            [1, 1] => g.o <= 32 && g.oh >= 14 && g.ow >= 14,
            _ => g.o <= 64 && (g.kh > 1 || g.kw > 1) && g.oh >= 7 && g.ow >= 7,
        }
}

/// A convolution as the kernel sees it: `c` input channels of `h x w`,
/// padded by `ph`/`pw`, `o` output channels of `oh x ow`, a `kh x kw`
/// kernel moved by `stride` (the same both ways).
#[derive(Clone, Copy, Debug)]
struct Plan {
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    ph: usize,
    pw: usize,
    oh: usize,
    ow: usize,
    stride: usize,
}

impl Plan {
    fn new(g: &ConvGeometry) -> Plan {
        let [ph, pw] = g.params.padding;
        Plan {
            c: g.c,
            h: g.h,
            w: g.w,
            o: g.o,
            kh: g.kh,
            kw: g.kw,
            ph,
            pw,
            oh: g.oh,
            ow: g.ow,
            stride: g.params.stride[1],
        }
    }

    /// Width of a padded row.
    fn wp(&self) -> usize {
        self.w + 2 * self.pw
    }

    /// Values of one padded plane.
    fn plane(&self) -> usize {
        (self.h + 2 * self.ph) * self.wp()
    }

    /// The padded image plus the slack a strip may read past its row
    /// (at most a strip's span and a kernel's width).
    fn padded_len(&self) -> usize {
        self.c * self.plane() + STRIPS[0] * self.stride + self.kw
    }

    /// Copies image `x` (`[C, H, W]`) into the interior of `padded`, whose
    /// border (and slack) stays as it is: zero.
    fn pad(&self, x: &[f32], padded: &mut [f32]) {
        let (wp, plane) = (self.wp(), self.plane());
        for c in 0..self.c {
            for r in 0..self.h {
                let from = &x[(c * self.h + r) * self.w..][..self.w];
                padded[c * plane + (r + self.ph) * wp + self.pw..][..self.w].copy_from_slice(from);
            }
        }
    }
}

/// The weights `[O, C, KH, KW]` laid out `[C][KH][KW][O]`, so that the
/// output channels of one tap are contiguous.
fn taps_first(ws: &[f32], p: &Plan) -> Vec<f32> {
    let k = p.c * p.kh * p.kw;
    let mut wt = vec![0.0f32; k * p.o];
    for o in 0..p.o {
        for (t, &v) in ws[o * k..(o + 1) * k].iter().enumerate() {
            wt[t * p.o + o] = v;
        }
    }
    wt
}

/// The forward convolution of geometry `g`: `xs` is `[N, C, H, W]`, `ws`
/// `[O, C, KH, KW]`; returns `[N, O, OH, OW]`. Each image is one piece of
/// work, the pieces spread over the threads. Panics unless [`applies`].
pub fn forward(xs: &[f32], ws: &[f32], g: &ConvGeometry) -> Vec<f32> {
    assert!(applies(g), "direct convolution: does not apply to {g:?}");
    let isa = simd::active();
    let p = Plan::new(g);
    let wt = taps_first(ws, &p);
    let (image, per_image) = (p.c * p.h * p.w, p.o * p.oh * p.ow);
    // One image per piece, each zeroed by the thread that fills it (the
    // kernels write every output; the zeros only make it `f32`s).
    zeroed_pieces_with(
        g.n * per_image,
        per_image,
        || (vec![0.0f32; p.padded_len()], vec![0.0f32; per_image]),
        |(padded, staging), i, yi| {
            let x = &xs[i * image..][..image];
            p.pad(x, padded);
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `applies` checked that the CPU runs AVX2 and FMA
            // (AVX-512 where `isa` says so); `padded`, `wt`, `staging`
            // and `yi` have the lengths the kernels read and write
            // (see there).
            unsafe {
                if isa >= Isa::Avx512 {
                    x86::image_avx512(&p, padded, &wt, staging);
                    x86::unstage_avx512(staging, p.o, p.oh * p.ow, yi);
                } else {
                    x86::image_avx2(&p, padded, &wt, staging);
                    x86::unstage_avx2(staging, p.o, p.oh * p.ow, yi);
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            unreachable!("direct convolution off x86-64 ({x:?}, {yi:?}, {staging:?})");
        },
    )
}

/// The input gradient of the stride-1 layer `g` as a direct forward
/// convolution of `dys` with the turned kernel; `None` where that does
/// not apply (strided layer, padding past `K - 1`, input channels not in
/// sixteens).
pub fn input_gradient(dys: &[f32], ws: &[f32], g: &ConvGeometry) -> Option<Vec<f32>> {
    let (gd, turned) = super::packed::as_forward(ws, g)?;
    applies(&gd).then(|| forward(dys, &turned, &gd))
}

/// What one instruction set's registers hold, in vectors of 16 channels
/// (an AVX2 one is two registers).
#[derive(Clone, Copy, Debug)]
struct Budget {
    /// Accumulators a strip keeps (`RO·RP`).
    accumulators: usize,
    /// Channel blocks per pass (`RO`), at most.
    blocks: usize,
    /// Whether one block of a 3-wide kernel runs `strip_row3` (three
    /// weight vectors and three broadcasts beside the sums: registers
    /// AVX2, with two per vector, lacks).
    reuse_broadcasts: bool,
}

impl Budget {
    /// 28 of the 32 registers, up to 4 blocks (64 channels) a pass.
    const AVX512: Budget = Budget {
        accumulators: 28,
        blocks: 4,
        reuse_broadcasts: true,
    };
    /// `strip_row3`: 14 sums beside three weight vectors and three
    /// broadcasts.
    const ROW3: Budget = Budget {
        accumulators: 14,
        blocks: 1,
        reuse_broadcasts: true,
    };
    /// 14 of the 16 registers (7 vectors of two), one block a pass: the
    /// weights and the broadcast take the other two.
    const AVX2: Budget = Budget {
        accumulators: 7,
        blocks: 1,
        reuse_broadcasts: false,
    };
}

/// The strip shape for the `ro` channel blocks of one pass on rows of
/// `ow` positions: the longest strip of [`STRIPS`] within the accumulator
/// budget and, where one fits, within the row.
fn strip_len(ro: usize, ow: usize, budget: Budget) -> usize {
    let most = budget.accumulators / ro;
    STRIPS
        .into_iter()
        .find(|&rp| rp <= most && rp <= ow)
        .unwrap_or(1)
}

/// The channel blocks per pass over the taps, in order: 4 while 64
/// channels remain, then 2, then 1 (at most `budget.blocks`).
fn passes(o: usize, budget: Budget) -> Vec<usize> {
    let mut blocks = o / LANES;
    let mut out = Vec::new();
    for ro in [4, 2, 1].into_iter().filter(|&ro| ro <= budget.blocks) {
        while blocks >= ro {
            out.push(ro);
            blocks -= ro;
        }
    }
    out
}

/// The defining sum of one image in the kernel's order (taps `c`, `a`,
/// `b`, one `mul_add` each from zero): `x` is `[C, H, W]`, `ws`
/// `[O, C, KH, KW]`, the result `[O, OH, OW]`. What the tests hold
/// [`forward`] to, bit for bit.
pub fn reference(x: &[f32], ws: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let p = Plan::new(g);
    let mut padded = vec![0.0f32; p.padded_len()];
    p.pad(x, &mut padded);
    let (wp, plane, k) = (p.wp(), p.plane(), p.c * p.kh * p.kw);
    let mut y = vec![0.0f32; p.o * p.oh * p.ow];
    for o in 0..p.o {
        for i in 0..p.oh {
            for j in 0..p.ow {
                let mut acc = 0.0f32;
                for c in 0..p.c {
                    for a in 0..p.kh {
                        for b in 0..p.kw {
                            let w = ws[o * k + (c * p.kh + a) * p.kw + b];
                            let at = c * plane + (i * p.stride + a) * wp + j * p.stride + b;
                            acc = w.mul_add(padded[at], acc);
                        }
                    }
                }
                y[(o * p.oh + i) * p.ow + j] = acc;
            }
        }
    }
    y
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::lanes16::{mask8, Avx2, Avx512, Lanes16};
    use super::{passes, strip_len, Budget, Plan, LANES};
    use std::arch::x86_64::*;

    /// [`image`] with the AVX-512 kernels.
    ///
    /// # Safety
    /// As [`image`]; the CPU runs AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn image_avx512(p: &Plan, padded: &[f32], wt: &[f32], staging: &mut [f32]) {
        image::<Avx512>(p, padded, wt, staging, Budget::AVX512)
    }

    /// [`image`] with the AVX2 kernels.
    ///
    /// # Safety
    /// As [`image`]; the CPU runs AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn image_avx2(p: &Plan, padded: &[f32], wt: &[f32], staging: &mut [f32]) {
        image::<Avx2>(p, padded, wt, staging, Budget::AVX2)
    }

    /// One image: `padded` from [`Plan::pad`], `wt` from `taps_first`;
    /// writes every output into `staging` (`[O/16][OH·OW][16]`).
    ///
    /// # Safety
    /// `padded` holds `p.padded_len()` values, `wt` `C·KH·KW·O` and
    /// `staging` `O·OH·OW`; called from a function compiled for `L`'s
    /// instructions on a CPU that has them.
    #[inline(always)]
    unsafe fn image<L: Lanes16>(
        p: &Plan,
        padded: &[f32],
        wt: &[f32],
        staging: &mut [f32],
        budget: Budget,
    ) {
        debug_assert!(padded.len() >= p.padded_len());
        debug_assert!(wt.len() >= p.c * p.kh * p.kw * p.o);
        debug_assert!(staging.len() >= p.o * p.oh * p.ow);
        let mut block = 0;
        for ro in passes(p.o, budget) {
            let row3 = ro == 1 && p.kw == 3 && p.stride == 1 && budget.reuse_broadcasts;
            let rp = if row3 {
                strip_len(ro, p.ow, Budget::ROW3)
            } else {
                strip_len(ro, p.ow, budget)
            };
            for i in 0..p.oh {
                for j0 in (0..p.ow).step_by(rp) {
                    let at = Strip {
                        x: padded.as_ptr().add((i * p.wp() + j0) * p.stride),
                        w: wt.as_ptr().add(block * LANES),
                        out: staging.as_mut_ptr(),
                        block,
                        position: i * p.ow + j0,
                        keep: rp.min(p.ow - j0),
                    };
                    if row3 {
                        match rp {
                            14 => strip_row3::<L, 14>(p, at),
                            7 => strip_row3::<L, 7>(p, at),
                            4 => strip_row3::<L, 4>(p, at),
                            2 => strip_row3::<L, 2>(p, at),
                            _ => strip_row3::<L, 1>(p, at),
                        }
                        continue;
                    }
                    if p.stride == 2 {
                        strip_of::<L, 2>(ro, rp, p, at);
                    } else {
                        strip_of::<L, 1>(ro, rp, p, at);
                    }
                }
            }
            block += ro;
        }
    }

    /// The strip of `ro` blocks and `rp` positions, at stride `S`.
    #[inline(always)]
    unsafe fn strip_of<L: Lanes16, const S: usize>(ro: usize, rp: usize, p: &Plan, at: Strip) {
        match (ro, rp) {
            (4, 7) => strip::<L, 4, 7, S>(p, at),
            (4, 4) => strip::<L, 4, 4, S>(p, at),
            (4, 2) => strip::<L, 4, 2, S>(p, at),
            (4, 1) => strip::<L, 4, 1, S>(p, at),
            (2, 14) => strip::<L, 2, 14, S>(p, at),
            (2, 7) => strip::<L, 2, 7, S>(p, at),
            (2, 4) => strip::<L, 2, 4, S>(p, at),
            (2, 2) => strip::<L, 2, 2, S>(p, at),
            (2, 1) => strip::<L, 2, 1, S>(p, at),
            (1, 28) => strip::<L, 1, 28, S>(p, at),
            (1, 14) => strip::<L, 1, 14, S>(p, at),
            (1, 7) => strip::<L, 1, 7, S>(p, at),
            (1, 4) => strip::<L, 1, 4, S>(p, at),
            (1, 2) => strip::<L, 1, 2, S>(p, at),
            _ => strip::<L, 1, 1, S>(p, at),
        }
    }

    /// Where one strip reads and writes.
    #[derive(Clone, Copy)]
    struct Strip {
        /// The padded input at channel 0, the strip's first row and column.
        x: *const f32,
        /// `wt` at the strip's first output channel.
        w: *const f32,
        /// The staging block.
        out: *mut f32,
        /// The first channel block.
        block: usize,
        /// The first output position (`i·OW + j₀`).
        position: usize,
        /// Positions inside the row (the rest are computed and dropped).
        keep: usize,
    }

    /// `RO` blocks of 16 channels at `RP` positions `S` apart in the
    /// input: `RO·RP` accumulators, per tap `RO` weight loads, `RP`
    /// broadcasts, `RO·RP` multiply-adds.
    #[inline(always)]
    unsafe fn strip<L: Lanes16, const RO: usize, const RP: usize, const S: usize>(
        p: &Plan,
        s: Strip,
    ) {
        let (wp, plane) = (p.wp(), p.plane());
        // acc[j][r]: position j, channel block r.
        let mut acc = [[L::zero(); RO]; RP];
        for c in 0..p.c {
            for a in 0..p.kh {
                let row = s.x.add(c * plane + a * wp);
                let taps = s.w.add((c * p.kh + a) * p.kw * p.o);
                for b in 0..p.kw {
                    let wv: [L::V; RO] =
                        std::array::from_fn(|r| L::load(taps.add(b * p.o + r * LANES)));
                    for (j, at) in acc.iter_mut().enumerate() {
                        let xv = L::splat(row.add(j * S + b));
                        for (sum, w) in at.iter_mut().zip(wv) {
                            *sum = L::fma(w, xv, *sum);
                        }
                    }
                }
            }
        }
        let positions = p.oh * p.ow;
        for (j, at) in acc.iter().enumerate().take(s.keep) {
            for (r, v) in at.iter().enumerate() {
                let to = ((s.block + r) * positions + s.position + j) * LANES;
                L::store(s.out.add(to), *v);
            }
        }
    }

    /// [`strip`] for one block of 16 channels and a kernel 3 wide, with
    /// each broadcast input value used three times. With one block, `strip`
    /// broadcasts a value per multiply-add, and the broadcasts, not the
    /// multiply-adds, set its pace. But input column `q` of a row is tap
    /// `b` of output `q - b` for each `b` in 0..3: so here output `j` takes
    /// its three taps of the row, `w[b]·x[j + b]`, from three broadcasts
    /// kept in registers as the strip moves along (each new position
    /// broadcasts one value, `x[j + 2]`, and hands the other two on), with
    /// the row's three weight vectors held in registers too (sums, weights
    /// and broadcasts: `RP + 6` registers, so `RP` is at most 14). Output
    /// `j` still takes its taps in the order `c`, `a`, `b`: the same sums in
    /// the same order as [`strip`] and [`super::reference()`], bit for bit.
    #[inline(always)]
    unsafe fn strip_row3<L: Lanes16, const RP: usize>(p: &Plan, s: Strip) {
        debug_assert_eq!(p.kw, 3);
        let (wp, plane) = (p.wp(), p.plane());
        let mut acc = [L::zero(); RP];
        for c in 0..p.c {
            for a in 0..p.kh {
                let row = s.x.add(c * plane + a * wp);
                let taps = s.w.add((c * p.kh + a) * 3 * p.o);
                let w = [
                    L::load(taps),
                    L::load(taps.add(p.o)),
                    L::load(taps.add(2 * p.o)),
                ];
                let (mut x0, mut x1) = (L::splat(row), L::splat(row.add(1)));
                for (j, sum) in acc.iter_mut().enumerate() {
                    let x2 = L::splat(row.add(j + 2));
                    *sum = L::fma(w[0], x0, *sum);
                    *sum = L::fma(w[1], x1, *sum);
                    *sum = L::fma(w[2], x2, *sum);
                    (x0, x1) = (x1, x2);
                }
            }
        }
        let positions = p.oh * p.ow;
        for (j, v) in acc.iter().enumerate().take(s.keep) {
            let to = (s.block * positions + s.position + j) * LANES;
            L::store(s.out.add(to), *v);
        }
    }

    /// `[O/16][P][16]` (the strips' vectors) to `[O, P]` (`y`): per block
    /// of 16 channels and tile of 16 positions, the 16 vectors (one
    /// position's channels each) are turned in registers into 16 rows (one
    /// channel's positions each), [`transpose16`]; a last tile of fewer
    /// positions is read and stored masked.
    ///
    /// # Safety
    /// The CPU runs AVX-512F; `staging` and `y` hold `o·positions` values.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn unstage_avx512(
        staging: &[f32],
        o: usize,
        positions: usize,
        y: &mut [f32],
    ) {
        debug_assert!(staging.len() >= o * positions && y.len() >= o * positions);
        for block in 0..o / LANES {
            let s = staging.as_ptr().add(block * positions * LANES);
            let out = y.as_mut_ptr().add(block * LANES * positions);
            let full = positions / LANES * LANES;
            // Whole tiles: every index below is a constant once the loops
            // unroll, so the 16 vectors stay in registers.
            for t0 in (0..full).step_by(LANES) {
                let v: [__m512; LANES] =
                    std::array::from_fn(|t| _mm512_loadu_ps(s.add((t0 + t) * LANES)));
                let rows = transpose16(v);
                for (l, row) in rows.iter().enumerate() {
                    _mm512_storeu_ps(out.add(l * positions + t0), *row);
                }
            }
            if full < positions {
                let n = positions - full;
                let mut v = [_mm512_setzero_ps(); LANES];
                for (t, v) in v.iter_mut().enumerate().take(n) {
                    *v = _mm512_loadu_ps(s.add((full + t) * LANES));
                }
                let rows = transpose16(v);
                let mask = ((1u32 << n) - 1) as u16;
                for (l, row) in rows.iter().enumerate() {
                    _mm512_mask_storeu_ps(out.add(l * positions + full), mask, *row);
                }
            }
        }
    }

    /// The 16x16 transpose of `r` (row `i` = `r[i]`): unpack pairs of rows
    /// (2x2 blocks within each 128-bit lane), then pairs of pairs (4x4
    /// blocks), then move the 128-bit lanes (`shuffle_f32x4`) twice.
    #[inline(always)]
    unsafe fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
        // Written as loops with constant bounds and no branch on the index,
        // which unroll: every vector stays in a register.
        // Lane k of t[2i] holds r[2i][4k], r[2i+1][4k], r[2i][4k+1],
        // r[2i+1][4k+1]; t[2i+1] the same for 4k+2 and 4k+3.
        let mut t = [_mm512_setzero_ps(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        // Lane k of u[4i+m] holds column 4k+m of rows 4i..4i+4.
        let pd = |v: __m512| _mm512_castps_pd(v);
        let mut u = [_mm512_setzero_ps(); 16];
        for i in 0..4 {
            let (t0, t1, t2, t3) = (
                pd(t[4 * i]),
                pd(t[4 * i + 1]),
                pd(t[4 * i + 2]),
                pd(t[4 * i + 3]),
            );
            u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
            u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
            u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
            u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
        }
        // Row 4k+m of the result: lane k of u[m], u[4+m], u[8+m], u[12+m]
        // (even lanes of each pair, then odd, twice over).
        let mut out = [_mm512_setzero_ps(); 16];
        for m in 0..4 {
            let x0 = _mm512_shuffle_f32x4::<0b10_00_10_00>(u[m], u[4 + m]);
            let y0 = _mm512_shuffle_f32x4::<0b10_00_10_00>(u[8 + m], u[12 + m]);
            let x1 = _mm512_shuffle_f32x4::<0b11_01_11_01>(u[m], u[4 + m]);
            let y1 = _mm512_shuffle_f32x4::<0b11_01_11_01>(u[8 + m], u[12 + m]);
            out[m] = _mm512_shuffle_f32x4::<0b10_00_10_00>(x0, y0);
            out[4 + m] = _mm512_shuffle_f32x4::<0b10_00_10_00>(x1, y1);
            out[8 + m] = _mm512_shuffle_f32x4::<0b11_01_11_01>(x0, y0);
            out[12 + m] = _mm512_shuffle_f32x4::<0b11_01_11_01>(x1, y1);
        }
        out
    }

    /// [`unstage_avx512`] on AVX2: per block, each half of 8 channels in
    /// tiles of 8 positions, turned by [`transpose8`].
    ///
    /// # Safety
    /// The CPU runs AVX2; `staging` and `y` hold `o·positions` values.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn unstage_avx2(staging: &[f32], o: usize, positions: usize, y: &mut [f32]) {
        debug_assert!(staging.len() >= o * positions && y.len() >= o * positions);
        for block in 0..o / LANES {
            let s = staging.as_ptr().add(block * positions * LANES);
            for half in 0..2 {
                let out = y.as_mut_ptr().add((block * LANES + half * 8) * positions);
                let full = positions / 8 * 8;
                // Whole tiles by constant index (registers), as in
                // `unstage_avx512`; a last partial tile masked.
                for t0 in (0..full).step_by(8) {
                    let v: [__m256; 8] = std::array::from_fn(|t| {
                        _mm256_loadu_ps(s.add((t0 + t) * LANES + half * 8))
                    });
                    let rows = transpose8(v);
                    for (l, row) in rows.iter().enumerate() {
                        _mm256_storeu_ps(out.add(l * positions + t0), *row);
                    }
                }
                if full < positions {
                    let n = positions - full;
                    let mut v = [_mm256_setzero_ps(); 8];
                    for (t, v) in v.iter_mut().enumerate().take(n) {
                        *v = _mm256_loadu_ps(s.add((full + t) * LANES + half * 8));
                    }
                    let rows = transpose8(v);
                    let mask = mask8(n);
                    for (l, row) in rows.iter().enumerate() {
                        _mm256_maskstore_ps(out.add(l * positions + full), mask, *row);
                    }
                }
            }
        }
    }

    /// The 8x8 transpose of `r`: unpack pairs of rows, shuffle pairs of
    /// pairs (4x4 blocks within each 128-bit lane), then swap lanes.
    #[inline(always)]
    unsafe fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
        // Constant-bound loops without a branch on the index, which unroll
        // (see `transpose16`).
        // Lane k of t[2i]: r[2i][4k], r[2i+1][4k], r[2i][4k+1], r[2i+1][4k+1].
        let mut t = [_mm256_setzero_ps(); 8];
        for i in 0..4 {
            t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        // Lane k of u[4i+m]: column 4k+m of rows 4i..4i+4.
        let mut u = [_mm256_setzero_ps(); 8];
        for i in 0..2 {
            u[4 * i] = _mm256_shuffle_ps::<0x44>(t[4 * i], t[4 * i + 2]);
            u[4 * i + 1] = _mm256_shuffle_ps::<0xEE>(t[4 * i], t[4 * i + 2]);
            u[4 * i + 2] = _mm256_shuffle_ps::<0x44>(t[4 * i + 1], t[4 * i + 3]);
            u[4 * i + 3] = _mm256_shuffle_ps::<0xEE>(t[4 * i + 1], t[4 * i + 3]);
        }
        // Row 4k+m: lane k of u[m], then lane k of u[4+m].
        let mut out = [_mm256_setzero_ps(); 8];
        for m in 0..4 {
            out[m] = _mm256_permute2f128_ps::<0x20>(u[m], u[4 + m]);
            out[4 + m] = _mm256_permute2f128_ps::<0x31>(u[m], u[4 + m]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::simd::forced;
    use crate::ops::conv2d::cpu::tests::reference as defining_sum;
    use crate::ops::conv2d::Conv2dParams;
    use crate::{Device, Tensor};

    fn values(n: usize, seed: u64) -> Vec<f32> {
        Tensor::randn(&[n], 0.0, 1.0, seed, &Device::Cpu).to_vec()
    }

    /// Shapes that reach every strip kind at both strides, rows that
    /// strips do not divide, 1x1 and 5x5 kernels, padding 0, 1 and 2, odd
    /// planes at stride 2, one image and several:
    /// `(n, c, plane, o, kernel, padding, stride)`.
    const SHAPES: [(usize, usize, usize, usize, usize, usize, usize); 14] = [
        (2, 3, 28, 16, 3, 1, 1),
        (3, 16, 14, 32, 3, 1, 1),
        (2, 5, 7, 64, 3, 1, 1),
        (2, 8, 4, 128, 3, 1, 1),
        (1, 4, 9, 48, 3, 0, 1),
        (2, 2, 11, 16, 5, 2, 1),
        (1, 7, 6, 32, 1, 0, 1),
        (1, 2, 3, 16, 3, 1, 1),
        (2, 3, 28, 32, 3, 1, 2),
        (2, 5, 14, 64, 3, 1, 2),
        (2, 4, 7, 128, 3, 1, 2),
        (1, 6, 28, 16, 1, 0, 2),
        (1, 3, 9, 48, 3, 1, 2),
        (1, 2, 11, 16, 5, 2, 2),
    ];

    /// `f()` at each level this CPU has where the direct kernel runs
    /// (AVX2, AVX-512): how many levels ran (0: none, the reference is
    /// still tested on its own).
    fn at_kernel_levels(mut f: impl FnMut()) -> usize {
        forced::at_every_level(|| (simd::active() >= Isa::Avx2).then(&mut f))
            .into_iter()
            .filter(|(_, ran)| ran.is_some())
            .count()
    }

    #[test]
    fn every_strip_matches_the_reference_bit_for_bit() {
        let levels = at_kernel_levels(|| {
            for (n, c, hw, o, k, pad, stride) in SHAPES {
                let g = ConvGeometry::new(
                    &[n, c, hw, hw],
                    &[o, c, k, k],
                    Conv2dParams::new(stride, pad),
                    "t",
                );
                let x = values(n * c * hw * hw, 1);
                let w = values(o * c * k * k, 2);
                let y = forward(&x, &w, &g);
                let per = o * g.oh * g.ow;
                for i in 0..n {
                    let want = reference(&x[i * c * hw * hw..][..c * hw * hw], &w, &g);
                    assert_eq!(&y[i * per..][..per], &want[..], "{g:?} image {i}");
                }
            }
        });
        let has = [Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|l| l.supported());
        assert_eq!(levels, has.count(), "every kernel level this CPU has ran");
        if levels == 0 {
            eprintln!("skipped: this CPU lacks AVX2 (the reference is tested below)");
        }
    }

    #[test]
    fn the_reference_is_the_defining_sum_within_rounding() {
        for (n, c, hw, o, k, pad, stride) in SHAPES {
            let g = ConvGeometry::new(
                &[n, c, hw, hw],
                &[o, c, k, k],
                Conv2dParams::new(stride, pad),
                "t",
            );
            let x = values(n * c * hw * hw, 3);
            let w = values(o * c * k * k, 4);
            let dy = vec![0.0f32; n * o * g.oh * g.ow];
            let (want, _, _) = defining_sum(&x, &w, &dy, &g);
            let per = o * g.oh * g.ow;
            let taps = (c * k * k) as f32;
            for i in 0..n {
                let got = reference(&x[i * c * hw * hw..][..c * hw * hw], &w, &g);
                for (a, b) in got.iter().zip(&want[i * per..][..per]) {
                    assert!(
                        (a - b).abs() <= 1e-6 * taps * (1.0 + b.abs()),
                        "{g:?}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_input_gradient_is_the_turned_forward_and_the_defining_sum() {
        let levels = at_kernel_levels(|| {
            for (n, c, hw, o, pad) in [(2, 16, 14, 16, 1), (2, 32, 7, 8, 1), (1, 16, 6, 3, 0)] {
                let g = ConvGeometry::new(
                    &[n, c, hw, hw],
                    &[o, c, 3, 3],
                    Conv2dParams::new(1, pad),
                    "t",
                );
                let x = values(n * c * hw * hw, 5);
                let w = values(o * c * 9, 6);
                let dy = values(n * o * g.oh * g.ow, 7);
                let dx = input_gradient(&dy, &w, &g).expect("applies");
                let (_, want, _) = defining_sum(&x, &w, &dy, &g);
                let taps = (o * 9) as f32;
                for (a, b) in dx.iter().zip(&want) {
                    assert!(
                        (a - b).abs() <= 1e-6 * taps * (1.0 + b.abs()),
                        "{g:?}: {a} vs {b}"
                    );
                }
            }
        });
        if levels == 0 {
            eprintln!("skipped: this CPU lacks AVX2");
        }
    }

    #[test]
    fn where_it_does_not_apply_it_says_so() {
        let strided = ConvGeometry::new(
            &[1, 16, 8, 8],
            &[16, 16, 3, 3],
            Conv2dParams::new(3, 1),
            "t",
        );
        assert!(!shape_fits(&strided));
        // Stride 2 fits the forward pass, not the input gradient.
        let two = ConvGeometry::new(
            &[1, 16, 8, 8],
            &[16, 16, 3, 3],
            Conv2dParams::new(2, 1),
            "t",
        );
        assert!(shape_fits(&two));
        assert!(input_gradient(&vec![0.0; 16 * 16], &vec![0.0; 16 * 16 * 9], &two).is_none());
        let narrow =
            ConvGeometry::new(&[1, 16, 8, 8], &[8, 16, 3, 3], Conv2dParams::new(1, 1), "t");
        assert!(!shape_fits(&narrow));
        let dy = vec![0.0f32; 16 * 64];
        let w = vec![0.0f32; 16 * 8 * 9];
        // Input gradient of a layer with 8 input channels: the turned
        // forward has 8 outputs.
        let g = ConvGeometry::new(&[1, 8, 8, 8], &[16, 8, 3, 3], Conv2dParams::new(1, 1), "t");
        assert!(input_gradient(&dy, &w, &g).is_none());
    }

    #[test]
    fn strips_fit_the_registers_and_passes_cover_the_channels() {
        for budget in [Budget::AVX512, Budget::ROW3, Budget::AVX2] {
            for o in [16, 32, 48, 64, 112, 128] {
                let blocks = passes(o, budget);
                assert_eq!(blocks.iter().sum::<usize>(), o / LANES, "{budget:?}");
                for ro in blocks {
                    assert!(ro <= budget.blocks);
                    for ow in [1, 3, 4, 7, 9, 14, 28, 56] {
                        let rp = strip_len(ro, ow, budget);
                        assert!(ro * rp <= budget.accumulators && rp <= ow);
                    }
                }
            }
        }
        assert_eq!(passes(16 * 7, Budget::AVX512), vec![4, 2, 1]);
        assert_eq!(passes(128, Budget::AVX512), vec![4, 4]);
        assert_eq!(passes(32, Budget::AVX2), vec![1, 1]);
        assert_eq!(strip_len(1, 28, Budget::AVX2), 7);
        assert_eq!(strip_len(2, 14, Budget::AVX512), 14);
        assert_eq!(strip_len(1, 28, Budget::ROW3), 14);
        assert_eq!(strip_len(1, 9, Budget::ROW3), 7);
    }
}
