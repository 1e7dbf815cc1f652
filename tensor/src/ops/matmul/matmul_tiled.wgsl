// The matrix product for hardware GPUs: C = A·B (or C += A·B), tiled
// through workgroup memory, batched and split along the inner dimension
// over the third grid axis, A and B read through arbitrary strides.
//
// A 16x16 workgroup computes a 64x64 tile of C, each invocation a 4x4
// block of it in registers (as matmul.wgsl). The difference is where the
// operands come from: per step of BK = 16 along the inner dimension the
// workgroup first copies a 64x16 slab of A and a 16x64 slab of B into
// workgroup memory (each invocation loads 4 + 4 values; neighbouring
// invocations go along the operand's unit stride, the inner dimension of a
// row-major A, the columns of a row-major B, so their reads fall close
// together), waits at a barrier, and then every invocation
// reads its 16 A-columns and B-rows of 4 from there. Each value loaded
// from device memory is used by 16 invocations instead of 1:
//
//   acc[r] += As[kk][row r] · Bs[kk][cols]   for kk in 0..16, r in 0..4.
//
// Split-k: when the 64x64 tiles of C are too few to fill the GPU (a
// weight gradient: C small, the inner dimension the whole batch), the
// inner dimension is cut into `splits` slices of `kchunk`, each slice a
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

// The slab of A, k-major: as_[kk * 17 + g] = A[tile rows 4g .. 4g+4, k0 + kk].
// Rows of 17, not 16: invocations that store down a column (kk varying)
// then hit different memory banks.
var<workgroup> as_: array<vec4<f32>, 272>;
// The slab of B: bs[kk * 17 + g] = B[k0 + kk, tile columns 4g .. 4g+4].
var<workgroup> bs: array<vec4<f32>, 272>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m = p[0];
    let n = p[1];
    let k = p[2];
    let splits = p[14];
    let product = wid.z / splits;
    let kbegin = (wid.z % splits) * p[15];
    let kend = min(k, kbegin + p[15]);
    let tile_row = wid.y * 64u;
    let tile_col = wid.x * 64u;
    let abase = p[10] + product * p[7];
    let bbase = p[11] + product * p[8];
    let t = lid.y * 16u + lid.x;
    // Which 4 values of each slab this invocation loads: along the
    // operand's contiguous direction, neighbours take neighbouring addresses.
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
    let a_row = tile_row + a_g * 4u;
    let b_col = tile_col + b_g * 4u;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = kbegin; k0 < kend; k0 = k0 + 16u) {
        var av = vec4<f32>(0.0);
        let ka = k0 + a_kk;
        if (ka < kend) {
            for (var i = 0u; i < 4u; i = i + 1u) {
                if (a_row + i < m) {
                    av[i] = load_a(a_row + i, ka, abase);
                }
            }
        }
        as_[a_kk * 17u + a_g] = av;
        var bv = vec4<f32>(0.0);
        let kb = k0 + b_kk;
        if (kb < kend) {
            for (var i = 0u; i < 4u; i = i + 1u) {
                if (b_col + i < n) {
                    bv[i] = load_b(kb, b_col + i, bbase);
                }
            }
        }
        bs[b_kk * 17u + b_g] = bv;
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk = kk + 1u) {
            let x = as_[kk * 17u + lid.y];
            let y = bs[kk * 17u + lid.x];
            acc0 = acc0 + x.x * y;
            acc1 = acc1 + x.y * y;
            acc2 = acc2 + x.z * y;
            acc3 = acc3 + x.w * y;
        }
        workgroupBarrier();
    }
    // Where this workgroup's sums go: C itself, or its slice of the scratch.
    var cbase = p[12] + product * p[9];
    var accumulate = p[13] == 1u;
    if (splits > 1u) {
        cbase = wid.z * m * n;
        accumulate = false;
    }
    let row0 = tile_row + lid.y * 4u;
    let col0 = tile_col + lid.x * 4u;
    let rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var r = 0u; r < 4u; r = r + 1u) {
        if (row0 + r < m) {
            for (var q = 0u; q < 4u; q = q + 1u) {
                if (col0 + q < n) {
                    let at = cbase + (row0 + r) * n + col0 + q;
                    if (accumulate) {
                        c[at] = c[at] + rows[r][q];
                    } else {
                        c[at] = rows[r][q];
                    }
                }
            }
        }
    }
}
