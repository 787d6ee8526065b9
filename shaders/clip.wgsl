// clip.wgsl — gradient clipping, run between the backward pass and the optimizer update
// (contracts: the Kernel variants of the same names; CPU reference: src/backend/cpu/optim.rs):
//   sum_squares    [x, total]   total[0] = Σ x² (accumulate: total[0] += Σ x²)  (Kernel::SumSquares)
//                  ONE workgroup of 256 threads: thread t sums x[t]², x[t+256]², … in order (four
//                  per loop iteration, so a 2²⁴-element chunk loops 16384 times: llvmpipe ends an
//                  invocation's loops after 65535), then a shared-memory tree (128, 64, …, 1)
//                  combines the 256 partial sums. Deterministic: no atomics, fixed order.
//   sum_squares_partial, sum_squares_reduce   the same over many elements (a large parameter),
//                  split by the host (`split_total`): workgroup w sums x² of its SPLIT_ELEMS
//                  elements as above into the scratch (binding 6), then one thread adds the
//                  chunks' sums in order (chunks: the third Params field).
//   clip_by_norm   [total, g]   g *= c / max(sqrt(total[0]), c)                  (Kernel::ClipByNorm)
//   clip_by_value  [g]          g = clamp(g, −c, c), NaN kept                     (Kernel::ClipByValue)
//
// Bindings (group 0): 0, 1 = the step's args in the order above;
//   4: uniform Params { len, accumulate, c (clip_norm or clip_value) }.
// Workgroup size 256. clip_by_*: 2-D grid (x ≤ 65535), flat index bounds-checked against len.

struct Params {
    len: u32,
    accumulate: u32,
    chunks: u32,
    _u3: u32,
    clip: f32,
    _f1: f32,
    _f2: f32,
    _f3: f32,
}

@group(0) @binding(0) var<storage, read_write> arg0: array<f32>;
@group(0) @binding(1) var<storage, read_write> arg1: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(6) var<storage, read_write> partial: array<f32>;

// Elements per workgroup of the split sum (`SPLIT_ELEMS` in src/backend/gpu/splitk.rs).
const SPLIT_ELEMS: u32 = 16384u;

fn sq(v: f32) -> f32 {
    return v * v;
}

// Σ x² over [start, end) by the 256 threads (thread t: start + t, + 256, … in order, four per
// loop iteration), combined by the fixed tree; every thread must call it.
fn squares(t: u32, start: u32, end: u32) -> f32 {
    var s = 0.0;
    var i = start + t;
    // Four strided elements per iteration, added in the same order as one at a time.
    for (; i + 768u < end; i += 1024u) {
        s += sq(arg0[i]);
        s += sq(arg0[i + 256u]);
        s += sq(arg0[i + 512u]);
        s += sq(arg0[i + 768u]);
    }
    for (; i < end; i += 256u) {
        s += sq(arg0[i]);
    }
    return tree_sum(t, s);
}

fn store_total(total: f32) {
    if (p.accumulate != 0u) {
        arg1[0] = arg1[0] + total;
    } else {
        arg1[0] = total;
    }
}

@compute @workgroup_size(256)
fn sum_squares(@builtin(local_invocation_id) lid: vec3<u32>) {
    let total = squares(lid.x, 0u, p.len);
    if (lid.x == 0u) {
        store_total(total);
    }
}

@compute @workgroup_size(256)
fn sum_squares_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let start = wid.x * SPLIT_ELEMS;
    let total = squares(lid.x, start, min(start + SPLIT_ELEMS, p.len));
    if (lid.x == 0u) {
        partial[wid.x] = total;
    }
}

@compute @workgroup_size(1)
fn sum_squares_reduce() {
    var s = 0.0;
    for (var c = 0u; c < p.chunks; c++) {
        s += partial[c];
    }
    store_total(s);
}

@compute @workgroup_size(256)
fn clip_by_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let scale = p.clip / max(sqrt(arg0[0]), p.clip);
    arg1[i] = arg1[i] * scale;
}

@compute @workgroup_size(256)
fn clip_by_value(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let g = arg0[i];
    arg0[i] = select(select(g, -p.clip, g < -p.clip), p.clip, g > p.clip);
}
