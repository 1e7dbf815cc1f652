// The gradient of max-pool when only the stored indices are known: one
// invocation per (n, c) plane, which clears its plane of dx and then walks
// the plane's outputs in order, adding each gradient to the input position
// its index names:
//   dx[n, c, idx[n, c, i, j]] += dy[n, c, i, j].
// Each plane belongs to a single invocation, so no two invocations write the
// same element (no atomics), and the additions happen in the same order as
// in cpu.rs, so the result is bit-identical to the CPU's. An index outside
// the plane (which cpu.rs reports with a panic) is skipped here, so it can
// never write into a neighbouring plane.
//
// p[0] = number of planes N·C, p[1] = plane size H·W, p[2] = outputs per
// plane OH·OW.

@group(0) @binding(1) var<storage, read> gy: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let plane = flat_id(wid, nwg, lid);
    if (plane >= p[0]) { return; }
    let hw = p[1];
    let out_hw = p[2];
    let base = plane * hw;
    let obase = plane * out_hw;
    for (var k = 0u; k < hw; k = k + 1u) {
        dx[base + k] = 0.0;
    }
    for (var o = 0u; o < out_hw; o = o + 1u) {
        let at = u32(idx[obase + o]);
        if (at < hw) {
            dx[base + at] = dx[base + at] + gy[obase + o];
        }
    }
}
