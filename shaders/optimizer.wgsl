// optimizer.wgsl — parameter updates over a whole flat arena, one thread per element:
//   sgd_update   [param, grad, velocity]   Keras SGD (Kernel::SgdUpdate):
//                momentum 0: p −= lr·g; else v = momentum·v − lr·g; p += v
//                (nesterov: p += momentum·v − lr·g)
//   adam_update  [param, grad, m, v]       Keras Adam at step t (Kernel::AdamUpdate):
//                m += (g − m)(1 − β1); v += (g² − v)(1 − β2);
//                p −= lr·sqrt(1 − β2^t)/(1 − β1^t) · m / (sqrt(v) + ε)
// lr and t change every run: they come from the per-run uniform `run` (binding 5).
//
// Bindings (group 0): 0..3 = the step's args in the order above;
//   4: uniform Params { len, nesterov, momentum, beta1, beta2, epsilon };
//   5: uniform RunScalars { lr, t }.
// Workgroup size 256. Grid: 2-D (x ≤ 65535), flat index bounds-checked against len.

struct Params {
    len: u32,
    nesterov: u32,
    _u2: u32,
    _u3: u32,
    momentum: f32,
    beta1: f32,
    beta2: f32,
    epsilon: f32,
}

struct RunScalars {
    lr: f32,
    t: u32,
    _u2: u32,
    _u3: u32,
}

@group(0) @binding(0) var<storage, read_write> arg0: array<f32>;
@group(0) @binding(1) var<storage, read_write> arg1: array<f32>;
@group(0) @binding(2) var<storage, read_write> arg2: array<f32>;
@group(0) @binding(3) var<storage, read_write> arg3: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<uniform> run: RunScalars;

fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid.x;
}

// base^e by binary exponentiation (the same product order as the CPU's powi).
fn powi(base: f32, e: u32) -> f32 {
    var r = 1.0;
    var b = base;
    var k = e;
    loop {
        if ((k & 1u) != 0u) {
            r *= b;
        }
        k >>= 1u;
        if (k == 0u) {
            break;
        }
        b *= b;
    }
    return r;
}

@compute @workgroup_size(256)
fn sgd_update(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let g = arg1[i];
    if (p.momentum == 0.0) {
        arg0[i] = arg0[i] - run.lr * g;
        return;
    }
    let v = p.momentum * arg2[i] - run.lr * g;
    arg2[i] = v;
    if (p.nesterov != 0u) {
        arg0[i] = arg0[i] + p.momentum * v - run.lr * g;
    } else {
        arg0[i] = arg0[i] + v;
    }
}

@compute @workgroup_size(256)
fn adam_update(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let t = max(run.t, 1u);
    let alpha = run.lr * sqrt(1.0 - powi(p.beta2, t)) / (1.0 - powi(p.beta1, t));
    let g = arg1[i];
    let m = arg2[i] + (g - arg2[i]) * (1.0 - p.beta1);
    let v = arg3[i] + (g * g - arg3[i]) * (1.0 - p.beta2);
    arg2[i] = m;
    arg3[i] = v;
    arg0[i] = arg0[i] - alpha * m / (sqrt(v) + p.epsilon);
}
