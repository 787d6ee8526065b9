// reduce.wgsl — deterministic reductions (fixed summation trees, no atomics):
//   sum_rows  [x, y]   y[j] = Σ_i x[i,j]; x: [rows, cols], y: [cols]   (Kernel::SumRows)
//             one thread per column, rows summed in order. Workgroup 64, 2-D grid over columns.
//   sum_all   [x, y]   y[0] = scale · Σ_i x[i]; x: [len]                (Kernel::SumAll)
//             ONE workgroup of 256 threads: thread t sums x[t], x[t+256], … in order, then a
//             shared-memory tree (128, 64, …, 1) combines the 256 partial sums.
//
// Bindings (group 0): 0: x, 1: y; 4: uniform Params { rows, cols, len, scale }.

struct Params {
    rows: u32,
    cols: u32,
    len: u32,
    _u3: u32,
    scale: f32,
    _f1: f32,
    _f2: f32,
    _f3: f32,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(64)
fn sum_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = (wid.y * nwg.x + wid.x) * 64u + lid.x;
    if (j >= p.cols) {
        return;
    }
    var s = 0.0;
    for (var i = 0u; i < p.rows; i++) {
        s += x[i * p.cols + j];
    }
    y[j] = s;
}

@compute @workgroup_size(256)
fn sum_all(@builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    var s = 0.0;
    for (var i = t; i < p.len; i += 256u) {
        s += x[i];
    }
    partial[t] = s;
    workgroupBarrier();
    for (var stride = 128u; stride > 0u; stride >>= 1u) {
        if (t < stride) {
            partial[t] += partial[t + stride];
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        y[0] = partial[0] * p.scale;
    }
}
