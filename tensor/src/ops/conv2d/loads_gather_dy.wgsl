// How matmul_tiled.wgsl reads its operands for the input gradient
// dx_n = W' · B_n (dy_index.wgsl): A (the weight as [C, O·KH·KW]) through
// its strides, B gathered from image n's output gradient (at base).

fn load_a(row: u32, kk: u32, base: u32) -> f32 {
    return a[base + row * p[3] + kk * p[4]];
}

fn load_b(kk: u32, col: u32, base: u32) -> f32 {
    let i = dy_index(kk, col);
    if (i < 0) {
        return 0.0;
    }
    return b[base + u32(i)];
}
