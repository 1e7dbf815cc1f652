// col2im as a gather, for a run of g images: each invocation owns one
// input element dx[n, c, r, q] and sums the entries of the column gradient
// [g, C·KH·KW, OH·OW] that were read from it, the (a, b, i, j) with
// i·s_h + a - p_h = r and j·s_w + b - p_w = q. Owning the output means no
// two invocations write the same element, so no atomics are needed.
//
// p[0] = total (g·C·H·W), p[1..4] = C, H, W, p[4..6] = KH, KW,
// p[6..8] = OH, OW, p[8..10] = s_h, s_w, p[10..12] = p_h, p_w,
// p[12] = offset of the first image in dx.

@group(0) @binding(1) var<storage, read> gcol: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = flat_id(wid, nwg, lid);
    if (idx >= p[0]) { return; }
    let C = p[1]; let H = p[2]; let W = p[3];
    let KH = p[4]; let KW = p[5]; let OH = p[6]; let OW = p[7];
    let P = OH * OW;
    let q = idx % W;
    let r = (idx / W) % H;
    let c = (idx / (W * H)) % C;
    let n = idx / (W * H * C);
    var sum = 0.0;
    for (var a = 0u; a < KH; a = a + 1u) {
        let ti = i32(r + p[10]) - i32(a);
        if (ti < 0 || ti % i32(p[8]) != 0) { continue; }
        let i = u32(ti) / p[8];
        if (i >= OH) { continue; }
        for (var b = 0u; b < KW; b = b + 1u) {
            let tj = i32(q + p[11]) - i32(b);
            if (tj < 0 || tj % i32(p[9]) != 0) { continue; }
            let j = u32(tj) / p[9];
            if (j >= OW) { continue; }
            let row = (c * KH + a) * KW + b;
            sum = sum + gcol[(n * C * KH * KW + row) * P + i * OW + j];
        }
    }
    dx[p[12] + idx] = sum;
}
