// A register-blocked matrix product, C = A·B (or C += A·B), batched over
// the third grid axis, with A and B read through arbitrary strides (so the
// transposed forms need no copy).
//
// Each invocation owns a 4x4 block of C and keeps it in registers: per step
// of the inner dimension it loads a column of 4 values of A and a row of 4
// values of B and adds their outer product, 16 multiply-adds for 8 loads (a
// naive kernel does 1 for 2). A 16x16 workgroup covers a 64x64 tile of C.
// Out-of-range rows and columns are clamped on load and skipped on store.
//
// p[0] = m, p[1] = n, p[2] = k,
// p[3], p[4] = row and column stride of A, p[5], p[6] = those of B,
// p[7], p[8], p[9] = batch strides of A, B and C,
// p[10], p[11], p[12] = element offsets of A, B and C, p[13] = accumulate.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m = p[0];
    let n = p[1];
    let k = p[2];
    let row0 = (wid.y * 16u + lid.y) * 4u;
    let col0 = (wid.x * 16u + lid.x) * 4u;
    if (row0 >= m || col0 >= n) { return; }
    let abase = p[10] + wid.z * p[7];
    let bbase = p[11] + wid.z * p[8];
    let cbase = p[12] + wid.z * p[9];
    // Clamped row offsets of A and column offsets of B.
    let ar = vec4<u32>(min(row0, m - 1u), min(row0 + 1u, m - 1u), min(row0 + 2u, m - 1u), min(row0 + 3u, m - 1u)) * p[3];
    let bc = vec4<u32>(min(col0, n - 1u), min(col0 + 1u, n - 1u), min(col0 + 2u, n - 1u), min(col0 + 3u, n - 1u)) * p[6];
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var t = 0u; t < k; t = t + 1u) {
        let at = abase + t * p[4];
        let bt = bbase + t * p[5];
        let av = vec4<f32>(a[at + ar.x], a[at + ar.y], a[at + ar.z], a[at + ar.w]);
        let bv = vec4<f32>(b[bt + bc.x], b[bt + bc.y], b[bt + bc.z], b[bt + bc.w]);
        acc0 = acc0 + av.x * bv;
        acc1 = acc1 + av.y * bv;
        acc2 = acc2 + av.z * bv;
        acc3 = acc3 + av.w * bv;
    }
    let rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var r = 0u; r < 4u; r = r + 1u) {
        if (row0 + r < m) {
            for (var q = 0u; q < 4u; q = q + 1u) {
                if (col0 + q < n) {
                    let at = cbase + (row0 + r) * n + col0 + q;
                    if (p[13] == 1u) {
                        c[at] = c[at] + rows[r][q];
                    } else {
                        c[at] = rows[r][q];
                    }
                }
            }
        }
    }
}
