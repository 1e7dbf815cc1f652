// The matrix product for hardware GPUs: C = A·B (or C += A·B), tiled
// through workgroup memory, batched and split along the inner dimension
// over the third grid axis, A and B read through arbitrary strides.
//
// A 16x16 workgroup computes a (16·RM)x(16·RN) tile of C, each invocation
// an RM x RN block of it in registers; RM and RN (4 or 8) are constants
// its launcher puts in front of this source (`const RM: u32 = 8u;` ...),
// one compiled kernel per tile shape. Per step of BK = 16 along the inner
// dimension the workgroup first copies a (16·RM)x16 slab of A and a
// 16x(16·RN) slab of B into workgroup memory (each invocation loads RM +
// RN values; neighbouring invocations go along the operand's unit stride,
// the inner dimension of a row-major A, the columns of a row-major B, so
// their reads fall close together), waits at a barrier, and then every
// invocation reads its A-columns and B-rows from there, RM/4 + RN/4
// vectors of 4 per step for RM·RN multiply-adds:
//
//   acc[r][q] += As[kk][row r] · Bs[kk][col q]   for kk in 0..16.
//
// Larger blocks do more arithmetic per workgroup-memory read (8x8: 64
// multiply-adds for 4 reads, 4x4: 16 for 2) but make fewer, larger tiles;
// the launcher picks the shape per product (gpu.rs, `Tile::choose`).
// An invocation's rows are in groups of 4 spaced 64 apart: rows
// 4·lid.y + r + 64·h for h < RM/4 (likewise its columns), so that the 16
// invocations of a row of the workgroup read 16 consecutive vectors.
//
// Split-k: when the tiles of C are too few to fill the GPU (a weight
// gradient: C small, the inner dimension the whole batch), the inner
// dimension is cut into `splits` slices of `kchunk`, each slice a
// workgroup of its own along the z axis (z = product · splits + slice);
// the slices write their partial sums to a scratch buffer, slice z at
// z·m·n, and splitk_sum.wgsl adds them into C.
//
// p[0] = m, p[1] = n, p[2] = k,
// p[3], p[4] = row and column stride of A, p[5], p[6] = those of B,
// p[7], p[8], p[9] = batch strides of A, B and C,
// p[10], p[11], p[12] = element offsets of A, B and C, p[13] = accumulate,
// p[14] = splits, p[15] = kchunk (a multiple of 16).
//
// The kernel reads A and B only through load_a(row, kk, base) and
// load_b(kk, col, base), defined in front of it by its launcher: through
// the strides above (loads_strided.wgsl), or, for a convolution, one of
// them gathered from the images as im2col would lay them out
// (conv2d/loads_gather_*.wgsl), so no column buffer is ever written.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// Groups of 4 rows (columns) per invocation.
const HA: u32 = RM / 4u;
const HB: u32 = RN / 4u;
// Vectors per row of the slabs: 16·HA groups of 4, plus one so that
// invocations that store down a column (kk varying) hit different banks.
const SA: u32 = 16u * HA + 1u;
const SB: u32 = 16u * HB + 1u;

// The slab of A, k-major: as_[kk * SA + g] = A[tile rows 4g .. 4g+4, k0 + kk].
var<workgroup> as_: array<vec4<f32>, 16u * SA>;
// The slab of B: bs[kk * SB + g] = B[k0 + kk, tile columns 4g .. 4g+4].
var<workgroup> bs: array<vec4<f32>, 16u * SB>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m = p[0];
    let n = p[1];
    let k = p[2];
    let splits = p[14];
    let product = wid.z / splits;
    let kbegin = (wid.z % splits) * p[15];
    let kend = min(k, kbegin + p[15]);
    let tile_row = wid.y * 16u * RM;
    let tile_col = wid.x * 16u * RN;
    let abase = p[10] + product * p[7];
    let bbase = p[11] + product * p[8];
    let t = lid.y * 16u + lid.x;
    // Which values of each slab this invocation loads (groups g + 16h of
    // step kk): along the operand's contiguous direction, neighbours take
    // neighbouring addresses.
    var a_kk = t / 16u;
    var a_g = t % 16u;
    if (p[4] == 1u) {
        a_kk = t % 16u;
        a_g = t / 16u;
    }
    var b_kk = t / 16u;
    var b_g = t % 16u;
    if (p[6] != 1u) {
        b_kk = t % 16u;
        b_g = t / 16u;
    }
    // The accumulators, one vector per 4 columns of one row:
    // acc_{ha}{r}{hb} holds row 4·lid.y + r + 64·ha, columns
    // 4·lid.x + 64·hb .. +4 (declared by the launcher, see below).
    //@DECLARE
    // The first slab's values, in registers: pa{h} for A's group a_g + 16h,
    // pb{h} for B's group b_g + 16h (the second only when HA, HB = 2).
    var pa0 = slab_a(a_g, kbegin + a_kk, kend, tile_row, abase);
    var pa1 = vec4<f32>(0.0);
    if (HA > 1u) {
        pa1 = slab_a(a_g + 16u, kbegin + a_kk, kend, tile_row, abase);
    }
    var pb0 = slab_b(b_g, kbegin + b_kk, kend, tile_col, bbase);
    var pb1 = vec4<f32>(0.0);
    if (HB > 1u) {
        pb1 = slab_b(b_g + 16u, kbegin + b_kk, kend, tile_col, bbase);
    }
    for (var k0 = kbegin; k0 < kend; k0 = k0 + 16u) {
        as_[a_kk * SA + a_g] = pa0;
        if (HA > 1u) {
            as_[a_kk * SA + a_g + 16u] = pa1;
        }
        bs[b_kk * SB + b_g] = pb0;
        if (HB > 1u) {
            bs[b_kk * SB + b_g + 16u] = pb1;
        }
        workgroupBarrier();
        // The next slab's loads are issued now and land while this one is
        // multiplied (they are first needed after the next barrier).
        let next = k0 + 16u;
        if (next < kend) {
            pa0 = slab_a(a_g, next + a_kk, kend, tile_row, abase);
            if (HA > 1u) {
                pa1 = slab_a(a_g + 16u, next + a_kk, kend, tile_row, abase);
            }
            pb0 = slab_b(b_g, next + b_kk, kend, tile_col, bbase);
            if (HB > 1u) {
                pb1 = slab_b(b_g + 16u, next + b_kk, kend, tile_col, bbase);
            }
        }
        // For kk in 0..16, written out by the launcher:
        // x{ha} = rows 4·lid.y + 64·ha .. +4 of A at step kk,
        // y{hb} = columns 4·lid.x + 64·hb .. +4 of B; then
        // acc_{ha}{r}{hb} += x{ha}[r] · y{hb} for every ha, r, hb.
        //@ACCUMULATE
        workgroupBarrier();
    }
    // Where this workgroup's sums go: C itself, or its slice of the scratch.
    var cbase = p[12] + product * p[9];
    var accumulate = p[13] == 1u;
    if (splits > 1u) {
        cbase = wid.z * m * n;
        accumulate = false;
    }
    //@STORE
}

// Writes the 4 sums v of row `row`, columns col0 .. col0+4, where they
// fall inside C (or adds them to it).
fn store4(row: u32, col0: u32, v: vec4<f32>, cbase: u32, accumulate: bool) {
    let m = p[0];
    let n = p[1];
    if (row >= m) {
        return;
    }
    for (var q = 0u; q < 4u; q = q + 1u) {
        if (col0 + q < n) {
            let at = cbase + row * n + col0 + q;
            if (accumulate) {
                c[at] = c[at] + v[q];
            } else {
                c[at] = v[q];
            }
        }
    }
}

// A's rows 4g .. 4g+4 of the tile at inner index ka: zero past m or kend.
fn slab_a(g: u32, ka: u32, kend: u32, tile_row: u32, base: u32) -> vec4<f32> {
    let row = tile_row + 4u * g;
    let m = p[0];
    var v = vec4<f32>(0.0);
    if (ka < kend) {
        if (row < m) {
            v.x = load_a(row, ka, base);
        }
        if (row + 1u < m) {
            v.y = load_a(row + 1u, ka, base);
        }
        if (row + 2u < m) {
            v.z = load_a(row + 2u, ka, base);
        }
        if (row + 3u < m) {
            v.w = load_a(row + 3u, ka, base);
        }
    }
    return v;
}

// B's columns 4g .. 4g+4 of the tile at inner index kb: zero past n or kend.
fn slab_b(g: u32, kb: u32, kend: u32, tile_col: u32, base: u32) -> vec4<f32> {
    let col = tile_col + 4u * g;
    let n = p[1];
    var v = vec4<f32>(0.0);
    if (kb < kend) {
        if (col < n) {
            v.x = load_b(kb, col, base);
        }
        if (col + 1u < n) {
            v.y = load_b(kb, col + 1u, base);
        }
        if (col + 2u < n) {
            v.z = load_b(kb, col + 2u, base);
        }
        if (col + 3u < n) {
            v.w = load_b(kb, col + 3u, base);
        }
    }
    return v;
}
