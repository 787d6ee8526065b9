// matmul.wgsl — C[m,n] = op(A)[m,k] · op(B)[k,n], row-major f32 (Kernel::MatMul).
//
// With FUSED (Kernel::MatMulBiasAct) the epilogue adds a bias per column and applies an
// activation: out[m,n] = act(op(A)·op(B) + bias), so a Dense layer's forward is one launch.
//
// Bindings (group 0):
//   0: a  — A stored [m,k], or [k,m] when TRANS_A
//   1: b  — B stored [k,n], or [n,k] when TRANS_B
//   2: c  — C [m,n], written; with FUSED: the bias [n], read
//   3: out — with FUSED: the result [m,n], written (unused otherwise)
//   4: uniform Params { m, k, n }
// Override constants: TRANS_A, TRANS_B (one pipeline per transpose combination); FUSED and
// ACT (0 identity, 1 relu, 2 sigmoid, 3 tanh) for the epilogue.
//
// Tiling: a workgroup of 16×16 threads computes a 64×64 tile of C; each thread keeps a
// 4×4 register block (rows ly*4.., columns lx*4..). The K dimension is walked in steps of
// TK = 16: each step the workgroup stages a 64×16 tile of op(A) and a 16×64 tile of op(B)
// in workgroup memory (4 elements of each per thread, loaded along the contiguous axis of the
// stored matrix). Tile loads are bounds-checked (zero padding), so any m, k, n is correct;
// k = 0 writes zeros. Grid: (ceil(n/64), ceil(m/64), 1).
//
// Entry `matmul_direct` (for software adapters such as lavapipe, where workgroup memory and
// barriers cost more than they save): no workgroup memory; a workgroup of 8×8 threads covers
// a 32×32 tile of C, each thread a 4×4 register block read straight from A and B. Rows and
// columns past the edge are clamped to the last valid one (their results are discarded), so
// the K loop has no bounds checks. Grid: (ceil(n/32), ceil(m/32), 1).

struct Params {
    m: u32,
    k: u32,
    n: u32,
    _pad: u32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override FUSED: bool = false;
override ACT: u32 = 0u;

@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

const TILE: u32 = 64u;
const TK: u32 = 16u;

// tile_a[kk * TILE + r] = op(A)[row0 + r, k0 + kk]; tile_b[kk * TILE + col] = op(B)[k0 + kk, col0 + col].
var<workgroup> tile_a: array<f32, 1024>;
var<workgroup> tile_b: array<f32, 1024>;

// op(A)[row, kk], zero outside [m, k].
fn load_a(row: u32, kk: u32) -> f32 {
    if (row >= p.m || kk >= p.k) {
        return 0.0;
    }
    if (TRANS_A) {
        return a[kk * p.m + row];
    }
    return a[row * p.k + kk];
}

// op(B)[kk, col], zero outside [k, n].
fn load_b(kk: u32, col: u32) -> f32 {
    if (kk >= p.k || col >= p.n) {
        return 0.0;
    }
    if (TRANS_B) {
        return b[col * p.k + kk];
    }
    return b[kk * p.n + col];
}

@compute @workgroup_size(16, 16)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let tid = lid.y * 16u + lid.x;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        for (var i = 0u; i < 4u; i++) {
            let e = tid + i * 256u;
            // Walk the contiguous axis of the stored matrix with consecutive threads.
            var ar = e / TK;
            var ak = e % TK;
            if (TRANS_A) {
                ar = e % TILE;
                ak = e / TILE;
            }
            tile_a[ak * TILE + ar] = load_a(row0 + ar, k0 + ak);
            var bc = e % TILE;
            var bk = e / TILE;
            if (TRANS_B) {
                bc = e / TK;
                bk = e % TK;
            }
            tile_b[bk * TILE + bc] = load_b(k0 + bk, col0 + bc);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let ab = kk * TILE + lid.y * 4u;
            let bb = kk * TILE + lid.x * 4u;
            let bv = vec4<f32>(tile_b[bb], tile_b[bb + 1u], tile_b[bb + 2u], tile_b[bb + 3u]);
            acc0 += tile_a[ab] * bv;
            acc1 += tile_a[ab + 1u] * bv;
            acc2 += tile_a[ab + 2u] * bv;
            acc3 += tile_a[ab + 3u] * bv;
        }
        workgroupBarrier();
    }
    let col = col0 + lid.x * 4u;
    let row = row0 + lid.y * 4u;
    store_row(row, col, acc0);
    store_row(row + 1u, col, acc1);
    store_row(row + 2u, col, acc2);
    store_row(row + 3u, col, acc3);
}

// C[row, col..col+4] = v (or out = act(v + bias) when FUSED), skipping elements outside [m, n].
fn store_row(row: u32, col: u32, v: vec4<f32>) {
    if (row >= p.m) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        if (col + j < p.n) {
            if (FUSED) {
                out[row * p.n + col + j] = activation(ACT, v[j] + c[col + j]);
            } else {
                c[row * p.n + col + j] = v[j];
            }
        }
    }
}

// Strides of op(A) (row, k) and op(B) (k, column) in their stored layouts.
fn a_strides() -> vec2<u32> {
    return select(vec2<u32>(p.k, 1u), vec2<u32>(1u, p.m), TRANS_A);
}

fn b_strides() -> vec2<u32> {
    return select(vec2<u32>(p.n, 1u), vec2<u32>(1u, p.k), TRANS_B);
}

// acc[i] += op(A)[r_i, k] · op(B)[k, c_0..4] for the element indices in `ai` and `bi`.
fn direct_step(ai: vec4<u32>, bi: vec4<u32>, acc: ptr<function, array<vec4<f32>, 4>>) {
    let bv = vec4<f32>(b[bi.x], b[bi.y], b[bi.z], b[bi.w]);
    (*acc)[0] += a[ai.x] * bv;
    (*acc)[1] += a[ai.y] * bv;
    (*acc)[2] += a[ai.z] * bv;
    (*acc)[3] += a[ai.w] * bv;
}

@compute @workgroup_size(8, 8)
fn matmul_direct(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.y * 4u;
    let col = gid.x * 4u;
    if (row >= p.m || col >= p.n) {
        return;
    }
    // Clamp the block to the matrix: duplicated rows/columns compute values never stored.
    let last_r = p.m - 1u;
    let last_c = p.n - 1u;
    let sa = a_strides();
    let sb = b_strides();
    // Element indices of op(A)[r_i, kk] and op(B)[kk, c_j], advanced by one k step each.
    var ai = vec4<u32>(row, min(row + 1u, last_r), min(row + 2u, last_r), min(row + 3u, last_r)) * sa.x;
    var bi = vec4<u32>(col, min(col + 1u, last_c), min(col + 2u, last_c), min(col + 3u, last_c)) * sb.y;
    var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    // Four k steps per iteration (same order as one at a time): llvmpipe (lavapipe) ends an
    // invocation's loops after 65535 iterations in all, so this reaches k ≈ 262 000 there.
    let k4 = p.k / 4u;
    for (var q = 0u; q < k4; q++) {
        direct_step(ai, bi, &acc);
        ai += sa.y;
        bi += sb.x;
        direct_step(ai, bi, &acc);
        ai += sa.y;
        bi += sb.x;
        direct_step(ai, bi, &acc);
        ai += sa.y;
        bi += sb.x;
        direct_step(ai, bi, &acc);
        ai += sa.y;
        bi += sb.x;
    }
    for (var kk = k4 * 4u; kk < p.k; kk++) {
        direct_step(ai, bi, &acc);
        ai += sa.y;
        bi += sb.x;
    }
    let acc0 = acc[0];
    let acc1 = acc[1];
    let acc2 = acc[2];
    let acc3 = acc[3];
    store_row(row, col, acc0);
    store_row(row + 1u, col, acc1);
    store_row(row + 2u, col, acc2);
    store_row(row + 3u, col, acc3);
}
