//! CPU kernels of the image ops: im2col / col2im (convolutions are a matmul of the patches
//! with the filter), max and average pooling with their gradients, and dropout. Every output
//! row is computed by one task from its inputs in a fixed order (gradients are gathered per
//! input element, never scattered), so results do not depend on the thread count.
use super::kernels::{CpuFloat, for_rows};
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
    (shifted % s == 0 && shifted / s < out).then_some(shifted / s)
}

/// Patches of `x` (NHWC) as rows of `cols`: [positions, kh·kw·c].
pub fn im2col<T: CpuFloat>(win: &Window2d, x: &[T], cols: &mut [T]) {
    let c = win.channels;
    for_rows(win.patch_len(), cols, |pos, row| {
        let (n, oy, ox) = position(win, pos);
        for ky in 0..win.kernel.0 {
            let iy = win.tap(0, oy, ky);
            for kx in 0..win.kernel.1 {
                let dst = &mut row[(ky * win.kernel.1 + kx) * c..][..c];
                match (iy, win.tap(1, ox, kx)) {
                    (Some(iy), Some(ix)) => dst.copy_from_slice(&x[at(win, n, iy, ix)..][..c]),
                    _ => dst.fill(T::zero()),
                }
            }
        }
    });
}

/// The adjoint of [`im2col`]: x[n, iy, ix, :] = Σ over the taps (ky, kx) that read it.
pub fn col2im<T: CpuFloat>(win: &Window2d, cols: &[T], x: &mut [T]) {
    let c = win.channels;
    let (ow, patch) = (win.out.1, win.patch_len());
    for_rows(c, x, |pix, out| {
        let (n, iy, ix) = pixel(win, pix);
        out.fill(T::zero());
        for ky in 0..win.kernel.0 {
            let Some(oy) = source(win, 0, iy, ky) else { continue };
            for kx in 0..win.kernel.1 {
                let Some(ox) = source(win, 1, ix, kx) else { continue };
                let row = (n * win.out.0 + oy) * ow + ox;
                let src = &cols[row * patch + (ky * win.kernel.1 + kx) * c..][..c];
                out.iter_mut().zip(src).for_each(|(o, &v)| *o = *o + v);
            }
        }
    });
}

/// The valid taps of the window at output (oy, ox), row-major: input (iy, ix) pairs.
fn taps(win: &Window2d, oy: usize, ox: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    (0..win.kernel.0).filter_map(move |ky| win.tap(0, oy, ky)).flat_map(move |iy| {
        (0..win.kernel.1).filter_map(move |kx| win.tap(1, ox, kx)).map(move |ix| (iy, ix))
    })
}

/// Max pooling: y[n, oy, ox, c] = max of the window (padding ignored).
pub fn max_pool<T: CpuFloat>(win: &Window2d, x: &[T], y: &mut [T]) {
    for_rows(win.channels, y, |pos, out| {
        let (n, oy, ox) = position(win, pos);
        out.fill(T::neg_infinity());
        for (iy, ix) in taps(win, oy, ox) {
            let src = &x[at(win, n, iy, ix)..][..win.channels];
            out.iter_mut().zip(src).for_each(|(o, &v)| *o = if v > *o { v } else { *o });
        }
    });
}

/// Input pixel holding the first maximum of channel `ch` in the window at (oy, ox).
fn argmax<T: CpuFloat>(win: &Window2d, x: &[T], n: usize, oy: usize, ox: usize, ch: usize) -> (usize, usize) {
    let mut best = (usize::MAX, usize::MAX);
    let mut max = T::neg_infinity();
    for (iy, ix) in taps(win, oy, ox) {
        let v = x[at(win, n, iy, ix) + ch];
        if v > max || best.0 == usize::MAX {
            max = v;
            best = (iy, ix);
        }
    }
    best
}

/// Gradient of [`max_pool`]: each window's dy goes to its first maximum; dx is gathered per
/// input element over the windows that contain it, in (ky, kx) order.
pub fn max_pool_grad<T: CpuFloat>(win: &Window2d, x: &[T], dy: &[T], dx: &mut [T]) {
    let c = win.channels;
    for_rows(c, dx, |pix, out| {
        let (n, iy, ix) = pixel(win, pix);
        out.fill(T::zero());
        for ky in 0..win.kernel.0 {
            let Some(oy) = source(win, 0, iy, ky) else { continue };
            for kx in 0..win.kernel.1 {
                let Some(ox) = source(win, 1, ix, kx) else { continue };
                let g = &dy[((n * win.out.0 + oy) * win.out.1 + ox) * c..][..c];
                for (ch, o) in out.iter_mut().enumerate() {
                    if argmax(win, x, n, oy, ox, ch) == (iy, ix) {
                        *o = *o + g[ch];
                    }
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
        for ky in 0..win.kernel.0 {
            let Some(oy) = source(win, 0, iy, ky) else { continue };
            for kx in 0..win.kernel.1 {
                let Some(ox) = source(win, 1, ix, kx) else { continue };
                let count = T::from(window_count(win, oy, ox)).unwrap_or(T::one());
                let g = &dy[((n * win.out.0 + oy) * win.out.1 + ox) * c..][..c];
                out.iter_mut().zip(g).for_each(|(o, &v)| *o = *o + v / count);
            }
        }
    });
}

/// Inverted dropout (see `Kernel::Dropout`): rows of 256 elements, each element's mask from
/// its flat index.
pub fn dropout<T: CpuFloat>(seed: u32, t: u32, threshold: u32, scale: T, x: &[T], y: &mut [T]) {
    const ROW: usize = 256;
    for_rows(ROW, y, |r, out| {
        for (j, o) in out.iter_mut().enumerate() {
            let i = r * ROW + j;
            let keep = dropout_word(seed, t, i as u32) >= threshold;
            *o = if keep { x[i] * scale } else { T::zero() };
        }
    });
}
