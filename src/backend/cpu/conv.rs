//! CPU kernels of the image ops: im2col / col2im (convolutions are a matmul of the patches
//! with the filter), max and average pooling with their gradients, and dropout. Every output
//! row is computed by one task from its inputs in a fixed order (gradients are gathered per
//! input element, never scattered), so results do not depend on the thread count.
use super::kernels::{CpuFloat, for_rows};
use super::pool::{SharedMut, ranges};
use crate::program::{Window2d, dropout_word};

/// (n, oy, ox) of output position `pos` (row-major over [batch, out.0, out.1]).
fn position(win: &Window2d, pos: usize) -> (usize, usize, usize) {
    let (oh, ow) = win.out;
    (pos / (oh * ow), pos / ow % oh, pos % ow)
}

/// (n, iy, ix) of input pixel `pix` (row-major over [batch, height, width]).
fn pixel(win: &Window2d, pix: usize) -> (usize, usize, usize) {
    (pix / (win.height * win.width), pix / win.width % win.height, pix % win.width)
}

/// Offset of pixel (n, iy, ix) in NHWC images.
fn at(win: &Window2d, n: usize, iy: usize, ix: usize) -> usize {
    ((n * win.height + iy) * win.width + ix) * win.channels
}

/// The output index `o` on one axis whose tap `k` reads input index `i`, if any: the inverse
/// of `Window2d::tap` (i = o·s + k·d − p).
fn source(win: &Window2d, axis: usize, i: usize, k: usize) -> Option<usize> {
    let (s, d, p, out) = if axis == 0 {
        (win.stride.0, win.dilation.0, win.pad.0, win.out.0)
    } else {
        (win.stride.1, win.dilation.1, win.pad.1, win.out.1)
    };
    let shifted = (i + p).checked_sub(k * d)?;
    if s == 1 {
        // The common case, without the division.
        return (shifted < out).then_some(shifted);
    }
    (shifted % s == 0 && shifted / s < out).then_some(shifted / s)
}

/// Patches of `x` (NHWC) as rows of `cols`: [positions, kh·kw·c]. One task per output image
/// row (n, oy) writes that row's `out.1` patches.
pub fn im2col<T: CpuFloat>(win: &Window2d, x: &[T], cols: &mut [T]) {
    let (c, kw, patch) = (win.channels, win.kernel.1, win.patch_len());
    for_rows(win.out.1 * patch, cols, |r, rows| {
        let (n, oy) = (r / win.out.0, r % win.out.0);
        for (ox, row) in rows.chunks_exact_mut(patch).enumerate() {
            // Without column dilation, a kernel row whose taps all fall inside the image
            // reads kw·c consecutive elements of x (NHWC): one copy instead of kw.
            let first = win.tap(1, ox, 0);
            let contiguous = win.dilation.1 == 1 && first.is_some() && win.tap(1, ox, kw - 1).is_some();
            for ky in 0..win.kernel.0 {
                let dst_row = &mut row[ky * kw * c..][..kw * c];
                let Some(iy) = win.tap(0, oy, ky) else {
                    dst_row.fill(T::zero());
                    continue;
                };
                if let (true, Some(ix)) = (contiguous, first) {
                    dst_row.copy_from_slice(&x[at(win, n, iy, ix)..][..kw * c]);
                    continue;
                }
                for (kx, dst) in dst_row.chunks_exact_mut(c).enumerate() {
                    match win.tap(1, ox, kx) {
                        Some(ix) => dst.copy_from_slice(&x[at(win, n, iy, ix)..][..c]),
                        None => dst.fill(T::zero()),
                    }
                }
            }
        }
    });
}

/// The adjoint of [`im2col`]: x[n, iy, ix, :] = Σ of the patch entries that read it. One task
/// per image scatters that image's patches in (oy, ky, ox, kx) order: the patches are read in
/// sequence and the image stays in cache, and every element's sum has a fixed order.
pub fn col2im<T: CpuFloat>(win: &Window2d, cols: &[T], x: &mut [T]) {
    let (c, kw, patch) = (win.channels, win.kernel.1, win.patch_len());
    let image = win.height * win.width * c;
    let per_image = win.out.0 * win.out.1 * patch;
    let shared = SharedMut::new(x);
    ranges(win.batch, 1, |images| {
        for n in images {
            // SAFETY: image n's elements belong to this task alone.
            let xn = unsafe { shared.range(n * image..(n + 1) * image) };
            xn.fill(T::zero());
            let cn = &cols[n * per_image..][..per_image];
            for oy in 0..win.out.0 {
                for ky in 0..win.kernel.0 {
                    let Some(iy) = win.tap(0, oy, ky) else { continue };
                    for ox in 0..win.out.1 {
                        let row = &cn[(oy * win.out.1 + ox) * patch + ky * kw * c..][..kw * c];
                        for (kx, src) in row.chunks_exact(c).enumerate() {
                            let Some(ix) = win.tap(1, ox, kx) else { continue };
                            let dst = &mut xn[(iy * win.width + ix) * c..][..c];
                            dst.iter_mut().zip(src).for_each(|(o, &v)| *o = *o + v);
                        }
                    }
                }
            }
        }
    });
}

/// The output positions (oy, ox) whose windows contain input pixel (iy, ix), in (ky, kx)
/// order: the gather order of the pooling gradients.
fn windows_containing(win: &Window2d, iy: usize, ix: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    (0..win.kernel.0).filter_map(move |ky| source(win, 0, iy, ky)).flat_map(move |oy| {
        (0..win.kernel.1).filter_map(move |kx| source(win, 1, ix, kx)).map(move |ox| (oy, ox))
    })
}

/// The valid taps of the window at output (oy, ox), row-major: input (iy, ix) pairs.
fn taps(win: &Window2d, oy: usize, ox: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    (0..win.kernel.0).filter_map(move |ky| win.tap(0, oy, ky)).flat_map(move |iy| {
        (0..win.kernel.1).filter_map(move |kx| win.tap(1, ox, kx)).map(move |ix| (iy, ix))
    })
}

/// Max pooling: y[n, oy, ox, c] = max of the window (padding ignored). One task per output
/// image row.
pub fn max_pool<T: CpuFloat>(win: &Window2d, x: &[T], y: &mut [T]) {
    let c = win.channels;
    for_rows(win.out.1 * c, y, |r, rows| {
        let (n, oy) = (r / win.out.0, r % win.out.0);
        for (ox, out) in rows.chunks_exact_mut(c).enumerate() {
            out.fill(T::neg_infinity());
            for (iy, ix) in taps(win, oy, ox) {
                let src = &x[at(win, n, iy, ix)..][..c];
                out.iter_mut().zip(src).for_each(|(o, &v)| *o = if v > *o { v } else { *o });
            }
        }
    });
}

/// Channels handled per pass of [`max_pool_grad`] (its scratch lives on the stack).
const CHANNEL_BLOCK: usize = 64;

/// Gradient of [`max_pool`]: each window's dy goes to its first maximum (row-major within the
/// window); dx is gathered per input element over the windows that contain it, in (ky, kx)
/// order. The window maxima are found for a block of channels at once.
pub fn max_pool_grad<T: CpuFloat>(win: &Window2d, relu: bool, x: &[T], dy: &[T], dx: &mut [T]) {
    // With `relu`, a window passes its gradient only when its maximum is > 0.
    if win.stride.0 >= win.kernel.0 && win.stride.1 >= win.kernel.1 {
        return max_pool_grad_disjoint(win, relu, x, dy, dx);
    }
    let c = win.channels;
    for_rows(c, dx, |pix, out| {
        let (n, iy, ix) = pixel(win, pix);
        out.fill(T::zero());
        for (oy, ox) in windows_containing(win, iy, ix) {
            let g = &dy[((n * win.out.0 + oy) * win.out.1 + ox) * c..][..c];
            for c0 in (0..c).step_by(CHANNEL_BLOCK) {
                let width = CHANNEL_BLOCK.min(c - c0);
                // Running maximum of the window and whether it sits at this pixel.
                let mut best = [T::neg_infinity(); CHANNEL_BLOCK];
                let mut mine = [false; CHANNEL_BLOCK];
                for (t, (ty, tx)) in taps(win, oy, ox).enumerate() {
                    let here = (ty, tx) == (iy, ix);
                    let src = &x[at(win, n, ty, tx) + c0..][..width];
                    for ((b, m), &v) in best.iter_mut().zip(mine.iter_mut()).zip(src) {
                        if t == 0 || v > *b {
                            *b = v;
                            *m = here;
                        }
                    }
                }
                let lanes = out[c0..c0 + width].iter_mut().zip(&mine).zip(&best);
                for (((o, &m), &b), &gv) in lanes.zip(&g[c0..]) {
                    if m && (!relu || b > T::zero()) {
                        *o = *o + gv;
                    }
                }
            }
        }
    });
}

/// [`max_pool_grad`] for windows that do not overlap (stride ≥ pool, the usual 2×2/2): every
/// input element is in at most one window, so each window's task zeroes its own elements and
/// writes its maxima's gradients (one write per element; the same values as the gather).
fn max_pool_grad_disjoint<T: CpuFloat>(win: &Window2d, relu: bool, x: &[T], dy: &[T], dx: &mut [T]) {
    let c = win.channels;
    // Elements outside every window (a remainder row or column) get no gradient.
    let covered = |axis: usize, i: usize| {
        let (k, s, p) = if axis == 0 {
            (win.kernel.0, win.stride.0, win.pad.0)
        } else {
            (win.kernel.1, win.stride.1, win.pad.1)
        };
        let o = (i + p) / s;
        o < if axis == 0 { win.out.0 } else { win.out.1 } && (i + p) % s < k
    };
    for_rows(c, dx, |pix, out| {
        let (_, iy, ix) = pixel(win, pix);
        if !(covered(0, iy) && covered(1, ix)) {
            out.fill(T::zero());
        }
    });
    let shared = SharedMut::new(dx);
    // Every window whole inside the image (no padding before, none reached after).
    let inside = 2 * win.out.0 <= win.height && 2 * win.out.1 <= win.width;
    if win.kernel == (2, 2) && win.stride == (2, 2) && win.pad == (0, 0) && win.dilation == (1, 1) && inside {
        return max_pool_grad_2x2(win, relu, x, dy, &shared);
    }
    ranges(win.batch * win.out.0, 1, |rows| {
        for r in rows {
            let (n, oy) = (r / win.out.0, r % win.out.0);
            for ox in 0..win.out.1 {
                let g = &dy[((n * win.out.0 + oy) * win.out.1 + ox) * c..][..c];
                for c0 in (0..c).step_by(CHANNEL_BLOCK) {
                    let width = CHANNEL_BLOCK.min(c - c0);
                    // Branch-free (vectorisable) passes over float arrays: each channel's
                    // maximum, then the first tap holding it (the element the gather's
                    // "v > best" picks) gets dy and the others 0.
                    let mut max = [T::neg_infinity(); CHANNEL_BLOCK];
                    for (iy, ix) in taps(win, oy, ox) {
                        let src = &x[at(win, n, iy, ix) + c0..][..width];
                        for (m, &v) in max.iter_mut().zip(src) {
                            *m = if v > *m { v } else { *m };
                        }
                    }
                    let mut open = [T::one(); CHANNEL_BLOCK];
                    for (iy, ix) in taps(win, oy, ox) {
                        let base = at(win, n, iy, ix) + c0;
                        // SAFETY: windows do not overlap, so this window's elements are
                        // written by this task alone.
                        let dst = unsafe { shared.range(base..base + width) };
                        let src = &x[base..][..width];
                        // Zipped slices (no bounds checks) and float selects: vectorises.
                        let lanes = dst.iter_mut().zip(src).zip(&max[..width]).zip(&mut open[..width]);
                        for ((((d, &v), &m), o), &gv) in lanes.zip(&g[c0..c0 + width]) {
                            let hit = if v == m { *o } else { T::zero() };
                            *d = if (hit > T::zero()) & (!relu | (m > T::zero())) { gv } else { T::zero() };
                            *o = *o - hit;
                        }
                    }
                }
            }
        }
    });
}

/// [`max_pool_grad_disjoint`] for the usual 2×2 windows with stride 2 and no padding (every
/// window inside the image): the
/// four taps of a window are two pairs of adjacent pixels, read and written as whole channel
/// rows (no tap iterator, no channel blocks). Ties and NaN as the general path: the first tap
/// (row-major) equal to the window's running maximum takes the gradient.
fn max_pool_grad_2x2<T: CpuFloat>(win: &Window2d, relu: bool, x: &[T], dy: &[T], dx: &SharedMut<T>) {
    let c = win.channels;
    let row = win.width * c;
    ranges(win.batch * win.out.0, 1, |rows| {
        for r in rows {
            let (n, oy) = (r / win.out.0, r % win.out.0);
            for ox in 0..win.out.1 {
                let a = at(win, n, 2 * oy, 2 * ox);
                let taps = [a, a + c, a + row, a + row + c];
                let g = &dy[(r * win.out.1 + ox) * c..][..c];
                let [x0, x1, x2, x3] = taps.map(|t| &x[t..t + c]);
                // SAFETY: windows do not overlap, so this window's four channel rows are written
                // by this task alone.
                let [d0, d1, d2, d3] = taps.map(|t| unsafe { dx.range(t..t + c) });
                let lanes = x0.iter().zip(x1).zip(x2.iter().zip(x3)).zip(g);
                let outs = d0.iter_mut().zip(d1.iter_mut()).zip(d2.iter_mut().zip(d3.iter_mut()));
                for ((((&v0, &v1), (&v2, &v3)), &gv), ((o0, o1), (o2, o3))) in lanes.zip(outs) {
                    // The running maximum in tap order, as `v > m` from −∞ (NaN never wins).
                    let mut m = T::neg_infinity();
                    for v in [v0, v1, v2, v3] {
                        m = if v > m { v } else { m };
                    }
                    let g = if !relu || m > T::zero() { gv } else { T::zero() };
                    let (h0, h1, h2) = (v0 == m, v1 == m, v2 == m);
                    *o0 = if h0 { g } else { T::zero() };
                    *o1 = if h1 & !h0 { g } else { T::zero() };
                    *o2 = if h2 & !(h0 | h1) { g } else { T::zero() };
                    *o3 = if (v3 == m) & !(h0 | h1 | h2) { g } else { T::zero() };
                }
            }
        }
    });
}

/// Number of valid taps of the window at (oy, ox) (the average's divisor).
fn window_count(win: &Window2d, oy: usize, ox: usize) -> usize {
    let rows = (0..win.kernel.0).filter(|&k| win.tap(0, oy, k).is_some()).count();
    let cols = (0..win.kernel.1).filter(|&k| win.tap(1, ox, k).is_some()).count();
    rows * cols
}

/// Average pooling over the valid taps of each window.
pub fn avg_pool<T: CpuFloat>(win: &Window2d, x: &[T], y: &mut [T]) {
    for_rows(win.channels, y, |pos, out| {
        let (n, oy, ox) = position(win, pos);
        out.fill(T::zero());
        for (iy, ix) in taps(win, oy, ox) {
            let src = &x[at(win, n, iy, ix)..][..win.channels];
            out.iter_mut().zip(src).for_each(|(o, &v)| *o = *o + v);
        }
        let count = T::from(window_count(win, oy, ox)).unwrap_or(T::one());
        out.iter_mut().for_each(|o| *o = *o / count);
    });
}

/// Gradient of [`avg_pool`]: dx = Σ over the windows containing the element of dy / count.
pub fn avg_pool_grad<T: CpuFloat>(win: &Window2d, dy: &[T], dx: &mut [T]) {
    let c = win.channels;
    for_rows(c, dx, |pix, out| {
        let (n, iy, ix) = pixel(win, pix);
        out.fill(T::zero());
        for (oy, ox) in windows_containing(win, iy, ix) {
            let count = T::from(window_count(win, oy, ox)).unwrap_or(T::one());
            let g = &dy[((n * win.out.0 + oy) * win.out.1 + ox) * c..][..c];
            out.iter_mut().zip(g).for_each(|(o, &v)| *o = *o + v / count);
        }
    });
}

/// Mirror image n left to right when dropout_word(seed, t, n) is odd (see
/// `Kernel::RandomFlip`); one task per image row.
pub fn random_flip<T: CpuFloat>(win: &Window2d, seed: u32, t: u32, x: &[T], y: &mut [T]) {
    let (w, c) = (win.width, win.channels);
    for_rows(w * c, y, |r, row| {
        let n = r / win.height;
        let flip = dropout_word(seed, t, n as u32) & 1 == 1;
        let src = &x[r * w * c..][..w * c];
        for (ix, dst) in row.chunks_exact_mut(c).enumerate() {
            let from = if flip { w - 1 - ix } else { ix };
            dst.copy_from_slice(&src[from * c..][..c]);
        }
    });
}

/// Inverted dropout (see `Kernel::Dropout`): rows of 256 elements, each element's mask from
/// its flat index.
pub fn dropout<T: CpuFloat>(
    seed: u32,
    t: u32,
    threshold: u32,
    scale: T,
    (inner, period): (usize, usize),
    x: &[T],
    y: &mut [T],
) {
    const ROW: usize = 256;
    for_rows(ROW, y, |r, out| {
        for (j, o) in out.iter_mut().enumerate() {
            let i = r * ROW + j;
            // One mask per sequence (period = steps · features): element (b, t, f) hashes (b, f).
            let k = i.checked_div(period).map_or(i, |seq| seq * inner + i % inner);
            let keep = dropout_word(seed, t, k as u32) >= threshold;
            *o = if keep { x[i] * scale } else { T::zero() };
        }
    });
}
