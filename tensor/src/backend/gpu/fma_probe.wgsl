// The multiply-add rate this adapter reaches through wgpu: every
// invocation runs 8 independent chains of vec4 multiply-adds
//   a_j ← a_j · s + t      (s, t from the parameters, so nothing folds)
// for p[2] steps of 4, then writes the sum of its chains (so nothing is
// dead). 8 · 4 · 4 · 2 = 256 flops per invocation per step.
//
// p[0] = s (f32 bits), p[1] = t (f32 bits), p[2] = steps.

@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = group_id(wid, nwg) * 256u + lid.x;
    let s = vec4<f32>(pf(0u));
    let t = vec4<f32>(pf(1u));
    var a0 = vec4<f32>(f32(i % 251u) * 1e-3, 0.1, 0.2, 0.3);
    var a1 = a0 + 1.0;
    var a2 = a0 + 2.0;
    var a3 = a0 + 3.0;
    var a4 = a0 + 4.0;
    var a5 = a0 + 5.0;
    var a6 = a0 + 6.0;
    var a7 = a0 + 7.0;
    for (var step = 0u; step < p[2]; step = step + 1u) {
        for (var u = 0u; u < 4u; u = u + 1u) {
            a0 = a0 * s + t;
            a1 = a1 * s + t;
            a2 = a2 * s + t;
            a3 = a3 * s + t;
            a4 = a4 * s + t;
            a5 = a5 * s + t;
            a6 = a6 * s + t;
            a7 = a7 * s + t;
        }
    }
    out[i] = dot(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7, vec4<f32>(1.0));
}
