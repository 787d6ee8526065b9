// recurrent.wgsl — a recurrent layer's time loop (layouts in src/program/recurrent.rs):
//   forward_step   [z, u, b_r, mask, drop, s]  one dispatch per processing step t = p.step:
//                                         s[t] = cell(z[:, τ(t)], s[t-1], u)  (Kernel::RecurrentForward)
//   backward_step  [s, u, ds, mask, drop, dz]  one dispatch per step, t = steps - 1 - p.step: dz[:, τ(t)]
//                                         from ds[t] and dz[:, τ(t+1)]·uᵀ      (Kernel::RecurrentBackward)
//   gate_grad      [s, dz, dq]            the recurrent pre-activations' gradient (Kernel::RecurrentGateGrad)
//   gather         [s, y]                 the part of the states a layer returns (Kernel::RecurrentGather)
//   scatter        [dy, ds]               its gradient                           (Kernel::RecurrentScatter)
//   sequence_mask  [x, mask]              mask[r] = any feature of row r ≠ value (Kernel::SequenceMask)
//
// Cells (`cell`): 0 SimpleRNN (gates = 1): a state row is [h, a], h = f(a), a = z + h_prev·u,
// `act` f's activation code (`activation` in the generated functions); 1 LSTM (gates = 4, in
// Keras's order i, f, g, o): a state row is [h, c, i, f, g, o]; 2 GRU (reset_after, gates z, r,
// h, with the recurrent bias b_r): a state row is [h, z, r, ĥ, q_h]. b_r and mask are empty
// (a dummy binding) where unused. A masked step (mask[b, τ] = 0) copies the state before it.
//
// The backward passes what flows from step t + 1 to step t through dz's row τ(t), which step t
// writes only afterwards: step t + 1's thread (b, j) leaves its carries in columns j (and
// units + j) of that row, and step t's thread (b, j) reads them back before writing the row.
// Carries: SimpleRNN the dh passed through a masked step; LSTM dc·f (dc through a masked step)
// and that passed dh; GRU dh·z (dh through a masked step). So no scratch buffer is needed.
// The dispatches of one loop run in order in one compute pass: wgpu orders a dispatch's
// storage writes before the next dispatch's reads.
//
// Bindings (group 0): args 0..3 at bindings 0..3, args 4 and 5 at bindings 6 and 7; 4: uniform Params
// (RecurrentParams in src/backend/gpu/params.rs; `step` is set per dispatch); 5: RunScalars
// (unused). Workgroup size 256, one thread per (sample, unit) or per element, 2-D grid.

struct Params {
    step: u32,       // the dispatch's index in its loop
    batch: u32,
    steps: u32,
    units: u32,      // sequence_mask: the features
    width: u32,      // values per state row
    backwards: u32,  // go_backwards: processing step t reads input time steps - 1 - t
    act: u32,        // activation code of the cell's output
    from_input: u32, // the activation's gradient reads a (1) or h (0)
    part: u32,       // gather/scatter: 0 sequence, 1 last, 2 previous, 3 input order, 4 last cell
    len: u32,        // gather/scatter/gate_grad/sequence_mask: elements (rows) to write
    cell: u32,       // 0 SimpleRNN, 1 LSTM, 2 GRU
    masked: u32,     // 1: arg 3 is the [batch, steps] mask
    value: f32,      // sequence_mask: the padding value
    dropped: u32,    // 1: arg 4 is the recurrent dropout mask [batch, steps, units]
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read_write> arg0: array<f32>;
@group(0) @binding(1) var<storage, read_write> arg1: array<f32>;
@group(0) @binding(2) var<storage, read_write> arg2: array<f32>;
@group(0) @binding(3) var<storage, read_write> arg3: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(6) var<storage, read_write> arg4: array<f32>;
@group(0) @binding(7) var<storage, read_write> arg5: array<f32>;

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

// The recurrent dropout mask of sample b's unit k (its step-0 slice; every step's is the
// same), or 1 without recurrent dropout (arg 4 of both loop kernels).
fn dropped(b: u32, k: u32) -> f32 {
    if (p.dropped == 0u) {
        return 1.0;
    }
    return arg4[b * p.steps * p.units + k];
}

// Whether processing step t of sample b is data (the mask is arg 3 of both loop kernels).
fn valid(b: u32, t: u32) -> bool {
    return p.masked == 0u || arg3[b * p.steps + input_time(t)] != 0.0;
}

// arg0 = z, arg1 = u, arg2 = b_r, arg3 = mask, arg4 = drop, arg5 = s.
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
    if (!valid(b, t)) {
        // Keep the state: this thread's column of every block.
        let row = state_row(t, b);
        for (var k = 0u; k < p.width; k += p.units) {
            arg5[row + k + j] = select(0.0, arg5[state_row(max(t, 1u) - 1u, b) + k + j], t > 0u);
        }
        return;
    }
    if (p.cell == 1u) {
        lstm_forward(b, j, t);
    } else if (p.cell == 2u) {
        gru_forward(b, j, t);
    } else {
        simple_forward(b, j, t);
    }
}

fn simple_forward(b: u32, j: u32, t: u32) {
    var a = arg0[z_row(b, input_time(t)) + j];
    if (t > 0u) {
        let prev = state_row(t - 1u, b);
        for (var k = 0u; k < p.units; k++) {
            a += arg5[prev + k] * dropped(b, k) * arg1[k * p.units + j];
        }
    }
    let row = state_row(t, b);
    arg5[row + j] = activation(p.act, a);
    arg5[row + p.units + j] = a;
}

fn lstm_forward(b: u32, j: u32, t: u32) {
    let n = p.units;
    let zr = z_row(b, input_time(t));
    var a = vec4<f32>(arg0[zr + j], arg0[zr + n + j], arg0[zr + 2u * n + j], arg0[zr + 3u * n + j]);
    var c_prev = 0.0;
    if (t > 0u) {
        let prev = state_row(t - 1u, b);
        c_prev = arg5[prev + n + j];
        for (var k = 0u; k < n; k++) {
            let h = arg5[prev + k] * dropped(b, k);
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
    arg5[row + j] = o * tanh(clamp(c, -10.0, 10.0));
    arg5[row + n + j] = c;
    arg5[row + 2u * n + j] = i;
    arg5[row + 3u * n + j] = f;
    arg5[row + 4u * n + j] = g;
    arg5[row + 5u * n + j] = o;
}

fn gru_forward(b: u32, j: u32, t: u32) {
    let n = p.units;
    var q = vec3<f32>(arg2[j], arg2[n + j], arg2[2u * n + j]);
    var h_prev = 0.0;
    if (t > 0u) {
        let prev = state_row(t - 1u, b);
        h_prev = arg5[prev + j];
        for (var k = 0u; k < n; k++) {
            // The product reads h_{t-1}·drop; the update gate mixes the undropped h_prev.
            let h = arg5[prev + k] * dropped(b, k);
            let w = k * 3u * n + j;
            q += h * vec3<f32>(arg1[w], arg1[w + n], arg1[w + 2u * n]);
        }
    }
    let zr = z_row(b, input_time(t));
    let zg = sigmoid(arg0[zr + j] + q.x);
    let r = sigmoid(arg0[zr + n + j] + q.y);
    let hh = tanh(clamp(arg0[zr + 2u * n + j] + r * q.z, -10.0, 10.0));
    let row = state_row(t, b);
    arg5[row + j] = zg * h_prev + (1.0 - zg) * hh;
    arg5[row + n + j] = zg;
    arg5[row + 2u * n + j] = r;
    arg5[row + 3u * n + j] = hh;
    arg5[row + 4u * n + j] = q.z;
}

// arg0 = s, arg1 = u, arg2 = ds, arg3 = mask, arg4 = drop, arg5 = dz.
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
    let n = p.units;
    let g = gates() * n;
    let row = state_row(t, b);
    let here = z_row(b, input_time(t));
    // dh_t: the returned part's, the recurrent product with dq_{t+1}, the carries.
    var dh = arg2[row + j];
    var carry = 0.0;
    if (t + 1u < p.steps) {
        let next = z_row(b, input_time(t + 1u));
        let next_row = state_row(t + 1u, b);
        var product = 0.0;
        for (var k = 0u; k < g; k++) {
            // The GRU's candidate block enters through r·q_h: its dq is dz's times r.
            var dq = arg5[next + k];
            if (p.cell == 2u && k >= 2u * n) {
                dq *= arg0[next_row + k];
            }
            product += dq * arg1[j * g + k];
        }
        // Step t + 1's product read h_t·drop.
        dh += product * dropped(b, j);
        carry = arg5[here + j];
        if (p.cell == 1u) {
            dh += arg5[here + n + j];
        } else {
            dh += carry;
        }
    }
    var next_carry = 0.0;
    var next_pass = 0.0;
    if (!valid(b, t)) {
        // The gradient passes through to step t - 1 unchanged.
        for (var q = 0u; q < gates(); q++) {
            arg5[here + q * n + j] = 0.0;
        }
        if (p.cell == 1u) {
            next_carry = arg2[row + n + j] + carry;
            next_pass = dh;
        } else {
            next_carry = dh;
        }
    } else if (p.cell == 1u) {
        next_carry = lstm_backward(b, j, t, dh, arg2[row + n + j] + carry);
    } else if (p.cell == 2u) {
        next_carry = gru_backward(b, j, t, dh);
    } else {
        let v = arg0[row + j + p.from_input * n];
        arg5[here + j] = activation_grad(p.act, v, dh);
    }
    if (t > 0u) {
        let before = z_row(b, input_time(t - 1u));
        arg5[before + j] = next_carry;
        if (p.cell == 1u) {
            arg5[before + n + j] = next_pass;
        }
    }
}

// The LSTM's gate gradients for (b, j) from dh and the incoming dc; returns dc·f for step t-1.
fn lstm_backward(b: u32, j: u32, t: u32, dh: f32, dc_in: f32) -> f32 {
    let n = p.units;
    let row = state_row(t, b);
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
    let dc = dh * o * (1.0 - tc * tc) + dc_in;
    let zr = z_row(b, input_time(t));
    arg5[zr + j] = dc * g * i * (1.0 - i);
    arg5[zr + n + j] = dc * c_prev * f * (1.0 - f);
    arg5[zr + 2u * n + j] = dc * i * (1.0 - g * g);
    arg5[zr + 3u * n + j] = dh * tc * o * (1.0 - o);
    return dc * f;
}

// The GRU's gate gradients for (b, j) from dh; returns dh·z for step t-1 (the direct path).
fn gru_backward(b: u32, j: u32, t: u32, dh: f32) -> f32 {
    let n = p.units;
    let row = state_row(t, b);
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
    arg5[zr + j] = dh * (h_prev - hh) * zg * (1.0 - zg);
    arg5[zr + n + j] = dhh * qh * r * (1.0 - r);
    arg5[zr + 2u * n + j] = dhh;
    return dh * zg;
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
    if (p.part == 4u) {
        // The LSTM's last cell state: the columns after h.
        arg1[i] = arg0[state_row(p.steps - 1u, r) + p.units + j];
        return;
    }
    let b = r / p.steps;
    let tau = r % p.steps;
    if (p.part == 0u) {
        arg1[i] = arg0[state_row(tau, b) + j];
        return;
    }
    if (p.part == 3u) {
        // Input order: input time tau was read by processing step input_time(tau).
        arg1[i] = arg0[state_row(input_time(tau), b) + j];
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
    if (p.part == 4u) {
        if (t + 1u == p.steps && c >= p.units && c < 2u * p.units) {
            value = arg0[b * p.units + c - p.units];
        }
    } else if (c < p.units) {
        if (p.part == 0u) {
            value = arg0[(b * p.steps + t) * p.units + c];
        } else if (p.part == 1u) {
            if (t + 1u == p.steps) {
                value = arg0[b * p.units + c];
            }
        } else if (p.part == 3u) {
            value = arg0[(b * p.steps + input_time(t)) * p.units + c];
        } else if (t + 1u < p.steps) {
            value = arg0[(b * p.steps + input_time(t + 1u)) * p.units + c];
        }
    }
    arg1[i] = value;
}

// arg0 = x [rows, features], arg1 = mask [rows]: one thread per row.
@compute @workgroup_size(256)
fn sequence_mask(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = flat_index(wid, nwg, lid);
    if (r >= p.len) {
        return;
    }
    var data = false;
    for (var f = 0u; f < p.units; f++) {
        data = data || arg0[r * p.units + f] != p.value;
    }
    arg1[r] = select(0.0, 1.0, data);
}
