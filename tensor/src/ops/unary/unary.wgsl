// out[i] = f(x[i]) for one of the unary ops; the op code and its scalar
// come in the parameter block. The codes follow UnaryOp::code in gpu.rs.
//
// p[0] = n, p[1] = op code, p[2] = the scalar (f32 bits)

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn apply(op: u32, v: f32, s: f32) -> f32 {
    switch op {
        case 0u: { return -v; }
        // ReLU; a NaN passes through (v <= 0 is false), as in PyTorch.
        case 1u: { return select(v, 0.0, v <= 0.0); }
        case 2u: { return exp(v); }
        case 3u: { return log(v); }
        case 4u: { return sqrt(v); }
        case 5u: { return 1.0 / sqrt(v); }
        case 6u: { return abs(v); }
        case 7u: { return v * v; }
        case 8u: { return pow(v, s); }
        case 9u: { return v + s; }
        case 10u: { return v * s; }
        case 11u: { return v / s; }
        case 12u: { return max(v, s); }
        case 13u: { return min(v, s); }
        case 14u: { return select(0.0, 1.0, v > s); }
        case 15u: { return select(0.0, 1.0, v >= s); }
        default: { return select(0.0, 1.0, v == s); }
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p[0]) { return; }
    out[i] = apply(p[1], x[i], pf(2u));
}
