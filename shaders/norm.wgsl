// norm.wgsl — batch normalisation over x: [rows, cols] (channels last: a column is a channel):
//   bn_train       [x, gamma, beta, y]    y = γ (x − μ)/sqrt(σ² + eps) + β, batch μ and biased σ²
//                                         (Kernel::BatchNormTrain)
//   bn_grad        [x, gamma, dy, dx]     dx = γ/(sqrt(σ²+eps)·rows) · (rows·dy − Σdy − x̂·Σ(dy·x̂))
//                                         (Kernel::BatchNormGrad)
//   bn_gamma_grad  [x, dy, dgamma]        dγ = Σ dy·x̂                    (Kernel::BatchNormGammaGrad)
//   bn_moving      [x, mean, var]         mean = mean·momentum + μ·(1 − momentum), var likewise
//                                         with σ², in place              (Kernel::BatchNormMoving)
//   bn_inference   [x, gamma, beta, mean, var, y]  y = γ (x − mean)/sqrt(var + eps) + β
//                                         (Kernel::BatchNormInference; one thread per element)
// The column kernels run one workgroup of 256 threads per 16 columns: lane l (0..16) of a
// column walks rows l, l+16, … in order, then a shared-memory tree (8, 4, 2, 1) combines the
// lanes, as sum_rows in reduce.wgsl — fixed order, so results repeat bit for bit. Each pass
// loops rows/16 times per thread (llvmpipe ends loops after 65535 iterations in all; the
// host refuses longer launches there).
//
// Bindings (group 0): args 0..3 at bindings 0..3, args 4 and 5 at 6 and 7; 4: uniform Params.

struct Params {
    rows: u32,
    cols: u32,
    len: u32,
    _u3: u32,
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

var<workgroup> partial: array<f32, 256>;

// Sum of `v` over the 16 lanes of this thread's column (every thread gets the total).
fn lane_total(v: f32, lid: u32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var stride = 8u; stride > 0u; stride >>= 1u) {
        if (lid / 16u < stride) {
            partial[lid] += partial[lid + stride * 16u];
        }
        workgroupBarrier();
    }
    let total = partial[lid % 16u];
    workgroupBarrier();
    return total;
}

fn column(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * 16u + lid.x % 16u;
}

// (mean, 1/sqrt(var + eps), var) of column j over x = arg0.
fn stats(j: u32, lane: u32, lid: u32) -> vec3<f32> {
    let n = f32(max(p.rows, 1u));
    var s = 0.0;
    if (j < p.cols) {
        for (var i = lane; i < p.rows; i += 16u) {
            s += arg0[i * p.cols + j];
        }
    }
    let mean = lane_total(s, lid) / n;
    var q = 0.0;
    if (j < p.cols) {
        for (var i = lane; i < p.rows; i += 16u) {
            let d = arg0[i * p.cols + j] - mean;
            q += d * d;
        }
    }
    let var_ = lane_total(q, lid) / n;
    return vec3<f32>(mean, 1.0 / sqrt(var_ + p.eps), var_);
}

@compute @workgroup_size(256)
fn bn_train(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = column(wid, nwg, lid);
    let lane = lid.x / 16u;
    let st = stats(j, lane, lid.x);
    if (j < p.cols) {
        for (var i = lane; i < p.rows; i += 16u) {
            let at = i * p.cols + j;
            arg3[at] = (arg0[at] - st.x) * st.y * arg1[j] + arg2[j];
        }
    }
}

@compute @workgroup_size(256)
fn bn_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = column(wid, nwg, lid);
    let lane = lid.x / 16u;
    let st = stats(j, lane, lid.x);
    var sg = 0.0;
    var sgx = 0.0;
    if (j < p.cols) {
        for (var i = lane; i < p.rows; i += 16u) {
            let at = i * p.cols + j;
            let g = arg2[at];
            sg += g;
            sgx += g * (arg0[at] - st.x) * st.y;
        }
    }
    let sum_dy = lane_total(sg, lid.x);
    let sum_dy_xhat = lane_total(sgx, lid.x);
    if (j < p.cols) {
        let n = f32(max(p.rows, 1u));
        for (var i = lane; i < p.rows; i += 16u) {
            let at = i * p.cols + j;
            let xhat = (arg0[at] - st.x) * st.y;
            arg3[at] = arg1[j] * st.y / n * (n * arg2[at] - sum_dy - xhat * sum_dy_xhat);
        }
    }
}

@compute @workgroup_size(256)
fn bn_gamma_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = column(wid, nwg, lid);
    let lane = lid.x / 16u;
    let st = stats(j, lane, lid.x);
    var sgx = 0.0;
    if (j < p.cols) {
        for (var i = lane; i < p.rows; i += 16u) {
            let at = i * p.cols + j;
            sgx += arg1[at] * (arg0[at] - st.x) * st.y;
        }
    }
    let total = lane_total(sgx, lid.x);
    if (j < p.cols && lane == 0u) {
        arg2[j] = total;
    }
}

@compute @workgroup_size(256)
fn bn_moving(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = column(wid, nwg, lid);
    let lane = lid.x / 16u;
    let st = stats(j, lane, lid.x);
    if (j < p.cols && lane == 0u) {
        let rest = 1.0 - p.momentum;
        arg1[j] = arg1[j] * p.momentum + st.x * rest;
        arg2[j] = arg2[j] * p.momentum + st.z * rest;
    }
}

@compute @workgroup_size(256)
fn bn_inference(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (i < p.len) {
        let j = i % p.cols;
        arg5[i] = (arg0[i] - arg3[j]) / sqrt(arg4[j] + p.eps) * arg1[j] + arg2[j];
    }
}
