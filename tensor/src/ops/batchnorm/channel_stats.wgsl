// Per-channel mean and biased variance of an [N, C, rest..] tensor, seen as
// N·C contiguous planes of L = Π rest values (channel c owns planes
// c, C + c, 2C + c, ...), over one part of the batch: images
// [j·B, min(N, (j+1)·B)) for part j, B images per part. One workgroup per
// channel and part, m = (images in the part)·L values:
//   mean[c, j] = (1/m) Σ x
//   var[c, j]  = (1/m) Σ (x - mean[c, j])²
// in two passes over the values (the mean first, then the squared
// deviations), which avoids the cancellation of E[x²] - E[x]². Each pass is
// a workgroup reduction: each of the 256 threads sums a strided share of
// the part's m values (the k-th value is x[(b·C + c)·L + l] with
// b = j·B + k / L, l = k % L), then the 256 partial sums are added pairwise
// in workgroup memory (a tree of depth 8). With one part (the whole batch)
// these are the channel's statistics; with several (so that a few channels
// still give a large GPU enough workgroups), channel_stats_combine.wgsl
// merges them.
//
// p[0] = N, p[1] = C, p[2] = L, p[3] = parts, p[4] = B. Workgroup g holds
// channel g / parts, part g % parts, and writes mean_out[g], var_out[g].

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> var_out: array<f32>;

var<workgroup> part: array<f32, 256>;

// Adds up part[0..256] into part[0]; every thread of the workgroup must
// call it (it holds barriers).
fn tree_sum(t: u32) {
    workgroupBarrier();
    for (var half = 128u; half > 0u; half = half / 2u) {
        if (t < half) {
            part[t] = part[t] + part[t + half];
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = group_id(wid, nwg);
    let n = p[0];
    let channels = p[1];
    let l = p[2];
    let c = g / p[3];
    let b0 = (g % p[3]) * p[4];
    let m = (min(n, b0 + p[4]) - min(n, b0)) * l;
    let t = lid.x;
    // Every thread must reach the barriers, so the spare workgroups of a
    // folded grid (c >= C) run with no values and only skip the write.
    let valid = c < channels;
    let count = select(0u, m, valid);

    // Pass 1: the mean.
    var acc = 0.0;
    for (var k = t; k < count; k = k + 256u) {
        acc = acc + x[((b0 + k / l) * channels + c) * l + k % l];
    }
    part[t] = acc;
    tree_sum(t);
    let mean = part[0] / f32(m);
    // Everyone has read part[0] before it is overwritten below.
    workgroupBarrier();

    // Pass 2: the mean of the squared deviations.
    var acc2 = 0.0;
    for (var k = t; k < count; k = k + 256u) {
        let d = x[((b0 + k / l) * channels + c) * l + k % l] - mean;
        acc2 = acc2 + d * d;
    }
    part[t] = acc2;
    tree_sum(t);
    if (t == 0u && valid) {
        mean_out[g] = mean;
        var_out[g] = part[0] / f32(m);
    }
}
