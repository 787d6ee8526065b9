//! The fused convolution kernels (`Kernel::Conv2d`, `Conv2dFilterGrad`, `Conv2dInputGrad`) on
//! the CPU: the same values as the graph's im2col → matmul → col2im ops, computed with the same
//! kernels over a temporary patch matrix. The CPU plans convolutions unfused (its im2col is
//! cheap and kept for the backward pass); these are the reference for the GPU's implicit GEMM.
use super::conv::{col2im, im2col};
use super::kernels::{CpuFloat, matmul, matmul_bias_act, unary_in_place};
use crate::program::{UnaryOp, Window2d};

/// y = act(im2col(x) · w (+ bias)).
#[allow(clippy::too_many_arguments)]
pub fn conv2d<T: CpuFloat>(
    win: &Window2d,
    filters: usize,
    act: Option<UnaryOp>,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    y: &mut [T],
) {
    let (m, k) = (win.positions(), win.patch_len());
    let mut cols = vec![T::zero(); m * k];
    im2col(win, x, &mut cols);
    match bias {
        Some(b) => matmul_bias_act(m, k, filters, false, false, act, &cols, w, b, y),
        None => {
            matmul(m, k, filters, false, false, &cols, w, y);
            if let Some(op) = act {
                unary_in_place(op, y);
            }
        }
    }
}

/// dw = im2col(x)ᵀ · dy.
pub fn conv2d_filter_grad<T: CpuFloat>(win: &Window2d, filters: usize, x: &[T], dy: &[T], dw: &mut [T]) {
    let (m, k) = (win.positions(), win.patch_len());
    let mut cols = vec![T::zero(); m * k];
    im2col(win, x, &mut cols);
    matmul(k, m, filters, true, false, &cols, dy, dw);
}

/// dx = col2im(dy · wᵀ).
pub fn conv2d_input_grad<T: CpuFloat>(win: &Window2d, filters: usize, dy: &[T], w: &[T], dx: &mut [T]) {
    let (m, k) = (win.positions(), win.patch_len());
    let mut dcols = vec![T::zero(); m * k];
    matmul(m, filters, k, false, true, dy, w, &mut dcols);
    col2im(win, &dcols, dx);
}
