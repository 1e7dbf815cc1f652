// How matmul_tiled.wgsl reads its operands for the forward convolution
// Y_n = W · col_n: A (the weight) through its strides, B gathered from
// image n (at base) as im2col would lay it out (im2col_index.wgsl).

fn load_a(row: u32, kk: u32, base: u32) -> f32 {
    return a[base + row * p[3] + kk * p[4]];
}

fn load_b(kk: u32, col: u32, base: u32) -> f32 {
    let i = im2col_index(kk, col);
    if (i < 0) {
        return 0.0;
    }
    return b[base + u32(i)];
}
