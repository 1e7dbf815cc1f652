// Gathers slices along one axis: viewing the input as [outer, len, inner]
// and the output as [outer, count, inner],
// out[o, j, e] = x[o, idx[j], e].
//
// p[0] = n (output elements), p[1] = inner, p[2] = len, p[3] = count.

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p[0]) { return; }
    let inner = p[1];
    let e = i % inner;
    let j = (i / inner) % p[3];
    let o = i / (inner * p[3]);
    out[i] = x[(o * p[2] + idx[j]) * inner + e];
}
