//! Layers over sequences `[steps, features]`: Keras `Conv1D` (a Conv2D of height 1) and the
//! mask-aware `GlobalAveragePooling1D` / `GlobalMaxPooling1D`.
use super::{Activation, BuildContext, Conv2D, Layer, ParamSpec, Regularizer};
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId, Op};
use crate::program::{BinaryOp, Padding};

/// The `[steps, features]` of a sequence input, or an error naming the layer.
fn sequence_shape(name: &str, class: &str, input: &[usize]) -> Result<[usize; 2]> {
    match *input {
        [t, f] => Ok([t, f]),
        _ => Err(Error::invalid(
            format!("layer '{name}' ({class})"),
            format!("expects sequences (steps, features), got {input:?}"),
        )),
    }
}

/// Keras `Conv1D(filters, kernel_size, strides, padding, dilation_rate, activation)`: a
/// convolution along the steps; kernel `[kernel_size, in, filters]`, as Keras's. Built as a
/// `Conv2D` of height 1 on the sequence viewed as a `[1, steps, features]` image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conv1D {
    pub filters: usize,
    pub kernel_size: usize,
    pub strides: usize,
    pub padding: Padding,
    pub dilation: usize,
    pub activation: Activation,
    pub use_bias: bool,
    pub kernel_regularizer: Option<Regularizer>,
}

impl Conv1D {
    /// A convolution of `k` steps, stride 1, `valid` padding, with a bias.
    pub fn new(filters: usize, k: usize, activation: Activation) -> Conv1D {
        Conv1D {
            filters,
            kernel_size: k,
            strides: 1,
            padding: Padding::Valid,
            dilation: 1,
            activation,
            use_bias: true,
            kernel_regularizer: None,
        }
    }

    /// The same layer with another stride.
    pub fn strides(mut self, s: usize) -> Conv1D {
        self.strides = s;
        self
    }

    /// The same layer with `same` or `valid` padding.
    pub fn padding(mut self, padding: Padding) -> Conv1D {
        self.padding = padding;
        self
    }

    /// The same layer with a dilation rate.
    pub fn dilation(mut self, d: usize) -> Conv1D {
        self.dilation = d;
        self
    }

    fn as_2d(&self) -> Conv2D {
        Conv2D {
            filters: self.filters,
            kernel_size: (1, self.kernel_size),
            strides: (1, self.strides),
            padding: self.padding,
            dilation: (1, self.dilation),
            activation: self.activation,
            use_bias: self.use_bias,
            kernel_regularizer: self.kernel_regularizer,
        }
    }
}

impl Layer for Conv1D {
    fn class_name(&self) -> &'static str {
        "Conv1D"
    }
    fn base_name(&self) -> &'static str {
        "conv1d"
    }
    fn config(&self) -> serde_json::Value {
        let mut c = self.as_2d().config();
        c["type"] = "Conv1D".into();
        c["kernel_size"] = self.kernel_size.into();
        c["strides"] = self.strides.into();
        c["dilation_rate"] = self.dilation.into();
        c
    }
    fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>> {
        let [t, f] = sequence_shape(name, "Conv1D", input)?;
        let out = self.as_2d().output_shape(name, &[1, t, f]).map_err(|e| {
            Error::invalid(format!("layer '{name}' (Conv1D)"), e.to_string().replace("Conv2D", "Conv1D"))
        })?;
        Ok(out[1..].to_vec())
    }
    fn params(&self, input: &[usize]) -> Vec<ParamSpec> {
        let f = input.last().copied().unwrap_or(1);
        let mut p = self.as_2d().params(&[1, input.first().copied().unwrap_or(1), f]);
        // Keras's kernel shape [k, in, filters] (the same elements as Conv2D's [1, k, in, filters]).
        p[0].shape = vec![self.kernel_size, f, self.filters];
        p
    }
    fn activation(&self) -> Activation {
        self.activation
    }
    fn build(&self, g: &mut Graph, x: NodeId, ctx: &BuildContext) -> Result<NodeId> {
        let shape = g.shape(x).to_vec();
        let [batch, t, f] = shape[..] else {
            return Err(Error::invalid(ctx.name, format!("expects [batch, steps, features], got {shape:?}")));
        };
        let image = g.add(Op::Reshape { shape: vec![batch, 1, t, f] }, &[x], ctx.name)?;
        let y = self.as_2d().build(g, image, ctx)?;
        let out = g.shape(y).to_vec();
        g.add(Op::Reshape { shape: vec![batch, out[2], out[3]] }, &[y], ctx.name)
    }
}

/// The `[batch, steps, features]` mask `m` ([batch, steps]) broadcast over the features.
pub(crate) fn mask_over_features(
    g: &mut Graph,
    m: NodeId,
    [batch, t, f]: [usize; 3],
    name: &str,
) -> Result<NodeId> {
    let full = broadcast_over_columns(g, m, batch * t, f, name)?;
    g.add(Op::Reshape { shape: vec![batch, t, f] }, &[full], name)
}

/// `rows` values (any shape of that many elements) repeated across `cols` columns: `[rows,
/// cols]`, as a rank-1 product with a row of ones.
pub(crate) fn broadcast_over_columns(
    g: &mut Graph,
    m: NodeId,
    rows: usize,
    cols: usize,
    name: &str,
) -> Result<NodeId> {
    let col = g.add(Op::Reshape { shape: vec![rows, 1] }, &[m], name)?;
    let ones = g.add(Op::Fill { shape: vec![1, cols], value: 1.0 }, &[], name)?;
    g.add(Op::MatMul { trans_a: false, trans_b: false }, &[col, ones], name)
}

/// Max or mean over all steps of `[batch, steps, features]` → `[batch, features]`, as a pool
/// over the sequence viewed as a `[1, steps]` image.
fn pool_steps(g: &mut Graph, x: NodeId, [batch, t, f]: [usize; 3], max: bool, name: &str) -> Result<NodeId> {
    let image = g.add(Op::Reshape { shape: vec![batch, 1, t, f] }, &[x], name)?;
    let win = crate::program::Window2d::new([batch, 1, t, f], (1, t), (1, t), (1, 1), Padding::Valid)
        .ok_or_else(|| Error::invalid(name, format!("cannot pool {t} steps")))?;
    let op = if max { Op::MaxPool { win } } else { Op::AvgPool { win } };
    let pooled = g.add(op, &[image], name)?;
    g.add(Op::Reshape { shape: vec![batch, f] }, &[pooled], name)
}

macro_rules! global_pooling_1d {
    ($(#[$doc:meta])* $name:ident, $class:literal, $base:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Default)]
        pub struct $name;

        impl Layer for $name {
            fn class_name(&self) -> &'static str {
                $class
            }
            fn base_name(&self) -> &'static str {
                $base
            }
            fn config(&self) -> serde_json::Value {
                serde_json::json!({ "type": $class })
            }
            fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>> {
                let [_, f] = sequence_shape(name, $class, input)?;
                Ok(vec![f])
            }
            fn params(&self, _input: &[usize]) -> Vec<ParamSpec> {
                vec![]
            }
            fn build(&self, g: &mut Graph, x: NodeId, ctx: &BuildContext) -> Result<NodeId> {
                global_pool(g, x, ctx, $max)
            }
        }
    };
}

global_pooling_1d!(
    /// Keras `GlobalAveragePooling1D`: `[steps, features]` → `[features]`, the mean over the
    /// steps; with a mask, over the unmasked steps only (a sample with none gives zeros).
    GlobalAveragePooling1D,
    "GlobalAveragePooling1D",
    "global_average_pooling1d",
    false
);
global_pooling_1d!(
    /// Keras `GlobalMaxPooling1D`: `[steps, features]` → `[features]`, the maximum over the
    /// steps; with a mask, over the unmasked steps only (a sample with none gives zeros).
    GlobalMaxPooling1D,
    "GlobalMaxPooling1D",
    "global_max_pooling1d",
    true
);

/// The masked pools: the mean is Σ m·x / Σ m (the pool's mean of m·x over the mean of m, a
/// sample without valid steps giving 0); the maximum is taken over x − 10⁹·(1 − m), so that a
/// masked step never wins, then zeroed where no step is valid.
fn global_pool(g: &mut Graph, x: NodeId, ctx: &BuildContext, max: bool) -> Result<NodeId> {
    let name = ctx.name;
    let shape = g.shape(x).to_vec();
    let [batch, t, f] = shape[..] else {
        return Err(Error::invalid(name, format!("expects [batch, steps, features], got {shape:?}")));
    };
    let dims = [batch, t, f];
    let Some(mask) = ctx.mask else { return pool_steps(g, x, dims, max, name) };
    let m = mask_over_features(g, mask, dims, name)?;
    // The fraction of valid steps per sample (the same for every feature).
    let share = pool_steps(g, m, dims, false, name)?;
    if !max {
        let floor = g.add(Op::Fill { shape: vec![batch, f], value: 1e-12 }, &[], name)?;
        let share = g.add(Op::Binary(BinaryOp::Maximum), &[share, floor], name)?;
        let kept = g.add(Op::Binary(BinaryOp::Multiply), &[x, m], name)?;
        let mean = pool_steps(g, kept, dims, false, name)?;
        return g.add(Op::Binary(BinaryOp::Divide), &[mean, share], name);
    }
    // 0 on valid steps (1e9·1 − 1e9 is exact), −10⁹ on masked ones.
    let penalty = g.add(Op::Affine { scale: 1e9, shift: -1e9 }, &[m], name)?;
    let shifted = g.add(Op::Add, &[x, penalty], name)?;
    let top = pool_steps(g, shifted, dims, true, name)?;
    // Exactly 1 where a sample has a valid step (share ≥ 1/T, so 2T·share ≥ 1), else 0.
    let any = g.add(Op::Affine { scale: 2.0 * t as f32, shift: 0.0 }, &[share], name)?;
    let one = g.add(Op::Fill { shape: vec![batch, f], value: 1.0 }, &[], name)?;
    let any = g.add(Op::Binary(BinaryOp::Minimum), &[any, one], name)?;
    g.add(Op::Binary(BinaryOp::Multiply), &[top, any], name)
}
