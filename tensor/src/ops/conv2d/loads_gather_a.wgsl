// How matmul_tiled.wgsl reads its operands for the weight gradient
// dWᵀ = col' · dY': A gathered from the images as im2col would lay them
// out, its inner index running over every output position of every image
// (im2col_index.wgsl); B (the output gradient, [N·OH·OW, O]) through its
// strides.

fn load_a(row: u32, kk: u32, base: u32) -> f32 {
    let i = im2col_index(row, kk);
    if (i < 0) {
        return 0.0;
    }
    return a[base + u32(i)];
}

fn load_b(kk: u32, col: u32, base: u32) -> f32 {
    return b[base + kk * p[5] + col * p[6]];
}
