// How matmul_tiled.wgsl reads its operands for a plain product: element
// (row, kk) of A and (kk, col) of B through their row and column strides
// (p[3], p[4] and p[5], p[6]), from the product's base offset.

fn load_a(row: u32, kk: u32, base: u32) -> f32 {
    return a[base + row * p[3] + kk * p[4]];
}

fn load_b(kk: u32, col: u32, base: u32) -> f32 {
    return b[base + kk * p[5] + col * p[6]];
}
