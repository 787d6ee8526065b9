// conv_gemm.wgsl — implicit-GEMM convolution: the patches of the input are read inside the
// product, never materialised by im2col (Kernel::Conv2d, Conv2dFilterGrad, Conv2dInputGrad).
// NHWC images x [batch, height, width, channels]; the HWIO filter w viewed as
// [patch_len = kh·kw·channels, filters]; positions = batch·oh·ow output pixels; patch(x)[pos, q]
// is Kernel::Im2Col's matrix (q = (ky, kx, c), 0 in the padding).
//
//   conv2d                 [x, w, (bias,) y]   y[pos, f] = act(Σ_q patch(x)[pos, q] · w[q, f]
//                                              (+ bias[f])), q in order; HAS_BIAS, ACT overrides
//   conv2d_filter_grad     [x, dy, dw]         dw[q, f] = Σ_pos patch(x)[pos, q] · dy[pos, f]
//   conv2d_filter_partial  [x, dy, dw, _, partial]  the same sum over split s = wid.z's chunk
//                                              of positions into partial[s, q, f]
//   conv2d_filter_reduce   (same bindings)     dw[q, f] = Σ_s partial[s, q, f], s in order
//   conv2d_input_grad      [dy, w, dx]         dx[n, iy, ix, c] = Σ_(ky, kx) Σ_f dy[n, oy, ox, f] ·
//                                              w[ky, kx, c, f] over the windows (oy, ox) whose tap
//                                              (ky, kx) reads (iy, ix) — col2im(dy · wᵀ)
//
// Bindings (group 0): 0..3 = the step's args in the order above, 6 = the split's partials;
// 4: uniform Params (ConvGemmParams in src/backend/gpu/params.rs). Each thread computes a 4×4
// block of its output matrix (rows × columns), 8×8 threads per workgroup (32×32 outputs);
// grid (ceil(columns / 32), ceil(rows / 32), splits). Rows and columns past the edge are
// clamped to the last one (their results are not stored). Per-row loops are unrolled: llvmpipe
// counts every loop iteration against its limit of 65535 per invocation.

struct Params {
    batch: u32,
    height: u32,
    width: u32,
    channels: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    dh: u32,
    dw: u32,
    pt: u32,
    pl: u32,
    oh: u32,
    ow: u32,
    filters: u32,
    chunk: u32,   // positions per split (conv2d_filter_partial)
}

override HAS_BIAS: bool = false;
override ACT: u32 = 0u;

@group(0) @binding(0) var<storage, read_write> arg0: array<f32>;
@group(0) @binding(1) var<storage, read_write> arg1: array<f32>;
@group(0) @binding(2) var<storage, read_write> arg2: array<f32>;
@group(0) @binding(3) var<storage, read_write> arg3: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(6) var<storage, read_write> partial: array<f32>;

fn positions() -> u32 {
    return p.batch * p.oh * p.ow;
}

fn patch_len() -> u32 {
    return p.kh * p.kw * p.channels;
}

// Where the window of output position `pos` starts: the image's first element and the
// (signed) input row and column of its tap (0, 0).
struct Origin {
    base: u32,
    iy: i32,
    ix: i32,
}

fn origin(pos: u32) -> Origin {
    let ox = pos % p.ow;
    let t = pos / p.ow;
    let oy = t % p.oh;
    let n = t / p.oh;
    return Origin(n * p.height * p.width * p.channels, i32(oy * p.sh) - i32(p.pt), i32(ox * p.sw) - i32(p.pl));
}

// Patch column q: the tap's offsets from the window origin and its channel.
struct Tap {
    dy: i32,
    dx: i32,
    c: u32,
}

fn tap(q: u32) -> Tap {
    let c = q % p.channels;
    let t = q / p.channels;
    return Tap(i32((t / p.kw) * p.dh), i32((t % p.kw) * p.dw), c);
}

// The element of x at tap offsets (dy, dx) of window origin o (channel 0), or -1 in the padding.
fn tap_base(o: Origin, dy: i32, dx: i32) -> i32 {
    let iy = o.iy + dy;
    let ix = o.ix + dx;
    if (iy < 0 || ix < 0 || iy >= i32(p.height) || ix >= i32(p.width)) {
        return -1;
    }
    return i32(o.base + (u32(iy) * p.width + u32(ix)) * p.channels);
}

// x[base + c], or 0 for a tap in the padding (base -1).
fn x_at(base: i32, c: u32) -> f32 {
    if (base < 0) {
        return 0.0;
    }
    return arg0[u32(base) + c];
}

// patch(x)[pos, q] for the window origin o and tap t: 0 in the padding.
fn patch_at(o: Origin, t: Tap) -> f32 {
    return x_at(tap_base(o, t.dy, t.dx), t.c);
}

// Columns col..col+3 clamped to the last of `n`.
fn clamped_cols(col: u32, n: u32) -> vec4<u32> {
    let last = n - 1u;
    return vec4<u32>(col, min(col + 1u, last), min(col + 2u, last), min(col + 3u, last));
}

// The four values of row r at the columns `cols` of a row-major matrix with `n` columns.
fn row4(buf_base: u32, cols: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(arg1[buf_base + cols.x], arg1[buf_base + cols.y], arg1[buf_base + cols.z], arg1[buf_base + cols.w]);
}

// y[row, col..col+3] = act(v (+ bias)), skipping elements outside [m, n].
fn store_conv(row: u32, col: u32, m: u32, n: u32, v: vec4<f32>) {
    if (row >= m) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        if (col + j < n) {
            let at = row * n + col + j;
            if (HAS_BIAS) {
                arg3[at] = activation(ACT, v[j] + arg2[col + j]);
            } else {
                arg2[at] = activation(ACT, v[j]);
            }
        }
    }
}

@compute @workgroup_size(8, 8)
fn conv2d(@builtin(global_invocation_id) gid: vec3<u32>) {
    let m = positions();
    let n = p.filters;
    let row = gid.y * 4u;
    let col = gid.x * 4u;
    if (row >= m || col >= n) {
        return;
    }
    let o0 = origin(row);
    let o1 = origin(min(row + 1u, m - 1u));
    let o2 = origin(min(row + 2u, m - 1u));
    let o3 = origin(min(row + 3u, m - 1u));
    let cols = clamped_cols(col, n);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    // Patch columns q = (ky, kx, c) in order: the taps outside, the channels inside, so each
    // tap's bounds are tested once per row and its channels are read in sequence.
    var q = 0u;
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            let dy = i32(ky * p.dh);
            let dx = i32(kx * p.dw);
            let b0 = tap_base(o0, dy, dx);
            let b1 = tap_base(o1, dy, dx);
            let b2 = tap_base(o2, dy, dx);
            let b3 = tap_base(o3, dy, dx);
            for (var c = 0u; c < p.channels; c++) {
                let bv = row4(q * n, cols);
                acc0 += x_at(b0, c) * bv;
                acc1 += x_at(b1, c) * bv;
                acc2 += x_at(b2, c) * bv;
                acc3 += x_at(b3, c) * bv;
                q++;
            }
        }
    }
    store_conv(row, col, m, n, acc0);
    store_conv(row + 1u, col, m, n, acc1);
    store_conv(row + 2u, col, m, n, acc2);
    store_conv(row + 3u, col, m, n, acc3);
}

// The filter-gradient block of rows (patch columns) row..row+3 and columns col..col+3 over the
// positions [start, end), in order.
fn filter_block(row: u32, col: u32, start: u32, end: u32) -> array<vec4<f32>, 4> {
    let mq = patch_len();
    let n = p.filters;
    let t0 = tap(row);
    let t1 = tap(min(row + 1u, mq - 1u));
    let t2 = tap(min(row + 2u, mq - 1u));
    let t3 = tap(min(row + 3u, mq - 1u));
    let cols = clamped_cols(col, n);
    var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var pos = start; pos < end; pos++) {
        let o = origin(pos);
        let bv = row4(pos * n, cols);
        acc[0] += patch_at(o, t0) * bv;
        acc[1] += patch_at(o, t1) * bv;
        acc[2] += patch_at(o, t2) * bv;
        acc[3] += patch_at(o, t3) * bv;
    }
    return acc;
}

@compute @workgroup_size(8, 8)
fn conv2d_filter_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
    let mq = patch_len();
    let n = p.filters;
    let row = gid.y * 4u;
    let col = gid.x * 4u;
    if (row >= mq || col >= n) {
        return;
    }
    let acc = filter_block(row, col, 0u, positions());
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            if (row + i < mq && col + j < n) {
                arg2[(row + i) * n + col + j] = acc[i][j];
            }
        }
    }
}

@compute @workgroup_size(8, 8)
fn conv2d_filter_partial(@builtin(global_invocation_id) gid: vec3<u32>) {
    let mq = patch_len();
    let n = p.filters;
    let row = gid.y * 4u;
    let col = gid.x * 4u;
    if (row >= mq || col >= n) {
        return;
    }
    let s = gid.z;
    let start = s * p.chunk;
    let acc = filter_block(row, col, start, min(start + p.chunk, positions()));
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            if (row + i < mq && col + j < n) {
                partial[(s * mq + row + i) * n + col + j] = acc[i][j];
            }
        }
    }
}

@compute @workgroup_size(256)
fn conv2d_filter_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    let total = patch_len() * p.filters;
    if (i >= total) {
        return;
    }
    let splits = (positions() + p.chunk - 1u) / p.chunk;
    var sum = 0.0;
    for (var s = 0u; s < splits; s++) {
        sum += partial[s * total + i];
    }
    arg2[i] = sum;
}

// The element of dy at (the window of) output position (oy, ox) reading input (iy, ix) through
// tap (ky, kx) of image `img`, as an element index of dy's row, or -1 when no window does.
fn window_row(img: u32, iy: u32, ix: u32, ky: u32, kx: u32) -> i32 {
    let y = i32(iy + p.pt) - i32(ky * p.dh);
    let x = i32(ix + p.pl) - i32(kx * p.dw);
    if (y < 0 || x < 0 || u32(y) % p.sh != 0u || u32(x) % p.sw != 0u) {
        return -1;
    }
    let oy = u32(y) / p.sh;
    let ox = u32(x) / p.sw;
    if (oy >= p.oh || ox >= p.ow) {
        return -1;
    }
    return i32(((img * p.oh + oy) * p.ow + ox) * p.filters);
}

// dy row `r`'s value at filter f times the filter row `wv`, or 0 without a window.
fn dy_times(r: i32, f: u32, wv: vec4<f32>) -> vec4<f32> {
    if (r < 0) {
        return vec4<f32>(0.0);
    }
    return arg0[u32(r) + f] * wv;
}

@compute @workgroup_size(8, 8)
fn conv2d_input_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
    // dx as a matrix [batch·height·width, channels]: rows are input pixels.
    let m = p.batch * p.height * p.width;
    let n = p.channels;
    let row = gid.y * 4u;
    let col = gid.x * 4u;
    if (row >= m || col >= n) {
        return;
    }
    var pix: array<vec3<u32>, 4>;
    for (var i = 0u; i < 4u; i++) {
        let r = min(row + i, m - 1u);
        pix[i] = vec3<u32>(r / (p.height * p.width), (r / p.width) % p.height, r % p.width);
    }
    let cols = clamped_cols(col, n);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let f_count = p.filters;
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            let r0 = window_row(pix[0].x, pix[0].y, pix[0].z, ky, kx);
            let r1 = window_row(pix[1].x, pix[1].y, pix[1].z, ky, kx);
            let r2 = window_row(pix[2].x, pix[2].y, pix[2].z, ky, kx);
            let r3 = window_row(pix[3].x, pix[3].y, pix[3].z, ky, kx);
            // w[ky, kx, c, f] = arg1[((ky·kw + kx)·channels + c)·filters + f].
            let wt = (ky * p.kw + kx) * n;
            for (var f = 0u; f < f_count; f++) {
                let wv = vec4<f32>(
                    arg1[(wt + cols.x) * f_count + f],
                    arg1[(wt + cols.y) * f_count + f],
                    arg1[(wt + cols.z) * f_count + f],
                    arg1[(wt + cols.w) * f_count + f],
                );
                acc0 += dy_times(r0, f, wv);
                acc1 += dy_times(r1, f, wv);
                acc2 += dy_times(r2, f, wv);
                acc3 += dy_times(r3, f, wv);
            }
        }
    }
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            if (row + i < m && col + j < n) {
                arg2[(row + i) * n + col + j] = accs[i][j];
            }
        }
    }
}
