// recurrent.wgsl — a recurrent layer's time loop (layouts in src/program/recurrent.rs):
//   forward_step   [z, u, s]      one dispatch per processing step t = p.step:
//                                 s[t] = cell(z[:, τ(t)], s[t-1], u)   (Kernel::RecurrentForward)
//   backward_step  [s, u, ds, dz] one dispatch per step, t = steps - 1 - p.step:
//                                 dz[:, τ(t)] from ds[t] and dz[:, τ(t+1)]·uᵀ (Kernel::RecurrentBackward)
//   gather         [s, y]         the part of the states a layer returns   (Kernel::RecurrentGather)
//   scatter        [dy, ds]       its gradient                             (Kernel::RecurrentScatter)
//
// SimpleRNN (the one cell so far, gates = 1): a state row is [h (units), a (units)], h = f(a),
// a = z + h_prev·u; `act` is f's activation code (`activation` in the generated functions).
// The dispatches of one loop run in order in one compute pass: wgpu orders a dispatch's
// storage writes before the next dispatch's reads.
//
// Bindings (group 0): 0..3 = the step's args; 4: uniform Params (RecurrentParams in
// src/backend/gpu/params.rs; `step` is set per dispatch); 5: RunScalars (unused).
// Workgroup size 256, one thread per (sample, unit) or per output element, 2-D grid.

struct Params {
    step: u32,       // the dispatch's index in its loop
    batch: u32,
    steps: u32,
    units: u32,
    width: u32,      // values per state row
    backwards: u32,  // go_backwards: processing step t reads input time steps - 1 - t
    act: u32,        // activation code of the cell's output
    from_input: u32, // the activation's gradient reads a (1) or h (0)
    part: u32,       // gather/scatter: 0 sequence, 1 last, 2 previous
    len: u32,        // gather/scatter: output elements
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read_write> arg0: array<f32>;
@group(0) @binding(1) var<storage, read_write> arg1: array<f32>;
@group(0) @binding(2) var<storage, read_write> arg2: array<f32>;
@group(0) @binding(3) var<storage, read_write> arg3: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn input_time(t: u32) -> u32 {
    return select(t, p.steps - 1u - t, p.backwards == 1u);
}

fn state_row(t: u32, b: u32) -> u32 {
    return (t * p.batch + b) * p.width;
}

fn z_row(b: u32, tau: u32) -> u32 {
    return (b * p.steps + tau) * p.units;
}

// arg0 = z, arg1 = u, arg2 = s.
@compute @workgroup_size(256)
fn forward_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.batch * p.units) {
        return;
    }
    let b = i / p.units;
    let j = i % p.units;
    let t = p.step;
    var a = arg0[z_row(b, input_time(t)) + j];
    if (t > 0u) {
        let prev = state_row(t - 1u, b);
        for (var k = 0u; k < p.units; k++) {
            a += arg2[prev + k] * arg1[k * p.units + j];
        }
    }
    let row = state_row(t, b);
    arg2[row + j] = activation(p.act, a);
    arg2[row + p.units + j] = a;
}

// arg0 = s, arg1 = u, arg2 = ds, arg3 = dz.
@compute @workgroup_size(256)
fn backward_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.batch * p.units) {
        return;
    }
    let b = i / p.units;
    let j = i % p.units;
    let t = p.steps - 1u - p.step;
    let row = state_row(t, b);
    var dh = arg2[row + j];
    if (t + 1u < p.steps) {
        let next = z_row(b, input_time(t + 1u));
        for (var k = 0u; k < p.units; k++) {
            dh += arg3[next + k] * arg1[j * p.units + k];
        }
    }
    let v = arg0[row + j + p.from_input * p.units];
    arg3[z_row(b, input_time(t)) + j] = activation_grad(p.act, v, dh);
}

// arg0 = s, arg1 = y: one thread per element of y.
@compute @workgroup_size(256)
fn gather(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let j = i % p.units;
    let r = i / p.units;
    if (p.part == 1u) {
        arg1[i] = arg0[state_row(p.steps - 1u, r) + j];
        return;
    }
    let b = r / p.steps;
    let tau = r % p.steps;
    if (p.part == 0u) {
        arg1[i] = arg0[state_row(tau, b) + j];
        return;
    }
    // Previous: the output before the step that read input time tau (τ is an involution).
    let t = input_time(tau);
    arg1[i] = select(0.0, arg0[state_row(max(t, 1u) - 1u, b) + j], t > 0u);
}

// arg0 = dy, arg1 = ds: one thread per element of ds.
@compute @workgroup_size(256)
fn scatter(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let c = i % p.width;
    let r = i / p.width;
    let t = r / p.batch;
    let b = r % p.batch;
    var value = 0.0;
    if (c < p.units) {
        if (p.part == 0u) {
            value = arg0[(b * p.steps + t) * p.units + c];
        } else if (p.part == 1u) {
            if (t + 1u == p.steps) {
                value = arg0[b * p.units + c];
            }
        } else if (t + 1u < p.steps) {
            value = arg0[(b * p.steps + input_time(t + 1u)) * p.units + c];
        }
    }
    arg1[i] = value;
}
