// reduce.wgsl — deterministic reductions (fixed summation trees, no atomics):
//   sum_rows  [x, y]   y[j] = Σ_i x[i,j]; x: [rows, cols], y: [cols]   (Kernel::SumRows)
//             a workgroup of 256 threads covers 16 columns with 16 lanes each: lane l sums rows
//             l, l+16, … in order, then a shared-memory tree (8, 4, 2, 1) combines the lanes.
//             Each thread loops rows/16 times: llvmpipe (lavapipe) silently ends a shader's
//             loops after 65535 iterations in all, and bias gradients of convolutions sum over
//             batch × height × width rows. 2-D grid over groups of 16 columns.
//   sum_rows_partial, sum_rows_reduce   [x, y] + scratch (binding 6): SumRows over many rows
//             (a convolution's bias gradient) split over chunks of SPLIT_ROWS rows so that a GPU
//             gets many workgroups: partial[chunk, j] as sum_rows over the chunk (grid x: groups
//             of 16 columns, y: chunks), then y[j] = Σ_chunk partial[chunk, j] in chunk order (one
//             thread per column; len = chunks). Chosen by the host (`split_rows`).
//   sum_slices [parts, y]   y[i] = Σ_j parts[j·cols + i] over j < rows, in order: the partial
//             results of a step run in batch chunks (src/backend/gpu/chunk.rs); len = |y|.
//   sum_all   [x, y]   y[0] = scale · Σ_i x[i]; x: [len]                (Kernel::SumAll)
//             ONE workgroup of 256 threads: thread t sums x[t], x[t+256], … in order, then a
//             shared-memory tree (128, 64, …, 1) combines the 256 partial sums.
//
// Bindings (group 0): 0: x, 1: y, 6: scratch; 4: uniform Params { rows, cols, len, scale }.

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
@group(0) @binding(6) var<storage, read_write> partial: array<f32>;

// Rows per chunk of the split sum_rows (`SPLIT_ROWS` in src/backend/gpu/splitk.rs).
const SPLIT_ROWS: u32 = 1024u;

@compute @workgroup_size(256)
fn sum_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = lid.x % 16u;
    let lane = lid.x / 16u;
    let j = (wid.y * nwg.x + wid.x) * 16u + c;
    var s = 0.0;
    if (j < p.cols) {
        for (var i = lane; i < p.rows; i += 16u) {
            s += x[i * p.cols + j];
        }
    }
    let total = lane_total(s, lid.x);
    if (lane == 0u && j < p.cols) {
        y[j] = total;
    }
}

@compute @workgroup_size(256)
fn sum_rows_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = lid.x % 16u;
    let lane = lid.x / 16u;
    let j = wid.x * 16u + c;
    let end = min((wid.y + 1u) * SPLIT_ROWS, p.rows);
    var s = 0.0;
    if (j < p.cols) {
        for (var i = wid.y * SPLIT_ROWS + lane; i < end; i += 16u) {
            s += x[i * p.cols + j];
        }
    }
    let total = lane_total(s, lid.x);
    if (lane == 0u && j < p.cols) {
        partial[wid.y * p.cols + j] = total;
    }
}

@compute @workgroup_size(256)
fn sum_rows_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = flat_index(wid, nwg, lid);
    if (j < p.cols) {
        var s = 0.0;
        for (var chunk = 0u; chunk < p.len; chunk++) {
            s += partial[chunk * p.cols + j];
        }
        y[j] = s;
    }
}

@compute @workgroup_size(256)
fn sum_all(@builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    var s = 0.0;
    for (var i = t; i < p.len; i += 256u) {
        s += x[i];
    }
    let total = tree_sum(t, s);
    if (t == 0u) {
        y[0] = total * p.scale;
    }
}

@compute @workgroup_size(256)
fn sum_slices(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    var s = 0.0;
    for (var j = 0u; j < p.rows; j++) {
        s += x[j * p.cols + i];
    }
    y[i] = s;
}
