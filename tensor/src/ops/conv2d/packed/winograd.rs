//! Winograd F(4x4, 3x3) on the packed kernels: a 3x3 stride-1
//! convolution with four times fewer multiplications than the direct sum,
//! its GEMMs run by the packed forward kernel.
//!
//! **One dimension.** Four outputs of a 3-tap correlation,
//! `y_i = Σ_k d_{i+k}·g_k` (`i < 4`), read six inputs. With
//! `y = Aᵀ[(G g) ⊙ (Bᵀ d)]` they take six multiplications instead of
//! twelve (Lavin & Gray 2016, interpolation points 0, ±1, ±2 and ∞):
//!
//! ```text
//!      | 4  0 -5  0  1  0 |        | 1/4    0     0   |
//!      | 0 -4 -4  1  1  0 |        | -1/6  -1/6  -1/6 |      | 1  1  1  1  1  0 |
//! Bᵀ = | 0  4 -4 -1  1  0 |    G = | -1/6   1/6  -1/6 | Aᵀ = | 0  1 -1  2 -2  0 |
//!      | 0 -2 -1  2  1  0 |        | 1/24  1/12  1/6  |      | 0  1  1  4  4  0 |
//!      | 0  2 -1 -2  1  0 |        | 1/24 -1/12  1/6  |      | 0  1 -1  8 -8  1 |
//!      | 0  4  0 -5  0  1 |        | 0      0     1   |
//! ```
//!
//! **Two dimensions** nest it: a 4x4 block of outputs reads a 6x6 input
//! tile `d`, and `Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`: 36 multiplications
//! instead of 144. Summed over input channels, the elementwise product is,
//! for each of the 36 positions `ξ` of the transformed tile, a matrix
//! product over channels (as in [`crate::ops::conv2d::winograd`], which
//! does F(2x2, 3x3) on the `gemm` crate):
//!
//! ```text
//! U[ξ][o, c] = (G g_{o,c} Gᵀ)[ξ]          V[ξ][c, t] = (Bᵀ d_{c,t} B)[ξ]
//! M[ξ] = U[ξ] · V[ξ]                      Y_{o,t} = Aᵀ M_{o,t} A
//! ```
//!
//! **On the packed panels.** The tiles go in panels of 64 ([`PANEL`]),
//! which may span images (a 4x4 plane is one tile, a 7x7 one four, the
//! tiles past the plane reading zeros). For each input channel, the
//! panel's 6x6 input tiles are copied row by row into 36 rows of 64 lanes
//! (one lane per tile), and `Bᵀ d B` runs on those rows as elementwise
//! loops over the lanes, writing the channel's row of `V[ξ]` for each
//! `ξ`. Then for each `ξ` the packed forward kernel multiplies `U[ξ]`
//! (packed like the weights there) into `V[ξ]`, chunk by chunk of [`KC`]
//! channels, into `M[ξ]`; and `Aᵀ M A` turns each output channel's 36
//! rows into its 4x4 tiles, stored into the images.
//!
//! **Where it pays** ([`pays`]): on the layers with at least 64 channels,
//! where the products dominate. On narrower layers the per-tile
//! transforms and copies cost more than the multiplications saved.
//!
//! **The input gradient** of a 3x3 stride-1 layer is a forward one (the
//! kernel turned, channels swapped, padding `2 - p`), so it runs here too.
//!
//! **The weight gradient** runs the chain backwards: per tile
//! `dM = A dY Aᵀ`, then `dU[ξ][c, o] = Σ_t V[ξ][c, t] · dM[ξ][t, o]` over
//! the tiles, and `dW = Gᵀ dU G` once at the end. `dM` is computed along
//! the output channels (lanes of `o`, not of tiles), so each `dM[ξ]` comes
//! out as a panel's 64 rows of `O` values: the layout in which the packed
//! weight-gradient kernel reads its `dY`, summing over the panel's tiles
//! ([`weight_gradient`]; its own rule, [`weight_gradient_pays`]).
//!
//! **Rounding.** The transforms multiply values by up to 8 and the sums of
//! `Aᵀ M A` cancel, so each output carries about ten times the rounding
//! error of the direct sum (about 1e-5 of the outputs' scale on 1,000-term
//! sums, where the direct sum is near 1e-6; the unit tests bound it, and
//! `byol/tests/pytorch_step.rs` measures it through a whole BYOL step).

use super::{Kernels, KC, NR, PANEL};
use crate::backend::cpu::simd::{self, Isa};
use crate::backend::cpu::zeroed_pieces_with;
use crate::ops::conv2d::ConvGeometry;
use rayon::prelude::*;

thread_local! {
    /// Each thread's buffers for [`run`] (the copied tile rows, the
    /// half-transformed ones, `V` and `M`: a few MB on wide layers), kept
    /// between calls: allocated afresh on every call they were handed back
    /// to the system and faulted in again each time.
    static SCRATCH: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Side of an input tile.
const TILE: usize = 6;
/// Side of an output tile.
const OUT: usize = 4;
/// Positions `ξ` of a transformed tile.
const XI: usize = TILE * TILE;

/// Whether this CPU runs it and the layer is a 3x3 stride-1 convolution
/// with padding at most 2 (so that its input gradient is one too).
pub fn applies(g: &ConvGeometry) -> bool {
    super::available()
        && g.kh == 3
        && g.kw == 3
        && g.params.stride == [1, 1]
        && g.params.padding[0] <= 2
        && g.params.padding[1] <= 2
}

/// Whether F(4x4, 3x3) is faster than the other algorithms for a layer it
/// [`applies`] to: at least 64 input and output channels. From the
/// `conv_layers` benchmark at widths 16 and 64: faster than the packed
/// path on the 64-channel 7x7 and 128-channel 4x4 layers, than F(2x2,
/// 3x3) on the 64- to 256-channel ones (even with it on the 512-channel
/// 4x4 forward pass, faster on its input gradient), slower than im2col or
/// the packed path on the 16- and 32-channel ones.
pub fn pays(g: &ConvGeometry) -> bool {
    g.c.min(g.o) >= 64
}

/// Whether the F(4x4, 3x3) weight gradient is faster than the others for
/// a layer it [`applies`] to: 64 to 256 input and output channels. From
/// the `conv_layers` benchmark at widths 16 and 64: faster than the packed
/// path on the 128-channel 4x4 layer (by 40%), than F(2x2, 3x3) and
/// im2col on the 128-channel 14x14 and 256-channel 7x7 ones (by 20%), a
/// few % on the 64-channel ones; far slower on the 512-channel 4x4 one,
/// whose `[36][C][O]` sums (38 MB per thread) are read and written once per
/// panel of 64 tiles.
pub fn weight_gradient_pays(g: &ConvGeometry) -> bool {
    g.c.min(g.o) >= 64 && g.c * g.o <= 256 * 256
}

/// `G g` for one column `g` of 3 values.
fn g_times([g0, g1, g2]: [f32; 3]) -> [f32; TILE] {
    const SIXTH: f32 = 1.0 / 6.0;
    let (outer, even) = (g0 + g2, g0 * 0.25 + g2);
    [
        g0 * 0.25,
        -(outer + g1) * SIXTH,
        -(outer - g1) * SIXTH,
        (even + 0.5 * g1) * SIXTH,
        (even - 0.5 * g1) * SIXTH,
        g2,
    ]
}

/// `G k Gᵀ` (6x6, row-major) of the 3x3 kernel `k(a, b)`.
fn transform_kernel(k: impl Fn(usize, usize) -> f32) -> [f32; XI] {
    // G k: combine the rows of k, column by column; then each row's columns.
    let cols = [0, 1, 2].map(|b| g_times([k(0, b), k(1, b), k(2, b)]));
    let mut out = [0.0f32; XI];
    for (r, dst) in out.chunks_exact_mut(TILE).enumerate() {
        dst.copy_from_slice(&g_times([cols[0][r], cols[1][r], cols[2][r]]));
    }
    out
}

/// `U` in the order the packed kernel reads it: for each chunk of [`KC`]
/// channels, for each `ξ`, for each block of [`NR`] output channels, `kc`
/// rows of `NR` (channels past `O` zero). `ws` is `[O, C, 3, 3]`.
fn pack_weights(ws: &[f32], o: usize, c: usize) -> Vec<f32> {
    // Every kernel's `U`, `[O][C]`, then the packed order, all on the
    // threads rather than on the calling one alone while the others wait.
    let us: Vec<[f32; XI]> = ws[..o * c * 9]
        .par_chunks(9)
        .map(|k| transform_kernel(|a, b| k[a * 3 + b]))
        .collect();
    let blocks = o.div_ceil(NR);
    let mut chunks: Vec<Vec<f32>> = (0..c)
        .step_by(KC)
        .map(|c0| {
            let kc = (c - c0).min(KC);
            // Piece `r` is block `r % blocks` at `ξ = r / blocks`: `[cc][i]`.
            zeroed_pieces_with(
                XI * blocks * kc * NR,
                kc * NR,
                || (),
                |_, r, dst| {
                    let (xi, b) = (r / blocks, r % blocks);
                    for i in 0..NR.min(o - b * NR) {
                        let row = &us[(b * NR + i) * c + c0..][..kc];
                        for (cc, u) in row.iter().enumerate() {
                            dst[cc * NR + i] = u[xi];
                        }
                    }
                },
            )
        })
        .collect();
    if chunks.len() == 1 {
        chunks.pop().unwrap_or_default()
    } else {
        chunks.concat()
    }
}

/// `out[i] = (Bᵀ d)[i]` for the six rows `d[j] = src[j·step..]`, each
/// [`PANEL`] values, elementwise; output row `i` at `out[i·out_step..]`.
#[inline(always)]
fn b_transpose(src: &[f32], step: usize, out: &mut [f32], out_step: usize) {
    let d: [&[f32; PANEL]; TILE] =
        std::array::from_fn(|j| src[j * step..j * step + PANEL].try_into().unwrap());
    let mut rows = out
        .chunks_mut(out_step)
        .map(|row| <&mut [f32; PANEL]>::try_from(&mut row[..PANEL]).unwrap());
    let o: [&mut [f32; PANEL]; TILE] = std::array::from_fn(|_| rows.next().unwrap());
    for l in 0..PANEL {
        let (d0, d1, d2, d3, d4, d5) = (d[0][l], d[1][l], d[2][l], d[3][l], d[4][l], d[5][l]);
        o[0][l] = 4.0 * d0 - 5.0 * d2 + d4;
        o[1][l] = -4.0 * (d1 + d2) + d3 + d4;
        o[2][l] = 4.0 * (d1 - d2) - d3 + d4;
        o[3][l] = 2.0 * (d3 - d1) - d2 + d4;
        o[4][l] = 2.0 * (d1 - d3) - d2 + d4;
        o[5][l] = 4.0 * d1 - 5.0 * d3 + d5;
    }
}

/// `out[i] = (Aᵀ m)[i]` for the six rows `m[j] = src[j·step..]`, four
/// output rows at `out[i·out_step..]`.
#[inline(always)]
fn a_transpose(src: &[f32], step: usize, out: &mut [f32], out_step: usize) {
    let m: [&[f32; PANEL]; TILE] =
        std::array::from_fn(|j| src[j * step..j * step + PANEL].try_into().unwrap());
    let mut rows = out
        .chunks_mut(out_step)
        .map(|row| <&mut [f32; PANEL]>::try_from(&mut row[..PANEL]).unwrap());
    let o: [&mut [f32; PANEL]; OUT] = std::array::from_fn(|_| rows.next().unwrap());
    for l in 0..PANEL {
        let (m0, m1, m2, m3, m4, m5) = (m[0][l], m[1][l], m[2][l], m[3][l], m[4][l], m[5][l]);
        let (sum12, diff12, sum34, diff34) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4);
        o[0][l] = m0 + sum12 + sum34;
        o[1][l] = diff12 + 2.0 * diff34;
        o[2][l] = sum12 + 4.0 * sum34;
        o[3][l] = diff12 + 8.0 * diff34 + m5;
    }
}

/// `out[r] = (A y)[r]` for the four rows `y[i] = src[i·step..][..len]`,
/// six output rows at `out[r·out_step..]`: the adjoint of [`a_transpose`],
/// elementwise along rows of any length (the weight gradient runs it along
/// the output channels).
///
/// ```text
///          | 1  0  0  0 |
///          | 1  1  1  1 |
///      A = | 1 -1  1 -1 |
///          | 1  2  4  8 |
///          | 1 -2  4 -8 |
///          | 0  0  0  1 |
/// ```
#[inline(always)]
fn a_times(src: &[f32], step: usize, out: &mut [f32], out_step: usize, len: usize) {
    let y: [&[f32]; OUT] = std::array::from_fn(|i| &src[i * step..i * step + len]);
    let mut rows = out.chunks_mut(out_step).map(|row| &mut row[..len]);
    let m: [&mut [f32]; TILE] = std::array::from_fn(|_| rows.next().unwrap());
    for e in 0..len {
        let (y0, y1, y2, y3) = (y[0][e], y[1][e], y[2][e], y[3][e]);
        let (even, odd) = (y0 + y2, y1 + y3);
        let (even4, odd2) = (y0 + 4.0 * y2, 2.0 * y1 + 8.0 * y3);
        m[0][e] = y0;
        m[1][e] = even + odd;
        m[2][e] = even - odd;
        m[3][e] = even4 + odd2;
        m[4][e] = even4 - odd2;
        m[5][e] = y3;
    }
}

/// `Gᵀ u` for one column `u` of 6 values: the adjoint of [`g_times`].
fn g_transpose([u0, u1, u2, u3, u4, u5]: [f32; TILE]) -> [f32; 3] {
    const SIXTH: f32 = 1.0 / 6.0;
    let (sum12, diff21, sum34, diff34) = (u1 + u2, u2 - u1, u3 + u4, u3 - u4);
    [
        u0 * 0.25 - sum12 * SIXTH + sum34 * (SIXTH * 0.25),
        (diff21 + 0.5 * diff34) * SIXTH,
        (sum34 - sum12) * SIXTH + u5,
    ]
}

/// Where the tiles of a panel read and write: lane `l` is tile `t0 + l`
/// of the run, numbered image by image, row by row.
struct Panel {
    /// Per lane: the offset in the run's images of the tile's first input
    /// (row `4·ty - p_h`, column `4·tx - p_w` of channel 0; it may lie
    /// in the padding, where nothing is read), and the tile's rows and
    /// columns that fall inside the image.
    from: Vec<(isize, std::ops::Range<usize>, std::ops::Range<usize>)>,
    /// Per lane: the offset in the run's output of the tile's first output
    /// (channel 0), and how many of its rows and columns fall inside the
    /// plane.
    out: Vec<(usize, usize, usize)>,
}

impl Panel {
    fn new(g: &ConvGeometry, t0: usize, total: usize) -> Panel {
        let [th, tw] = [g.oh.div_ceil(OUT), g.ow.div_ceil(OUT)];
        let [p_h, p_w] = g.params.padding.map(|p| p as isize);
        let inside = |start: isize, len: usize| {
            let lo = (-start).clamp(0, TILE as isize) as usize;
            let hi = (len as isize - start).clamp(lo as isize, TILE as isize) as usize;
            lo..hi
        };
        let (mut from, mut out) = (Vec::with_capacity(PANEL), Vec::with_capacity(PANEL));
        for t in t0..total.min(t0 + PANEL) {
            let (img, ty, tx) = (t / (th * tw), t % (th * tw) / tw, t % tw);
            let (i0, j0) = (OUT * ty, OUT * tx);
            let (row, col) = (i0 as isize - p_h, j0 as isize - p_w);
            let image = img * g.c * g.h * g.w;
            from.push((
                image as isize + row * g.w as isize + col,
                inside(row, g.h),
                inside(col, g.w),
            ));
            let at = img * g.o * g.oh * g.ow + i0 * g.ow + j0;
            out.push((at, (g.oh - i0).min(OUT), (g.ow - j0).min(OUT)));
        }
        Panel { from, out }
    }

    /// `taps[(a·6 + b)·PANEL + l] = x[tile l's row a, column b]` of the
    /// channel at `channel` (its offset in an image) for the parts of the
    /// tiles inside their images: row by row, each a short contiguous run
    /// of the input copied into a column of `taps` (as fast as the packed
    /// path's masked gathers measured here, with no lane masks to build).
    fn fill(&self, xs: &[f32], channel: usize, w: usize, taps: &mut [f32]) {
        for (l, (start, rows, cols)) in self.from.iter().enumerate() {
            for a in rows.clone() {
                let at = (start + (channel + a * w + cols.start) as isize) as usize;
                let run = &xs[at..at + cols.len()];
                for (b, &value) in cols.clone().zip(run) {
                    taps[(a * TILE + b) * PANEL + l] = value;
                }
            }
        }
    }

    /// `V[ξ][cc, l] = (Bᵀ d B)[ξ]` for the input tile `d` of lane `l` in
    /// each channel `c0 + cc` of `channels` (`v` holds `36 x kc` rows of
    /// [`PANEL`]). `taps` must hold zeros where no tile reads the image
    /// (they are written only inside it); `half` is scratch.
    #[inline(always)]
    fn transform_inputs(
        &self,
        xs: &[f32],
        g: &ConvGeometry,
        channels: std::ops::Range<usize>,
        taps: &mut [f32],
        half: &mut [f32],
        v: &mut [f32],
    ) {
        let kc = channels.len();
        for (cc, c) in channels.enumerate() {
            self.fill(xs, c * g.h * g.w, g.w, taps);
            // Bᵀ d along the tile's rows (for each column), then along its
            // columns, into row `cc` of each V[ξ].
            for col in 0..TILE {
                let at = col * PANEL;
                b_transpose(&taps[at..], TILE * PANEL, &mut half[at..], TILE * PANEL);
            }
            for r in 0..TILE {
                let dst = &mut v[(r * TILE * kc + cc) * PANEL..];
                b_transpose(&half[r * TILE * PANEL..], PANEL, dst, kc * PANEL);
            }
        }
    }
}

/// `y = conv(x, w)` for a run of whole images `xs` into `y`, one thread;
/// `u` from [`pack_weights`]. Inlined into each instruction set's entry
/// point (`avx512::winograd`, `avx2::winograd`), so that the kernel and
/// the transforms' loops are compiled for it.
#[inline(always)]
pub(super) unsafe fn run<K: Kernels>(xs: &[f32], u: &[f32], g: &ConvGeometry, y: &mut [f32]) {
    let plane = g.oh * g.ow;
    let total = y.len() / (g.o * plane) * g.oh.div_ceil(OUT) * g.ow.div_ceil(OUT);
    let blocks = g.o.div_ceil(NR);
    let rows = blocks * NR;
    let mut scratch = SCRATCH.take();
    let sizes = [
        XI * PANEL,
        XI * PANEL,
        XI * g.c.min(KC) * PANEL,
        XI * rows * PANEL,
    ];
    scratch.resize(scratch.len().max(sizes.iter().sum()), 0.0);
    let (taps, rest) = scratch.split_at_mut(sizes[0]);
    let (half, rest) = rest.split_at_mut(sizes[1]);
    let (v, rest) = rest.split_at_mut(sizes[2]);
    let m = &mut rest[..sizes[3]];
    let mut half_out = [0.0f32; TILE * OUT * PANEL];
    let mut tile = [0.0f32; OUT * OUT * PANEL];
    for t0 in (0..total).step_by(PANEL) {
        let panel = Panel::new(g, t0, total);
        // Taps outside the image, and lanes past the run's end, stay 0.
        taps.fill(0.0);
        for c0 in (0..g.c).step_by(KC) {
            let kc = (g.c - c0).min(KC);
            panel.transform_inputs(xs, g, c0..c0 + kc, taps, half, v);
            let weights = &u[c0 * XI * rows..];
            for xi in 0..XI {
                let vxi = &v[xi * kc * PANEL..(xi + 1) * kc * PANEL];
                for b in 0..blocks {
                    let at = (xi * blocks + b) * kc * NR;
                    let out = &mut m[(xi * rows + b * NR) * PANEL..][..NR * PANEL];
                    // SAFETY: the CPU checked; the slices hold kc·NR,
                    // kc·PANEL and NR·PANEL values.
                    unsafe { K::kernel(kc, &weights[at..at + kc * NR], vxi, out, c0 > 0) };
                }
            }
        }
        for o in 0..g.o {
            // Aᵀ M along each row of the transformed tile, then down its
            // columns.
            for r in 0..TILE {
                let src = &m[(r * TILE * rows + o) * PANEL..];
                a_transpose(src, rows * PANEL, &mut half_out[r * OUT * PANEL..], PANEL);
            }
            for j in 0..OUT {
                let at = j * PANEL;
                a_transpose(&half_out[at..], OUT * PANEL, &mut tile[at..], OUT * PANEL);
            }
            for (l, &(at, h, w)) in panel.out.iter().enumerate() {
                let at = at + o * plane;
                for i in 0..h {
                    let row = &mut y[at + i * g.ow..at + i * g.ow + w];
                    for (j, dst) in row.iter_mut().enumerate() {
                        *dst = tile[(i * OUT + j) * PANEL + l];
                    }
                }
            }
        }
    }
    SCRATCH.set(scratch);
}

/// Adds `dU[ξ][c, o] = Σ_t V[ξ][c, t] · dM[ξ][t, o]` over the tiles `t` of a
/// run of whole images (`xs`, `dys`) into `dut` (`[36][C][O']`, `O'` = `O`
/// rounded up to 16), one thread. Per panel: `dY`'s tiles are laid out
/// `[position][lane][O']` (zero outside the plane and past the run's end)
/// and `dM = A dY Aᵀ` computed along the output channels, giving `dM[ξ]`
/// as `PANEL` rows of `O'`: the layout the packed weight-gradient kernel
/// reads its `dY` in. Then per chunk of [`KC`] channels `V` is built as in
/// [`run`], and for each `ξ` the kernel multiplies `NR` rows of `V[ξ]`
/// into `dM[ξ]`, summing over the panel's tiles. Inlined into each
/// instruction set's entry point, as [`run`].
#[inline(always)]
pub(super) unsafe fn run_weight_gradient<K: Kernels>(
    xs: &[f32],
    dys: &[f32],
    g: &ConvGeometry,
    dut: &mut [f32],
) {
    let plane = g.oh * g.ow;
    let total = dys.len() / (g.o * plane) * g.oh.div_ceil(OUT) * g.ow.div_ceil(OUT);
    let ld = g.o.next_multiple_of(16);
    let mut scratch = SCRATCH.take();
    let sizes = [
        XI * PANEL,
        XI * PANEL,
        // The kernel reads NR rows from each multiple of NR; the rows past
        // a short chunk's end feed accumulators it throws away.
        (XI * g.c.min(KC) + NR) * PANEL,
        OUT * OUT * PANEL * ld,
        TILE * OUT * ld,
        XI * PANEL * ld,
    ];
    scratch.resize(scratch.len().max(sizes.iter().sum()), 0.0);
    let (taps, rest) = scratch.split_at_mut(sizes[0]);
    let (half, rest) = rest.split_at_mut(sizes[1]);
    let (v, rest) = rest.split_at_mut(sizes[2]);
    let (dyt, rest) = rest.split_at_mut(sizes[3]);
    let (half_dm, rest) = rest.split_at_mut(sizes[4]);
    let dmt = &mut rest[..sizes[5]];
    for t0 in (0..total).step_by(PANEL) {
        let panel = Panel::new(g, t0, total);
        // dyt[(i·4 + j)·PANEL + l][o] = dY[o] at row i, column j of tile l.
        dyt.fill(0.0);
        for (l, &(at, h, w)) in panel.out.iter().enumerate() {
            for i in 0..h {
                for j in 0..w {
                    let dst = &mut dyt[((i * OUT + j) * PANEL + l) * ld..][..g.o];
                    let from = at + i * g.ow + j;
                    for (o, d) in dst.iter_mut().enumerate() {
                        *d = dys[from + o * plane];
                    }
                }
            }
        }
        // A dY along the tile's columns (for each column j), then dY Aᵀ
        // along its rows, into row l of each dM[ξ].
        for l in 0..PANEL {
            for j in 0..OUT {
                let src = &dyt[(j * PANEL + l) * ld..];
                a_times(src, OUT * PANEL * ld, &mut half_dm[j * ld..], OUT * ld, ld);
            }
            for r in 0..TILE {
                let dst = &mut dmt[(r * TILE * PANEL + l) * ld..];
                a_times(&half_dm[r * OUT * ld..], ld, dst, PANEL * ld, ld);
            }
        }
        taps.fill(0.0);
        for c0 in (0..g.c).step_by(KC) {
            let kc = (g.c - c0).min(KC);
            panel.transform_inputs(xs, g, c0..c0 + kc, taps, half, v);
            for xi in 0..XI {
                let d = &dmt[xi * PANEL * ld..(xi + 1) * PANEL * ld];
                for cb in (0..kc).step_by(NR) {
                    let rows = (kc - cb).min(NR);
                    let x = &v[(xi * kc + cb) * PANEL..][..NR * PANEL];
                    let out = &mut dut[(xi * g.c + c0 + cb) * ld..][..rows * ld];
                    // SAFETY: the CPU checked; `x` holds NR·PANEL values,
                    // `d` PANEL rows of `ld`, `out` `rows` rows of `ld`.
                    unsafe { K::kernel_dw(x, d, ld, out, rows) };
                }
            }
        }
    }
    SCRATCH.set(scratch);
}

/// Panics unless it runs at `isa` on this CPU and applies to `g`.
fn check(isa: Isa, g: &ConvGeometry) {
    assert!(
        isa >= Isa::Avx2 && isa.supported() && applies(g),
        "Winograd F(4x4, 3x3): does not apply to {g:?} at level {} on this CPU",
        isa.name()
    );
}

/// [`run`] with the kernels of `isa` (checked by [`check`]).
fn run_at(isa: Isa, xs: &[f32], u: &[f32], g: &ConvGeometry, y: &mut [f32]) {
    match isa {
        // SAFETY: `check` found the level supported by this CPU.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { super::avx512::winograd(xs, u, g, y) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { super::avx2::winograd(xs, u, g, y) },
        isa => unreachable!("Winograd F(4x4, 3x3): no kernels at level {}", isa.name()),
    }
}

/// The forward convolution of geometry `g`: `xs` is `[N, C, H, W]`, `ws`
/// is `[O, C, 3, 3]`; returns `[N, O, OH, OW]`. The batch is split into
/// one run of whole images per thread. Panics unless [`applies`].
pub fn forward(xs: &[f32], ws: &[f32], g: &ConvGeometry) -> Vec<f32> {
    forward_at(simd::active(), xs, ws, g)
}

/// [`forward`] with the kernels of level `isa`.
fn forward_at(isa: Isa, xs: &[f32], ws: &[f32], g: &ConvGeometry) -> Vec<f32> {
    check(isa, g);
    let u = pack_weights(ws, g.o, g.c);
    super::over_threads(xs, g, |xs, y| run_at(isa, xs, &u, g, y))
}

/// The input gradient of a 3x3 stride-1 layer as the forward convolution
/// of `dy` with the turned kernel (see [`super::input_gradient`]); `None`
/// where that does not apply.
pub fn input_gradient(dys: &[f32], ws: &[f32], g: &ConvGeometry) -> Option<Vec<f32>> {
    let (gd, turned) = super::as_forward(ws, g)?;
    applies(&gd).then(|| forward(dys, &turned, &gd))
}

/// The weight gradient, `dW[o, c, a, b] = Σ dY[o, i, j] · x[c, i + a - p_h,
/// j + b - p_w]` over the batch, as the adjoint of the forward transform:
/// `dW = Gᵀ dU G` with `dU[ξ][o, c] = Σ_t (A dY_t Aᵀ)[ξ]_o · (Bᵀ d_t B)[ξ]_c`
/// summed over the 4x4 output tiles `t`
/// (per panel of 64 tiles, on the packed kernels). Each thread sums its run of images into its
/// own `dU`; the runs' sums are added, then transformed. Panics unless
/// [`applies`].
pub fn weight_gradient(dys: &[f32], xs: &[f32], g: &ConvGeometry) -> Vec<f32> {
    weight_gradient_at(simd::active(), dys, xs, g)
}

/// [`weight_gradient`] with the kernels of level `isa`.
fn weight_gradient_at(isa: Isa, dys: &[f32], xs: &[f32], g: &ConvGeometry) -> Vec<f32> {
    check(isa, g);
    let ld = g.o.next_multiple_of(16);
    let (image, per_image) = (g.c * g.h * g.w, g.o * g.positions());
    let len = XI * g.c * ld;
    let dut =
        super::super::cpu::sum_over_groups(g, len, (usize::MAX, 0), |first, count, dut, _, _| {
            let xs = &xs[first * image..(first + count) * image];
            let dys = &dys[first * per_image..(first + count) * per_image];
            match isa {
                // SAFETY: `check` found the level supported by this CPU.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => unsafe { super::avx512::winograd_weight_gradient(xs, dys, g, dut) },
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => unsafe { super::avx2::winograd_weight_gradient(xs, dys, g, dut) },
                isa => unreachable!("Winograd F(4x4, 3x3): no kernels at level {}", isa.name()),
            }
        });
    finish_weight_gradient(&dut, g)
}

/// `dW[o, c] = Gᵀ dU[o, c] G` (3x3 from 6x6) for every pair of channels,
/// `dut` as [`run_weight_gradient`] leaves it; returns `[O, C, 3, 3]`.
/// Blocks of 16 output channels go to the threads; within one, each step
/// runs on 16 lanes (a row of `dut`'s 16 channels) at once.
fn finish_weight_gradient(dut: &[f32], g: &ConvGeometry) -> Vec<f32> {
    const LANES: usize = 16;
    let ld = g.o.next_multiple_of(LANES);
    let mut dw = vec![0.0f32; g.o * g.c * 9];
    dw.par_chunks_mut(LANES * g.c * 9)
        .enumerate()
        .for_each(|(block, dw)| {
            let (o0, count) = (block * LANES, dw.len() / (g.c * 9));
            for c in 0..g.c {
                // u[ξ][lane]: dU[ξ] of output channel o0 + lane.
                let u: [&[f32]; XI] =
                    std::array::from_fn(|xi| &dut[(xi * g.c + c) * ld + o0..][..LANES]);
                // Gᵀ down each column s of dU, then along each row k.
                let mut half = [[[0.0f32; LANES]; 3]; TILE];
                for (s, half) in half.iter_mut().enumerate() {
                    for lane in 0..LANES {
                        let col = g_transpose(std::array::from_fn(|r| u[r * TILE + s][lane]));
                        for (k, v) in col.into_iter().enumerate() {
                            half[k][lane] = v;
                        }
                    }
                }
                let mut out = [[0.0f32; LANES]; 9];
                for a in 0..3 {
                    for lane in 0..LANES {
                        let row = g_transpose(std::array::from_fn(|s| half[s][a][lane]));
                        for (b, v) in row.into_iter().enumerate() {
                            out[a * 3 + b][lane] = v;
                        }
                    }
                }
                for lane in 0..count {
                    let dst = &mut dw[(lane * g.c + c) * 9..][..9];
                    for (d, row) in dst.iter_mut().zip(&out) {
                        *d = row[lane];
                    }
                }
            }
        });
    dw
}

#[cfg(test)]
mod tests {
    use super::super::super::cpu::tests::reference;
    use super::super::super::winograd::tests::random;
    use super::*;
    use crate::ops::conv2d::Conv2dParams;

    #[test]
    fn the_one_dimensional_identity_holds() {
        // Aᵀ[(G g) ⊙ (Bᵀ d)] against the four sums it stands for, on
        // rows of PANEL lanes (lane l scales d by l + 1).
        let d = [0.3f32, -1.2, 2.5, 0.7, -0.4, 1.9];
        let k = [1.5f32, -0.4, 0.9];
        let gk = g_times(k);
        let src: Vec<f32> = (0..TILE)
            .flat_map(|j| (0..PANEL).map(move |l| d[j] * (l + 1) as f32))
            .collect();
        let mut bd = vec![0.0f32; TILE * PANEL];
        b_transpose(&src, PANEL, &mut bd, PANEL);
        let mut prod = vec![0.0f32; TILE * PANEL];
        for r in 0..TILE {
            for l in 0..PANEL {
                prod[r * PANEL + l] = bd[r * PANEL + l] * gk[r];
            }
        }
        let mut y = vec![0.0f32; OUT * PANEL];
        a_transpose(&prod, PANEL, &mut y, PANEL);
        for i in 0..OUT {
            let want = d[i] * k[0] + d[i + 1] * k[1] + d[i + 2] * k[2];
            for l in 0..PANEL {
                let got = y[i * PANEL + l];
                let want = want * (l + 1) as f32;
                assert!(
                    (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                    "y{i} lane {l}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn the_weight_gradient_identity_holds() {
        // Gᵀ[(A dy) ⊙ (Bᵀ d)] against dg_k = Σ_i dy_i · d_{i+k}, the
        // gradient of Σ_i dy_i · y_i with y_i = Σ_k d_{i+k} g_k, on rows
        // of PANEL lanes (lane l scales d by l + 1).
        let d = [0.3f32, -1.2, 2.5, 0.7, -0.4, 1.9];
        let dy = [0.8f32, -0.6, 1.1, 0.25];
        let src: Vec<f32> = (0..TILE)
            .flat_map(|j| (0..PANEL).map(move |l| d[j] * (l + 1) as f32))
            .collect();
        let mut bd = vec![0.0f32; TILE * PANEL];
        b_transpose(&src, PANEL, &mut bd, PANEL);
        let mut ady = vec![0.0f32; TILE];
        a_times(&dy, 1, &mut ady, 1, 1);
        for l in 0..PANEL {
            let prod: [f32; TILE] = std::array::from_fn(|r| bd[r * PANEL + l] * ady[r]);
            let got = g_transpose(prod);
            for k in 0..3 {
                let want: f32 = (0..OUT).map(|i| dy[i] * d[i + k]).sum::<f32>() * (l + 1) as f32;
                assert!(
                    (got[k] - want).abs() <= 1e-4 * (1.0 + want.abs()),
                    "dg{k} lane {l}: {} vs {want}",
                    got[k]
                );
            }
        }
    }

    /// The forward pass and both gradients against the defining sum at
    /// every level this CPU runs, on layers that reach the edges:
    /// planes that are not multiples of 4 (tiles overhanging the plane),
    /// panels that span images and end short, each padding, channel
    /// counts past one chunk of `KC` and not multiples of `NR`.
    #[test]
    fn forward_and_both_gradients_match_the_defining_sum() {
        let cases: [([usize; 4], usize, usize); 8] = [
            ([70, 3, 4, 4], 7, 1),
            ([5, 6, 7, 7], 13, 1),
            ([3, 5, 9, 6], 4, 0),
            ([2, 4, 5, 8], 3, 2),
            ([2, 130, 4, 4], 8, 1),
            ([3, 2, 14, 14], 5, 1),
            ([1, 1, 1, 1], 2, 1),
            ([2, 64, 7, 7], 64, 1),
        ];
        if !super::super::available() {
            let g = ConvGeometry::new(&[1, 1, 4, 4], &[1, 1, 3, 3], Conv2dParams::new(1, 1), "t");
            assert!(!applies(&g));
            eprintln!("skipped: this CPU (or BYOL_CPU_SIMD) gives no AVX2");
            return;
        }
        let levels: Vec<Isa> = [Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|isa| isa.supported())
            .collect();
        for (shape, o, p) in cases {
            let params = Conv2dParams::new(1, p);
            let g = ConvGeometry::new(&shape, &[o, shape[1], 3, 3], params, "t");
            let x = random(g.n * g.c * g.h * g.w, 1);
            let w = random(g.o * g.c * 9, 2);
            let dy = random(g.n * g.o * g.positions(), 3);
            let (y, dx, dw) = reference(&x, &w, &dy, &g);
            // Winograd's rounding grows with the terms summed (measured:
            // the worst error is about a third of this bound).
            let tol = 2e-5 * ((g.c * 9) as f32).sqrt();
            let tol_dx = 2e-5 * ((g.o * 9) as f32).sqrt();
            let mut first: Option<Vec<f32>> = None;
            for &isa in &levels {
                let got = forward_at(isa, &x, &w, &g);
                assert_eq!(got.len(), y.len());
                for (i, (a, b)) in got.iter().zip(&y).enumerate() {
                    assert!(
                        (a - b).abs() <= tol,
                        "{isa:?} {g:?}: y[{i}] = {a}, want {b}"
                    );
                }
                if let Some(y0) = &first {
                    // The levels' kernels sum in the same order and the
                    // transforms are the same loops, compiled for each.
                    let same = y0.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{isa:?} {g:?}: y differs from AVX2's bits");
                }
                first = Some(got);
            }
            let got = input_gradient(&dy, &w, &g).expect("padding at most 2");
            assert_eq!(got.len(), dx.len());
            for (i, (a, b)) in got.iter().zip(&dx).enumerate() {
                assert!((a - b).abs() <= tol_dx, "{g:?}: dx[{i}] = {a}, want {b}");
            }
            // The weight gradient sums over every output of the batch
            // (measured: the worst error is about a third of this bound).
            let tol_dw = 1e-5 * ((g.n * g.positions()) as f32).sqrt();
            let mut first: Option<Vec<f32>> = None;
            for &isa in &levels {
                let got = weight_gradient_at(isa, &dy, &x, &g);
                assert_eq!(got.len(), dw.len());
                for (i, (a, b)) in got.iter().zip(&dw).enumerate() {
                    assert!(
                        (a - b).abs() <= tol_dw,
                        "{isa:?} {g:?}: dw[{i}] = {a}, want {b}"
                    );
                }
                if let Some(dw0) = &first {
                    let same = dw0
                        .iter()
                        .zip(&got)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{isa:?} {g:?}: dw differs from AVX2's bits");
                }
                first = Some(got);
            }
        }
    }

    #[test]
    fn only_3x3_stride_1_layers_with_padding_up_to_2_apply() {
        let g = |k: usize, s: usize, p: usize| {
            ConvGeometry::new(
                &[1, 64, 9, 9],
                &[64, 64, k, k],
                Conv2dParams::new(s, p),
                "t",
            )
        };
        let simd = super::super::available();
        assert_eq!(applies(&g(3, 1, 1)), simd);
        assert_eq!(applies(&g(3, 1, 0)), simd);
        assert_eq!(applies(&g(3, 1, 2)), simd);
        assert!(!applies(&g(3, 2, 1)));
        assert!(!applies(&g(1, 1, 0)));
        assert!(!applies(&g(5, 1, 2)));
    }
}
