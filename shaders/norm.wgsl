// norm.wgsl — batch normalisation over x: [rows, cols] (channels last: a column is a channel):
//   bn_moments     [x, moments]           moments = [μ (cols), biased σ² (cols)] of the batch
//                                         (Kernel::BatchMoments)
//   bn_train       [x, moments, gamma, beta, y]  y = (x − μ)·(1/sqrt(σ² + eps))·γ + β
//                                         (Kernel::BatchNormTrain; one thread per element)
//   bn_grad        [x, moments, gamma, dy, dx]   dx = γ/(sqrt(σ²+eps)·rows) · (rows·dy − Σdy − x̂·Σ(dy·x̂))
//                                         (Kernel::BatchNormGrad)
//   bn_gamma_grad  [x, moments, dy, dgamma]      dγ = Σ dy·x̂        (Kernel::BatchNormGammaGrad)
//   bn_moving      [moments, mean, var]   mean = mean·momentum + μ·(1 − momentum), var likewise
//                                         with σ², in place (Kernel::BatchNormMoving; per column)
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

fn column(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * 16u + lid.x % 16u;
}

// Mean and biased variance of column j over x = arg0 (two passes); every thread of the
// workgroup must call it.
fn moments(j: u32, lane: u32, lid: u32) -> vec2<f32> {
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
    return vec2<f32>(mean, lane_total(q, lid) / n);
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
    let m = moments(j, lane, lid.x);
    if (j < p.cols && lane == 0u) {
        arg1[j] = m.x;
        arg1[p.cols + j] = m.y;
    }
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

@compute @workgroup_size(256)
fn bn_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = column(wid, nwg, lid);
    let lane = lid.x / 16u;
    let st = mean_inv_std(j);
    var sg = 0.0;
    var sgx = 0.0;
    if (j < p.cols) {
        for (var i = lane; i < p.rows; i += 16u) {
            let at = i * p.cols + j;
            let g = arg3[at];
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
            arg4[at] = arg2[j] * st.y / n * (n * arg3[at] - sum_dy - xhat * sum_dy_xhat);
        }
    }
}

@compute @workgroup_size(256)
fn bn_gamma_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = column(wid, nwg, lid);
    let lane = lid.x / 16u;
    let st = mean_inv_std(j);
    var sgx = 0.0;
    if (j < p.cols) {
        for (var i = lane; i < p.rows; i += 16u) {
            let at = i * p.cols + j;
            sgx += arg2[at] * (arg0[at] - st.x) * st.y;
        }
    }
    let total = lane_total(sgx, lid.x);
    if (j < p.cols && lane == 0u) {
        arg3[j] = total;
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
