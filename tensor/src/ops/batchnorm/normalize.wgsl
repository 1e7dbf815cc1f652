// Batch-norm's normalise-scale-shift, one invocation per element of an
// [N, C, rest..] tensor; element i is in channel c = (i / L) % C with
// L = Π rest. The per-channel affine map is recomputed per element (two
// flops and a square root; cheaper than a second dispatch):
//   scale = w[c] / sqrt(var[c] + eps)
//   shift = b[c] - mean[c] · scale
//   y[i]  = x[i] · scale + shift
// which equals (x - mean) / sqrt(var + eps) · w + b; then max(y, 0) when
// the ReLU flag is set (batch norm followed by ReLU in one pass).
//
// p[0] = number of elements, p[1] = C, p[2] = L, p[3] = eps (f32 bits),
// p[4] = 1 to apply ReLU, else 0.

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> variance: array<f32>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p[0]) { return; }
    let c = (i / p[2]) % p[1];
    let scale = weight[c] / sqrt(variance[c] + pf(3u));
    let shift = bias[c] - mean[c] * scale;
    let y = x[i] * scale + shift;
    // ReLU when asked; a NaN passes through (y <= 0 is false), as in PyTorch.
    out[i] = select(y, 0.0, p[4] == 1u && y <= 0.0);
}
