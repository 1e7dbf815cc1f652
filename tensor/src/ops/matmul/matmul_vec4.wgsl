// The register-blocked product of matmul.wgsl, specialised to the common
// case where A and B are both plainly row-major with k and n multiples of
// 4: every load is a vec4 (four floats in one access), and each step of
// the loop takes four steps of the inner dimension at once:
//
//   acc_r += a_r.x · B[t] + a_r.y · B[t+1] + a_r.z · B[t+2] + a_r.w · B[t+3]
//
// where a_r holds A[row0 + r, t .. t+4] and B[t+q] holds B[t+q, col0 .. col0+4].
//
// Same parameter block as matmul.wgsl (strides are implied and ignored):
// p[0] = m, p[1] = n, p[2] = k, p[7], p[8], p[9] = batch strides of A, B,
// C, p[10], p[11], p[12] = offsets of A, B, C (all multiples of 4),
// p[13] = accumulate.

@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m = p[0];
    let n = p[1];
    let k = p[2];
    let row0 = (wid.y * 16u + lid.y) * 4u;
    let col0 = (wid.x * 16u + lid.x) * 4u;
    if (row0 >= m || col0 >= n) { return; }
    let nv = n / 4u;
    let kv = k / 4u;
    // Indices in vec4 units.
    let abase = (p[10] + wid.z * p[7]) / 4u;
    let bbase = (p[11] + wid.z * p[8]) / 4u + col0 / 4u;
    let cbase = (p[12] + wid.z * p[9]) / 4u + col0 / 4u;
    let a0 = abase + min(row0, m - 1u) * kv;
    let a1 = abase + min(row0 + 1u, m - 1u) * kv;
    let a2 = abase + min(row0 + 2u, m - 1u) * kv;
    let a3 = abase + min(row0 + 3u, m - 1u) * kv;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var t = 0u; t < kv; t = t + 1u) {
        let bt = bbase + 4u * t * nv;
        let b0 = b[bt];
        let b1 = b[bt + nv];
        let b2 = b[bt + 2u * nv];
        let b3 = b[bt + 3u * nv];
        let x0 = a[a0 + t];
        let x1 = a[a1 + t];
        let x2 = a[a2 + t];
        let x3 = a[a3 + t];
        acc0 = acc0 + x0.x * b0 + x0.y * b1 + x0.z * b2 + x0.w * b3;
        acc1 = acc1 + x1.x * b0 + x1.y * b1 + x1.z * b2 + x1.w * b3;
        acc2 = acc2 + x2.x * b0 + x2.y * b1 + x2.z * b2 + x2.w * b3;
        acc3 = acc3 + x3.x * b0 + x3.y * b1 + x3.z * b2 + x3.w * b3;
    }
    let rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var r = 0u; r < 4u; r = r + 1u) {
        if (row0 + r < m) {
            let at = cbase + (row0 + r) * nv;
            if (p[13] == 1u) {
                c[at] = c[at] + rows[r];
            } else {
                c[at] = rows[r];
            }
        }
    }
}
