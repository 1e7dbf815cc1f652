// The second half of a split-k product (matmul_tiled.wgsl): C = Σ_s
// partial_s (or C += Σ_s partial_s), one invocation per element of C.
// The partial sums of product b, slice s, are at (b · splits + s) · m·n.
//
// p[0] = batch · m · n (elements of C), p[1] = m · n, p[2] = splits,
// p[3] = element offset of C, p[4] = accumulate.

@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p[0]) { return; }
    let mn = p[1];
    let splits = p[2];
    let product = i / mn;
    let first = product * splits * mn + i % mn;
    var sum = 0.0;
    for (var s = 0u; s < splits; s = s + 1u) {
        sum = sum + partial[first + s * mn];
    }
    let at = p[3] + i;
    if (p[4] == 1u) {
        c[at] = c[at] + sum;
    } else {
        c[at] = sum;
    }
}
