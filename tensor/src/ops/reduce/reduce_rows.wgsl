// Reduces every row of a [rows, len] matrix to one value per part of the
// row, one workgroup per part: each of the 256 threads first folds a
// strided share of its part (elements start + t, start + t + 256, ...),
// then the 256 partial results are folded pairwise in workgroup memory (a
// tree of depth 8). With one part per row that is the row's result; a
// long row cut in several parts (so that more workgroups share it: one
// workgroup alone reads memory at a small fraction of a large GPU's rate)
// gives partial results that a second dispatch reduces (gpu.rs).
//
// Ops: 0 sum, 1 max, 2 argmax (index of the first maximum, as f32),
// 3 sum of squares.
//
// p[0] = rows, p[1] = len, p[2] = op, p[3] = parts per row, p[4] = the
// length of a part (the last may be shorter). Workgroup g reduces part
// g % parts of row g / parts into out[g].

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> val: array<f32, 256>;
var<workgroup> arg: array<u32, 256>;

const NEG_INF: f32 = -3.4028235e38;

// Whether (v, i) should replace (w, j) as the running argmax: larger, or
// equal and earlier.
fn better(v: f32, i: u32, w: f32, j: u32) -> bool {
    return v > w || (v == w && i < j);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = group_id(wid, nwg);
    let len = p[1];
    let op = p[2];
    let row = g / p[3];
    let start = (g % p[3]) * p[4];
    let end = min(len, start + p[4]);
    let t = lid.x;
    // Every thread of a workgroup must reach the barriers, so rows past the
    // end still run the loop (with no elements) and only skip the write.
    let valid = row < p[0];
    let base = row * len;

    var acc = 0.0;
    var best = u32(0xffffffffu);
    if (op == 1u || op == 2u) { acc = NEG_INF; }
    if (valid) {
        for (var i = start + t; i < end; i = i + 256u) {
            let v = x[base + i];
            switch op {
                case 0u: { acc = acc + v; }
                case 1u: { acc = max(acc, v); }
                case 2u: { if (best == 0xffffffffu || better(v, i, acc, best)) { acc = v; best = i; } }
                default: { acc = acc + v * v; }
            }
        }
    }
    val[t] = acc;
    arg[t] = best;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half = half / 2u) {
        if (t < half) {
            let v = val[t + half];
            let i = arg[t + half];
            switch op {
                case 1u: { val[t] = max(val[t], v); }
                case 2u: {
                    if (i != 0xffffffffu && (arg[t] == 0xffffffffu || better(v, i, val[t], arg[t]))) {
                        val[t] = v;
                        arg[t] = i;
                    }
                }
                default: { val[t] = val[t] + v; }
            }
        }
        workgroupBarrier();
    }
    if (t == 0u && valid) {
        if (op == 2u) {
            out[g] = f32(arg[0]);
        } else {
            out[g] = val[0];
        }
    }
}
