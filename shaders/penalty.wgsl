// penalty.wgsl — Keras L1/L2 kernel regularisers, a graph op and its gradient (contracts: the
// Kernel variants of the same names; CPU reference: src/backend/cpu/optim.rs):
//   weight_penalty       [w, y]       y[0] = Σ (l1·|w| + l2·w²)          (Kernel::WeightPenalty)
//                        ONE workgroup of 256 threads: thread t sums the terms of w[t], w[t+256],
//                        … in order (four per loop iteration, for llvmpipe's 65535-iteration
//                        limit), then a shared-memory tree (128, 64, …, 1) combines them.
//   weight_penalty_partial, weight_penalty_reduce   the same over many elements, split by the
//                        host (`split_total`) as sum_squares in clip.wgsl.
//   weight_penalty_grad  [w, dy, dw]  dw = dy[0]·(l1·sign(w) + 2·l2·w)  (Kernel::WeightPenaltyGrad)
//
// Bindings (group 0): 0..2 = the step's args in the order above;
//   4: uniform Params { len, l1, l2 }.
// Workgroup size 256. weight_penalty_grad: 2-D grid (x ≤ 65535), flat index bounds-checked.

struct Params {
    len: u32,
    _u1: u32,
    chunks: u32,
    _u3: u32,
    l1: f32,
    l2: f32,
    _f2: f32,
    _f3: f32,
}

@group(0) @binding(0) var<storage, read_write> arg0: array<f32>;
@group(0) @binding(1) var<storage, read_write> arg1: array<f32>;
@group(0) @binding(2) var<storage, read_write> arg2: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(6) var<storage, read_write> partial: array<f32>;

// Elements per workgroup of the split sum (`SPLIT_ELEMS` in src/backend/gpu/splitk.rs).
const SPLIT_ELEMS: u32 = 16384u;

fn term(w: f32) -> f32 {
    return p.l1 * abs(w) + p.l2 * w * w;
}

// Σ term(w) over [start, end) by the 256 threads (four strided elements per loop iteration,
// for llvmpipe's limit), combined by the fixed tree; every thread must call it.
fn terms(t: u32, start: u32, end: u32) -> f32 {
    var s = 0.0;
    var i = start + t;
    for (; i + 768u < end; i += 1024u) {
        s += term(arg0[i]);
        s += term(arg0[i + 256u]);
        s += term(arg0[i + 512u]);
        s += term(arg0[i + 768u]);
    }
    for (; i < end; i += 256u) {
        s += term(arg0[i]);
    }
    return tree_sum(t, s);
}

@compute @workgroup_size(256)
fn weight_penalty(@builtin(local_invocation_id) lid: vec3<u32>) {
    let total = terms(lid.x, 0u, p.len);
    if (lid.x == 0u) {
        arg1[0] = total;
    }
}

@compute @workgroup_size(256)
fn weight_penalty_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let start = wid.x * SPLIT_ELEMS;
    let total = terms(lid.x, start, min(start + SPLIT_ELEMS, p.len));
    if (lid.x == 0u) {
        partial[wid.x] = total;
    }
}

@compute @workgroup_size(1)
fn weight_penalty_reduce() {
    var s = 0.0;
    for (var c = 0u; c < p.chunks; c++) {
        s += partial[c];
    }
    arg1[0] = s;
}

@compute @workgroup_size(256)
fn weight_penalty_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let w = arg0[i];
    arg2[i] = arg1[0] * (p.l1 * sign(w) + 2.0 * p.l2 * w);
}
