// recurrent.wgsl — a recurrent layer's time loop (layouts in src/program/recurrent.rs):
//   forward_step   [z, u, s]      one dispatch per processing step t = p.step:
//                                 s[t] = cell(z[:, τ(t)], s[t-1], u)   (Kernel::RecurrentForward)
//   backward_step  [s, u, ds, dz] one dispatch per step, t = steps - 1 - p.step:
//                                 dz[:, τ(t)] from ds[t] and dz[:, τ(t+1)]·uᵀ (Kernel::RecurrentBackward)
//   gate_grad      [s, dz, dq]    the recurrent pre-activations' gradient (Kernel::RecurrentGateGrad)
//   gather         [s, y]         the part of the states a layer returns   (Kernel::RecurrentGather)
//   scatter        [dy, ds]       its gradient                             (Kernel::RecurrentScatter)
//
// Cells (`cell`): 0 SimpleRNN (gates = 1): a state row is [h, a], h = f(a), a = z + h_prev·u,
// `act` f's activation code (`activation` in the generated functions); 1 LSTM (gates = 4, in
// Keras's order i, f, g, o): a state row is [h, c, i, f, g, o]. The LSTM backward carries
// dc_t·f_t to step t - 1 in dz's not-yet-written row τ(t - 1) (column j, read back by the same
// thread before it writes that row), so it needs no scratch buffer. 2 GRU (reset_after, gates
// z, r, h): forward_step's args are [z, u, b_r, s], a state row is [h, z, r, ĥ, q_h]; its
// backward carries dh_t·z_t the same way.
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
    cell: u32,       // 0 SimpleRNN, 1 LSTM, 2 GRU
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

// Row (b, τ) of z and dz (gates · units wide).
fn z_row(b: u32, tau: u32) -> u32 {
    return (b * p.steps + tau) * gates() * p.units;
}

fn gates() -> u32 {
    return array<u32, 3>(1u, 4u, 3u)[min(p.cell, 2u)];
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
    if (p.cell == 1u) {
        lstm_forward(b, j, t);
        return;
    }
    if (p.cell == 2u) {
        gru_forward(b, j, t);
        return;
    }
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
    if (p.cell == 1u) {
        lstm_backward(b, j, t);
        return;
    }
    if (p.cell == 2u) {
        gru_backward(b, j, t);
        return;
    }
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

// The LSTM step for (b, j): four dot products over h_prev, then the gates (forward_step's args).
fn lstm_forward(b: u32, j: u32, t: u32) {
    let n = p.units;
    let zr = z_row(b, input_time(t));
    var a = vec4<f32>(arg0[zr + j], arg0[zr + n + j], arg0[zr + 2u * n + j], arg0[zr + 3u * n + j]);
    var c_prev = 0.0;
    if (t > 0u) {
        let prev = state_row(t - 1u, b);
        c_prev = arg2[prev + n + j];
        for (var k = 0u; k < n; k++) {
            let h = arg2[prev + k];
            let w = k * 4u * n + j;
            a += h * vec4<f32>(arg1[w], arg1[w + n], arg1[w + 2u * n], arg1[w + 3u * n]);
        }
    }
    let i = sigmoid(a.x);
    let f = sigmoid(a.y);
    let g = tanh(clamp(a.z, -10.0, 10.0));
    let o = sigmoid(a.w);
    let c = f * c_prev + i * g;
    let row = state_row(t, b);
    arg2[row + j] = o * tanh(clamp(c, -10.0, 10.0));
    arg2[row + n + j] = c;
    arg2[row + 2u * n + j] = i;
    arg2[row + 3u * n + j] = f;
    arg2[row + 4u * n + j] = g;
    arg2[row + 5u * n + j] = o;
}

// The LSTM backward step for (b, j) (backward_step's args).
fn lstm_backward(b: u32, j: u32, t: u32) {
    let n = p.units;
    let row = state_row(t, b);
    var dh = arg2[row + j];
    var carry = 0.0;
    if (t + 1u < p.steps) {
        let next = z_row(b, input_time(t + 1u));
        for (var k = 0u; k < 4u * n; k++) {
            dh += arg3[next + k] * arg1[j * 4u * n + k];
        }
        // dc_{t+1}·f_{t+1}, left by step t + 1 in this step's dz row.
        carry = arg3[z_row(b, input_time(t)) + j];
    }
    let c = arg0[row + n + j];
    let i = arg0[row + 2u * n + j];
    let f = arg0[row + 3u * n + j];
    let g = arg0[row + 4u * n + j];
    let o = arg0[row + 5u * n + j];
    var c_prev = 0.0;
    if (t > 0u) {
        c_prev = arg0[state_row(t - 1u, b) + n + j];
    }
    let tc = tanh(clamp(c, -10.0, 10.0));
    let dc = dh * o * (1.0 - tc * tc) + arg2[row + n + j] + carry;
    let zr = z_row(b, input_time(t));
    arg3[zr + j] = dc * g * i * (1.0 - i);
    arg3[zr + n + j] = dc * c_prev * f * (1.0 - f);
    arg3[zr + 2u * n + j] = dc * i * (1.0 - g * g);
    arg3[zr + 3u * n + j] = dh * tc * o * (1.0 - o);
    if (t > 0u) {
        arg3[z_row(b, input_time(t - 1u)) + j] = dc * f;
    }
}

// The GRU step for (b, j): arg0 = z, arg1 = u, arg2 = b_r, arg3 = s.
fn gru_forward(b: u32, j: u32, t: u32) {
    let n = p.units;
    var q = vec3<f32>(arg2[j], arg2[n + j], arg2[2u * n + j]);
    var h_prev = 0.0;
    if (t > 0u) {
        let prev = state_row(t - 1u, b);
        h_prev = arg3[prev + j];
        for (var k = 0u; k < n; k++) {
            let h = arg3[prev + k];
            let w = k * 3u * n + j;
            q += h * vec3<f32>(arg1[w], arg1[w + n], arg1[w + 2u * n]);
        }
    }
    let zr = z_row(b, input_time(t));
    let zg = sigmoid(arg0[zr + j] + q.x);
    let r = sigmoid(arg0[zr + n + j] + q.y);
    let hh = tanh(clamp(arg0[zr + 2u * n + j] + r * q.z, -10.0, 10.0));
    let row = state_row(t, b);
    arg3[row + j] = zg * h_prev + (1.0 - zg) * hh;
    arg3[row + n + j] = zg;
    arg3[row + 2u * n + j] = r;
    arg3[row + 3u * n + j] = hh;
    arg3[row + 4u * n + j] = q.z;
}

// The GRU backward step for (b, j) (backward_step's args: s, u, ds, dz).
fn gru_backward(b: u32, j: u32, t: u32) {
    let n = p.units;
    let row = state_row(t, b);
    var dh = arg2[row + j];
    if (t + 1u < p.steps) {
        let next = z_row(b, input_time(t + 1u));
        let next_row = state_row(t + 1u, b);
        for (var k = 0u; k < 2u * n; k++) {
            dh += arg3[next + k] * arg1[j * 3u * n + k];
        }
        // The candidate's recurrent part is r·q_h: its gradient is dz's times r.
        for (var k = 0u; k < n; k++) {
            dh += arg3[next + 2u * n + k] * arg0[next_row + 2u * n + k] * arg1[j * 3u * n + 2u * n + k];
        }
        // dh_{t+1}·z_{t+1}, left by step t + 1 in this step's dz row.
        dh += arg3[z_row(b, input_time(t)) + j];
    }
    let zg = arg0[row + n + j];
    let r = arg0[row + 2u * n + j];
    let hh = arg0[row + 3u * n + j];
    let qh = arg0[row + 4u * n + j];
    var h_prev = 0.0;
    if (t > 0u) {
        h_prev = arg0[state_row(t - 1u, b) + j];
    }
    let dhh = dh * (1.0 - zg) * (1.0 - hh * hh);
    let zr = z_row(b, input_time(t));
    arg3[zr + j] = dh * (h_prev - hh) * zg * (1.0 - zg);
    arg3[zr + n + j] = dhh * qh * r * (1.0 - r);
    arg3[zr + 2u * n + j] = dhh;
    if (t > 0u) {
        arg3[z_row(b, input_time(t - 1u)) + j] = dh * zg;
    }
}

// arg0 = s, arg1 = dz, arg2 = dq: one thread per element of dz (GRU: the candidate block
// times r; other cells copy).
@compute @workgroup_size(256)
fn gate_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let g = gates() * p.units;
    let c = i % g;
    var v = arg1[i];
    if (p.cell == 2u && c >= 2u * p.units) {
        let r = i / g;
        let b = r / p.steps;
        let t = input_time(r % p.steps);
        v *= arg0[state_row(t, b) + c];
    }
    arg2[i] = v;
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
