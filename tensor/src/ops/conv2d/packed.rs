//! The convolution as an implicit GEMM on AVX2 or AVX-512: the column matrix is
//! never written out; its values are gathered from the images straight
//! into the small packed panels the multiply kernel reads.
//!
//! **What it replaces.** The im2col path (`conv2d/cpu.rs`) copies every
//! image into a column matrix (`C·KH·KW` rows, one column per output
//! position), then the `gemm` crate copies that matrix once more into its
//! packed panels before multiplying. On the deep layers of a ResNet on
//! small images (7x7 and 4x4 planes) those two copies, many of them a few
//! values long, and the copy of a group's product back into the images are
//! a large share of the layer's time (the `conv_layers` benchmark). Here
//! the panel is the only copy.
//!
//! **The product.** With `K = C·KH·KW`, `k = (c·KH + a)·KW + b`, and the
//! output positions of the whole batch numbered `t = image·P + i·OW + j`:
//!
//! ```text
//! y[image, o, i, j] = Σ_k  W[o, k] · X[k, t]
//! X[k, t]           = x[image, c, s·i + a - p_h, s·j + b - p_w]   (0 outside the image)
//! ```
//!
//! The positions go in panels of [`PANEL`] (four AVX-512 vectors), which may
//! span several images (a 4x4 plane has 16 positions: one panel holds four
//! images). For each panel and each chunk of [`KC`] values of `k`, the
//! panel `X[k0..k0+KC, t0..t0+64]` (32 KB, in the L1 cache) is gathered
//! from the images: per `k` masked gathers (or masked loads), lane `l` reading
//! `base[l] + offset(c, a, b)`, where `base[l]` is the image and input
//! position of output `t0 + l` and the mask says whether the tap falls
//! inside the image (outside, the lane is 0, which is the padding). Then
//! for each block of [`NR`] output channels the kernel multiplies the
//! weights' packed `KC x 6` block into the panel (with AVX-512, 24
//! vector accumulators: 6 channels x 64 positions; with AVX2, which has
//! half the registers and half the lanes, the 64 positions in four strips
//! of 16). The accumulators go to a staging block `[O, 64]`, added to it
//! after the first chunk; when the panel's last chunk is done the block is
//! copied out to the images.
//!
//! **Where it runs.** On a CPU with AVX2 and FMA or with AVX-512, at the
//! `BYOL_CPU_SIMD` level the CPU runs (the kernels of each set are in
//! `packed/avx2.rs` and `packed/avx512.rs`; they sum in the same order, so
//! both give the same bits); with neither (or at level `baseline`) the
//! im2col path runs. [`super::CpuConv::for_layer`] picks it by shape,
//! from the `conv_layers` benchmark. The input gradient of a stride-1
//! layer is a forward convolution of the output gradient (the kernel turned
//! half a turn, its channels swapped), so it runs here too. The weight
//! gradient, `dW[o, k] = Σ_t dY[o, t] · X[k, t]`, reads the same gathered
//! panels, with the roles turned: the sum runs over the panel's positions,
//! the vectors along the output channels of `dY` laid out `[t][O]`
//! ([`weight_gradient`]; its own rule, [`weight_gradient_pays`]).

use super::ConvGeometry;
use crate::backend::cpu::simd::{self, Isa};
use crate::backend::cpu::zeroed_pieces_with;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod winograd;

/// Output positions per panel: four vectors of 16 `f32`.
pub const PANEL: usize = 64;
/// Output channels per kernel call (the panel's 4 vectors x 6 channels =
/// 24 accumulators, of the 32 vector registers).
pub const NR: usize = 6;
/// Values of the inner dimension per panel chunk: `KC x PANEL` floats,
/// 32 KB, stays in the L1 cache while every channel block reads it.
pub const KC: usize = 128;

/// Whether this CPU (and the `BYOL_CPU_SIMD` setting) runs the packed
/// kernels: AVX2 with FMA, or AVX-512.
pub fn available() -> bool {
    cfg!(target_arch = "x86_64") && simd::active() >= Isa::Avx2
}

/// Whether the packed forward pass computes this convolution: the CPU has
/// AVX2 or AVX-512, the layer is not a 1x1 stride-1 product (that one is a plain
/// GEMM on the images already), and the gather offsets of a panel's
/// images fit in 32 bits.
pub fn applies(g: &ConvGeometry) -> bool {
    available() && suits(g)
}

/// The shape half of [`applies`]: not a 1x1 stride-1 product, and the
/// gather offsets of a panel's images fit in 32 bits.
fn suits(g: &ConvGeometry) -> bool {
    let image = g.c * g.h * g.w;
    !g.is_pointwise() && image.saturating_mul(PANEL + 1) < i32::MAX as usize
}

/// Whether the packed convolution is faster than im2col for a layer it
/// [`applies`] to (where Winograd does not pay; see
/// [`super::CpuConv::for_layer`]): output planes of at most 64 positions
/// (8x8; a panel then spans whole images, where im2col's copies and the
/// copy of a group's product back into the images cost most), a kernel
/// larger than 1x1, at least 64 input channels and at most 128·128 weights
/// per tap (beyond, the product dominates the copies). From the
/// `conv_layers` benchmark on a ResNet-18 at widths 16 and 64, and the BYOL
/// step: faster than im2col on such layers, forward and input gradient; on
/// 1x1 stride-2 layers, larger planes and the wider stride-2 layers of
/// width 64 even or slower. (The 32-channel stride-2 layer of width 16 is
/// faster packed too, but by a negligible share of a step, and leaving
/// 32-channel layers on im2col keeps the width-4 network of the 200-step
/// PyTorch trajectory test on the float order it was calibrated with: a
/// BYOL run turns any change of order into a different trajectory.)
pub fn pays(g: &ConvGeometry) -> bool {
    g.positions() <= 64 && g.kh * g.kw > 1 && g.c >= 64 && g.c * g.o <= 128 * 128
}

/// Whether the packed weight gradient is faster than im2col's for a layer
/// it [`applies`] to: output planes of at most 16 positions (4x4), at
/// least 64 input channels and at most 128·128 weights per tap, 1x1
/// kernels included. From the `conv_layers` benchmark at width 16: faster
/// on the 4x4 outputs (the 128-channel 3x3 layer, the stride-2 3x3 and 1x1
/// layers from 64 channels), slower on the 64-channel 7x7 layer and the
/// narrower ones: the cost of gathering a panel is shared by the layer's
/// output channels, half as many there as on the 128-channel layers, while
/// im2col copies a 7x7 or larger plane in long runs.
pub fn weight_gradient_pays(g: &ConvGeometry) -> bool {
    g.positions() <= 16 && g.c >= 64 && g.c * g.o <= 128 * 128
}

/// The weights in the order the kernel reads them: for each chunk of
/// `KC` values of `k`, for each block of `NR` output channels, `kc` rows
/// of `NR` (channels past `O` are zero).
fn pack_weights(ws: &[f32], o: usize, k: usize) -> Vec<f32> {
    let blocks = o.div_ceil(NR);
    let mut packed = Vec::with_capacity(blocks * NR * k);
    for k0 in (0..k).step_by(KC) {
        let kc = (k - k0).min(KC);
        for b in 0..blocks {
            for kk in 0..kc {
                for i in 0..NR {
                    let oi = b * NR + i;
                    packed.push(if oi < o { ws[oi * k + k0 + kk] } else { 0.0 });
                }
            }
        }
    }
    packed
}

/// Where each lane of a panel reads and writes.
struct Lanes {
    /// Offset, from the panel's first image, of input position
    /// `(s·i, s·j)` in channel 0 of the lane's image.
    base: [i32; PANEL],
    /// Offset in the output run of the lane's `y[image, 0, i, j]`.
    out: [usize; PANEL],
    /// Per kernel tap `(a, b)` and vector, the lanes whose tap falls inside
    /// the image.
    masks: Vec<[u16; PANEL / 16]>,
    /// Lanes that are output positions (the batch's last panel may be
    /// short).
    count: usize,
    /// Per vector, whether `base` rises by one from lane to lane (as on a
    /// stride-1 layer whose output plane is as wide as its input): then
    /// every tap reads 16 consecutive values, and a masked load replaces
    /// the gather.
    consecutive: [bool; PANEL / 16],
}

impl Lanes {
    /// The lanes of the panel starting at position `t0` of a run of
    /// `total` positions, relative to image `first` of the run.
    fn new(g: &ConvGeometry, t0: usize, total: usize) -> (Lanes, usize) {
        let p = g.positions();
        let [s_h, s_w] = g.params.stride;
        let [p_h, p_w] = g.params.padding;
        let first = t0 / p;
        let taps = g.kh * g.kw;
        const _: () = assert!(PANEL == 64, "lane masks are u64");
        let mut lanes = Lanes {
            base: [0; PANEL],
            out: [0; PANEL],
            masks: vec![[0u16; PANEL / 16]; taps],
            count: (total - t0).min(PANEL),
            consecutive: [false; PANEL / 16],
        };
        // Per lane, which kernel rows `a` and columns `b` fall inside the
        // image, as bit masks over the lanes; tap (a, b)'s mask is the AND.
        let mut rows = vec![0u64; g.kh];
        let mut cols = vec![0u64; g.kw];
        let (mut image, mut i, mut j) = (first, (t0 % p) / g.ow, (t0 % p) % g.ow);
        for l in 0..lanes.count {
            let (row, col) = (s_h * i, s_w * j);
            lanes.base[l] = ((image - first) * g.c * g.h * g.w + row * g.w + col) as i32;
            lanes.out[l] = image * g.o * p + i * g.ow + j;
            for (a, m) in rows.iter_mut().enumerate() {
                if (row + a).checked_sub(p_h).is_some_and(|r| r < g.h) {
                    *m |= 1 << l;
                }
            }
            for (b, m) in cols.iter_mut().enumerate() {
                if (col + b).checked_sub(p_w).is_some_and(|c| c < g.w) {
                    *m |= 1 << l;
                }
            }
            j += 1;
            if j == g.ow {
                (i, j) = (i + 1, 0);
                if i == g.oh {
                    (image, i) = (image + 1, 0);
                }
            }
        }
        for (a, row) in rows.iter().enumerate() {
            for (b, col) in cols.iter().enumerate() {
                let both = row & col;
                for (v, mask) in lanes.masks[a * g.kw + b].iter_mut().enumerate() {
                    *mask = (both >> (16 * v)) as u16;
                }
            }
        }
        for v in 0..PANEL / 16 {
            let run = &lanes.base[16 * v..16 * (v + 1)];
            lanes.consecutive[v] =
                16 * (v + 1) <= lanes.count && run.windows(2).all(|pair| pair[1] == pair[0] + 1);
        }
        (lanes, first)
    }
}

/// The three kernels of one instruction set ([`avx512`], [`avx2`]); the
/// drivers [`run`] and [`run_weight_gradient`] are written once over them
/// and compiled into each set's entry points, where the kernels inline.
trait Kernels {
    /// Row `dst` (64 values) of a panel: `dst[l] = src[base[l] + offset]`
    /// where lane `l`'s bit in `masks` is set (the tap falls inside the
    /// image), else 0; `base` from `lanes`.
    unsafe fn gather(src: &[f32], lanes: &Lanes, offset: i32, masks: &[u16; 4], dst: &mut [f32]);

    /// `out[i, l] (+)= Σ_kk w[kk, i] · panel[kk, l]` for the `NR x PANEL`
    /// block: `w` is `kc x NR`, `panel` is `kc x PANEL`, `out` is
    /// `NR x PANEL`; `add` adds onto `out` instead of overwriting it. Each
    /// output sums its `kc` products in order of `kk`.
    unsafe fn kernel(kc: usize, w: &[f32], panel: &[f32], out: &mut [f32], add: bool);

    /// `out[i, o] += Σ_l x[i, l] · d[l, o]` for `i < rows` (of `NR`), `l`
    /// over the panel's 64 positions (in order) and `o` over all `ld`
    /// channels (a multiple of 16): `x` is the panel's `NR x PANEL` rows,
    /// `d` the transposed `dY` (`PANEL` rows of `ld`) and `out` rows of
    /// `ld` in the `[K][O']` accumulator.
    unsafe fn kernel_dw(x: &[f32], d: &[f32], ld: usize, out: &mut [f32], rows: usize);
}

/// `y = conv(x, w)` for a run of whole images `xs` (`[n, C, H, W]`) into
/// `y` (`[n, O, OH, OW]`), one thread; `packed` from [`pack_weights`].
/// Inlined into each instruction set's entry point (`avx512::run`,
/// `avx2::run`), so that the gathers and the kernel inline into it.
#[inline(always)]
unsafe fn run<K: Kernels>(xs: &[f32], packed: &[f32], g: &ConvGeometry, y: &mut [f32]) {
    let (p, k, taps) = (g.positions(), g.col_rows(), g.kh * g.kw);
    let image = g.c * g.h * g.w;
    let total = y.len() / g.o;
    let blocks = g.o.div_ceil(NR);
    let mut panel = vec![0.0f32; KC * PANEL];
    let mut staging = vec![0.0f32; blocks * NR * PANEL];
    let offsets = tap_offsets(g);
    for t0 in (0..total).step_by(PANEL) {
        let (lanes, first) = Lanes::new(g, t0, total);
        let from = &xs[first * image..];
        for k0 in (0..k).step_by(KC) {
            let kc = (k - k0).min(KC);
            // SAFETY: the entry point's caller checked the CPU; `from`
            // starts at the panel's first image.
            unsafe { gather_panel::<K>(from, &lanes, &offsets[k0..k0 + kc], taps, k0, &mut panel) };
            let weights = &packed[k0 * blocks * NR..];
            for b in 0..blocks {
                let w = &weights[b * kc * NR..(b + 1) * kc * NR];
                let out = &mut staging[b * NR * PANEL..(b + 1) * NR * PANEL];
                // SAFETY: the CPU checked; the slices hold kc·NR, kc·PANEL
                // and NR·PANEL values.
                unsafe { K::kernel(kc, w, &panel, out, k0 > 0) };
            }
        }
        for o in 0..g.o {
            let row = &staging[o * PANEL..o * PANEL + lanes.count];
            for (l, &v) in row.iter().enumerate() {
                y[lanes.out[l] + o * p] = v;
            }
        }
    }
}

/// For every row `k = (c·KH + a)·KW + b` of the column matrix, where its
/// tap reads relative to input position `(s·i, s·j)` of channel 0:
/// `c·H·W + (a - p_h)·W + (b - p_w)`.
fn tap_offsets(g: &ConvGeometry) -> Vec<i32> {
    let taps = g.kh * g.kw;
    (0..g.col_rows())
        .map(|kk| {
            let (c, tap) = (kk / taps, kk % taps);
            let (a, b) = (tap / g.kw, tap % g.kw);
            (c * g.h * g.w) as i32
                + (a as i32 - g.params.padding[0] as i32) * g.w as i32
                + (b as i32 - g.params.padding[1] as i32)
        })
        .collect()
}

/// Rows `0..offsets.len()` of `panel`: row `kk` is `X[k0 + kk, t]` for the
/// panel's 64 positions `t`, gathered from `from` (the images from the
/// panel's first), `offsets` being [`tap_offsets`] of those rows.
#[inline(always)]
unsafe fn gather_panel<K: Kernels>(
    from: &[f32],
    lanes: &Lanes,
    offsets: &[i32],
    taps: usize,
    k0: usize,
    panel: &mut [f32],
) {
    for (kk, (&offset, dst)) in offsets
        .iter()
        .zip(panel.chunks_exact_mut(PANEL))
        .enumerate()
    {
        let tap = (k0 + kk) % taps;
        // SAFETY: the caller checked the CPU; a lane reads only where its
        // mask is set, which `Lanes::new` set only for taps inside an
        // image of the run.
        unsafe { K::gather(from, lanes, offset, &lanes.masks[tap], dst) };
    }
}

/// Panics unless the packed kernels run at `isa` on this CPU and the
/// layer's shape suits them.
fn check(isa: Isa, g: &ConvGeometry) {
    assert!(
        isa >= Isa::Avx2 && isa.supported() && suits(g),
        "packed conv2d: does not apply to {g:?} at level {} on this CPU",
        isa.name()
    );
}

/// [`run`] with the kernels of `isa` (checked by [`check`]).
fn run_at(isa: Isa, xs: &[f32], packed: &[f32], g: &ConvGeometry, y: &mut [f32]) {
    match isa {
        // SAFETY: `check` found the level supported by this CPU.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { avx512::run(xs, packed, g, y) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { avx2::run(xs, packed, g, y) },
        isa => unreachable!("packed conv2d: no kernels at level {}", isa.name()),
    }
}

/// [`run_weight_gradient`] with the kernels of `isa` (checked by
/// [`check`]).
fn run_weight_gradient_at(isa: Isa, xs: &[f32], dys: &[f32], g: &ConvGeometry, dwt: &mut [f32]) {
    match isa {
        // SAFETY: `check` found the level supported by this CPU.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { avx512::run_weight_gradient(xs, dys, g, dwt) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { avx2::run_weight_gradient(xs, dys, g, dwt) },
        isa => unreachable!("packed conv2d: no kernels at level {}", isa.name()),
    }
}

/// The forward convolution of geometry `g`: `xs` is `[N, C, H, W]`, `ws`
/// is `[O, C, KH, KW]`; returns `[N, O, OH, OW]`. The batch is split into
/// one run of whole images per thread. Panics unless [`applies`].
pub fn forward(xs: &[f32], ws: &[f32], g: &ConvGeometry) -> Vec<f32> {
    forward_at(simd::active(), xs, ws, g)
}

/// [`forward`] with the kernels of level `isa` (the tests run each level
/// this CPU has).
fn forward_at(isa: Isa, xs: &[f32], ws: &[f32], g: &ConvGeometry) -> Vec<f32> {
    check(isa, g);
    let packed = pack_weights(ws, g.o, g.col_rows());
    over_threads(xs, g, |xs, y| run_at(isa, xs, &packed, g, y))
}

/// Splits the batch into one run of whole images per thread and returns
/// `[N, O, OH, OW]`, each run's outputs written by `run(xs, y)` from that
/// run's images (each thread zeroes its run's outputs first, see
/// [`zeroed_pieces_with`]).
fn over_threads(
    xs: &[f32],
    g: &ConvGeometry,
    run: impl Fn(&[f32], &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let (image, per_image) = (g.c * g.h * g.w, g.o * g.positions());
    let per = g.n.div_ceil(rayon::current_num_threads());
    zeroed_pieces_with(
        g.n * per_image,
        per * per_image,
        || (),
        |_, r, run_y| {
            let count = run_y.len() / per_image;
            run(&xs[r * per * image..(r * per + count) * image], run_y);
        },
    )
}

/// The input gradient of a stride-1 convolution as a forward one: with
/// `p' = K - 1 - p` per axis, `dx = conv(dy, w')`, padding `p'`, where
/// `w'[c, o, a, b] = w[o, c, KH - 1 - a, KW - 1 - b]`, `None` when the layer is
/// strided or its padding exceeds `K - 1` (then the caller runs col2im).
///
/// Why it holds: `y[o, i, j] = Σ w[o, c, a, b]·x[c, i + a - p, j + b - p]`, so
/// `dx[c, u, v] = Σ dy[o, u - a + p, v - b + p]·w[o, c, a, b]`; with
/// `a' = K - 1 - a` the row read is `u + a' - (K - 1 - p)`: a correlation
/// of `dy` with the turned kernel and padding `K - 1 - p`.
pub fn input_gradient(dys: &[f32], ws: &[f32], g: &ConvGeometry) -> Option<Vec<f32>> {
    let (gd, turned) = as_forward(ws, g)?;
    applies(&gd).then(|| forward(dys, &turned, &gd))
}

/// The input gradient of the stride-1 layer `g` with weights `ws` as a
/// forward convolution: its geometry (input `dy`, padding `K - 1 - p`)
/// and the turned kernel `w'[c, o, a, b] = w[o, c, KH - 1 - a, KW - 1 - b]`;
/// `None` when the layer is strided or its padding exceeds `K - 1` (see
/// [`input_gradient`] for why it holds).
pub(super) fn as_forward(ws: &[f32], g: &ConvGeometry) -> Option<(ConvGeometry, Vec<f32>)> {
    let [p_h, p_w] = g.params.padding;
    if g.params.stride != [1, 1] || p_h >= g.kh || p_w >= g.kw {
        return None;
    }
    let params = super::Conv2dParams {
        stride: [1, 1],
        padding: [g.kh - 1 - p_h, g.kw - 1 - p_w],
    };
    let gd = ConvGeometry::new(
        &[g.n, g.o, g.oh, g.ow],
        &[g.c, g.o, g.kh, g.kw],
        params,
        "conv2d_backward_input",
    );
    debug_assert_eq!([gd.oh, gd.ow], [g.h, g.w]);
    let (kh, kw) = (g.kh, g.kw);
    let mut turned = vec![0.0f32; g.c * g.o * kh * kw];
    for o in 0..g.o {
        for c in 0..g.c {
            for a in 0..kh {
                for b in 0..kw {
                    turned[((c * g.o + o) * kh + a) * kw + b] =
                        ws[((o * g.c + c) * kh + (kh - 1 - a)) * kw + (kw - 1 - b)];
                }
            }
        }
    }
    Some((gd, turned))
}

/// The weight gradient, `dW[o, k] = Σ_t dY[o, t] · X[k, t]` over every
/// output position `t` of the batch, with the same panels as the forward
/// pass: per panel of 64 positions, `dY`'s 64 columns are laid out
/// transposed, `[t][O]` (`O` rounded up to a multiple of 16, the extra
/// channels zero), and for each chunk of `k` the gathered panel
/// `X[k0..k0+KC, t0..t0+64]` is multiplied into the `[K][O]` accumulator
/// of the thread by `kernel_dw`: 6 rows of `k` against 64 channels, the
/// sum running over the panel's 64 positions. Each thread sums its run of
/// images; the runs' sums are added, then turned to `[O, K]`. Panics
/// unless [`applies`].
pub fn weight_gradient(dys: &[f32], xs: &[f32], g: &ConvGeometry) -> Vec<f32> {
    weight_gradient_at(simd::active(), dys, xs, g)
}

/// [`weight_gradient`] with the kernels of level `isa`.
fn weight_gradient_at(isa: Isa, dys: &[f32], xs: &[f32], g: &ConvGeometry) -> Vec<f32> {
    check(isa, g);
    let (k, p) = (g.col_rows(), g.positions());
    let padded = g.o.next_multiple_of(16);
    let (image, per_image) = (g.c * g.h * g.w, g.o * p);
    // Each thread's whole run of images in one call (a group without
    // bound), the runs' sums added.
    let dwt =
        super::cpu::sum_over_groups(g, k * padded, (usize::MAX, 0), |first, count, dwt, _, _| {
            let xs = &xs[first * image..(first + count) * image];
            let dys = &dys[first * per_image..(first + count) * per_image];
            run_weight_gradient_at(isa, xs, dys, g, dwt);
        });
    super::cpu::from_transposed(&dwt, padded, g.o, k)
}

/// Adds `Σ_t X[k, t] · dY[o, t]` over the positions of a run of whole
/// images (`xs`, `dys`) into `dwt` (`[K][O']`, `O'` = `O` rounded up to
/// 16), one thread.
/// Inlined into each instruction set's entry point, as [`run`].
#[inline(always)]
unsafe fn run_weight_gradient<K: Kernels>(
    xs: &[f32],
    dys: &[f32],
    g: &ConvGeometry,
    dwt: &mut [f32],
) {
    let (p, k, taps) = (g.positions(), g.col_rows(), g.kh * g.kw);
    let padded = g.o.next_multiple_of(16);
    let total = dys.len() / g.o;
    let image = g.c * g.h * g.w;
    // The kernel reads NR rows of the panel from each multiple of NR; the
    // rows past a short chunk's end feed accumulators it throws away.
    let mut panel = vec![0.0f32; (KC + NR) * PANEL];
    let mut dyt = vec![0.0f32; PANEL * padded];
    let offsets = tap_offsets(g);
    for t0 in (0..total).step_by(PANEL) {
        let (lanes, first) = Lanes::new(g, t0, total);
        let from = &xs[first * image..];
        // dyt[l][o] = dY[o, t0 + l]; lanes past the run's end stay 0.
        dyt.fill(0.0);
        for (l, row) in dyt.chunks_exact_mut(padded).take(lanes.count).enumerate() {
            for (o, v) in row[..g.o].iter_mut().enumerate() {
                *v = dys[lanes.out[l] + o * p];
            }
        }
        for k0 in (0..k).step_by(KC) {
            let kc = (k - k0).min(KC);
            // SAFETY: as in `run`.
            unsafe { gather_panel::<K>(from, &lanes, &offsets[k0..k0 + kc], taps, k0, &mut panel) };
            for kb in (0..kc).step_by(NR) {
                let rows = (kc - kb).min(NR);
                let x = &panel[kb * PANEL..(kb + NR) * PANEL];
                let out = &mut dwt[(k0 + kb) * padded..(k0 + kb + rows) * padded];
                // SAFETY: the CPU checked; `x` holds NR·PANEL values, `dyt`
                // PANEL rows of `padded`, `out` `rows` rows of `padded`.
                unsafe { K::kernel_dw(x, &dyt, padded, out, rows) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::cpu::tests::reference;
    use super::super::{
        conv2d_backward_input_cpu_with, conv2d_backward_weight_cpu_with, conv2d_cpu_with, CpuConv,
    };
    use super::*;
    use crate::{Conv2dParams, Device, Tensor};

    /// The packed forward pass and both gradients against the defining
    /// sum, on layers chosen to reach every edge: panels that span images
    /// and end short, channel counts that are not multiples of `NR` (or,
    /// for the weight gradient's 16-channel vectors, of 16 and 64), inner
    /// dimensions longer than `KC` (and a last chunk of other length),
    /// strides, paddings 0 to 3, non-square kernels and planes, 1x1 stride 2.
    #[test]
    fn forward_and_gradients_match_the_defining_sum() {
        let cases: [([usize; 4], [usize; 4], Conv2dParams); 11] = [
            ([5, 3, 4, 4], [7, 3, 3, 3], Conv2dParams::new(1, 1)),
            ([2, 6, 5, 5], [70, 6, 3, 3], Conv2dParams::new(1, 1)),
            ([3, 4, 6, 6], [40, 4, 3, 3], Conv2dParams::new(2, 1)),
            ([3, 20, 7, 7], [13, 20, 3, 3], Conv2dParams::new(1, 1)),
            ([2, 16, 9, 6], [5, 16, 3, 3], Conv2dParams::new(1, 0)),
            ([4, 9, 8, 8], [6, 9, 3, 3], Conv2dParams::new(2, 1)),
            ([3, 33, 7, 7], [8, 33, 1, 1], Conv2dParams::new(2, 0)),
            ([2, 4, 11, 13], [3, 4, 5, 5], Conv2dParams::new(1, 2)),
            ([2, 5, 10, 9], [4, 5, 7, 7], Conv2dParams::new(2, 3)),
            ([1, 2, 3, 3], [1, 2, 3, 3], Conv2dParams::new(1, 2)),
            (
                [2, 3, 8, 17],
                [2, 3, 2, 5],
                Conv2dParams {
                    stride: [1, 3],
                    padding: [1, 2],
                },
            ),
        ];
        if !available() {
            // Without AVX2 the packed path must refuse, not run.
            let g = ConvGeometry::new(&cases[0].0, &cases[0].1, cases[0].2, "t");
            assert!(!applies(&g));
            eprintln!("skipped: this CPU (or BYOL_CPU_SIMD) gives no AVX2");
            return;
        }
        // Every level whose kernels this CPU runs: AVX2, and AVX-512 where
        // the CPU has it (then both are checked, and must agree bit for bit).
        let levels: Vec<Isa> = [Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|isa| isa.supported())
            .collect();
        eprintln!("packed kernels checked at {levels:?}");
        let d = Device::Cpu;
        for (x_shape, w_shape, params) in cases {
            let g = ConvGeometry::new(&x_shape, &w_shape, params, "t");
            let x = Tensor::randn(&x_shape, 0.0, 1.0, 1, &d);
            let w = Tensor::randn(&w_shape, 0.0, 1.0, 2, &d);
            let dy = Tensor::randn(&[g.n, g.o, g.oh, g.ow], 0.0, 1.0, 3, &d);
            let (xv, wv, dyv) = (x.to_vec(), w.to_vec(), dy.to_vec());
            let (y, dx, dw) = reference(&xv, &wv, &dyv, &g);
            let tol = 1e-4 * ((g.col_rows() * g.o) as f32).sqrt();
            // The weight gradient sums over every position of the batch.
            let tol_dw = 1e-4 * ((g.n * g.positions()) as f32).sqrt();
            let mut first: Option<(Vec<f32>, Vec<f32>)> = None;
            for &isa in &levels {
                let got = forward_at(isa, &xv, &wv, &g);
                assert_eq!(got.len(), y.len());
                for (i, (a, b)) in got.iter().zip(&y).enumerate() {
                    assert!(
                        (a - b).abs() <= tol,
                        "{isa:?} {g:?}: y[{i}] = {a}, want {b}"
                    );
                }
                let got_dw = weight_gradient_at(isa, &dyv, &xv, &g);
                assert_eq!(got_dw.len(), dw.len());
                for (i, (a, b)) in got_dw.iter().zip(&dw).enumerate() {
                    assert!(
                        (a - b).abs() <= tol_dw,
                        "{isa:?} {g:?}: dw[{i}] = {a}, want {b}"
                    );
                }
                match &first {
                    None => first = Some((got, got_dw)),
                    Some((y0, dw0)) => {
                        let same = |a: &[f32], b: &[f32]| {
                            a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits())
                        };
                        assert!(same(y0, &got), "{isa:?} {g:?}: y differs from AVX2's bits");
                        assert!(
                            same(dw0, &got_dw),
                            "{isa:?} {g:?}: dw differs from AVX2's bits"
                        );
                    }
                }
            }
            // Through the public entry points, at the active level.
            let got = conv2d_cpu_with(&x, &w, params, CpuConv::Packed).to_vec();
            assert_eq!(got, first.as_ref().unwrap().0);
            let got = conv2d_backward_input_cpu_with(&dy, &w, &x_shape, params, CpuConv::Packed);
            for (i, (a, b)) in got.to_vec().iter().zip(&dx).enumerate() {
                assert!((a - b).abs() <= tol, "{g:?}: dx[{i}] = {a}, want {b}");
            }
            let got = conv2d_backward_weight_cpu_with(&dy, &x, &w_shape, params, CpuConv::Packed);
            assert_eq!(got.shape(), &w_shape);
            assert_eq!(got.to_vec(), first.as_ref().unwrap().1);
        }
    }

    /// A stride-1 layer's input gradient runs as a forward convolution here;
    /// a strided one, or padding beyond `K - 1`, is left to col2im.
    #[test]
    fn only_stride_1_layers_take_the_turned_kernel() {
        let geometry = |s: usize, p: usize| {
            ConvGeometry::new(&[2, 32, 6, 6], &[8, 32, 3, 3], Conv2dParams::new(s, p), "t")
        };
        let g = geometry(1, 1);
        let dy = vec![1.0f32; g.n * g.o * g.positions()];
        let w = vec![0.5f32; g.o * g.c * 9];
        assert_eq!(input_gradient(&dy, &w, &g).is_some(), available());
        let g = geometry(2, 1);
        assert!(input_gradient(&dy[..g.n * g.o * g.positions()], &w, &g).is_none());
        let g = geometry(1, 3);
        assert!(input_gradient(&vec![1.0; g.n * g.o * g.positions()], &w, &g).is_none());
    }

    #[test]
    fn the_rule_takes_small_planes_with_many_channels() {
        // A ResNet's layers: stride 1 keeps the channels, stride 2 doubles them.
        let g = |c: usize, side: usize, k: usize, s: usize| {
            let params = Conv2dParams::new(s, k / 2);
            ConvGeometry::new(&[1, c, side, side], &[s * c, c, k, k], params, "t")
        };
        assert!(pays(&g(128, 4, 3, 1)));
        assert!(pays(&g(64, 7, 3, 1)));
        assert!(!pays(&g(32, 14, 3, 2)));
        assert!(pays(&g(64, 7, 3, 2)));
        assert!(!pays(&g(128, 14, 3, 2)));
        assert!(!pays(&g(32, 14, 3, 1)));
        assert!(!pays(&g(16, 28, 3, 2)));
        assert!(!pays(&g(16, 7, 3, 1)));
        assert!(!pays(&g(64, 14, 1, 2)));
        // The weight gradient: only 4x4 outputs, 1x1 shortcuts included.
        assert!(weight_gradient_pays(&g(128, 4, 3, 1)));
        assert!(weight_gradient_pays(&g(64, 7, 3, 2)));
        assert!(weight_gradient_pays(&g(64, 7, 1, 2)));
        assert!(!weight_gradient_pays(&g(64, 7, 3, 1)));
        assert!(!weight_gradient_pays(&g(32, 14, 3, 2)));
        assert!(!weight_gradient_pays(&g(256, 4, 3, 1)));
    }
}
