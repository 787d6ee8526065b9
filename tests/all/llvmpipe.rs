//! llvmpipe (lavapipe, Mesa's GL software adapter) silently ends a shader invocation's loops
//! after 65535 iterations in all: kernels with long loops must still be right there (split
//! over lanes, several steps per iteration, split-K) or be refused at compile — never wrong.
use kiln::backend::Backend;
use kiln::program::{Kernel, ResidentLayout};

use crate::common::{gpu, rng, uniform};
use crate::gpu_parity::{Builder, check_on};

/// llvmpipe ends a shader's loops after 65535 iterations in all, silently. Sums over many rows
/// (bias gradients of large batches) are split over lanes and stay correct; kernels that would
/// still loop too long are refused at compile with an error naming the step, never run wrong.
#[test]
fn long_loops_are_correct_or_refused_on_llvmpipe() {
    let Some(g) = gpu() else { return };
    let llvmpipe = g.info().name.contains("llvmpipe");
    let mut r = rng(21);
    let mut b = Builder::default();
    let x = b.input(uniform(&mut r, 70_000 * 3, -1.0, 1.0));
    b.op(Kernel::SumRows { rows: 70_000, cols: 3 }, &[x], 3);
    check_on(g, &b, 1e-4);
    // k = 100 000 through the direct kernel (n = 3 is not vec4-aligned): four k per loop
    // iteration keep it under the limit, and the result is right.
    let mut b = Builder::default();
    let a = b.input(uniform(&mut r, 100_000, -1.0, 1.0));
    let w = b.input(uniform(&mut r, 300_000, -1.0, 1.0));
    b.op(Kernel::MatMul { m: 1, k: 100_000, n: 3, trans_a: false, trans_b: false }, &[a, w], 3);
    let Some(g) = gpu() else { return };
    check_on(g, &b, 1e-3);
    // A conv filter gradient's shape: Aᵀ with a long K (batch × positions) and vec4-aligned
    // sizes. The vec4 kernel would take one k per iteration; llvmpipe gets the direct kernel.
    let mut b = Builder::default();
    let a = b.input(uniform(&mut r, 73_728 * 8, -1.0, 1.0));
    let w = b.input(uniform(&mut r, 73_728 * 4, -1.0, 1.0));
    b.op(Kernel::MatMul { m: 8, k: 73_728, n: 4, trans_a: true, trans_b: false }, &[a, w], 32);
    let Some(g) = gpu() else { return };
    check_on(g, &b, 1e-3);
    // k = 300 000: a plain matmul with a small C is split over K (chunks of 2048), so it is
    // right on llvmpipe too.
    let mut b = Builder::default();
    let a = b.input(uniform(&mut r, 300_000, -1.0, 1.0));
    let w = b.input(uniform(&mut r, 900_000, -1.0, 1.0));
    b.op(Kernel::MatMul { m: 1, k: 300_000, n: 3, trans_a: false, trans_b: false }, &[a, w], 3);
    let Some(g) = gpu() else { return };
    check_on(g, &b, 1e-3);
    // The fused Dense kernel is not split: 75 000 iterations are refused on llvmpipe and
    // computed elsewhere.
    let mut b = Builder::default();
    let a = b.input(uniform(&mut r, 300_000, -1.0, 1.0));
    let w = b.input(uniform(&mut r, 900_000, -1.0, 1.0));
    let bias = b.input(uniform(&mut r, 3, -1.0, 1.0));
    let kernel = Kernel::MatMulBiasAct { m: 1, k: 300_000, n: 3, trans_a: false, trans_b: false, act: None };
    b.op(kernel, &[a, w, bias], 3);
    let Some(mut g) = gpu() else { return };
    g.alloc_resident(&ResidentLayout::default()).unwrap();
    match g.compile(&b.program) {
        Err(e) => {
            assert!(llvmpipe, "only llvmpipe refuses long loops: {e}");
            let msg = e.to_string();
            assert!(msg.contains("step 0") && msg.contains("65535"), "{msg}");
        }
        Ok(_) => {
            assert!(!llvmpipe, "llvmpipe must refuse a 75 000-iteration loop");
            check_on(g, &b, 1e-3);
        }
    }
}
