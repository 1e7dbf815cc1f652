// Where the input gradient's implicit GEMM reads the output gradient: the
// index in dy (from the image's start) of element (kk, q) of the matrix
//
//   B[kk, q] = dy[o, i, j]  when  h + p_h - a = i·s_h  and  w + p_w - b = j·s_w
//
// for kk = (o·KH + a)·KW + b and q = h·W + w (a position of the input), or
// -1 when no output position's window put that weight on that input
// (the offset is negative, not a multiple of the stride, or past the
// output). Then dx[c, q] = Σ_kk W'[c, kk] · B[kk, q] with W'[c, kk] =
// W[o, c, a, b]: the col2im of Wᵀ·dY without its column buffer.
//
// p[16..19] = C, H, W, p[19..21] = KH, KW, p[21..23] = OH, OW,
// p[23..25] = s_h, s_w, p[25..27] = p_h, p_w.

fn dy_index(kk: u32, q: u32) -> i32 {
    let W = p[18];
    let KH = p[19]; let KW = p[20]; let OH = p[21]; let OW = p[22];
    let o = kk / (KH * KW);
    let a = (kk / KW) % KH;
    let b = kk % KW;
    let r = i32(q / W + p[25]) - i32(a);
    let s = i32(q % W + p[26]) - i32(b);
    if (r < 0 || s < 0) {
        return -1;
    }
    let ur = u32(r);
    let us = u32(s);
    if (ur % p[23] != 0u || us % p[24] != 0u) {
        return -1;
    }
    let i = ur / p[23];
    let j = us / p[24];
    if (i >= OH || j >= OW) {
        return -1;
    }
    return i32((o * OH + i) * OW + j);
}
