// out[i] = cond[ic] != 0 ? a[ia] : b[ib], all three broadcast to the output
// shape through their own strides (0 along broadcast axes).
//
// p[0] = n, p[1] = rank r, p[2 .. 2+r] = output shape,
// p[2+r ..] = strides of cond, then of a, then of b (r each).

@group(0) @binding(1) var<storage, read> cond: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p[0]) { return; }
    let r = p[1];
    var rem = i;
    var ic = 0u;
    var ia = 0u;
    var ib = 0u;
    for (var k = r; k > 0u; k = k - 1u) {
        let d = p[1u + k];
        let c = rem % d;
        rem = rem / d;
        ic = ic + c * p[1u + r + k];
        ia = ia + c * p[1u + 2u * r + k];
        ib = ib + c * p[1u + 3u * r + k];
    }
    out[i] = select(b[ib], a[ia], cond[ic] != 0.0);
}
