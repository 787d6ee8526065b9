// elementwise.wgsl — one thread per output element:
//   bias_add        [x, b, y]     y[i,j] = x[i,j] + b[j]           (Kernel::BiasAdd)
//   add             [a, b, y]     y = a + b                         (Kernel::Add)
//   unary           [x, y]        y = f(x), f an activation         (Kernel::Unary)
//   affine          [x, y]        y = scale · x + shift             (Kernel::Affine)
//   copy_range      [x, y]        y[i] = x[cols + i] (cols: the offset) (Kernel::Copy)
//   unary_grad      [v, dy, dx]   dx from the forward input or output v (Kernel::UnaryGrad)
//   binary          [a, b, y]     y = f(a, b), f by code            (Kernel::Binary)
//   binary_grad_a/b [a, b, dy, dx] dx = ∂f/∂a·dy or ∂f/∂b·dy       (Kernel::BinaryGrad)
//   broadcast_rows  [x, y]        y[i,j] = x[j]                     (Kernel::BroadcastRows)
//   place_row       [x, y]        y[i,j] = x[j] in row op, else 0   (Kernel::PlaceRow)
//   broadcast_scalar[x, y]        y[i] = scale · x[0]               (Kernel::BroadcastScalar)
//   fill            [y]           y[i] = scale (the fill value)     (Kernel::Fill)
//   accumulate      [x, acc]      acc[i] += scale · x[i]            (Kernel::Accumulate)
//   dropout         [x, y]        y = x · scale where kept, else 0; kept when
//                                 dropout_word(seed, t, i) ≥ threshold
//                                 (Kernel::Dropout; the same bits as src/program/mod.rs)
//   first_non_finite[x, flag]     flag[0] = t if flag[0] == 0 and x[0] is NaN/inf
//                                 (Kernel::FirstNonFinite; one thread)
//
// Bindings (group 0): 0..3 = the step's args in the order above (arg0 … arg3);
//   4: uniform Params (ElementwiseParams in src/backend/gpu/params.rs; op: the activation code
//      of `activation`, or the binary op code of `binary`, both generated from their tables);
//   5: uniform RunScalars { lr, t } (first_non_finite reads t).
// Workgroup size 256. Grid: 2-D (x ≤ 65535) so that len may exceed 65535·256; the flat index
// is (wid.y · num_workgroups.x + wid.x) · 256 + lid.x, bounds-checked against len.

struct Params {
    len: u32,
    cols: u32,       // row length (bias, broadcast) or the copy's offset
    op: u32,         // activation code
    seed: u32,       // dropout
    scale: f32,
    shift: f32,
    threshold: u32,  // dropout: keep when the hash word is >= threshold
    period: u32,     // dropout: not 0, element i hashes (i / period) · cols + i % cols
}

@group(0) @binding(0) var<storage, read_write> arg0: array<f32>;
@group(0) @binding(1) var<storage, read_write> arg1: array<f32>;
@group(0) @binding(2) var<storage, read_write> arg2: array<f32>;
@group(0) @binding(3) var<storage, read_write> arg3: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

struct RunScalars {
    lr: f32,
    t: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(5) var<uniform> run: RunScalars;

@compute @workgroup_size(256)
fn bias_add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i < p.len) {
        arg2[i] = arg0[i] + arg1[i % p.cols];
    }
}

@compute @workgroup_size(256)
fn add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i < p.len) {
        arg2[i] = arg0[i] + arg1[i];
    }
}

@compute @workgroup_size(256)
fn unary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i < p.len) {
        arg1[i] = activation(p.op, arg0[i]);
    }
}

@compute @workgroup_size(256)
fn affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i < p.len) {
        arg1[i] = arg0[i] * p.scale + p.shift;
    }
}

@compute @workgroup_size(256)
fn copy_range(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i < p.len) {
        arg1[i] = arg0[p.cols + i];
    }
}

@compute @workgroup_size(256)
fn unary_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    // arg0: the forward input or output, as the activation's gradient reads it.
    arg2[i] = activation_grad(p.op, arg0[i], arg1[i]);
}

@compute @workgroup_size(256)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i < p.len) {
        arg2[i] = binary_op(p.op, arg0[i], arg1[i]);
    }
}

@compute @workgroup_size(256)
fn binary_grad_a(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i < p.len) {
        arg3[i] = binary_op_grad_a(p.op, arg0[i], arg1[i], arg2[i]);
    }
}

@compute @workgroup_size(256)
fn binary_grad_b(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i < p.len) {
        arg3[i] = binary_op_grad_b(p.op, arg0[i], arg1[i], arg2[i]);
    }
}

@compute @workgroup_size(256)
fn broadcast_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i < p.len) {
        arg1[i] = arg0[i % p.cols];
    }
}

@compute @workgroup_size(256)
fn place_row(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i < p.len) {
        arg1[i] = select(0.0, arg0[i % p.cols], i / p.cols == p.op);
    }
}

@compute @workgroup_size(256)
fn broadcast_scalar(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i < p.len) {
        arg1[i] = arg0[0] * p.scale;
    }
}

@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i < p.len) {
        arg0[i] = p.scale;
    }
}

@compute @workgroup_size(256)
fn accumulate(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i < p.len) {
        arg1[i] = arg1[i] + arg0[i] * p.scale;
    }
}

// NaN and ±inf are exactly the values whose exponent bits are all ones (tested on the bits:
// WGSL lets compilers assume float comparisons never see NaN).
@compute @workgroup_size(1)
fn first_non_finite() {
    let bits = bitcast<u32>(arg0[0]);
    if (arg1[0] == 0.0 && (bits & 0x7f800000u) == 0x7f800000u) {
        arg1[0] = f32(run.t);
    }
}

@compute @workgroup_size(256)
fn dropout(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i < p.len) {
        // One mask per sequence: element (b, t, f) of [B, T, F] hashes (b, f).
        var k = i;
        if (p.period != 0u) {
            k = (i / p.period) * p.cols + i % p.cols;
        }
        let word = pcg_hash(k ^ pcg_hash(run.t ^ pcg_hash(p.seed)));
        arg1[i] = select(0.0, arg0[i] * p.scale, word >= p.threshold);
    }
}
