// matmul_vec4.wgsl — C[m,n] = op(A)[m,k] · op(B)[k,n], row-major f32 (Kernel::MatMul), the
// vec4 fast path: every global load and store is a vec4<f32>.
//
// With FUSED (Kernel::MatMulBiasAct) the epilogue adds a bias per column and applies an
// activation: out[m,n] = act(op(A)·op(B) + bias), with the formulas of matmul.wgsl.
//
// Bindings (group 0), all typed array<vec4<f32>> (a slice start is a multiple of 64 elements,
// so every slice is vec4-aligned):
//   0: a  — A stored [m,k], or [k,m] when TRANS_A
//   1: b  — B stored [k,n], or [n,k] when TRANS_B
//   2: c  — C [m,n], written; with FUSED: the bias [n], read
//   3: out — with FUSED: the result [m,n], written (unused otherwise)
//   4: uniform Params { m, k, n }
// Override constants: TRANS_A, TRANS_B (one pipeline per transpose combination); FUSED and
// ACT (0 identity, 1 relu, 2 sigmoid, 3 tanh) for the epilogue.
//
// Alignment (checked by the host, launch.rs `vec4_aligned`): n % 4 == 0 (C rows and B rows
// are whole vec4s); the contiguous axis of each stored operand a multiple of 4: k for A
// ([m,k]), m for Aᵀ ([k,m]), n for B ([k,n]), k for Bᵀ ([n,k]). m is free for A ([m,k]).
//
// Tiling: no workgroup memory (on software adapters such as lavapipe it costs more than it
// saves). A workgroup of 8×8 threads covers a 32×32 tile of C; each thread keeps a 4×4
// register block: rows gid.y*4.., one vec4 of columns gid.x. The K loop walks k in blocks of
// 4: four vec4 loads of op(A) (4 rows × 4 k) and four of op(B) (4 k × 4 columns) feed 64
// multiply-adds; a stored-transposed operand's 4×4 block is transposed in registers. Aᵀ·B
// (TRANS_A, not TRANS_B) needs no transpose and no k % 4: one vec4 of Aᵀ (4 rows at one k)
// and one of B per k step. Rows past m (only when A is [m,k]) are clamped to the last valid
// row (their results are discarded), so the K loop has no bounds checks; k = 0 writes zeros
// (or act(bias)). Grid: (ceil(n/32), ceil(m/32), 1).
//
// Entry `matmul_vec4_tiled` (hardware GPUs, MatmulKernel::Tiled): a workgroup of 16×16
// threads computes a 64×64 tile of C, each thread a 4×4 register block (rows ly*4.., one vec4
// of columns lx). K is walked in steps of TK = 16: each step every thread makes one vec4
// load of op(A) and one of op(B) (along the contiguous axis of the stored matrix) into
// workgroup tiles of vec4s — tile_a[kk*16 + r4] = op(A)[row0 + 4r4 .. +4, k0 + kk] (a column
// of 4 rows), tile_b[kk*16 + c4] = op(B)[k0 + kk, col0 + 4c4 .. +4] — so the inner loop
// reads one vec4 of each per k for 16 multiply-adds. Tile loads are bounds-checked (zero
// vec4s past m, k, n), the inner loop is not. Grid: (ceil(n/64), ceil(m/64), 1).

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

@group(0) @binding(0) var<storage, read_write> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(8, 8)
fn matmul_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.y * 4u;
    let col4 = gid.x;
    let n4 = p.n / 4u;
    if (row >= p.m || col4 >= n4) {
        return;
    }
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    if (TRANS_A && !TRANS_B) {
        // Aᵀ·B: A stored [k,m] (m % 4 == 0), B stored [k,n]; per k one vec4 of each.
        let m4 = p.m / 4u;
        var ai = row / 4u;
        var bi = col4;
        for (var kk = 0u; kk < p.k; kk++) {
            let av = a[ai];
            let bv = b[bi];
            acc0 += av.x * bv;
            acc1 += av.y * bv;
            acc2 += av.z * bv;
            acc3 += av.w * bv;
            ai += m4;
            bi += n4;
        }
    } else {
        // k % 4 == 0: blocks of 4 along k.
        let k4 = p.k / 4u;
        let m4 = p.m / 4u;
        let last_r = p.m - 1u;
        // Start index and per-block step of the four vec4s of op(A) and of op(B).
        var ai: vec4<u32>;
        var a_step: u32;
        if (TRANS_A) {
            // A stored [k,m]: vec4 t of the block = A[4kb + t, row..row+4].
            let r = row / 4u;
            ai = vec4<u32>(r, r + m4, r + 2u * m4, r + 3u * m4);
            a_step = 4u * m4;
        } else {
            // A stored [m,k]: vec4 i of the block = A[row + i, 4kb..4kb+4].
            ai = vec4<u32>(row, min(row + 1u, last_r), min(row + 2u, last_r), min(row + 3u, last_r)) * k4;
            a_step = 1u;
        }
        var bi: vec4<u32>;
        var b_step: u32;
        if (TRANS_B) {
            // B stored [n,k]: vec4 j of the block = B[4col4 + j, 4kb..4kb+4].
            let c0 = 4u * col4;
            bi = vec4<u32>(c0, c0 + 1u, c0 + 2u, c0 + 3u) * k4;
            b_step = 1u;
        } else {
            // B stored [k,n]: vec4 t of the block = B[4kb + t, 4col4..4col4+4].
            bi = vec4<u32>(col4, col4 + n4, col4 + 2u * n4, col4 + 3u * n4);
            b_step = 4u * n4;
        }
        for (var kb = 0u; kb < k4; kb++) {
            // a_i = op(A)[row + i, 4kb..4kb+4]; b_t = op(B)[4kb + t, 4col4..4col4+4].
            var am = mat4x4<f32>(a[ai.x], a[ai.y], a[ai.z], a[ai.w]);
            var bm = mat4x4<f32>(b[bi.x], b[bi.y], b[bi.z], b[bi.w]);
            if (TRANS_A) {
                am = transpose(am);
            }
            if (TRANS_B) {
                bm = transpose(bm);
            }
            acc0 += am[0].x * bm[0] + am[0].y * bm[1] + am[0].z * bm[2] + am[0].w * bm[3];
            acc1 += am[1].x * bm[0] + am[1].y * bm[1] + am[1].z * bm[2] + am[1].w * bm[3];
            acc2 += am[2].x * bm[0] + am[2].y * bm[1] + am[2].z * bm[2] + am[2].w * bm[3];
            acc3 += am[3].x * bm[0] + am[3].y * bm[1] + am[3].z * bm[2] + am[3].w * bm[3];
            ai += vec4<u32>(a_step);
            bi += vec4<u32>(b_step);
        }
    }
    store_row(row, col4, acc0);
    store_row(row + 1u, col4, acc1);
    store_row(row + 2u, col4, acc2);
    store_row(row + 3u, col4, acc3);
}

// C[row, 4col4..4col4+4] = v (or out = act(v + bias) when FUSED); rows past m are skipped.
fn store_row(row: u32, col4: u32, v: vec4<f32>) {
    if (row >= p.m) {
        return;
    }
    let i = row * (p.n / 4u) + col4;
    if (FUSED) {
        let z = v + c[col4];
        out[i] = vec4<f32>(activation(ACT, z.x), activation(ACT, z.y), activation(ACT, z.z), activation(ACT, z.w));
    } else {
        c[i] = v;
    }
}

const TILE: u32 = 64u;
const TK: u32 = 16u;

var<workgroup> tile_a: array<vec4<f32>, 256>;
var<workgroup> tile_b: array<vec4<f32>, 256>;

@compute @workgroup_size(16, 16)
fn matmul_vec4_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let tid = lid.y * 16u + lid.x;
    let n4 = p.n / 4u;
    let zero = vec4<f32>(0.0);
    var acc0 = zero;
    var acc1 = zero;
    var acc2 = zero;
    var acc3 = zero;
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        if (TRANS_A) {
            // A stored [k,m] (m % 4 == 0): thread = (kk, r4), one vec4 of 4 rows at one k.
            let kk = tid / 16u;
            let r4 = tid % 16u;
            let row = row0 + 4u * r4;
            var v = zero;
            if (k0 + kk < p.k && row < p.m) {
                v = a[(k0 + kk) * (p.m / 4u) + row / 4u];
            }
            tile_a[kk * 16u + r4] = v;
        } else {
            // A stored [m,k] (k % 4 == 0): thread = (r, kq), one vec4 of 4 k at one row.
            let r = tid / 4u;
            let kq = tid % 4u;
            var v = zero;
            if (row0 + r < p.m && k0 + 4u * kq < p.k) {
                v = a[(row0 + r) * (p.k / 4u) + k0 / 4u + kq];
            }
            for (var j = 0u; j < 4u; j++) {
                tile_a[(4u * kq + j) * 16u + r / 4u][r % 4u] = v[j];
            }
        }
        if (TRANS_B) {
            // B stored [n,k] (k % 4 == 0): thread = (c, kq), one vec4 of 4 k at one column.
            let cc = tid / 4u;
            let kq = tid % 4u;
            var v = zero;
            if (col0 + cc < p.n && k0 + 4u * kq < p.k) {
                v = b[(col0 + cc) * (p.k / 4u) + k0 / 4u + kq];
            }
            for (var j = 0u; j < 4u; j++) {
                tile_b[(4u * kq + j) * 16u + cc / 4u][cc % 4u] = v[j];
            }
        } else {
            // B stored [k,n]: thread = (kk, c4), one vec4 of 4 columns at one k.
            let kk = tid / 16u;
            let c4 = tid % 16u;
            var v = zero;
            if (k0 + kk < p.k && col0 + 4u * c4 < p.n) {
                v = b[(k0 + kk) * n4 + col0 / 4u + c4];
            }
            tile_b[kk * 16u + c4] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let av = tile_a[kk * 16u + lid.y];
            let bv = tile_b[kk * 16u + lid.x];
            acc0 += av.x * bv;
            acc1 += av.y * bv;
            acc2 += av.z * bv;
            acc3 += av.w * bv;
        }
        workgroupBarrier();
    }
    let col4 = col0 / 4u + lid.x;
    if (col4 < n4) {
        let row = row0 + lid.y * 4u;
        store_row(row, col4, acc0);
        store_row(row + 1u, col4, acc1);
        store_row(row + 2u, col4, acc2);
        store_row(row + 3u, col4, acc3);
    }
}
