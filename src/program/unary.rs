//! The activation table: every elementwise activation ([`UnaryOp`]) declared once, with its
//! Keras names, its CPU forward and gradient, and its WGSL forward and gradient.
//! `unary_table!(callback)` hands the table to `callback!`; the expanders are
//! - `UnaryOp` itself, its names, codes and the generated WGSL `activation` /
//!   `activation_grad` functions (below),
//! - the CPU kernels `unary`, `unary_in_place`, `unary_slice`, `unary_grad`
//!   (backend/cpu/kernels.rs),
//! - the layer-level `nn::Activation` enum (nn/mod.rs).
//!
//! Adding an activation is one entry here (tests iterate over [`UnaryOp::ALL`]). An entry:
//!
//! ```text
//! Variant {
//!     doc: "what it computes",
//!     names: ["keras_name", "alias", …],
//!     forward: |x| <CPU expression over x: T, T: CpuFloat>,
//!     wgsl: "<WGSL f32 expression over x>",
//!     grad: |v: Input | Output, d| <CPU dx from v (the input x or the output y) and dy = d>,
//!     wgsl_grad: "<WGSL expression over the same names>",
//! },
//! ```
//!
//! A gradient written from the output (`Output`) keeps the planner free to fuse the activation
//! into a matmul epilogue (the pre-activation never exists); one from the input (`Input`) keeps
//! the pre-activation alive for the backward pass. CPU helpers are the `pub fn`s of this
//! module (full paths, `…`); WGSL helpers live in shaders/common.wgsl.
//! CPU constants are `T::c(f32)`, so f64 gradient checks see the same constants as f32.

use num_traits::Float;

/// Where an activation's gradient reads its value from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradSource {
    /// The forward input x (the pre-activation).
    Input,
    /// The forward output y.
    Output,
}

/// Calls `$callback! { entries }` with every activation's entry (see the module docs).
macro_rules! unary_table {
    ($callback:ident) => {
        $callback! {
            Relu {
                doc: "max(x, 0)",
                names: ["relu"],
                forward: |x| if x > T::zero() { x } else { T::zero() },
                wgsl: "select(0.0, x, x > 0.0)",
                grad: |y: Output, d| if y > T::zero() { d } else { T::zero() },
                wgsl_grad: "select(0.0, d, y > 0.0)",
            },
            Sigmoid {
                doc: "1 / (1 + e^-x)",
                names: ["sigmoid"],
                forward: |x| sigmoid(x),
                wgsl: "sigmoid(x)",
                grad: |y: Output, d| d * y * (T::one() - y),
                wgsl_grad: "d * y * (1.0 - y)",
            },
            Tanh {
                doc: "tanh(x)",
                names: ["tanh"],
                forward: |x| x.tanh(),
                // tanh saturates to ±1 in f32 beyond |x| = 10; clamping avoids exp overflow.
                wgsl: "tanh(clamp(x, -10.0, 10.0))",
                grad: |y: Output, d| d * (T::one() - y * y),
                wgsl_grad: "d * (1.0 - y * y)",
            },
            Elu {
                doc: "x for x > 0, e^x − 1 otherwise (α = 1)",
                names: ["elu"],
                forward: |x| if x > T::zero() { x } else { x.exp_m1() },
                wgsl: "select(exp(x) - 1.0, x, x > 0.0)",
                grad: |y: Output, d| if y > T::zero() { d } else { d * (y + T::one()) },
                wgsl_grad: "select(d * (y + 1.0), d, y > 0.0)",
            },
            Selu {
                doc: "λ·elu(x, α), λ = 1.0507…, α = 1.6732… (Klambauer et al. 2017)",
                names: ["selu"],
                forward: |x| T::c(SELU_SCALE) * if x > T::zero() { x } else { T::c(SELU_ALPHA) * x.exp_m1() },
                wgsl: "1.0507009873554805 * select(1.6732632423543772 * (exp(x) - 1.0), x, x > 0.0)",
                grad: |y: Output, d| if y > T::zero() {
                    d * T::c(SELU_SCALE)
                } else {
                    d * (y + T::c(SELU_SCALE) * T::c(SELU_ALPHA))
                },
                wgsl_grad: "select(d * (y + 1.0507009873554805 * 1.6732632423543772), \
                            d * 1.0507009873554805, y > 0.0)",
            },
            Softplus {
                doc: "ln(1 + e^x)",
                names: ["softplus"],
                forward: |x| softplus(x),
                wgsl: "softplus(x)",
                // dy/dx = sigmoid(x) = 1 − e^−y.
                grad: |y: Output, d| d * -(-y).exp_m1(),
                wgsl_grad: "d * (1.0 - exp(-y))",
            },
            Softsign {
                doc: "x / (1 + |x|)",
                names: ["softsign"],
                forward: |x| x / (T::one() + x.abs()),
                wgsl: "x / (1.0 + abs(x))",
                grad: |y: Output, d| d * (T::one() - y.abs()) * (T::one() - y.abs()),
                wgsl_grad: "d * (1.0 - abs(y)) * (1.0 - abs(y))",
            },
            Silu {
                doc: "x·sigmoid(x) (swish)",
                names: ["silu", "swish"],
                forward: |x| x * sigmoid(x),
                wgsl: "x * sigmoid(x)",
                grad: |x: Input, d| {
                    let s = sigmoid(x);
                    d * s * (T::one() + x * (T::one() - s))
                },
                wgsl_grad: "d * sigmoid(x) * (1.0 + x * (1.0 - sigmoid(x)))",
            },
            Gelu {
                doc: "x·Φ(x), the exact (erf) form, Keras's default",
                names: ["gelu"],
                forward: |x| x * T::c(0.5) * (T::one() + erf(x * T::c(FRAC_1_SQRT_2))),
                wgsl: "x * 0.5 * (1.0 + erf(x * 0.70710678118654752))",
                grad: |x: Input, d| d * (
                    T::c(0.5) * (T::one() + erf(x * T::c(FRAC_1_SQRT_2)))
                        + x * (x * x * T::c(-0.5)).exp() * T::c(FRAC_1_SQRT_2PI)
                ),
                wgsl_grad: "d * (0.5 * (1.0 + erf(x * 0.70710678118654752)) \
                            + x * exp(-0.5 * x * x) * 0.39894228040143268)",
            },
            LeakyRelu {
                doc: "x for x > 0, 0.2·x otherwise (Keras's leaky_relu slope)",
                names: ["leaky_relu"],
                forward: |x| if x > T::zero() { x } else { T::c(LEAKY_SLOPE) * x },
                wgsl: "select(0.2 * x, x, x > 0.0)",
                grad: |y: Output, d| if y > T::zero() { d } else { T::c(LEAKY_SLOPE) * d },
                wgsl_grad: "select(0.2 * d, d, y > 0.0)",
            },
            Relu6 {
                doc: "min(max(x, 0), 6)",
                names: ["relu6"],
                forward: |x| x.max(T::zero()).min(T::c(6.0)),
                wgsl: "clamp(x, 0.0, 6.0)",
                grad: |y: Output, d| if y > T::zero() && y < T::c(6.0) { d } else { T::zero() },
                wgsl_grad: "select(0.0, d, y > 0.0 && y < 6.0)",
            },
            HardSigmoid {
                doc: "relu6(x + 3) / 6",
                names: ["hard_sigmoid"],
                forward: |x| (x * T::c(1.0 / 6.0) + T::c(0.5)).max(T::zero()).min(T::one()),
                wgsl: "clamp(x * (1.0 / 6.0) + 0.5, 0.0, 1.0)",
                grad: |y: Output, d| if y > T::zero() && y < T::one() { d * T::c(1.0 / 6.0) } else { T::zero() },
                wgsl_grad: "select(0.0, d * (1.0 / 6.0), y > 0.0 && y < 1.0)",
            },
            HardSilu {
                doc: "x·hard_sigmoid(x) (hard_swish)",
                names: ["hard_silu", "hard_swish"],
                forward: |x| x * (x * T::c(1.0 / 6.0) + T::c(0.5)).max(T::zero()).min(T::one()),
                wgsl: "x * clamp(x * (1.0 / 6.0) + 0.5, 0.0, 1.0)",
                grad: |x: Input, d| if x <= T::c(-3.0) {
                    T::zero()
                } else if x >= T::c(3.0) {
                    d
                } else {
                    d * (x * T::c(1.0 / 3.0) + T::c(0.5))
                },
                wgsl_grad: "select(select(d * (x * (1.0 / 3.0) + 0.5), d, x >= 3.0), 0.0, x <= -3.0)",
            },
            HardTanh {
                doc: "min(max(x, −1), 1)",
                names: ["hard_tanh"],
                forward: |x| x.max(-T::one()).min(T::one()),
                wgsl: "clamp(x, -1.0, 1.0)",
                grad: |y: Output, d| if y > -T::one() && y < T::one() { d } else { T::zero() },
                wgsl_grad: "select(0.0, d, y > -1.0 && y < 1.0)",
            },
            Exponential {
                doc: "e^x",
                names: ["exponential"],
                forward: |x| x.exp(),
                wgsl: "exp(x)",
                grad: |y: Output, d| d * y,
                wgsl_grad: "d * y",
            },
            LogSigmoid {
                doc: "ln(sigmoid(x)) = −softplus(−x)",
                names: ["log_sigmoid"],
                forward: |x| -softplus(-x),
                wgsl: "-softplus(-x)",
                // dy/dx = sigmoid(−x) = 1 − e^y.
                grad: |y: Output, d| d * -y.exp_m1(),
                wgsl_grad: "d * (1.0 - exp(y))",
            },
            Mish {
                doc: "x·tanh(softplus(x)) (Misra 2019)",
                names: ["mish"],
                forward: |x| x * softplus(x).tanh(),
                wgsl: "x * tanh(min(softplus(x), 10.0))",
                grad: |x: Input, d| {
                    let t = softplus(x).tanh();
                    d * (t + x * sigmoid(x) * (T::one() - t * t))
                },
                wgsl_grad: "d * (tanh(min(softplus(x), 10.0)) + x * sigmoid(x) \
                            * (1.0 - tanh(min(softplus(x), 10.0)) * tanh(min(softplus(x), 10.0))))",
            },
        }
    };
}
pub(crate) use unary_table;

/// SELU's λ and α (Klambauer et al. 2017, as Keras).
pub const SELU_SCALE: f32 = 1.050_701;
pub const SELU_ALPHA: f32 = 1.673_263_2;
/// The negative slope of Keras's `leaky_relu` activation.
pub const LEAKY_SLOPE: f32 = 0.2;
/// 1/√2 and 1/√(2π), for GELU.
pub const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
pub const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// Numerically stable logistic function.
pub fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

/// ln(1 + e^x) without overflow: max(x, 0) + ln(1 + e^−|x|).
pub fn softplus<T: Float>(x: T) -> T {
    x.max(T::zero()) + (-x.abs()).exp().ln_1p()
}

/// The error function, through libm in f64 (exact to f32 rounding for f32).
pub fn erf<T: Float>(x: T) -> T {
    x.to_f64().and_then(|v| T::from(libm::erf(v))).unwrap_or_else(T::nan)
}

/// The `UnaryOp` enum and its table-derived methods.
macro_rules! unary_op_enum {
    ($(
        $variant:ident {
            doc: $doc:literal,
            names: [$name:literal $(, $alias:literal)*],
            forward: |$x:ident| $forward:expr,
            wgsl: $wgsl:literal,
            grad: |$v:ident: $source:ident, $d:ident| $grad:expr,
            wgsl_grad: $wgsl_grad:literal,
        },
    )*) => {
        /// Elementwise activation functions (the table in program/unary.rs).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum UnaryOp {
            $(#[doc = $doc] $variant,)*
        }

        impl UnaryOp {
            /// Every activation, in table order.
            pub const ALL: &'static [UnaryOp] = &[$(UnaryOp::$variant,)*];

            /// The Keras name.
            pub fn name(self) -> &'static str {
                match self {
                    $(UnaryOp::$variant => $name,)*
                }
            }

            /// The activation a Keras name or alias (`swish`, `hard_swish`) stands for.
            pub fn from_name(name: &str) -> Option<UnaryOp> {
                match name {
                    $($name $(| $alias)* => Some(UnaryOp::$variant),)*
                    _ => None,
                }
            }

            /// Where the gradient reads its value from.
            pub fn grad_source(self) -> GradSource {
                match self {
                    $(UnaryOp::$variant => GradSource::$source,)*
                }
            }

            /// The WGSL functions `activation(code, x)` and `activation_grad(code, v, dy)`
            /// (v: the input or output, per [`grad_source`](Self::grad_source)) over
            /// the codes of [`activation_code`]; code 0 is the identity.
            pub fn wgsl_functions() -> String {
                let mut forward = String::new();
                let mut grad = String::new();
                for (i, (x, body, v, d, grad_body)) in [
                    $((stringify!($x), $wgsl, stringify!($v), stringify!($d), $wgsl_grad),)*
                ]
                .iter()
                .enumerate()
                {
                    let code = i + 1;
                    forward.push_str(&format!(
                        "        case {code}u: {{\n            let {x} = v;\n            return {body};\n        }}\n"
                    ));
                    grad.push_str(&format!(
                        "        case {code}u: {{\n            let {v} = v;\n            let {d} = dv;\n            \
                         return {grad_body};\n        }}\n"
                    ));
                }
                format!(
                    "// Generated from the activation table (src/program/unary.rs).\n\
                     fn activation(code: u32, v: f32) -> f32 {{\n    switch code {{\n{forward}        \
                     default: {{\n            return v;\n        }}\n    }}\n}}\n\n\
                     fn activation_grad(code: u32, v: f32, dv: f32) -> f32 {{\n    switch code {{\n{grad}        \
                     default: {{\n            return dv;\n        }}\n    }}\n}}\n"
                )
            }
        }
    };
}
unary_table!(unary_op_enum);

/// The code of an optional activation in the generated WGSL functions: 0 for none, else its
/// place in the table plus one.
pub fn activation_code(op: Option<UnaryOp>) -> u32 {
    op.and_then(|op| UnaryOp::ALL.iter().position(|&o| o == op)).map_or(0, |i| i as u32 + 1)
}
