// A strided copy: for every coordinate (i_0, .., i_{r-1}) of `shape`,
// dst[dst_off + Σ i_k · dst_stride_k] = src[src_off + Σ i_k · src_stride_k].
// With the right strides this is a permute, a narrow, or one part of a
// concat.
//
// p[0] = n (elements of shape), p[1] = rank r, p[2] = src offset,
// p[3] = dst offset, p[4 .. 4+r] = shape, then r src strides, then r dst
// strides.

@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p[0]) { return; }
    let r = p[1];
    var rem = i;
    var s = p[2];
    var d = p[3];
    for (var k = r; k > 0u; k = k - 1u) {
        let size = p[3u + k];
        let c = rem % size;
        rem = rem / size;
        s = s + c * p[3u + r + k];
        d = d + c * p[3u + 2u * r + k];
    }
    dst[d] = src[s];
}
