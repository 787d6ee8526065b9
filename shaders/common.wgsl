// common.wgsl — helpers every shader shares. WGSL has no include: kiln prepends this file
// and the generated activation functions to each other shaders/*.wgsl when it creates the
// shader module (`Shader::source` in src/backend/gpu/kernels.rs), and the naga test
// validates them the same way. It holds only
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

// ln(1 + e^x) without overflow: max(x, 0) + ln(1 + e^-|x|) (as `softplus` in src/program/unary.rs).
fn softplus(x: f32) -> f32 {
    return max(x, 0.0) + log(1.0 + exp(-abs(x)));
}

// The error function (WGSL has none): Abramowitz & Stegun 7.1.26, |error| < 1.5e-7.
fn erf(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.3275911 * abs(x));
    let poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
    return sign(x) * (1.0 - poly * exp(-x * x));
}

// `activation(code, x)` and `activation_grad(code, v, dy)` follow this file: kiln generates
// them from the activation table (src/program/unary.rs, `UnaryOp::wgsl_functions`).

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
