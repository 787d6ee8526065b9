// splitk.wgsl — a matmul with a long K and a small C (a convolution's filter gradient:
// C [patch, filters] = colsᵀ · dY over K = batch × positions), split over K so that it runs
// on many workgroups, not the handful C's tiles would give (Kernel::MatMul, chosen by the
// host for such shapes):
//   matmul_partial  [a, b, c, -, partial]   partial[s] = op(a)·op(b) over K-chunk s, for the
//                   4×4 outputs of each thread (workgroup z = s)
//   splitk_reduce   [a, b, c, -, partial]   c = Σ_s partial[s], s in order (fixed, no atomics)
// op(a) is a [m,k] (or aᵀ stored [k,m] when trans_a), op(b) is b [k,n] (or bᵀ stored [n,k]).
// Each invocation loops over one chunk (≤ a few thousand k) — also under llvmpipe's loop limit.
//
// Bindings (group 0): 0: a, 1: b, 2: c, 6: partial (arg 4); 4: uniform Params.

struct Params {
    m: u32,
    k: u32,
    n: u32,
    splits: u32,
    trans_a: u32,
    trans_b: u32,
    chunk: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(6) var<storage, read_write> partial: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn a_at(i: u32, kk: u32) -> f32 {
    if (p.trans_a != 0u) {
        return a[kk * p.m + i];
    }
    return a[i * p.k + kk];
}

fn b_at(kk: u32, j: u32) -> f32 {
    if (p.trans_b != 0u) {
        return b[j * p.k + kk];
    }
    return b[kk * p.n + j];
}

@compute @workgroup_size(16, 16)
fn matmul_partial(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(workgroup_id) wid: vec3<u32>) {
    let i0 = gid.y * 4u;
    let j0 = gid.x * 4u;
    if (i0 >= p.m || j0 >= p.n) {
        return;
    }
    let s = wid.z;
    let k0 = s * p.chunk;
    let k1 = min(p.k, k0 + p.chunk);
    var acc: array<array<f32, 4>, 4>;
    for (var kk = k0; kk < k1; kk++) {
        var av: array<f32, 4>;
        var bv: array<f32, 4>;
        for (var r = 0u; r < 4u; r++) {
            av[r] = select(0.0, a_at(i0 + r, kk), i0 + r < p.m);
            bv[r] = select(0.0, b_at(kk, j0 + r), j0 + r < p.n);
        }
        for (var r = 0u; r < 4u; r++) {
            for (var q = 0u; q < 4u; q++) {
                acc[r][q] += av[r] * bv[q];
            }
        }
    }
    for (var r = 0u; r < 4u; r++) {
        for (var q = 0u; q < 4u; q++) {
            if (i0 + r < p.m && j0 + q < p.n) {
                partial[(s * p.m + i0 + r) * p.n + j0 + q] = acc[r][q];
            }
        }
    }
}

@compute @workgroup_size(256)
fn splitk_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    let len = p.m * p.n;
    if (idx >= len) {
        return;
    }
    var s = 0.0;
    for (var part = 0u; part < p.splits; part++) {
        s += partial[part * len + idx];
    }
    c[idx] = s;
}
