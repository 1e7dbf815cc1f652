// Merges the per-part statistics of channel_stats.wgsl into each channel's
// mean and biased variance, one invocation per channel. Part j has n_j
// values, mean μ_j and variance v_j; over all m = Σ n_j values
//   μ = (1/m) Σ n_j μ_j
//   v = (1/m) Σ n_j (v_j + (μ_j - μ)²)
// (the within-part squared deviations plus each part's offset from the
// whole mean: the pairwise merge of Chan, Golub and LeVeque, with no
// E[x²] - E[x]² cancellation).
//
// p[0] = N, p[1] = C, p[2] = L, p[3] = parts, p[4] = B (images per part,
// the last part may have fewer).

@group(0) @binding(1) var<storage, read> part_mean: array<f32>;
@group(0) @binding(2) var<storage, read> part_var: array<f32>;
@group(0) @binding(3) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> var_out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = flat_id(wid, nwg, lid);
    let n = p[0];
    let l = p[2];
    let parts = p[3];
    if (c >= p[1]) {
        return;
    }
    let m = f32(n * l);
    var sum = 0.0;
    for (var j = 0u; j < parts; j = j + 1u) {
        let images = min(n, (j + 1u) * p[4]) - j * p[4];
        sum = sum + f32(images * l) * part_mean[c * parts + j];
    }
    let mean = sum / m;
    var dev = 0.0;
    for (var j = 0u; j < parts; j = j + 1u) {
        let images = min(n, (j + 1u) * p[4]) - j * p[4];
        let d = part_mean[c * parts + j] - mean;
        dev = dev + f32(images * l) * (part_var[c * parts + j] + d * d);
    }
    mean_out[c] = mean;
    var_out[c] = dev / m;
}
