// conv.wgsl — the image ops over NHWC tensors, one thread per output element:
//   im2col         [x, cols]      cols[(n,oy,ox), (ky,kx,c)] = x[n, oy·sh+ky·dh−pt, ox·sw+kx·dw−pl, c]
//                                 (0 in the padding)                         (Kernel::Im2Col)
//   col2im         [cols, x]      x[n,iy,ix,c] = Σ_(ky,kx) of the patch entries reading it,
//                                 gathered in (ky, kx) order                 (Kernel::Col2Im)
//   max_pool       [x, y]         y = max of the window's valid taps         (Kernel::MaxPool)
//   max_pool_grad  [x, dy, dx]    dx = Σ over windows whose first maximum is this element
//                                 (with relu: and is > 0)                    (Kernel::MaxPoolGrad)
//   avg_pool       [x, y]         y = mean over the window's valid taps      (Kernel::AvgPool)
//   avg_pool_grad  [dy, dx]       dx = Σ over windows containing it of dy / count
//                                                                            (Kernel::AvgPoolGrad)
//   random_flip    [x, y]         image n mirrored left to right when pcg(seed, t, n) is odd
//                                                                            (Kernel::RandomFlip)
// Gradients are gathered per input element (never scattered with atomics), in the same order
// as the CPU reference (src/backend/cpu/conv.rs), so results are deterministic.
//
// Bindings (group 0): 0..2 = the step's args in the order above; 4: uniform Params below
// (the window geometry, `Window2d`). Workgroup size 256, 2-D grid, flat index as elementwise.wgsl.

struct Params {
    len: u32,      // output elements (threads)
    oh: u32,
    ow: u32,
    flag: u32,     // max_pool_grad: 1 = only windows whose maximum is > 0 pass their gradient
                   // (relu fused); random_flip: the seed
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
}

@group(0) @binding(0) var<storage, read_write> arg0: array<f32>;
@group(0) @binding(1) var<storage, read_write> arg1: array<f32>;
@group(0) @binding(2) var<storage, read_write> arg2: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

struct RunScalars {
    lr: f32,
    t: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(5) var<uniform> run: RunScalars;

// (channel, image, row, column) of element i of the NHWC input images.
fn input_coords(i: u32) -> vec4<u32> {
    let pix = i / p.channels;
    return vec4<u32>(i % p.channels, pix / (p.height * p.width), (pix / p.width) % p.height, pix % p.width);
}

// (channel, image, row, column) of element i of the pooled output [batch, oh, ow, channels].
fn output_coords(i: u32) -> vec4<u32> {
    let pos = i / p.channels;
    return vec4<u32>(i % p.channels, pos / (p.oh * p.ow), (pos / p.ow) % p.oh, pos % p.ow);
}

// Input row of tap ky for output row oy; `height` (out of range) in the padding.
fn tap_y(oy: u32, ky: u32) -> u32 {
    let i = oy * p.sh + ky * p.dh;
    if (i < p.pt || i - p.pt >= p.height) {
        return p.height;
    }
    return i - p.pt;
}

fn tap_x(ox: u32, kx: u32) -> u32 {
    let i = ox * p.sw + kx * p.dw;
    if (i < p.pl || i - p.pl >= p.width) {
        return p.width;
    }
    return i - p.pl;
}

// Output row whose tap ky reads input row iy; `oh` (out of range) when none does.
fn source_y(iy: u32, ky: u32) -> u32 {
    let shifted = iy + p.pt;
    if (shifted < ky * p.dh) {
        return p.oh;
    }
    let s = shifted - ky * p.dh;
    if (s % p.sh != 0u || s / p.sh >= p.oh) {
        return p.oh;
    }
    return s / p.sh;
}

fn source_x(ix: u32, kx: u32) -> u32 {
    let shifted = ix + p.pl;
    if (shifted < kx * p.dw) {
        return p.ow;
    }
    let s = shifted - kx * p.dw;
    if (s % p.sw != 0u || s / p.sw >= p.ow) {
        return p.ow;
    }
    return s / p.sw;
}

fn pixel_at(n: u32, iy: u32, ix: u32) -> u32 {
    return ((n * p.height + iy) * p.width + ix) * p.channels;
}

@compute @workgroup_size(256)
fn im2col(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let plen = p.kh * p.kw * p.channels;
    let row = i / plen;
    let col = i % plen;
    let ch = col % p.channels;
    let kx = (col / p.channels) % p.kw;
    let ky = col / (p.channels * p.kw);
    let n = row / (p.oh * p.ow);
    let oy = (row / p.ow) % p.oh;
    let ox = row % p.ow;
    let iy = tap_y(oy, ky);
    let ix = tap_x(ox, kx);
    var v = 0.0;
    if (iy < p.height && ix < p.width) {
        v = arg0[pixel_at(n, iy, ix) + ch];
    }
    arg1[i] = v;
}

@compute @workgroup_size(256)
fn col2im(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let at = input_coords(i);
    let ch = at.x;
    let n = at.y;
    let iy = at.z;
    let ix = at.w;
    let plen = p.kh * p.kw * p.channels;
    var s = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        let oy = source_y(iy, ky);
        if (oy >= p.oh) {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ox = source_x(ix, kx);
            if (ox >= p.ow) {
                continue;
            }
            let row = (n * p.oh + oy) * p.ow + ox;
            s += arg0[row * plen + (ky * p.kw + kx) * p.channels + ch];
        }
    }
    arg1[i] = s;
}

// Number of valid taps of the window at (oy, ox).
fn window_count(oy: u32, ox: u32) -> u32 {
    var rows = 0u;
    for (var ky = 0u; ky < p.kh; ky++) {
        rows += select(0u, 1u, tap_y(oy, ky) < p.height);
    }
    var cols = 0u;
    for (var kx = 0u; kx < p.kw; kx++) {
        cols += select(0u, 1u, tap_x(ox, kx) < p.width);
    }
    return rows * cols;
}

// Flat input index of the first maximum of channel ch in the window at (n, oy, ox).
fn window_argmax(n: u32, oy: u32, ox: u32, ch: u32) -> u32 {
    var best = 0xffffffffu;
    var m = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = tap_y(oy, ky);
        if (iy >= p.height) {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = tap_x(ox, kx);
            if (ix >= p.width) {
                continue;
            }
            let at = pixel_at(n, iy, ix) + ch;
            let v = arg0[at];
            if (best == 0xffffffffu || v > m) {
                m = v;
                best = at;
            }
        }
    }
    return best;
}

@compute @workgroup_size(256)
fn max_pool(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let at = output_coords(i);
    let ch = at.x;
    let n = at.y;
    let oy = at.z;
    let ox = at.w;
    // -inf, as the CPU's starting value (WGSL has no infinity literal).
    var m = bitcast<f32>(0xff800000u);
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = tap_y(oy, ky);
        if (iy >= p.height) {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = tap_x(ox, kx);
            if (ix >= p.width) {
                continue;
            }
            let v = arg0[pixel_at(n, iy, ix) + ch];
            m = select(m, v, v > m);
        }
    }
    arg1[i] = m;
}

@compute @workgroup_size(256)
fn max_pool_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let at = input_coords(i);
    let ch = at.x;
    let n = at.y;
    let iy = at.z;
    let ix = at.w;
    var s = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        let oy = source_y(iy, ky);
        if (oy >= p.oh) {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ox = source_x(ix, kx);
            if (ox >= p.ow) {
                continue;
            }
            if (window_argmax(n, oy, ox, ch) == i && (p.flag == 0u || arg0[i] > 0.0)) {
                s += arg1[((n * p.oh + oy) * p.ow + ox) * p.channels + ch];
            }
        }
    }
    arg2[i] = s;
}

@compute @workgroup_size(256)
fn avg_pool(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let at = output_coords(i);
    let ch = at.x;
    let n = at.y;
    let oy = at.z;
    let ox = at.w;
    var s = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = tap_y(oy, ky);
        if (iy >= p.height) {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = tap_x(ox, kx);
            if (ix >= p.width) {
                continue;
            }
            s += arg0[pixel_at(n, iy, ix) + ch];
        }
    }
    arg1[i] = s / f32(window_count(oy, ox));
}

@compute @workgroup_size(256)
fn avg_pool_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let at = input_coords(i);
    let ch = at.x;
    let n = at.y;
    let iy = at.z;
    let ix = at.w;
    var s = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        let oy = source_y(iy, ky);
        if (oy >= p.oh) {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ox = source_x(ix, kx);
            if (ox >= p.ow) {
                continue;
            }
            let g = arg0[((n * p.oh + oy) * p.ow + ox) * p.channels + ch];
            s += g / f32(window_count(oy, ox));
        }
    }
    arg1[i] = s;
}

@compute @workgroup_size(256)
fn random_flip(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= p.len) {
        return;
    }
    let at = input_coords(i);
    let ch = at.x;
    let n = at.y;
    let iy = at.z;
    let ix = at.w;
    let word = pcg_hash(n ^ pcg_hash(run.t ^ pcg_hash(p.flag)));
    let src_x = select(ix, p.width - 1u - ix, (word & 1u) == 1u);
    arg1[i] = arg0[pixel_at(n, iy, src_x) + ch];
}
