// Max-pool of an [N, C, H, W] tensor, one invocation per output element
// (n, c, i, j): the maximum over its window
//   x[n, c, i·sh + a - ph, j·sw + b - pw],  0 <= a < kh, 0 <= b < kw,
// skipping positions in the padding, and the flat position r·W + q of the
// chosen element inside its input plane, stored as f32.
//
// As in cpu.rs, the first in-image element of the window (row-major order)
// starts the running maximum; a later one replaces it only if it is strictly
// greater, or if it is NaN and the running maximum is not (so a NaN wins,
// the first NaN). The padding never wins: every window holds at least one
// in-image element because the padding is at most half the window.
//
// p[0] = number of outputs N·C·OH·OW, p[1] = H, p[2] = W, p[3] = OH,
// p[4] = OW, p[5] = kh, p[6] = kw, p[7] = sh, p[8] = sw, p[9] = ph,
// p[10] = pw.

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> idx: array<f32>;

// NaN test on the bits (exponent all ones, mantissa not zero), which no
// compiler may fold away as it may `v != v`.
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let o = flat_id(wid, nwg, lid);
    if (o >= p[0]) { return; }
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

    // o = (plane · OH + i) · OW + j
    let j = o % ow;
    let i = (o / ow) % oh;
    let plane = o / (ow * oh);
    let base = plane * h * w;

    var best = 0.0;
    var at = 0xffffffffu;  // no element chosen yet
    for (var a = 0u; a < kh; a = a + 1u) {
        // Input row r = i·sh + a - ph, skipped when in the padding (the
        // unsigned subtraction is done only when it cannot go negative).
        let rp = i * sh + a;
        if (rp < ph || rp - ph >= h) { continue; }
        let r = rp - ph;
        for (var b = 0u; b < kw; b = b + 1u) {
            let qp = j * sw + b;
            if (qp < pw || qp - pw >= w) { continue; }
            let flat = r * w + (qp - pw);
            let v = x[base + flat];
            if (at == 0xffffffffu || v > best || (is_nan(v) && !is_nan(best))) {
                best = v;
                at = flat;
            }
        }
    }
    y[o] = best;
    idx[o] = f32(at);
}
