// im2col for a run of g images: col[n, (c·KH + a)·KW + b, i·OW + j] =
// x[n, c, i·s_h + a - p_h, j·s_w + b - p_w], or 0 in the padding. The
// column matrix is written through strides, so the same kernel produces the
// batched layout [g, C·KH·KW, OH·OW] (forward, input gradient) and the
// layout [C·KH·KW, g, OH·OW] (weight gradient, one long product).
//
// p[0] = total (g·C·KH·KW·OH·OW), p[1..4] = C, H, W, p[4..6] = KH, KW,
// p[6..8] = OH, OW, p[8..10] = s_h, s_w, p[10..12] = p_h, p_w,
// p[12] = offset of the first image in x, p[13] = image stride in col,
// p[14] = row stride in col.

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> col: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = flat_id(wid, nwg, lid);
    if (idx >= p[0]) { return; }
    let C = p[1]; let H = p[2]; let W = p[3];
    let KH = p[4]; let KW = p[5]; let OH = p[6]; let OW = p[7];
    let P = OH * OW;
    let rows = C * KH * KW;
    let pos = idx % P;
    let row = (idx / P) % rows;
    let n = idx / (P * rows);
    let c = row / (KH * KW);
    let a = (row / KW) % KH;
    let b = row % KW;
    let i = pos / OW;
    let j = pos % OW;
    // Signed: the window may start in the padding.
    let r = i32(i * p[8] + a) - i32(p[10]);
    let q = i32(j * p[9] + b) - i32(p[11]);
    var v = 0.0;
    if (r >= 0 && r < i32(H) && q >= 0 && q < i32(W)) {
        v = x[p[12] + ((n * C + c) * H + u32(r)) * W + u32(q)];
    }
    col[n * p[13] + row * p[14] + pos] = v;
}
