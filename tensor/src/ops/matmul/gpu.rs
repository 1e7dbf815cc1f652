//! GPU matrix products. The kernels read plain operands through strides,
//! so `A·B`, `A·Bᵀ`, `Aᵀ·B` and batches of them are all one dispatch (the
//! tiled kernel can also gather an operand, see [`tiled`]); the
//! convolution reuses [`gemm`] with buffer offsets and a zero batch stride
//! for a shared weight. Which kernel runs depends on the context's
//! [`KernelSet`]:
//!
//! * software adapters: a register-blocked kernel (`matmul.wgsl`), or its
//!   vec4-load variant (`matmul_vec4.wgsl`) when both operands are plainly
//!   row-major and the sizes multiples of 4;
//! * hardware GPUs: a kernel tiled through workgroup memory
//!   (`matmul_tiled.wgsl`, a template: [`Tile`] gives it its shape, 64x64
//!   to 128x128, and writes out its accumulators), whose inner dimension
//!   is split over several workgroups when the output has too few tiles to
//!   fill the GPU, the slices then summed by `splitk_sum.wgsl` ([`split_k`]
//!   decides).

use super::MatmulDims;
use crate::backend::gpu::{grid_1d, GpuBuffer, KernelSet};
use crate::Tensor;
use std::sync::LazyLock;

const SOURCE: &str = include_str!("matmul.wgsl");
const SOURCE_VEC4: &str = include_str!("matmul_vec4.wgsl");
const SOURCE_TILED: &str = include_str!("matmul_tiled.wgsl");
const SOURCE_SPLITK_SUM: &str = include_str!("splitk_sum.wgsl");
const LOADS_STRIDED: &str = include_str!("loads_strided.wgsl");

/// The tiled kernel of a plain product: both operands read through strides.
static TILED_STRIDED: LazyLock<String> = LazyLock::new(|| tiled_source(LOADS_STRIDED));

/// The source of a tiled kernel whose operands are read by `loads` (WGSL
/// defining `load_a` and `load_b`, see `matmul_tiled.wgsl`), without its
/// tile shape (which [`tiled`] fills in, see `Tile::source`).
pub fn tiled_source(loads: &str) -> String {
    format!("{loads}\n{SOURCE_TILED}")
}

/// The output tile one workgroup of the tiled kernel computes: `rows x
/// cols` of C, each of its 16x16 invocations a `rows/16 x cols/16` block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    /// Rows of C per workgroup: 64 or 128.
    pub rows: usize,
    /// Columns of C per workgroup: 64 or 128.
    pub cols: usize,
}

impl Tile {
    /// Every shape the tiled kernel is compiled for.
    pub const ALL: [Tile; 4] = [
        Tile { rows: 64, cols: 64 },
        Tile {
            rows: 128,
            cols: 64,
        },
        Tile {
            rows: 64,
            cols: 128,
        },
        Tile {
            rows: 128,
            cols: 128,
        },
    ];

    /// Multiply-adds per workgroup-memory vector read: an invocation's
    /// `rm x rn` block reads `rm/4 + rn/4` vectors per step for `rm·rn`
    /// multiply-adds (4x4: 2, 4x8: 2.7, 8x8: 4).
    fn intensity(self) -> f64 {
        let (rm, rn) = ((self.rows / 16) as f64, (self.cols / 16) as f64);
        rm * rn / (rm / 4.0 + rn / 4.0)
    }

    /// The tile for a product: of the shapes whose tiles still give
    /// [`TARGET_WORKGROUPS`] workgroups (else 64x64, which split-k then
    /// helps), the one with the least estimated time, the padded output
    /// area (rows and columns rounded up to whole tiles) over
    /// [`Tile::intensity`]. Not yet measured shape by shape on hardware.
    pub fn choose(d: MatmulDims) -> Tile {
        let cost = |t: Tile| {
            let area = d.m.div_ceil(t.rows) * t.rows * d.n.div_ceil(t.cols) * t.cols;
            area as f64 / t.intensity()
        };
        let mut best = Tile::ALL[0];
        for t in Tile::ALL {
            if t.workgroups(d) >= TARGET_WORKGROUPS && cost(t) < cost(best) {
                best = t;
            }
        }
        best
    }

    /// Workgroups for the products of `d` in one slice.
    fn workgroups(self, d: MatmulDims) -> usize {
        d.m.div_ceil(self.rows) * d.n.div_ceil(self.cols) * d.batch
    }

    /// The tiled kernel `source` (a template, see `matmul_tiled.wgsl`) for
    /// this shape: its constants in front, and the accumulators' code
    /// written out one statement per vector, the 16 steps of a slab one
    /// after another (`kk · SA` a literal). (Written as loops over arrays,
    /// the 8x8 kernel ran at a third of the 4x4's speed on an NVIDIA H200:
    /// its accumulators left the registers.)
    fn source(self, source: &str) -> String {
        let (ha, hb) = (self.rows / 64, self.cols / 64);
        let (mut declare, mut accumulate, mut store) =
            (String::new(), String::new(), String::new());
        for a in 0..ha {
            for r in 0..4 {
                let row = format!("tile_row + {}u + lid.y * 4u + {r}u", 64 * a);
                for b in 0..hb {
                    let acc = format!("acc_{a}{r}{b}");
                    declare += &format!("var {acc} = vec4<f32>(0.0);\n");
                    let col = format!("tile_col + {}u + lid.x * 4u", 64 * b);
                    store += &format!("store4({row}, {col}, {acc}, cbase, accumulate);\n");
                }
            }
        }
        for kk in 0..16 {
            accumulate += "{\n";
            for a in 0..ha {
                let at = kk * (16 * ha + 1) + 16 * a;
                accumulate += &format!("let x{a} = as_[{at}u + lid.y];\n");
            }
            for b in 0..hb {
                let at = kk * (16 * hb + 1) + 16 * b;
                accumulate += &format!("let y{b} = bs[{at}u + lid.x];\n");
            }
            for a in 0..ha {
                for (r, lane) in ["x", "y", "z", "w"].iter().enumerate() {
                    for b in 0..hb {
                        let acc = format!("acc_{a}{r}{b}");
                        accumulate += &format!("{acc} = {acc} + x{a}.{lane} * y{b};\n");
                    }
                }
            }
            accumulate += "}\n";
        }
        let body = source
            .replace("//@DECLARE", &declare)
            .replace("//@ACCUMULATE", &accumulate)
            .replace("//@STORE", &store);
        let (rm, rn) = (self.rows / 16, self.cols / 16);
        format!("const RM: u32 = {rm}u;\nconst RN: u32 = {rn}u;\n{body}")
    }
}

/// Workgroups a product should give a hardware GPU at least, below which
/// split-k cuts the inner dimension: about two per compute unit of a large
/// one (an H200 has 132). Not tuned on hardware yet.
const TARGET_WORKGROUPS: usize = 256;
/// The shortest slice of the inner dimension split-k makes (16 steps of
/// the tiled kernel's slab loop), so the partial sums stay few. (They are
/// few anyway: split-k runs only under `TARGET_WORKGROUPS` tiles of 64x64,
/// so they never exceed `2 · TARGET_WORKGROUPS · 4096` floats, 8 MiB.)
const MIN_SLICE: usize = 256;
/// The most workgroups along the grid's z axis (WebGPU's limit).
const MAX_Z: usize = 65535;

/// How the tiled kernel cuts the inner dimension of a product computed in
/// tiles of `tile`: `(splits, slice length)`, the length a multiple of 16
/// and every slice non-empty. One slice when the output's tiles already
/// give [`TARGET_WORKGROUPS`] or when the inner dimension is short.
pub fn split_k(d: MatmulDims, tile: Tile) -> (usize, usize) {
    let whole = (1, d.k.div_ceil(16).max(1) * 16);
    let tiles = tile.workgroups(d);
    if tiles == 0 || tiles >= TARGET_WORKGROUPS {
        return whole;
    }
    let wanted = TARGET_WORKGROUPS.div_ceil(tiles);
    let by_length = d.k / MIN_SLICE;
    let by_grid = MAX_Z / d.batch.max(1);
    let splits = wanted.min(by_length).min(by_grid);
    if splits <= 1 {
        return whole;
    }
    let chunk = d.k.div_ceil(splits).div_ceil(16) * 16;
    (d.k.div_ceil(chunk), chunk)
}

/// One operand of a GPU product: a buffer, the element offset where it
/// starts, its row and column strides, and its stride between batches (0
/// when every product of the batch shares it).
#[derive(Clone, Copy)]
pub struct GpuMat<'a> {
    /// The buffer holding it.
    pub buf: &'a GpuBuffer,
    /// Element offset of the first batch's `(0, 0)`.
    pub offset: usize,
    /// Distance between vertically adjacent elements.
    pub row_stride: usize,
    /// Distance between horizontally adjacent elements.
    pub col_stride: usize,
    /// Distance between consecutive batches.
    pub batch_stride: usize,
}

impl<'a> GpuMat<'a> {
    /// A plain row-major operand of `cols` columns from the start of `buf`,
    /// shared by every product of a batch (batch stride 0).
    pub fn row_major(buf: &'a GpuBuffer, cols: usize) -> GpuMat<'a> {
        GpuMat {
            buf,
            offset: 0,
            row_stride: cols,
            col_stride: 1,
            batch_stride: 0,
        }
    }
}

/// A size or index as a kernel parameter word.
fn word(v: usize) -> u32 {
    u32::try_from(v).expect("GPU matmul: an index exceeds 32 bits")
}

/// The parameter words every matmul kernel starts with (`p[0..14]`, see
/// `matmul.wgsl`).
fn product_words(
    d: MatmulDims,
    a: GpuMat<'_>,
    b: GpuMat<'_>,
    c_offset: usize,
    accumulate: bool,
) -> [u32; 14] {
    [
        d.m,
        d.n,
        d.k,
        a.row_stride,
        a.col_stride,
        b.row_stride,
        b.col_stride,
        a.batch_stride,
        b.batch_stride,
        d.m * d.n,
        a.offset,
        b.offset,
        c_offset,
        accumulate as usize,
    ]
    .map(word)
}

/// Records `C = A·B` (or `C += A·B` when `accumulate`) for `batch`
/// products of `m x k` by `k x n`; `C` is row-major `m x n` per batch,
/// batches `m·n` apart, starting at `c_offset`.
pub fn gemm(
    d: MatmulDims,
    a: GpuMat<'_>,
    b: GpuMat<'_>,
    c: &GpuBuffer,
    c_offset: usize,
    accumulate: bool,
) {
    if d.m == 0 || d.n == 0 || d.batch == 0 {
        return;
    }
    let params = product_words(d, a, b, c_offset, accumulate);
    let groups = [
        d.n.div_ceil(64) as u32,
        d.m.div_ceil(64) as u32,
        d.batch as u32,
    ];
    let ctx = c.context();
    if ctx.kernel_set() == KernelSet::Hardware {
        let kernel = TiledKernel {
            name: "matmul_tiled",
            source: &TILED_STRIDED,
            extra: &[],
        };
        tiled(d, a, b, c, c_offset, accumulate, kernel);
        return;
    }
    // Both operands plainly row-major, everything a multiple of 4: the
    // vec4 kernel applies.
    let aligned = |v: usize| v.is_multiple_of(4);
    let vec4 = a.col_stride == 1
        && b.col_stride == 1
        && a.row_stride == d.k
        && b.row_stride == d.n
        && [
            d.k,
            d.n,
            a.offset,
            b.offset,
            c_offset,
            a.batch_stride,
            b.batch_stride,
        ]
        .iter()
        .all(|&v| aligned(v));
    let (name, source) = if vec4 {
        ("matmul_vec4", SOURCE_VEC4)
    } else {
        ("matmul", SOURCE)
    };
    ctx.dispatch(name, source, &params, &[a.buf, b.buf, c], groups);
}

/// A variant of the tiled kernel: its name in the kernel cache, its source
/// ([`tiled_source`] of its loads) and the words its loads read after the
/// product's own (from `p[16]`).
#[derive(Clone, Copy)]
pub struct TiledKernel<'a> {
    /// The name it is compiled and cached under.
    pub name: &'a str,
    /// Its WGSL source, [`tiled_source`] of its loads: the template
    /// [`tiled`] gives a tile shape.
    pub source: &'a str,
    /// Its loads' parameters.
    pub extra: &'a [u32],
}

/// Records `C = A·B` (or `C += A·B`) with the tiled kernel `kernel` in
/// tiles of [`Tile::choose`], the inner dimension split as [`split_k`]
/// says, as [`gemm`] describes; operands a variant gathers ignore their
/// strides.
pub fn tiled(
    d: MatmulDims,
    a: GpuMat<'_>,
    b: GpuMat<'_>,
    c: &GpuBuffer,
    c_offset: usize,
    accumulate: bool,
    kernel: TiledKernel<'_>,
) {
    tiled_in(d, a, b, c, c_offset, accumulate, kernel, Tile::choose(d));
}

/// [`tiled`] in tiles of `tile`.
#[allow(clippy::too_many_arguments)]
fn tiled_in(
    d: MatmulDims,
    a: GpuMat<'_>,
    b: GpuMat<'_>,
    c: &GpuBuffer,
    c_offset: usize,
    accumulate: bool,
    kernel: TiledKernel<'_>,
    tile: Tile,
) {
    if d.m == 0 || d.n == 0 || d.batch == 0 {
        return;
    }
    if d.batch > MAX_Z {
        // More products than the grid's z axis holds: in runs.
        for start in (0..d.batch).step_by(MAX_Z) {
            let at = |m: GpuMat<'_>| -> usize { m.offset + start * m.batch_stride };
            let run = MatmulDims {
                batch: MAX_Z.min(d.batch - start),
                ..d
            };
            tiled_in(
                run,
                GpuMat { offset: at(a), ..a },
                GpuMat { offset: at(b), ..b },
                c,
                c_offset + start * d.m * d.n,
                accumulate,
                kernel,
                tile,
            );
        }
        return;
    }
    let ctx = c.context();
    let (splits, chunk) = split_k(d, tile);
    let mut words = product_words(d, a, b, c_offset, accumulate).to_vec();
    words.extend([splits, chunk].map(word));
    words.extend(kernel.extra);
    let groups = [
        d.n.div_ceil(tile.cols) as u32,
        d.m.div_ceil(tile.rows) as u32,
        (d.batch * splits) as u32,
    ];
    // One compiled kernel per variant and tile shape.
    let name = format!("{}_{}x{}", kernel.name, tile.rows, tile.cols);
    let source = || tile.source(kernel.source);
    if splits == 1 {
        ctx.dispatch_built(&name, source, &words, &[a.buf, b.buf, c], groups);
        return;
    }
    let total = d.batch * d.m * d.n;
    let partial = GpuBuffer::new(ctx, total * splits);
    ctx.dispatch_built(&name, source, &words, &[a.buf, b.buf, &partial], groups);
    let sum = [total, d.m * d.n, splits, c_offset, accumulate as usize].map(word);
    ctx.dispatch(
        "splitk_sum",
        SOURCE_SPLITK_SUM,
        &sum,
        &[&partial, c],
        grid_1d(total),
    );
}

/// The (batched) product of two GPU tensors, read transposed as asked.
pub fn matmul(a: &Tensor, b: &Tensor, d: MatmulDims, ta: bool, tb: bool) -> GpuBuffer {
    let (ab, bb) = (a.gpu_buffer("matmul"), b.gpu_buffer("matmul"));
    if d.k == 0 {
        // An empty sum: zeros.
        return ab.context().upload(&vec![0; d.batch * d.m * d.n]);
    }
    let out = GpuBuffer::new(ab.context(), d.batch * d.m * d.n);
    // Stored as [rows, cols] row-major, or [cols, rows] when read transposed.
    let operand = |buf, rows: usize, cols: usize, t: bool| GpuMat {
        buf,
        offset: 0,
        row_stride: if t { 1 } else { cols },
        col_stride: if t { rows } else { 1 },
        batch_stride: rows * cols,
    };
    gemm(
        d,
        operand(ab, d.m, d.k, ta),
        operand(bb, d.k, d.n, tb),
        &out,
        0,
        false,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::{gemm, split_k, GpuMat, MatmulDims, Tile};
    use crate::backend::gpu::KernelSet;
    use crate::testing::{assert_close, gpu_device_with};
    use crate::{Device, Tensor};

    /// The software kernels (register-blocked, vec4) on every form.
    #[test]
    fn all_forms_match_the_cpu_with_the_software_kernels() {
        let Some(gpu) = gpu_device_with(KernelSet::Software) else {
            return;
        };
        all_forms_match_the_cpu(&gpu);
    }

    /// The hardware kernels (workgroup-memory tiles, split-k) on every
    /// form, run on whatever adapter there is.
    #[test]
    fn all_forms_match_the_cpu_with_the_hardware_kernels() {
        let Some(gpu) = gpu_device_with(KernelSet::Hardware) else {
            return;
        };
        all_forms_match_the_cpu(&gpu);
        // Long inner dimensions with few output tiles: split-k, in every
        // form and with slices that do not divide k.
        for &(batch, m, k, n) in &[(1, 10, 3001, 9), (2, 16, 1000, 70), (1, 1, 4099, 1)] {
            let d = MatmulDims { batch, m, k, n };
            assert!(split_k(d, Tile::choose(d)).0 > 1, "{d:?} is not split");
            check_forms(&gpu, batch, m, k, n);
        }
        // More products than the grid's z axis holds: dispatched in runs.
        let batch = super::MAX_Z + 2;
        let a = Tensor::randn(&[batch, 1, 3], 0.0, 1.0, 8, &Device::Cpu);
        let b = Tensor::randn(&[batch, 3, 2], 0.0, 1.0, 9, &Device::Cpu);
        assert_close(
            &a.to_device(&gpu).matmul(&b.to_device(&gpu)),
            &a.matmul(&b),
            1e-5,
            1e-5,
            "a batch of 65,537 products",
        );
    }

    /// `C += A·B` through split-k and through one slice: the partial sums
    /// are added to what C held, at C's offset, and nothing else changes.
    #[test]
    fn the_hardware_kernels_accumulate_at_an_offset() {
        let Some(gpu) = gpu_device_with(KernelSet::Hardware) else {
            return;
        };
        let cpu = Device::Cpu;
        for &(m, k, n) in &[(5, 2000, 3), (70, 20, 66)] {
            let a = Tensor::randn(&[m, k], 0.0, 1.0, 5, &cpu);
            let b = Tensor::randn(&[k, n], 0.0, 1.0, 6, &cpu);
            let before = Tensor::randn(&[m * n + 7], 0.0, 1.0, 7, &cpu);
            let (ga, gb, gc) = (a.to_device(&gpu), b.to_device(&gpu), before.to_device(&gpu));
            let d = MatmulDims { batch: 1, m, k, n };
            let (a_mat, b_mat) = (
                GpuMat::row_major(ga.gpu_buffer("test"), k),
                GpuMat::row_major(gb.gpu_buffer("test"), n),
            );
            gemm(d, a_mat, b_mat, gc.gpu_buffer("test"), 7, true);
            let got = gc.to_vec();
            let product = a.matmul(&b).to_vec();
            let old = before.to_vec();
            assert_eq!(&got[..7], &old[..7], "before the offset");
            for (i, (g, p)) in got[7..].iter().zip(&product).enumerate() {
                let want = old[7 + i] + p;
                assert!(
                    (g - want).abs() <= 1e-5 * k as f32,
                    "{m}x{k}x{n} element {i}: {g}, expected {want}"
                );
            }
        }
    }

    /// Split-k cuts only long inner dimensions under few output tiles,
    /// into slices of a multiple of 16 that cover k with none empty.
    #[test]
    fn split_k_cuts_long_sums_under_few_tiles() {
        let dims = |batch, m, k, n| MatmulDims { batch, m, k, n };
        // Enough tiles already, or too short to cut: one slice.
        let split = |d: MatmulDims| split_k(d, Tile::choose(d));
        assert_eq!(split(dims(1, 1024, 4096, 1024)).0, 1);
        assert_eq!(split(dims(1, 16, 300, 16)).0, 1);
        // A weight gradient: a 144x16 output over a batch's positions.
        for d in [
            dims(1, 144, 200_704, 16),
            dims(1, 10, 3001, 9),
            dims(3, 1, 70_000, 1),
        ] {
            let (splits, chunk) = split(d);
            assert!(splits > 1, "{d:?}");
            assert_eq!(chunk % 16, 0, "{d:?}");
            assert!(chunk * splits >= d.k && chunk * (splits - 1) < d.k, "{d:?}");
            let tiles = Tile::choose(d).workgroups(d);
            assert!(tiles * splits <= 2 * super::TARGET_WORKGROUPS, "{d:?}");
            assert!(d.batch * splits <= 65535);
        }
        // A batch that fills the grid's z axis is not split further.
        assert_eq!(split(dims(super::MAX_Z, 1, 100_000, 1)).0, 1);
    }

    /// Large tiles where the product has tiles enough to fill the GPU and
    /// fills them; 64x64 (and split-k) otherwise.
    #[test]
    fn the_tile_follows_the_shape() {
        let dims = |batch, m, k, n| MatmulDims { batch, m, k, n };
        let tile = |rows, cols| Tile { rows, cols };
        assert_eq!(Tile::choose(dims(1, 4096, 4096, 4096)), tile(128, 128));
        // A 64-channel convolution over a batch of 28x28 images.
        assert_eq!(Tile::choose(dims(256, 64, 576, 784)), tile(64, 128));
        assert_eq!(Tile::choose(dims(256, 784, 576, 64)), tile(128, 64));
        // Too few tiles of any larger shape, or a small output.
        assert_eq!(Tile::choose(dims(1, 1024, 64, 1024)), tile(64, 64));
        assert_eq!(Tile::choose(dims(1, 144, 200_704, 16)), tile(64, 64));
        assert_eq!(Tile::choose(dims(256, 64, 576, 49)), tile(64, 64));
    }

    /// Every tile shape, forced, on products that cut its tiles short at
    /// both edges, with transposed operands, a batch and split-k.
    #[test]
    fn every_tile_shape_matches_the_cpu() {
        let Some(gpu) = gpu_device_with(KernelSet::Hardware) else {
            return;
        };
        let cpu = Device::Cpu;
        let kernel = super::TiledKernel {
            name: "matmul_tiled",
            source: &super::TILED_STRIDED,
            extra: &[],
        };
        for tile in Tile::ALL {
            for &(batch, m, k, n) in &[(2, 130, 37, 70), (1, 1, 5, 1), (1, 131, 3001, 129)] {
                let d = MatmulDims { batch, m, k, n };
                // A stored transposed (k x m per product), B row-major.
                let at = Tensor::randn(&[batch, k, m], 0.0, 1.0, 11, &cpu);
                let b = Tensor::randn(&[batch, k, n], 0.0, 1.0, 12, &cpu);
                let want = at.matmul_tn(&b);
                let (gat, gb) = (at.to_device(&gpu), b.to_device(&gpu));
                let a_mat = GpuMat {
                    buf: gat.gpu_buffer("test"),
                    offset: 0,
                    row_stride: 1,
                    col_stride: m,
                    batch_stride: k * m,
                };
                let b_mat = GpuMat {
                    batch_stride: k * n,
                    ..GpuMat::row_major(gb.gpu_buffer("test"), n)
                };
                let out = Tensor::zeros(&[batch, m, n], &gpu);
                super::tiled_in(
                    d,
                    a_mat,
                    b_mat,
                    out.gpu_buffer("test"),
                    0,
                    false,
                    kernel,
                    tile,
                );
                let what = format!(
                    "{tile:?} {batch}x{m}x{k}x{n} (split {:?})",
                    split_k(d, tile)
                );
                assert_close(&out, &want, 1e-5 * k as f32, 1e-5, &what);
            }
        }
    }

    fn all_forms_match_the_cpu(gpu: &Device) {
        // (2, 65, 128, 68) and (1, 33, 4, 8) take the vec4 kernel.
        for &(batch, m, k, n) in &[
            (1, 1, 1, 1),
            (1, 3, 7, 33),
            (1, 33, 1, 7),
            (3, 7, 33, 3),
            (2, 65, 129, 67),
            (1, 257, 3, 5),
            (2, 65, 128, 68),
            (1, 33, 4, 8),
        ] {
            check_forms(gpu, batch, m, k, n);
        }
    }

    /// `A·B`, `A·Bᵀ` and `Aᵀ·B` of N(0,1) operands against the CPU.
    fn check_forms(gpu: &Device, batch: usize, m: usize, k: usize, n: usize) {
        let cpu = Device::Cpu;
        {
            let shape = |r: usize, c: usize| {
                if batch == 1 {
                    vec![r, c]
                } else {
                    vec![batch, r, c]
                }
            };
            let a = Tensor::randn(&shape(m, k), 0.0, 1.0, 1, &cpu);
            let b = Tensor::randn(&shape(k, n), 0.0, 1.0, 2, &cpu);
            let bt = Tensor::randn(&shape(n, k), 0.0, 1.0, 3, &cpu);
            let at = Tensor::randn(&shape(k, m), 0.0, 1.0, 4, &cpu);
            let tol = 1e-5 * k as f32;
            let (ga, gb, gbt, gat) = (
                a.to_device(gpu),
                b.to_device(gpu),
                bt.to_device(gpu),
                at.to_device(gpu),
            );
            assert_close(
                &ga.matmul(&gb),
                &a.matmul(&b),
                tol,
                1e-5,
                &format!("A·B {batch}x{m}x{k}x{n}"),
            );
            assert_close(
                &ga.matmul_nt(&gbt),
                &a.matmul_nt(&bt),
                tol,
                1e-5,
                &format!("A·Bᵀ {batch}x{m}x{k}x{n}"),
            );
            assert_close(
                &gat.matmul_tn(&gb),
                &at.matmul_tn(&b),
                tol,
                1e-5,
                &format!("Aᵀ·B {batch}x{m}x{k}x{n}"),
            );
        }
    }
}
