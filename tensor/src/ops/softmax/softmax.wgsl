// Softmax or log-softmax of every row of a [rows, n] matrix (the last axis
// of the tensor), one workgroup per row:
//   m   = max_j x_j                   (workgroup reduction)
//   s   = Σ_j e^(x_j - m)             (workgroup reduction)
//   softmax:     y_i = e^(x_i - m) / s
//   log-softmax: y_i = (x_i - m) - ln s
// Subtracting the row maximum keeps e^x from overflowing. Each reduction
// has each of the 256 threads fold a strided share of the row (elements
// t, t + 256, ...), then folds the 256 partial results pairwise in
// workgroup memory (a tree of depth 8).
//
// p[0] = rows, p[1] = n (row length), p[2] = 1 for log-softmax, 0 for
// softmax.

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> part: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = group_id(wid, nwg);
    let n = p[1];
    let t = lid.x;
    // Every thread must reach the barriers, so the spare workgroups of a
    // folded grid (row >= rows) run with an empty row and write nothing.
    let len = select(0u, n, row < p[0]);
    let base = row * n;

    // The row maximum, starting from -inf as cpu.rs does (a constant
    // expression cannot be infinite in WGSL, so it is made from its bits).
    var m = bitcast<f32>(0xff800000u);
    for (var i = t; i < len; i = i + 256u) {
        m = max(m, x[base + i]);
    }
    part[t] = m;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half = half / 2u) {
        if (t < half) {
            part[t] = max(part[t], part[t + half]);
        }
        workgroupBarrier();
    }
    let row_max = part[0];
    // Everyone has read part[0] before it is overwritten below.
    workgroupBarrier();

    // The sum of the shifted exponentials.
    var s = 0.0;
    for (var i = t; i < len; i = i + 256u) {
        s = s + exp(x[base + i] - row_max);
    }
    part[t] = s;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half = half / 2u) {
        if (t < half) {
            part[t] = part[t] + part[t + half];
        }
        workgroupBarrier();
    }
    let total = part[0];

    if (p[2] == 1u) {
        let lse = log(total);
        for (var i = t; i < len; i = i + 256u) {
            out[base + i] = x[base + i] - row_max - lse;
        }
    } else {
        for (var i = t; i < len; i = i + 256u) {
            out[base + i] = exp(x[base + i] - row_max) / total;
        }
    }
}
