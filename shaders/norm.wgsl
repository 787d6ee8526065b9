// norm.wgsl — batch normalisation over x: [rows, cols] (channels last: a column is a channel):
//   bn_moments     [x, moments]           moments = [μ (cols), biased σ² (cols)] of the batch
//                                         (Kernel::BatchMoments)
//   bn_train       [x, moments, gamma, beta, y]  y = (x − μ)·(1/sqrt(σ² + eps))·γ + β
//                                         (Kernel::BatchNormTrain; one thread per element)
//   bn_grad_sums   [x, moments, dy, sums]  sums = [Σdy (cols), Σdy·x̂ (cols)]: dβ and dγ
//                                         (Kernel::BatchNormGradSums)
//   bn_grad        [x, moments, gamma, dy, sums, dx]  dx = γ/(sqrt(σ²+eps)·rows) · (rows·dy − Σdy
//                                         − x̂·Σ(dy·x̂)) (Kernel::BatchNormGrad; per element)
//   bn_moving      [moments, mean, var]   mean = mean·momentum + μ·(1 − momentum), var likewise
//                                         with σ², in place (Kernel::BatchNormMoving; per column)
//   bn_inference   [x, gamma, beta, mean, var, y]  y = γ (x − mean)/sqrt(var + eps) + β
//                                         (Kernel::BatchNormInference; one thread per element)
// The column kernels run one workgroup of 256 threads per 16 columns: lane l (0..16) of a
// column walks rows l, l+16, … in order, then a shared-memory tree (8, 4, 2, 1) combines the
// lanes — fixed order, so results repeat bit for bit. Over many rows (few columns: a
// convolution's channels) the host splits them (`split_columns` in src/backend/gpu/splitk.rs):
// *_partial kernels work on chunks of SPLIT_ROWS rows (grid x: groups of 16 columns, y:
// chunks) into the scratch buffer (binding 6, `chunks` chunks), then *_reduce kernels combine
// the chunks in order, one thread per output: the moments by Chan et al.'s pairwise update of
// (count, mean, Σ(x − mean)²), the gradient sums by plain sums.
//
// Bindings (group 0): args 0..3 at bindings 0..3, args 4 and 5 (or the scratch) at 6 and 7;
// 4: uniform Params.

struct Params {
    rows: u32,
    cols: u32,
    len: u32,
    chunks: u32,
    eps: f32,
    momentum: f32,
    _f2: f32,
    _f3: f32,
}

@group(0) @binding(0) var<storage, read_write> arg0: array<f32>;
@group(0) @binding(1) var<storage, read_write> arg1: array<f32>;
@group(0) @binding(2) var<storage, read_write> arg2: array<f32>;
@group(0) @binding(3) var<storage, read_write> arg3: array<f32>;
@group(0) @binding(6) var<storage, read_write> arg4: array<f32>;
@group(0) @binding(7) var<storage, read_write> arg5: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn column(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * 16u + lid.x % 16u;
}

// Rows per chunk of the split kernels (`SPLIT_ROWS` in src/backend/gpu/splitk.rs).
const SPLIT_ROWS: u32 = 1024u;

// Mean and Σ (x − mean)² of column j over rows [start, end) of x = arg0 (two passes); every
// thread of the workgroup must call it.
fn column_moments(j: u32, lane: u32, lid: u32, start: u32, end: u32) -> vec2<f32> {
    let n = f32(max(end - start, 1u));
    var s = 0.0;
    if (j < p.cols) {
        for (var i = start + lane; i < end; i += 16u) {
            s += arg0[i * p.cols + j];
        }
    }
    let mean = lane_total(s, lid) / n;
    var q = 0.0;
    if (j < p.cols) {
        for (var i = start + lane; i < end; i += 16u) {
            let d = arg0[i * p.cols + j] - mean;
            q += d * d;
        }
    }
    return vec2<f32>(mean, lane_total(q, lid));
}

// (mean, 1/sqrt(var + eps)) of column j from the moments in arg1.
fn mean_inv_std(j: u32) -> vec2<f32> {
    if (j >= p.cols) {
        return vec2<f32>(0.0, 0.0);
    }
    return vec2<f32>(arg1[j], 1.0 / sqrt(arg1[p.cols + j] + p.eps));
}

@compute @workgroup_size(256)
fn bn_moments(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = column(wid, nwg, lid);
    let lane = lid.x / 16u;
    let m = column_moments(j, lane, lid.x, 0u, p.rows);
    if (j < p.cols && lane == 0u) {
        arg1[j] = m.x;
        arg1[p.cols + j] = m.y / f32(max(p.rows, 1u));
    }
}

// A split kernel's two values of column j for `chunk` into the scratch (arg4): [chunk, 2·cols].
fn store_partial(chunk: u32, j: u32, lane: u32, v: vec2<f32>) {
    if (j < p.cols && lane == 0u) {
        let row = chunk * 2u * p.cols;
        arg4[row + j] = v.x;
        arg4[row + p.cols + j] = v.y;
    }
}

@compute @workgroup_size(256)
fn bn_moments_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = wid.x * 16u + lid.x % 16u;
    let lane = lid.x / 16u;
    let start = wid.y * SPLIT_ROWS;
    store_partial(wid.y, j, lane, column_moments(j, lane, lid.x, start, min(start + SPLIT_ROWS, p.rows)));
}

@compute @workgroup_size(256)
fn bn_moments_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = flat_index(wid, nwg, lid);
    if (j >= p.cols) {
        return;
    }
    var n = 0.0;
    var mean = 0.0;
    var m2 = 0.0;
    for (var c = 0u; c < p.chunks; c++) {
        let nb = f32(min(SPLIT_ROWS, p.rows - c * SPLIT_ROWS));
        let row = c * 2u * p.cols;
        let d = arg4[row + j] - mean;
        let total = n + nb;
        mean += d * nb / total;
        m2 += arg4[row + p.cols + j] + d * d * n * nb / total;
        n = total;
    }
    arg1[j] = mean;
    arg1[p.cols + j] = m2 / f32(max(p.rows, 1u));
}

@compute @workgroup_size(256)
fn bn_train(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (i < p.len) {
        let j = i % p.cols;
        let st = mean_inv_std(j);
        arg4[i] = (arg0[i] - st.x) * st.y * arg2[j] + arg3[j];
    }
}

// (Σdy, Σdy·x̂) of column j over rows [start, end), dy = arg2; every thread must call it.
fn column_grad_sums(j: u32, lane: u32, lid: u32, start: u32, end: u32) -> vec2<f32> {
    let st = mean_inv_std(j);
    var sg = 0.0;
    var sgx = 0.0;
    if (j < p.cols) {
        for (var i = start + lane; i < end; i += 16u) {
            let at = i * p.cols + j;
            let g = arg2[at];
            sg += g;
            sgx += g * ((arg0[at] - st.x) * st.y);
        }
    }
    let sum_dy = lane_total(sg, lid);
    return vec2<f32>(sum_dy, lane_total(sgx, lid));
}

@compute @workgroup_size(256)
fn bn_grad_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = column(wid, nwg, lid);
    let lane = lid.x / 16u;
    let s = column_grad_sums(j, lane, lid.x, 0u, p.rows);
    if (j < p.cols && lane == 0u) {
        arg3[j] = s.x;
        arg3[p.cols + j] = s.y;
    }
}

@compute @workgroup_size(256)
fn bn_grad_sums_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = wid.x * 16u + lid.x % 16u;
    let lane = lid.x / 16u;
    let start = wid.y * SPLIT_ROWS;
    store_partial(wid.y, j, lane, column_grad_sums(j, lane, lid.x, start, min(start + SPLIT_ROWS, p.rows)));
}

// sums[k] = Σ over the chunks, in order, of their partial sums (k < 2·cols).
@compute @workgroup_size(256)
fn bn_sums_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
    let k = flat_index(wid, nwg, lid);
    if (k < 2u * p.cols) {
        var s = 0.0;
        for (var c = 0u; c < p.chunks; c++) {
            s += arg4[c * 2u * p.cols + k];
        }
        arg3[k] = s;
    }
}

@compute @workgroup_size(256)
fn bn_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i < p.len) {
        let j = i % p.cols;
        let st = mean_inv_std(j);
        let n = f32(max(p.rows, 1u));
        let c = arg2[j] * st.y / n;
        arg5[i] = c * (n * arg3[i] - arg4[j] - (arg0[i] - st.x) * st.y * arg4[p.cols + j]);
    }
}

@compute @workgroup_size(256)
fn bn_moving(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (j < p.cols) {
        let rest = 1.0 - p.momentum;
        arg1[j] = arg1[j] * p.momentum + arg0[j] * rest;
        arg2[j] = arg2[j] * p.momentum + arg0[p.cols + j] * rest;
    }
}

@compute @workgroup_size(256)
fn bn_inference(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (i < p.len) {
        let j = i % p.cols;
        // The same operations as the CPU (and bn_train): times the reciprocal square root.
        arg5[i] = (arg0[i] - arg3[j]) * (1.0 / sqrt(arg4[j] + p.eps)) * arg1[j] + arg2[j];
    }
}
