// Helpers shared by every kernel of the GPU backend; prepended to each
// kernel's source when it is compiled.

// The parameter block of the dispatch: sizes, strides and scalars as u32
// (floats as their bit patterns).
@group(0) @binding(0) var<storage, read> p: array<u32>;

// The index of this invocation in a grid of 256-thread workgroups that may
// be folded into two dimensions (see grid_1d in gpu/mod.rs).
fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid.x;
}

// The index of this workgroup in such a folded grid.
fn group_id(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}

// Parameter k read as a float.
fn pf(k: u32) -> f32 {
    return bitcast<f32>(p[k]);
}
