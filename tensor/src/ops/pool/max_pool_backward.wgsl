// The gradient of max-pool as a gather, one invocation per input element
// (n, c, r, q): the sum of dy over the outputs (i, j) whose window contains
// (r, q) and whose stored index is this element's flat position r·W + q:
//   dx[n, c, r, q] = Σ dy[n, c, i, j] over such (i, j).
// The window of output row i covers input rows i·sh - ph ..= i·sh - ph + kh - 1,
// so the rows containing r are
//   i_lo = ceil((r + ph + 1 - kh) / sh) (0 when that is negative)
//   i_hi = floor((r + ph) / sh), at most OH - 1,
// and likewise the columns. Each invocation writes only its own element (no
// atomics), and the outputs are visited in row-major order, the order in
// which cpu.rs adds them, so the result is bit-identical to the CPU's.
//
// p[0] = number of inputs N·C·H·W, p[1] = H, p[2] = W, p[3] = OH,
// p[4] = OW, p[5] = kh, p[6] = kw, p[7] = sh, p[8] = sw, p[9] = ph,
// p[10] = pw.

@group(0) @binding(1) var<storage, read> gy: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

// The first window start (index of an output row or column) whose window,
// of size k and stride s with padding pad, reaches position r.
fn first_window(r: u32, k: u32, s: u32, pad: u32) -> u32 {
    let end = r + pad + 1u;  // window i reaches r when i·s + k >= r + pad + 1
    if (end <= k) { return 0u; }
    return (end - k + s - 1u) / s;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let e = flat_id(wid, nwg, lid);
    if (e >= p[0]) { return; }
    let h = p[1];
    let w = p[2];
    let oh = p[3];
    let ow = p[4];
    let kh = p[5];
    let kw = p[6];
    let sh = p[7];
    let sw = p[8];
    let ph = p[9];
    let pw = p[10];

    // e = plane · H·W + r · W + q
    let flat = e % (h * w);
    let plane = e / (h * w);
    let r = flat / w;
    let q = flat % w;
    let here = f32(flat);
    let obase = plane * oh * ow;

    // Half-open ranges [i_lo, i_end) and [j_lo, j_end) of the windows that
    // contain (r, q).
    let i_lo = first_window(r, kh, sh, ph);
    let i_end = min((r + ph) / sh + 1u, oh);
    let j_lo = first_window(q, kw, sw, pw);
    let j_end = min((q + pw) / sw + 1u, ow);
    var acc = 0.0;
    for (var i = i_lo; i < i_end; i = i + 1u) {
        for (var j = j_lo; j < j_end; j = j + 1u) {
            let o = obase + i * ow + j;
            if (idx[o] == here) {
                acc = acc + gy[o];
            }
        }
    }
    dx[e] = acc;
}
