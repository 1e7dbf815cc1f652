// Where im2col would read: the index in x (from the first image) of
// column-matrix element (ck, q), or -1 in the padding. ck = (c·KH + a)·KW + b
// is the row of the column matrix, q = n·OH·OW + i·OW + j runs over the
// output positions of all the images one after another:
//
//   col[ck, q] = x[n, c, i·s_h + a - p_h, j·s_w + b - p_w].
//
// The geometry follows the product's words: p[16..19] = C, H, W,
// p[19..21] = KH, KW, p[21..23] = OH, OW, p[23..25] = s_h, s_w,
// p[25..27] = p_h, p_w.

fn im2col_index(ck: u32, q: u32) -> i32 {
    let C = p[16]; let H = p[17]; let W = p[18];
    let KH = p[19]; let KW = p[20]; let OW = p[22];
    let P = p[21] * OW;
    let n = q / P;
    let pos = q % P;
    let c = ck / (KH * KW);
    let a = (ck / KW) % KH;
    let b = ck % KW;
    let r = i32((pos / OW) * p[23] + a) - i32(p[25]);
    let s = i32((pos % OW) * p[24] + b) - i32(p[26]);
    if (r < 0 || r >= i32(H) || s < 0 || s >= i32(W)) {
        return -1;
    }
    return i32(((n * C + c) * H + u32(r)) * W + u32(s));
}
