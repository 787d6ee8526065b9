// common.wgsl — helpers every shader shares. WGSL has no include: kiln prepends this file
// to each other shaders/*.wgsl when it creates the shader module (`Shader::source` in
// src/backend/gpu/kernels.rs), and the naga test validates them the same way. It holds only
// functions and the one reduction array, no bindings: each file declares its own Params and
// args.

// Flat index of a thread in a 1-D launch of workgroups of `size`, folded into a 2-D grid so
// that the count may pass 65535 workgroups per dimension.
fn grid_index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>, size: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * size + lid.x;
}

// `grid_index` for the usual workgroups of 256.
fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return grid_index(wid, nwg, lid, 256u);
}

// Numerically stable logistic function (same branches as the CPU reference).
fn sigmoid(x: f32) -> f32 {
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

// Activation `code` (`activation_code` in src/backend/gpu/launch.rs): 0 identity, 1 relu,
// 2 sigmoid, 3 tanh — the CPU's formulas.
fn activation(code: u32, x: f32) -> f32 {
    switch code {
        case 1u: {
            return select(0.0, x, x > 0.0);
        }
        case 2u: {
            return sigmoid(x);
        }
        case 3u: {
            // tanh saturates to ±1 in f32 beyond |x| = 10; clamping avoids exp overflow.
            return tanh(clamp(x, -10.0, 10.0));
        }
        default: {
            return x;
        }
    }
}

// PCG hash (Jarzynski & Olano 2020), as `pcg_hash` in src/program/mod.rs.
fn pcg_hash(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

// Shared memory of the workgroup reductions below.
var<workgroup> lanes: array<f32, 256>;

// Σ `value` over the 256 threads of the workgroup by a fixed tree (128, 64, …, 1): the same
// bits on every run. Every thread must call it; every thread gets the total.
fn tree_sum(t: u32, value: f32) -> f32 {
    lanes[t] = value;
    workgroupBarrier();
    for (var stride = 128u; stride > 0u; stride >>= 1u) {
        if (t < stride) {
            lanes[t] += lanes[t + stride];
        }
        workgroupBarrier();
    }
    let total = lanes[0];
    // Every thread has read the total before a next call overwrites it.
    workgroupBarrier();
    return total;
}

// Column reductions, 16 columns per workgroup: thread `lid` is lane lid / 16 of column
// lid % 16. Σ `v` over the 16 lanes of this thread's column by a fixed tree (8, 4, 2, 1);
// every thread must call it; every thread gets its column's total.
fn lane_total(v: f32, lid: u32) -> f32 {
    lanes[lid] = v;
    workgroupBarrier();
    for (var stride = 8u; stride > 0u; stride >>= 1u) {
        if (lid / 16u < stride) {
            lanes[lid] += lanes[lid + stride * 16u];
        }
        workgroupBarrier();
    }
    let total = lanes[lid % 16u];
    workgroupBarrier();
    return total;
}
