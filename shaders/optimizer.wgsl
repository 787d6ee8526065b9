// optimizer.wgsl — parameter updates over a slice of the Params arena, one thread per element
// (the contracts are the Kernel variants of the same names; the CPU reference is
// src/backend/cpu/optim.rs):
//   sgd_update      [param, grad, velocity]        Keras SGD (Kernel::SgdUpdate):
//                   momentum 0: p −= lr·g; else v = momentum·v − lr·g; p += v
//                   (nesterov: p += momentum·v − lr·g)
//   adam_update     [param, grad, m, v (, v̂)]      Keras Adam / AdamW at step t (Kernel::AdamUpdate):
//                   AdamW: p −= p·wd·lr; m += (g − m)(1 − β1); v += (g² − v)(1 − β2);
//                   amsgrad: v̂ = max(v̂, v) replaces v; p −= lr·sqrt(1 − β2^t)/(1 − β1^t) · m / (sqrt(v) + ε)
//   adagrad_update  [param, grad, acc]              Keras Adagrad (Kernel::AdagradUpdate):
//                   a += g²; p −= lr·g / sqrt(a + ε)
//   rmsprop_update  [param, grad, ms, mom, mg]      Keras RMSprop (Kernel::RmspropUpdate):
//                   ms = ρ·ms + (1 − ρ)g²; centered: mg = ρ·mg + (1 − ρ)g, d = ms − mg² + ε, else
//                   d = ms + ε; Δ = lr·g / sqrt(d); momentum: mom = momentum·mom + Δ, p −= mom;
//                   else p −= Δ
// lr and t change every run: they come from the per-run uniform `run` (binding 5).
//
// Bindings (group 0): 0..3 = the step's args in the order above, 6 = the fifth arg;
//   4: uniform Params { len, flag, f0..f3 }, per entry:
//      sgd      flag = nesterov, f0 = momentum
//      adam     flag = amsgrad,  f0 = weight decay, f1 = β1, f2 = β2, f3 = ε
//      adagrad                   f3 = ε
//      rmsprop  flag = centered, f0 = momentum, f1 = ρ, f3 = ε
//   5: uniform RunScalars { lr, t }.
// State an entry does not use (SGD's velocity without momentum, RMSprop's mom and mg) is bound
// to a dummy buffer and never read or written.
// Workgroup size 256. Grid: 2-D (x ≤ 65535), flat index bounds-checked against len.

struct Params {
    len: u32,
    flag: u32,
    _u2: u32,
    _u3: u32,
    f0: f32,
    f1: f32,
    f2: f32,
    f3: f32,
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
@group(0) @binding(6) var<storage, read_write> arg4: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<uniform> run: RunScalars;

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
    let momentum = p.f0;
    let g = arg1[i];
    if (momentum == 0.0) {
        arg0[i] = arg0[i] - run.lr * g;
        return;
    }
    let v = momentum * arg2[i] - run.lr * g;
    arg2[i] = v;
    if (p.flag != 0u) {
        arg0[i] = arg0[i] + momentum * v - run.lr * g;
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
    let weight_decay = p.f0;
    let beta1 = p.f1;
    let beta2 = p.f2;
    let t = max(run.t, 1u);
    let alpha = run.lr * sqrt(1.0 - powi(beta2, t)) / (1.0 - powi(beta1, t));
    var param = arg0[i];
    if (weight_decay != 0.0) {
        param = param - param * weight_decay * run.lr;
    }
    let g = arg1[i];
    let m = arg2[i] + (g - arg2[i]) * (1.0 - beta1);
    var v = arg3[i] + (g * g - arg3[i]) * (1.0 - beta2);
    arg2[i] = m;
    arg3[i] = v;
    if (p.flag != 0u) {
        v = max(arg4[i], v);
        arg4[i] = v;
    }
    arg0[i] = param - alpha * m / (sqrt(v) + p.f3);
}

@compute @workgroup_size(256)
fn adagrad_update(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let g = arg1[i];
    let acc = arg2[i] + g * g;
    arg2[i] = acc;
    arg0[i] = arg0[i] - run.lr * g / sqrt(acc + p.f3);
}

@compute @workgroup_size(256)
fn rmsprop_update(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let momentum = p.f0;
    let rho = p.f1;
    let g = arg1[i];
    let ms = rho * arg2[i] + (1.0 - rho) * g * g;
    arg2[i] = ms;
    var denominator = ms + p.f3;
    if (p.flag != 0u) {
        let mg = rho * arg4[i] + (1.0 - rho) * g;
        arg4[i] = mg;
        denominator = ms - mg * mg + p.f3;
    }
    let increment = run.lr * g / sqrt(denominator);
    if (momentum != 0.0) {
        let mom = momentum * arg3[i] + increment;
        arg3[i] = mom;
        arg0[i] = arg0[i] - mom;
    } else {
        arg0[i] = arg0[i] - increment;
    }
}
