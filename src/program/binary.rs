//! The binary elementwise table: every op `y = f(a, b)` over two tensors of one shape
//! ([`BinaryOp`]) declared once, with its Keras name, its CPU forward and the gradient with
//! respect to each operand, and the same in WGSL. `binary_table!(callback)` hands the table to
//! `callback!`; the expanders are `BinaryOp` and its generated WGSL functions (below) and the
//! CPU kernels `binary` / `binary_grad` (backend/cpu/kernels.rs). The graph op is
//! `Op::Binary(op)`; its backward rule emits `Op::BinaryGrad { op, wrt }` for each operand.
//!
//! Adding a binary op is one entry here (tests iterate over [`BinaryOp::ALL`]). An entry:
//!
//! ```text
//! Variant {
//!     doc: "what it computes",
//!     name: "keras_name",
//!     forward: |a, b| <CPU expression, a, b: T, T: CpuFloat>,
//!     wgsl: "<WGSL f32 expression over a, b>",
//!     grad_a: |a, b, d| <CPU ∂y/∂a · d (d = dy)>,
//!     wgsl_grad_a: "<WGSL, the same names>",
//!     grad_b: |a, b, d| <CPU ∂y/∂b · d>,
//!     wgsl_grad_b: "<WGSL>",
//! },
//! ```
//!
//! (`Op::Add` stays its own op: its gradient is the incoming one, passed on without a launch.)

/// Which operand of a binary op a gradient is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operand {
    A,
    B,
}

/// Calls `$callback! { entries }` with every binary op's entry (see the module docs).
macro_rules! binary_table {
    ($callback:ident) => {
        $callback! {
            Subtract {
                doc: "a − b",
                name: "subtract",
                forward: |a, b| a - b,
                wgsl: "a - b",
                grad_a: |a, b, d| d,
                wgsl_grad_a: "d",
                grad_b: |a, b, d| -d,
                wgsl_grad_b: "-d",
            },
            Multiply {
                doc: "a · b",
                name: "multiply",
                forward: |a, b| a * b,
                wgsl: "a * b",
                grad_a: |a, b, d| d * b,
                wgsl_grad_a: "d * b",
                grad_b: |a, b, d| d * a,
                wgsl_grad_b: "d * a",
            },
            Divide {
                doc: "a / b",
                name: "divide",
                forward: |a, b| a / b,
                wgsl: "a / b",
                grad_a: |a, b, d| d / b,
                wgsl_grad_a: "d / b",
                grad_b: |a, b, d| -d * a / (b * b),
                wgsl_grad_b: "-d * a / (b * b)",
            },
            Maximum {
                doc: "max(a, b); a tie sends the gradient to a",
                name: "maximum",
                forward: |a, b| if a >= b { a } else { b },
                wgsl: "select(b, a, a >= b)",
                grad_a: |a, b, d| if a >= b { d } else { T::zero() },
                wgsl_grad_a: "select(0.0, d, a >= b)",
                grad_b: |a, b, d| if a >= b { T::zero() } else { d },
                wgsl_grad_b: "select(d, 0.0, a >= b)",
            },
            Minimum {
                doc: "min(a, b); a tie sends the gradient to a",
                name: "minimum",
                forward: |a, b| if a <= b { a } else { b },
                wgsl: "select(b, a, a <= b)",
                grad_a: |a, b, d| if a <= b { d } else { T::zero() },
                wgsl_grad_a: "select(0.0, d, a <= b)",
                grad_b: |a, b, d| if a <= b { T::zero() } else { d },
                wgsl_grad_b: "select(d, 0.0, a <= b)",
            },
        }
    };
}
pub(crate) use binary_table;

/// The `BinaryOp` enum and its table-derived methods.
macro_rules! binary_op_enum {
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
        /// Elementwise ops over two tensors of one shape (the table in program/binary.rs).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum BinaryOp {
            $(#[doc = $doc] $variant,)*
        }

        impl BinaryOp {
            /// Every binary op, in table order.
            pub const ALL: &'static [BinaryOp] = &[$(BinaryOp::$variant,)*];

            /// The Keras name (of the op and of its merge layer, lower case).
            pub fn name(self) -> &'static str {
                match self {
                    $(BinaryOp::$variant => $name,)*
                }
            }

            /// The op a Keras name stands for.
            pub fn from_name(name: &str) -> Option<BinaryOp> {
                BinaryOp::ALL.iter().copied().find(|op| op.name() == name)
            }

            /// The code of the op in the generated WGSL functions: its place in the table.
            pub fn code(self) -> u32 {
                BinaryOp::ALL.iter().position(|&o| o == self).map_or(0, |i| i as u32)
            }

            /// The WGSL functions `binary_op(code, a, b)`, `binary_op_grad_a(code, a, b, dy)` and
            /// `binary_op_grad_b(code, a, b, dy)` over the codes of [`code`](Self::code).
            pub fn wgsl_functions() -> String {
                let bodies: [[&str; 3]; BinaryOp::ALL.len()] = [$([$wgsl, $wgsl_grad_a, $wgsl_grad_b],)*];
                let function = |which: usize, signature: &str| {
                    let mut cases = String::new();
                    for (code, body) in bodies.iter().enumerate() {
                        cases.push_str(&format!(
                            "        case {code}u: {{\n            return {};\n        }}\n",
                            body[which]
                        ));
                    }
                    format!(
                        "fn {signature} -> f32 {{\n    switch code {{\n{cases}        \
                         default: {{\n            return 0.0;\n        }}\n    }}\n}}\n\n"
                    )
                };
                format!(
                    "// Generated from the binary table (src/program/binary.rs).\n{}{}{}",
                    function(0, "binary_op(code: u32, a: f32, b: f32)"),
                    function(1, "binary_op_grad_a(code: u32, a: f32, b: f32, d: f32)"),
                    function(2, "binary_op_grad_b(code: u32, a: f32, b: f32, d: f32)"),
                )
            }
        }
    };
}
binary_table!(binary_op_enum);
