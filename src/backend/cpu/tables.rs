//! The CPU kernels of the two elementwise tables, expanded from them: activations
//! (program/unary.rs) and binary ops (program/binary.rs). One loop per op, so each closure is
//! monomorphic and vectorizes; the table's expressions see the items of its module.
use super::kernels::{CpuFloat, map_in_place, map1, map2, map3};
use crate::program::{BinaryOp, Operand, UnaryOp};

/// The activation kernels.
macro_rules! cpu_unary {
    ($(
        $variant:ident {
            doc: $doc:literal,
            names: [$($name:literal),+],
            forward: |$x:ident| $forward:expr,
            wgsl: $wgsl:literal,
            grad: |$v:ident: $source:ident, $d:ident| $grad:expr,
            wgsl_grad: $wgsl_grad:literal,
        },
    )*) => {
        /// y = f(x) for an activation.
        pub fn unary<T: CpuFloat>(op: UnaryOp, x: &[T], y: &mut [T]) {
            use crate::program::unary::*;
            match op {
                $(UnaryOp::$variant => map1(x, y, |$x: T| -> T { $forward }),)*
            }
        }

        /// y = f(y) in place (the activation epilogue of a fused matmul).
        pub fn unary_in_place<T: CpuFloat>(op: UnaryOp, y: &mut [T]) {
            use crate::program::unary::*;
            match op {
                $(UnaryOp::$variant => map_in_place(y, |$x: T| -> T { $forward }),)*
            }
        }

        /// f(y) in place on the calling thread (for work already split over the pool, such
        /// as GEMM epilogues); the same formulas as [`unary_in_place`].
        pub(crate) fn unary_slice<T: CpuFloat>(op: UnaryOp, y: &mut [T]) {
            use crate::program::unary::*;
            match op {
                $(UnaryOp::$variant => y.iter_mut().for_each(|o| *o = (|$x: T| -> T { $forward })(*o)),)*
            }
        }

        /// dx from v (the forward input or output, per `UnaryOp::grad_source`) and dy.
        pub fn unary_grad<T: CpuFloat>(op: UnaryOp, v: &[T], dy: &[T], dx: &mut [T]) {
            use crate::program::unary::*;
            match op {
                $(UnaryOp::$variant => map2(v, dy, dx, |$v: T, $d: T| -> T { $grad }),)*
            }
        }
    };
}
crate::program::unary::unary_table!(cpu_unary);

/// The binary kernels.
macro_rules! cpu_binary {
    ($(
        $variant:ident {
            doc: $doc:literal,
            name: $name:literal,
            forward: |$a:ident, $b:ident| $forward:expr,
            wgsl: $wgsl:literal,
            grad_a: |$ga:ident, $gb:ident, $gd:ident| $grad_a:expr,
            wgsl_grad_a: $wgsl_grad_a:literal,
            grad_b: |$ha:ident, $hb:ident, $hd:ident| $grad_b:expr,
            wgsl_grad_b: $wgsl_grad_b:literal,
        },
    )*) => {
        /// y = f(a, b) elementwise.
        pub fn binary<T: CpuFloat>(op: BinaryOp, a: &[T], b: &[T], y: &mut [T]) {
            match op {
                $(BinaryOp::$variant => map2(a, b, y, |$a: T, $b: T| -> T { $forward }),)*
            }
        }

        /// The gradient of f(a, b) with respect to operand `wrt`, from a, b and dy.
        #[allow(unused_variables)] // a gradient need not read both operands (subtract's)
        pub fn binary_grad<T: CpuFloat>(op: BinaryOp, wrt: Operand, a: &[T], b: &[T], dy: &[T], dx: &mut [T]) {
            match (op, wrt) {
                $(
                    (BinaryOp::$variant, Operand::A) => {
                        map3(a, b, dy, dx, |$ga: T, $gb: T, $gd: T| -> T { $grad_a })
                    }
                    (BinaryOp::$variant, Operand::B) => {
                        map3(a, b, dy, dx, |$ha: T, $hb: T, $hd: T| -> T { $grad_b })
                    }
                )*
            }
        }
    };
}
crate::program::binary::binary_table!(cpu_binary);
