// columns.wgsl — joining and splitting tensors along their last axis (rows: everything
// before it):
//   concat_columns  [a, b, y]   y[r, :] = [a[r, :], b[r, :]]        (Kernel::ConcatColumns)
//   slice_columns   [x, y]      y[r, c] = x[r, start + c]           (Kernel::SliceColumns)
//   embedding       [table, ids, y]   y[i, :] = table[ids[i], :]    (Kernel::Embedding)
//   embedding_grad  [ids, dy, dtable] dtable[v, :] = Σ_{ids[i] = v} dy[i, :], in i order: one
//                                     thread per table element, no atomics (Kernel::EmbeddingGrad)
//
// Bindings (group 0): 0..2 = the step's args; 4: uniform Params (ColumnsParams in
// src/backend/gpu/params.rs); 5: RunScalars (unused). Workgroup size 256, one thread per
// output element, 2-D grid.

struct Params {
    len: u32,       // output elements
    in_cols: u32,   // concat: a's columns; slice: x's columns
    b_cols: u32,    // concat: b's columns
    start: u32,     // slice: the first column taken
    out_cols: u32,  // the output's columns (embeddings: their dim)
    ids: u32,       // embeddings: the number of ids
    vocab: u32,     // embeddings: the table's rows
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read_write> arg0: array<f32>;
@group(0) @binding(1) var<storage, read_write> arg1: array<f32>;
@group(0) @binding(2) var<storage, read_write> arg2: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(256)
fn concat_columns(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let r = i / p.out_cols;
    let c = i % p.out_cols;
    if (c < p.in_cols) {
        arg2[i] = arg0[r * p.in_cols + c];
    } else {
        arg2[i] = arg1[r * p.b_cols + c - p.in_cols];
    }
}

@compute @workgroup_size(256)
fn slice_columns(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let r = i / p.out_cols;
    arg1[i] = arg0[r * p.in_cols + p.start + i % p.out_cols];
}

@compute @workgroup_size(256)
fn embedding(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    // The host rejects ids outside the table; clamp anyway so no read goes out of bounds.
    let id = min(u32(max(arg1[i / p.out_cols], 0.0)), p.vocab - 1u);
    arg2[i] = arg0[id * p.out_cols + i % p.out_cols];
}

@compute @workgroup_size(256)
fn embedding_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let v = i / p.out_cols;
    let d = i % p.out_cols;
    var acc = 0.0;
    for (var r = 0u; r < p.ids; r++) {
        if (min(u32(max(arg0[r], 0.0)), p.vocab - 1u) == v) {
            acc += arg1[r * p.out_cols + d];
        }
    }
    arg2[i] = acc;
}
