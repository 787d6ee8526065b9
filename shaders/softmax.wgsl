// softmax.wgsl — row-wise softmax family, x, y, dy, dx: [rows, cols] (one thread per row,
// each row walked in column order, so results match the CPU loop order):
//   softmax           [x, y]        y = exp(x − max) / Σ exp(x − max)    (Kernel::Softmax)
//   log_softmax       [x, y]        y = x − max − log Σ exp(x − max)     (Kernel::LogSoftmax)
//   softmax_grad      [y, dy, dx]   dx = y ⊙ (dy − Σ_j dy_j y_j)          (Kernel::SoftmaxGrad)
//   log_softmax_grad  [y, dy, dx]   dx = dy − exp(y) · Σ_j dy_j           (Kernel::LogSoftmaxGrad)
//
// Bindings (group 0): 0..2 = the step's args in the order above; 4: uniform Params { rows, cols }.
// Workgroup size 64. Grid: 2-D (x ≤ 65535); row = (wid.y · num_workgroups.x + wid.x) · 64 + lid.x.

struct Params {
    rows: u32,
    cols: u32,
    _u2: u32,
    _u3: u32,
}

@group(0) @binding(0) var<storage, read_write> arg0: array<f32>;
@group(0) @binding(1) var<storage, read_write> arg1: array<f32>;
@group(0) @binding(2) var<storage, read_write> arg2: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn row_index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + lid.x;
}

// max over arg0[base .. base + cols]
fn row_max(base: u32) -> f32 {
    var mx = arg0[base];
    for (var j = 1u; j < p.cols; j++) {
        mx = max(mx, arg0[base + j]);
    }
    return mx;
}

@compute @workgroup_size(64)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = row_index(wid, nwg, lid);
    if (i >= p.rows || p.cols == 0u) {
        return;
    }
    let base = i * p.cols;
    let mx = row_max(base);
    var s = 0.0;
    for (var j = 0u; j < p.cols; j++) {
        let e = exp(arg0[base + j] - mx);
        arg1[base + j] = e;
        s += e;
    }
    for (var j = 0u; j < p.cols; j++) {
        arg1[base + j] = arg1[base + j] / s;
    }
}

@compute @workgroup_size(64)
fn log_softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = row_index(wid, nwg, lid);
    if (i >= p.rows || p.cols == 0u) {
        return;
    }
    let base = i * p.cols;
    let mx = row_max(base);
    var s = 0.0;
    for (var j = 0u; j < p.cols; j++) {
        s += exp(arg0[base + j] - mx);
    }
    let lse = log(s) + mx;
    for (var j = 0u; j < p.cols; j++) {
        arg1[base + j] = arg0[base + j] - lse;
    }
}

@compute @workgroup_size(64)
fn softmax_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = row_index(wid, nwg, lid);
    if (i >= p.rows) {
        return;
    }
    let base = i * p.cols;
    var dot = 0.0;
    for (var j = 0u; j < p.cols; j++) {
        dot += arg0[base + j] * arg1[base + j];
    }
    for (var j = 0u; j < p.cols; j++) {
        arg2[base + j] = arg0[base + j] * (arg1[base + j] - dot);
    }
}

@compute @workgroup_size(64)
fn log_softmax_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = row_index(wid, nwg, lid);
    if (i >= p.rows) {
        return;
    }
    let base = i * p.cols;
    var s = 0.0;
    for (var j = 0u; j < p.cols; j++) {
        s += arg1[base + j];
    }
    for (var j = 0u; j < p.cols; j++) {
        arg2[base + j] = arg1[base + j] - exp(arg0[base + j]) * s;
    }
}
