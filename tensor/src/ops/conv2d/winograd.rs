//! Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions on the CPU: the
//! same output as im2col + GEMM with 2.25 times fewer multiplications.
//!
//! **One dimension first.** Two outputs of a 3-tap correlation,
//! `y0 = d0·g0 + d1·g1 + d2·g2` and `y1 = d1·g0 + d2·g1 + d3·g2`, take six
//! multiplications written out. Winograd's minimal filtering algorithm
//! F(2, 3) needs four:
//!
//! ```text
//! m0 = (d0 - d2)·g0              m1 = (d1 + d2)·(g0 + g1 + g2)/2
//! m3 = (d1 - d3)·g2              m2 = (d2 - d1)·(g0 - g1 + g2)/2
//! y0 = m0 + m1 + m2              y1 = m1 - m2 - m3
//! ```
//!
//! In matrix form `y = Aᵀ[(G g) ⊙ (Bᵀ d)]` with
//!
//! ```text
//!      | 1  0 -1  0 |        | 1    0    0  |
//! Bᵀ = | 0  1  1  0 |    G = | 1/2  1/2  1/2|    Aᵀ = | 1  1  1  0 |
//!      | 0 -1  1  0 |        | 1/2 -1/2  1/2|         | 0  1 -1 -1 |
//!      | 0  1  0 -1 |        | 0    0    1  |
//! ```
//!
//! **Two dimensions** nest it: a 2x2 block of outputs needs a 4x4 input tile
//! `d` and the 3x3 kernel `g`, and `Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`: 16
//! multiplications instead of 36.
//!
//! **Many channels.** Summed over input channels `c`, the elementwise
//! product becomes, for each of the 16 positions `ξ` of the 4x4 transformed
//! tile, a matrix product over channels:
//!
//! ```text
//! U[ξ][o, c] = (G g_{o,c} Gᵀ)[ξ]       (weights, once per call)
//! V[ξ][c, t] = (Bᵀ d_{c,t} B)[ξ]       (input tile t of channel c)
//! M[ξ]       = U[ξ] · V[ξ]             (16 GEMMs, [O, C]·[C, T])
//! Y_{o,t}    = Aᵀ M_{o,t} A            (M_{o,t} the 4x4 of M[·][o, t])
//! ```
//!
//! Output tile `(ty, tx)` covers outputs `2ty..2ty+2` x `2tx..2tx+2` and
//! reads input rows `2ty - p .. 2ty - p + 4` (zero outside the image, as the
//! padding); tiles that overhang an odd-sized output drop their extra row or
//! column. Each image's channel is first copied into a zero-bordered plane
//! so the transform loop needs no bounds tests.
//!
//! **The input gradient** of a 3x3 stride-1 convolution with padding `p` is
//! itself one: `dx = dy ⋆ w'` with padding `2 - p`, where
//! `w'[c, o, a, b] = w[o, c, 2 - a, 2 - b]` (the kernel turned half a turn,
//! input and output channels swapped), so the same code computes it.
//!
//! **The weight gradient** runs the forward chain
//! `w -> U -> M = U·V -> Y` backwards: `dM = A dY Aᵀ` per output-gradient
//! tile, `dU[ξ] = Σ_tiles dM[ξ]·V[ξ]ᵀ` (16 GEMMs whose inner dimension is
//! the number of tiles), and `dw = Gᵀ dU G` once at the end.
//!
//! Where it pays: the transforms are memory-bound passes over `4·C` values
//! per output position in and `4·O` out, against im2col's `9·C`; the GEMMs
//! have `C` as their inner dimension instead of `9·C`, which hurts when `C`
//! is small. [`super::CpuConv::for_layer`] picks it by shape ([`pays`]).
//! `BYOL_CPU_CONV=winograd` forces it on every 3x3 stride-1 layer, for
//! measuring one algorithm against another.
//!
//! (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016.)

use super::ConvGeometry;
use crate::backend::cpu::gemm::{matmul_into, MatRef};

/// Layers with fewer input or output channels than this run on
/// im2col + GEMM: what the GEMMs save grows with `C·O` per position, what
/// the transforms cost with `C + O`, and with a short inner dimension the
/// GEMMs run further from peak.
const MIN_CHANNELS: usize = 64;

/// Planes narrower than this (7x7, 4x4) have rows of 2-4 tiles, too short
/// for the row-vectorised transforms, and 7x7 wastes 15 of every 64
/// computed outputs on the overhanging tiles; there Winograd pays only
/// with at least `MIN_CHANNELS_SMALL_PLANE` channels.
const SMALL_PLANE: usize = 8;

/// See `SMALL_PLANE`.
const MIN_CHANNELS_SMALL_PLANE: usize = 256;

/// Images are batched so that one group's GEMMs have at least this many
/// columns (tiles).
const GROUP_TILES: usize = 64;

/// Whether Winograd F(2x2, 3x3) computes this convolution at all: a 3x3
/// kernel, stride 1, and padding at most 2 (so that the input gradient,
/// with padding `2 - p`, is one too).
pub fn applies(g: &ConvGeometry) -> bool {
    g.kh == 3
        && g.kw == 3
        && g.params.stride == [1, 1]
        && g.params.padding[0] <= 2
        && g.params.padding[1] <= 2
}

/// Whether Winograd pays for a layer it [`applies`] to: both channel
/// counts reach `MIN_CHANNELS`, and small planes have at least
/// `MIN_CHANNELS_SMALL_PLANE` (the rule that fits the `conv_layers`
/// benchmark's layer-by-layer timings of a ResNet-18 at widths 16 and 64).
pub fn pays(g: &ConvGeometry) -> bool {
    let channels = g.c.min(g.o);
    let side = g.oh.min(g.ow);
    channels >= MIN_CHANNELS && (side >= SMALL_PLANE || channels >= MIN_CHANNELS_SMALL_PLANE)
}

/// A convolution prepared for Winograd: its geometry, tile grid and
/// transformed weights `U`.
pub struct Winograd {
    g: ConvGeometry,
    /// Tile rows and columns of one output plane: `⌈OH/2⌉`, `⌈OW/2⌉`.
    tiles: [usize; 2],
    /// `U[ξ][o, c]`, `16 x O x C`.
    u: Vec<f32>,
}

impl Winograd {
    /// The forward convolution of geometry `g` with weights `w`
    /// (`[O, C, 3, 3]`). Panics unless [`applies`].
    pub fn forward(g: &ConvGeometry, w: &[f32]) -> Winograd {
        assert!(applies(g), "winograd: not a 3x3 stride-1 layer: {g:?}");
        let mut u = vec![0.0f32; 16 * g.o * g.c];
        for o in 0..g.o {
            for c in 0..g.c {
                let k = &w[(o * g.c + c) * 9..(o * g.c + c + 1) * 9];
                let t = transform_kernel(|a, b| k[a * 3 + b]);
                for (xi, v) in t.iter().enumerate() {
                    u[(xi * g.o + o) * g.c + c] = *v;
                }
            }
        }
        Winograd::with(*g, u)
    }

    /// The input gradient of the convolution of geometry `g` with weights
    /// `w`, as the forward convolution of `dy` with the turned, transposed
    /// kernel and padding `2 - p` (see the module docs).
    pub fn input_gradient(g: &ConvGeometry, w: &[f32]) -> Winograd {
        assert!(applies(g), "winograd: not a 3x3 stride-1 layer: {g:?}");
        let [ph, pw] = g.params.padding;
        let params = super::Conv2dParams {
            stride: [1, 1],
            padding: [2 - ph, 2 - pw],
        };
        let gd = ConvGeometry::new(
            &[g.n, g.o, g.oh, g.ow],
            &[g.c, g.o, 3, 3],
            params,
            "conv2d_backward_input",
        );
        debug_assert_eq!([gd.oh, gd.ow], [g.h, g.w]);
        // U'[ξ][c, o] = transform of w'[c, o] = w[o, c] turned half a turn.
        let mut u = vec![0.0f32; 16 * g.c * g.o];
        for o in 0..g.o {
            for c in 0..g.c {
                let k = &w[(o * g.c + c) * 9..(o * g.c + c + 1) * 9];
                let t = transform_kernel(|a, b| k[(2 - a) * 3 + (2 - b)]);
                for (xi, v) in t.iter().enumerate() {
                    u[(xi * g.c + c) * g.o + o] = *v;
                }
            }
        }
        Winograd::with(gd, u)
    }

    /// The weight gradient of the convolution of geometry `g` (no weights
    /// to transform: see [`Winograd::add_weight_gradient`]).
    pub fn weight_gradient(g: &ConvGeometry) -> Winograd {
        assert!(applies(g), "winograd: not a 3x3 stride-1 layer: {g:?}");
        Winograd::with(*g, Vec::new())
    }

    fn with(g: ConvGeometry, u: Vec<f32>) -> Winograd {
        Winograd {
            tiles: [g.oh.div_ceil(2), g.ow.div_ceil(2)],
            g,
            u,
        }
    }

    /// The geometry it computes (for the input gradient: that of the
    /// convolution of `dy`).
    pub fn geometry(&self) -> &ConvGeometry {
        &self.g
    }

    fn tiles_per_image(&self) -> usize {
        self.tiles[0] * self.tiles[1]
    }

    /// The zero-bordered plane one input channel is copied into:
    /// `[2·⌈OH/2⌉ + 2, 2·⌈OW/2⌉ + 2]` (each row as its even then its odd
    /// columns, see [`Winograd::transform_input`]).
    fn plane(&self) -> [usize; 2] {
        [2 * self.tiles[0] + 2, 2 * self.tiles[1] + 2]
    }

    /// How many images go through one set of 16 GEMMs.
    pub fn group_size(&self) -> usize {
        GROUP_TILES.div_ceil(self.tiles_per_image().max(1))
    }

    /// Scratch one thread needs for a group: the plane, `V` and `M`.
    pub fn scratch_len(&self) -> usize {
        let [ph, pw] = self.plane();
        let cols = self.group_size() * self.tiles_per_image();
        ph * pw + 16 * (self.g.c + self.g.o) * cols
    }

    /// The convolution of the images in `xs` (a whole number of
    /// `[C, H, W]` images, at most [`Winograd::group_size`]) into `ys`
    /// (`[count, O, OH, OW]`). `parallel` lets the GEMMs use every thread.
    pub fn run_group(&self, xs: &[f32], ys: &mut [f32], scratch: &mut [f32], parallel: bool) {
        let g = &self.g;
        assert!(
            !self.u.is_empty(),
            "winograd: prepared for the weight gradient only"
        );
        let image = g.c * g.h * g.w;
        let count = xs.len() / image;
        debug_assert!(count <= self.group_size() && ys.len() == count * g.o * g.oh * g.ow);
        let t = self.tiles_per_image();
        let cols = count * t;
        let [ph, pw] = self.plane();
        let (plane, rest) = scratch.split_at_mut(ph * pw);
        let (v, rest) = rest.split_at_mut(16 * g.c * cols);
        let m = &mut rest[..16 * g.o * cols];
        plane.fill(0.0);
        for (j, x) in xs.chunks_exact(image).enumerate() {
            self.transform_input(x, plane, v, cols, j * t);
        }
        for xi in 0..16 {
            matmul_into(
                g.o,
                cols,
                g.c,
                MatRef::row_major(&self.u[xi * g.o * g.c..(xi + 1) * g.o * g.c], g.c),
                MatRef::row_major(&v[xi * g.c * cols..(xi + 1) * g.c * cols], cols),
                &mut m[xi * g.o * cols..(xi + 1) * g.o * cols],
                false,
                parallel,
            );
        }
        let plane_out = g.o * g.oh * g.ow;
        for (j, y) in ys.chunks_exact_mut(plane_out).enumerate() {
            self.transform_output(m, cols, j * t, y);
        }
    }

    /// Adds the share of a group of images to the weight gradient, in the
    /// transformed domain: `dUᵀ[ξ] += V[ξ] · dM[ξ]ᵀ` (`[C, O]` for each of
    /// the 16 `ξ`, in `dut`), with `V` the images' transformed input tiles
    /// (as in the forward pass) and `dM = A dY Aᵀ` each output-gradient
    /// tile carried back through the output transform. `xs` holds the
    /// group's `[C, H, W]` images, `dys` their `[O, OH, OW]` output
    /// gradients. [`Winograd::finish_weight_gradient`] turns the sum into
    /// `dW`.
    ///
    /// Why this is the gradient: the forward pass is the chain
    /// `w -> U = G w Gᵀ -> M = U·V -> Y = Aᵀ M A`, linear in `w`, so the
    /// gradient runs the chain's transposes backwards:
    /// `dM = A dY Aᵀ`, `dU = dM·Vᵀ`, `dw = Gᵀ dU G`.
    pub fn add_weight_gradient(
        &self,
        xs: &[f32],
        dys: &[f32],
        dut: &mut [f32],
        scratch: &mut [f32],
        parallel: bool,
    ) {
        let g = &self.g;
        let image = g.c * g.h * g.w;
        let count = xs.len() / image;
        let t = self.tiles_per_image();
        let cols = count * t;
        let [ph, pw] = self.plane();
        let (plane, rest) = scratch.split_at_mut(ph * pw);
        let (v, rest) = rest.split_at_mut(16 * g.c * cols);
        let dm = &mut rest[..16 * g.o * cols];
        plane.fill(0.0);
        for (j, x) in xs.chunks_exact(image).enumerate() {
            self.transform_input(x, plane, v, cols, j * t);
        }
        for (j, dy) in dys.chunks_exact(g.o * g.oh * g.ow).enumerate() {
            self.transform_output_adjoint(dy, dm, cols, j * t);
        }
        for xi in 0..16 {
            matmul_into(
                g.c,
                g.o,
                cols,
                MatRef::row_major(&v[xi * g.c * cols..(xi + 1) * g.c * cols], cols),
                MatRef::transposed(&dm[xi * g.o * cols..(xi + 1) * g.o * cols], cols),
                &mut dut[xi * g.c * g.o..(xi + 1) * g.c * g.o],
                true,
                parallel,
            );
        }
    }

    /// `dW[o, c] = Gᵀ dU[o, c] G` (`[O, C, 3, 3]`) from the summed `dUᵀ`
    /// of [`Winograd::add_weight_gradient`].
    pub fn finish_weight_gradient(&self, dut: &[f32]) -> Vec<f32> {
        let g = &self.g;
        let mut dw = vec![0.0f32; g.o * g.c * 9];
        for (oc, k) in dw.chunks_exact_mut(9).enumerate() {
            let (o, c) = (oc / g.c, oc % g.c);
            let du = |r: usize, s: usize| dut[((r * 4 + s) * g.c + c) * g.o + o];
            // Gᵀ dU: combine rows, column by column; then columns.
            let cols = [0, 1, 2, 3].map(|s| g_transpose([du(0, s), du(1, s), du(2, s), du(3, s)]));
            for a in 0..3 {
                let row = g_transpose([cols[0][a], cols[1][a], cols[2][a], cols[3][a]]);
                k[a * 3..a * 3 + 3].copy_from_slice(&row);
            }
        }
        dw
    }

    /// `dM[ξ][o, col0 + tile] = (A dY_{o,t} Aᵀ)[ξ]` for every output
    /// channel and tile of one image's output gradient `dy` (`[O, OH, OW]`),
    /// the transpose of [`Winograd::transform_output`]: outputs past the
    /// plane count as zero. Vectorised over a row of tiles: the two rows of
    /// a tile row are split into even and odd columns, `A` combines the
    /// rows, then the columns.
    fn transform_output_adjoint(&self, dy: &[f32], dm: &mut [f32], cols: usize, col0: usize) {
        let g = &self.g;
        let [th, tw] = self.tiles;
        // Even and odd columns of the tile row's two output rows, then the
        // four rows of A·dY for each.
        let mut split = vec![0.0f32; 4 * tw];
        let mut rows = vec![0.0f32; 8 * tw];
        for (o, dyo) in dy.chunks_exact(g.oh * g.ow).enumerate() {
            for ty in 0..th {
                split.fill(0.0);
                for i in 0..2.min(g.oh - 2 * ty) {
                    let row = &dyo[(2 * ty + i) * g.ow..(2 * ty + i + 1) * g.ow];
                    let (even, odd) = split[2 * i * tw..(2 * i + 2) * tw].split_at_mut(tw);
                    for (j, value) in row.iter().enumerate() {
                        if j % 2 == 0 {
                            even[j / 2] = *value;
                        } else {
                            odd[j / 2] = *value;
                        }
                    }
                }
                let (e0, rest) = split.split_at(tw);
                let (o0, rest) = rest.split_at(tw);
                let (e1, o1) = rest.split_at(tw);
                for (r, pair) in rows.chunks_exact_mut(2 * tw).enumerate() {
                    let (er, or) = pair.split_at_mut(tw);
                    a_combine(r, e0, e1, er);
                    a_combine(r, o0, o1, or);
                }
                let at = o * cols + col0 + ty * tw;
                for (r, pair) in rows.chunks_exact(2 * tw).enumerate() {
                    let (er, or) = pair.split_at(tw);
                    for s in 0..4 {
                        let dst = (r * 4 + s) * g.o * cols + at;
                        a_combine(s, er, or, &mut dm[dst..dst + tw]);
                    }
                }
            }
        }
    }

    /// `V[ξ][c, col0 + tile] = (Bᵀ d B)[ξ]` for every channel and tile of
    /// one image `x` (`[C, H, W]`).
    ///
    /// Written to vectorise over a whole row of tiles: each padded input
    /// row is stored as its even columns then its odd columns (`plane` is
    /// `[rows][2][TW + 1]`, zero outside the image on entry and left so), so
    /// tile `tx` reads its four columns as `even[tx]`, `odd[tx]`,
    /// `even[tx + 1]`, `odd[tx + 1]` and every step below is an elementwise
    /// loop over `tx`. `Bᵀ` combines four rows into one (`rows`), then `B`
    /// combines the four columns of each tile.
    fn transform_input(
        &self,
        x: &[f32],
        plane: &mut [f32],
        v: &mut [f32],
        cols: usize,
        col0: usize,
    ) {
        let g = &self.g;
        let [th, tw] = self.tiles;
        let half = tw + 1;
        let pw = 2 * half;
        let [pad_h, pad_w] = g.params.padding;
        let mut comb = vec![0.0f32; 4 * pw];
        for (c, xc) in x.chunks_exact(g.h * g.w).enumerate() {
            for (r, row) in xc.chunks_exact(g.w).enumerate() {
                let dst = &mut plane[(r + pad_h) * pw..(r + pad_h + 1) * pw];
                for (q, value) in row.iter().enumerate() {
                    let col = q + pad_w;
                    dst[(col % 2) * half + col / 2] = *value;
                }
            }
            for ty in 0..th {
                let rows = &plane[2 * ty * pw..(2 * ty + 4) * pw];
                let (r0, rest) = rows.split_at(pw);
                let (r1, rest) = rest.split_at(pw);
                let (r2, r3) = rest.split_at(pw);
                // Bᵀ d for every column of the row of tiles.
                let (t0, rest) = comb.split_at_mut(pw);
                let (t1, rest) = rest.split_at_mut(pw);
                let (t2, t3) = rest.split_at_mut(pw);
                for i in 0..pw {
                    t0[i] = r0[i] - r2[i];
                    t1[i] = r1[i] + r2[i];
                    t2[i] = r2[i] - r1[i];
                    t3[i] = r1[i] - r3[i];
                }
                // (Bᵀ d) B: the same combination of each tile's columns.
                let at = c * cols + col0 + ty * tw;
                for (r, t) in comb.chunks_exact(pw).enumerate() {
                    let (even, odd) = t.split_at(half);
                    let (e0, e1, o0, o1) = (&even[..tw], &even[1..], &odd[..tw], &odd[1..]);
                    let dst = |s: usize| (r * 4 + s) * g.c * cols + at;
                    let out = &mut v[dst(0)..dst(0) + tw];
                    for (d, (a, b)) in out.iter_mut().zip(e0.iter().zip(e1)) {
                        *d = a - b;
                    }
                    let out = &mut v[dst(1)..dst(1) + tw];
                    for (d, (a, b)) in out.iter_mut().zip(o0.iter().zip(e1)) {
                        *d = a + b;
                    }
                    let out = &mut v[dst(2)..dst(2) + tw];
                    for (d, (a, b)) in out.iter_mut().zip(e1.iter().zip(o0)) {
                        *d = a - b;
                    }
                    let out = &mut v[dst(3)..dst(3) + tw];
                    for (d, (a, b)) in out.iter_mut().zip(o0.iter().zip(o1)) {
                        *d = a - b;
                    }
                }
            }
        }
    }

    /// `y[o, 2ty.., 2tx..] = (Aᵀ M_{o,t} A)` for every output channel and
    /// tile of one image, dropping the rows and columns past the plane.
    /// Vectorised over a row of tiles like [`Winograd::transform_input`]:
    /// `Aᵀ` combines the 16 rows of `M` into 2x4 rows of tiles, then `A`
    /// gives each tile's even and odd output column.
    fn transform_output(&self, m: &[f32], cols: usize, col0: usize, y: &mut [f32]) {
        let g = &self.g;
        let [th, tw] = self.tiles;
        let mut am = vec![0.0f32; 8 * tw];
        let (mut even, mut odd) = (vec![0.0f32; tw], vec![0.0f32; tw]);
        for (o, yo) in y.chunks_exact_mut(g.oh * g.ow).enumerate() {
            for ty in 0..th {
                let at = o * cols + col0 + ty * tw;
                let mrow = |xi: usize| &m[xi * g.o * cols + at..xi * g.o * cols + at + tw];
                // Aᵀ M: rows 0 and 1 of column s of every tile.
                let (first, second) = am.split_at_mut(4 * tw);
                for s in 0..4 {
                    let (m0, m1, m2, m3) = (mrow(s), mrow(4 + s), mrow(8 + s), mrow(12 + s));
                    let a0 = &mut first[s * tw..(s + 1) * tw];
                    let a1 = &mut second[s * tw..(s + 1) * tw];
                    for tx in 0..tw {
                        a0[tx] = m0[tx] + m1[tx] + m2[tx];
                        a1[tx] = m1[tx] - m2[tx] - m3[tx];
                    }
                }
                // (Aᵀ M) A: each tile's even and odd output column.
                for (i, a) in am.chunks_exact(4 * tw).enumerate() {
                    let i = 2 * ty + i;
                    if i >= g.oh {
                        break;
                    }
                    let (a0, rest) = a.split_at(tw);
                    let (a1, rest) = rest.split_at(tw);
                    let (a2, a3) = rest.split_at(tw);
                    for tx in 0..tw {
                        even[tx] = a0[tx] + a1[tx] + a2[tx];
                        odd[tx] = a1[tx] - a2[tx] - a3[tx];
                    }
                    let out = &mut yo[i * g.ow..(i + 1) * g.ow];
                    for (pair, (e, d)) in out.chunks_mut(2).zip(even.iter().zip(&odd)) {
                        pair[0] = *e;
                        if let Some(second) = pair.get_mut(1) {
                            *second = *d;
                        }
                    }
                }
            }
        }
    }
}

/// `G g` for one column `g` of 3 values.
fn g_times([g0, g1, g2]: [f32; 3]) -> [f32; 4] {
    [g0, 0.5 * (g0 + g1 + g2), 0.5 * (g0 - g1 + g2), g2]
}

/// `Gᵀ u` for one column `u` of 4 values.
fn g_transpose([u0, u1, u2, u3]: [f32; 4]) -> [f32; 3] {
    [u0 + 0.5 * (u1 + u2), 0.5 * (u1 - u2), 0.5 * (u1 + u2) + u3]
}

/// Row `k` of `A·[a; b]`, elementwise over the slices (`A` is `Aᵀ`
/// transposed, 4x2): `a`, `a + b`, `a - b`, `-b` for `k = 0, 1, 2, 3`.
fn a_combine(k: usize, a: &[f32], b: &[f32], out: &mut [f32]) {
    let pairs = out.iter_mut().zip(a.iter().zip(b));
    match k {
        0 => pairs.for_each(|(o, (a, _))| *o = *a),
        1 => pairs.for_each(|(o, (a, b))| *o = a + b),
        2 => pairs.for_each(|(o, (a, b))| *o = a - b),
        _ => pairs.for_each(|(o, (_, b))| *o = -b),
    }
}

/// `G k Gᵀ` (4x4, row-major) of the 3x3 kernel `k(a, b)`.
fn transform_kernel(k: impl Fn(usize, usize) -> f32) -> [f32; 16] {
    // G k: combine the rows of k, column by column.
    let cols = [0, 1, 2].map(|b| g_times([k(0, b), k(1, b), k(2, b)]));
    // (G k) Gᵀ: combine the columns of each row r.
    let mut out = [0.0f32; 16];
    for (r, dst) in out.chunks_exact_mut(4).enumerate() {
        dst.copy_from_slice(&g_times([cols[0][r], cols[1][r], cols[2][r]]));
    }
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::ops::conv2d::Conv2dParams;

    /// The forward convolution and, for the output gradient `dy`, the
    /// weight gradient, by their defining sums (the CPU tests' reference).
    fn direct(x: &[f32], w: &[f32], dy: &[f32], g: &ConvGeometry) -> (Vec<f32>, Vec<f32>) {
        let (y, _, dw) = crate::ops::conv2d::cpu::tests::reference(x, w, dy, g);
        (y, dw)
    }

    /// `len` values in [-1, 1) from a xorshift generator seeded by `seed`.
    pub(in crate::ops::conv2d) fn random(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    }

    /// Runs a prepared Winograd over the batch `xs` in groups, on one
    /// thread.
    fn run(wg: &Winograd, xs: &[f32]) -> Vec<f32> {
        let g = wg.geometry();
        let (image, out) = (g.c * g.h * g.w, g.o * g.oh * g.ow);
        let mut ys = vec![f32::NAN; g.n * out];
        let mut scratch = vec![f32::NAN; wg.scratch_len()];
        let group = wg.group_size();
        for (xg, yg) in xs.chunks(group * image).zip(ys.chunks_mut(group * out)) {
            wg.run_group(xg, yg, &mut scratch, false);
        }
        ys
    }

    /// `Bᵀ d` for one column `d` of 4 values.
    fn b_transpose([d0, d1, d2, d3]: [f32; 4]) -> [f32; 4] {
        [d0 - d2, d1 + d2, d2 - d1, d1 - d3]
    }

    /// `Aᵀ m` for one column `m` of 4 values.
    fn a_transpose([m0, m1, m2, m3]: [f32; 4]) -> [f32; 2] {
        [m0 + m1 + m2, m1 - m2 - m3]
    }

    fn close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len());
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                "{what}[{i}]: {a} vs {b}"
            );
        }
    }

    #[test]
    fn the_one_dimensional_identity_holds() {
        let (d, k) = ([0.3f32, -1.2, 2.5, 0.7], [1.5f32, -0.4, 0.9]);
        let bd = b_transpose(d);
        let gk = g_times(k);
        let m = [bd[0] * gk[0], bd[1] * gk[1], bd[2] * gk[2], bd[3] * gk[3]];
        let y = a_transpose(m);
        let want = [
            d[0] * k[0] + d[1] * k[1] + d[2] * k[2],
            d[1] * k[0] + d[2] * k[1] + d[3] * k[2],
        ];
        close(&y, &want, "F(2,3)");
    }

    #[test]
    fn forward_matches_the_defining_sum() {
        // Even and odd planes (tiles overhanging the last row and column),
        // each padding it takes, groups split across calls (7x7: 16 tiles,
        // 16 images a group; 19 images make a full and a short group), and
        // channel counts the GEMM edge kernels see.
        for (shape, o, p) in [
            ([2, 3, 8, 8], 5, 1),
            ([3, 4, 7, 7], 6, 1),
            ([19, 3, 7, 7], 4, 1),
            ([2, 2, 9, 6], 3, 0),
            ([2, 5, 5, 8], 3, 2),
            ([1, 1, 1, 1], 2, 1),
            ([2, 2, 3, 3], 1, 0),
        ] {
            let g = ConvGeometry::new(&shape, &[o, shape[1], 3, 3], Conv2dParams::new(1, p), "t");
            let x = random(g.n * g.c * g.h * g.w, 1);
            let w = random(g.o * g.c * 9, 2);
            let dy = vec![0.0; g.n * g.o * g.oh * g.ow];
            close(
                &run(&Winograd::forward(&g, &w), &x),
                &direct(&x, &w, &dy, &g).0,
                &format!("y of {shape:?}, padding {p}"),
            );
        }
    }

    #[test]
    fn the_input_gradient_is_the_adjoint_of_the_forward() {
        // <dy, conv(x)> = <dx(dy), x> for every x, dy: the input gradient is
        // the transpose of the forward map. Checked with both computed by
        // Winograd and the forward by the defining sum.
        for (shape, o, p) in [
            ([2, 3, 8, 8], 5, 1),
            ([3, 4, 7, 5], 2, 1),
            ([2, 2, 9, 6], 3, 0),
            ([2, 5, 5, 8], 3, 2),
        ] {
            let g = ConvGeometry::new(&shape, &[o, shape[1], 3, 3], Conv2dParams::new(1, p), "t");
            let x = random(g.n * g.c * g.h * g.w, 3);
            let w = random(g.o * g.c * 9, 4);
            let dy = random(g.n * g.o * g.oh * g.ow, 5);
            let y = direct(&x, &w, &dy, &g).0;
            let dx = run(&Winograd::input_gradient(&g, &w), &dy);
            assert_eq!(dx.len(), x.len());
            let dot = |a: &[f32], b: &[f32]| -> f64 {
                a.iter().zip(b).map(|(p, q)| *p as f64 * *q as f64).sum()
            };
            let (lhs, rhs) = (dot(&dy, &y), dot(&dx, &x));
            assert!(
                (lhs - rhs).abs() <= 1e-4 * lhs.abs().max(1.0),
                "{shape:?} padding {p}: <dy, y> {lhs} vs <dx, x> {rhs}"
            );
        }
    }

    #[test]
    fn the_weight_gradient_matches_the_defining_sum() {
        // Odd planes (dropped outputs must carry no gradient), each
        // padding, and a batch of two groups (7x7: 16 images a group).
        for (shape, o, p) in [
            ([2, 3, 8, 8], 5, 1),
            ([3, 4, 7, 5], 2, 1),
            ([2, 2, 9, 6], 3, 0),
            ([2, 5, 5, 8], 3, 2),
            ([19, 2, 7, 7], 3, 1),
        ] {
            let g = ConvGeometry::new(&shape, &[o, shape[1], 3, 3], Conv2dParams::new(1, p), "t");
            let x = random(g.n * g.c * g.h * g.w, 6);
            let dy = random(g.n * g.o * g.oh * g.ow, 7);
            let wg = Winograd::weight_gradient(&g);
            let mut dut = vec![0.0f32; 16 * g.c * g.o];
            let mut scratch = vec![f32::NAN; wg.scratch_len()];
            let (image, out, group) = (g.c * g.h * g.w, g.o * g.oh * g.ow, wg.group_size());
            for (xg, dyg) in x.chunks(group * image).zip(dy.chunks(group * out)) {
                wg.add_weight_gradient(xg, dyg, &mut dut, &mut scratch, false);
            }
            close(
                &wg.finish_weight_gradient(&dut),
                &direct(&x, &vec![0.0; g.o * g.c * 9], &dy, &g).1,
                &format!("dw of {shape:?}, padding {p}"),
            );
        }
    }

    #[test]
    fn the_shape_rule_picks_wide_layers_and_large_planes() {
        let g = |c: usize, side: usize| {
            ConvGeometry::new(
                &[1, c, side, side],
                &[c, c, 3, 3],
                Conv2dParams::new(1, 1),
                "t",
            )
        };
        // A ResNet-18 on 28x28 at width 16: none; at width 64: all four.
        for (c, side) in [(16, 28), (32, 14), (64, 7), (128, 4)] {
            assert!(!pays(&g(c, side)), "{c} channels, {side}x{side}");
        }
        for (c, side) in [(64, 28), (128, 14), (256, 7), (512, 4)] {
            assert!(pays(&g(c, side)), "{c} channels, {side}x{side}");
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
        assert!(applies(&g(3, 1, 1)));
        assert!(applies(&g(3, 1, 0)));
        assert!(!applies(&g(3, 2, 1)));
        assert!(!applies(&g(1, 1, 0)));
        assert!(!applies(&g(3, 1, 3)));
    }
}
