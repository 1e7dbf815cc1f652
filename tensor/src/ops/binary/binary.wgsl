// out[i] = f(a[ia], b[ib]) with NumPy broadcasting: the output index i is
// split into coordinates along the output shape, and each operand's element
// is found through its own strides (0 along broadcast axes).
//
// p[0] = n, p[1] = op code (BinaryOp order), p[2] = rank r,
// p[3 .. 3+r] = output shape, p[3+r .. 3+2r] = strides of a,
// p[3+2r .. 3+3r] = strides of b.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn apply(op: u32, x: f32, y: f32) -> f32 {
    switch op {
        case 0u: { return x + y; }
        case 1u: { return x - y; }
        case 2u: { return x * y; }
        case 3u: { return x / y; }
        case 4u: { return max(x, y); }
        case 5u: { return min(x, y); }
        case 6u: { return select(0.0, 1.0, x > y); }
        case 7u: { return select(0.0, 1.0, x >= y); }
        case 8u: { return select(0.0, 1.0, x == y); }
        case 9u: { return select(0.0, x, y > 0.0); }
        // Add then ReLU; a NaN passes through, as in PyTorch.
        default: { return select(x + y, 0.0, x + y <= 0.0); }
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p[0]) { return; }
    let r = p[2];
    var rem = i;
    var ia = 0u;
    var ib = 0u;
    for (var k = r; k > 0u; k = k - 1u) {
        let d = p[2u + k];
        let c = rem % d;
        rem = rem / d;
        ia = ia + c * p[2u + r + k];
        ib = ib + c * p[2u + 2u * r + k];
    }
    out[i] = apply(p[1], a[ia], b[ib]);
}
