//! Merge layers of functional models (Keras `Add`, `Subtract`, `Multiply`, `Average`,
//! `Maximum`, `Minimum`, `Concatenate`): several inputs in, one tensor out. They are
//! compositions of graph ops that already have CPU and WGSL kernels and backward rules
//! (`Add`, the binary table, `Affine`, `ConcatColumns`), so they add no kernel of their own.
use super::{BuildContext, Layer, ParamSpec, batch_shape};
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId, Op};
use crate::program::BinaryOp;

/// Which element-wise merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elementwise {
    Add,
    Subtract,
    Multiply,
    Average,
    Maximum,
    Minimum,
}

impl Elementwise {
    fn class_name(self) -> &'static str {
        match self {
            Elementwise::Add => "Add",
            Elementwise::Subtract => "Subtract",
            Elementwise::Multiply => "Multiply",
            Elementwise::Average => "Average",
            Elementwise::Maximum => "Maximum",
            Elementwise::Minimum => "Minimum",
        }
    }

    fn base_name(self) -> &'static str {
        match self {
            Elementwise::Add => "add",
            Elementwise::Subtract => "subtract",
            Elementwise::Multiply => "multiply",
            Elementwise::Average => "average",
            Elementwise::Maximum => "maximum",
            Elementwise::Minimum => "minimum",
        }
    }

    /// Inputs of equal shapes (two for Subtract, at least two for the others).
    fn output_shape(self, name: &str, inputs: &[(&str, &[usize])]) -> Result<Vec<usize>> {
        let what = format!("layer '{name}' ({})", self.class_name());
        let count_ok = match self {
            Elementwise::Subtract => inputs.len() == 2,
            _ => inputs.len() >= 2,
        };
        if !count_ok {
            let want = if self == Elementwise::Subtract { "exactly two" } else { "at least two" };
            return Err(Error::invalid(what, format!("takes {want} inputs, got {}", inputs.len())));
        }
        let (first, shape) = inputs[0];
        if let Some((other, other_shape)) = inputs.iter().find(|(_, s)| *s != shape) {
            return Err(Error::invalid(
                what,
                format!(
                    "needs inputs of one shape, but '{first}' gives {} and '{other}' gives {}",
                    batch_shape(shape),
                    batch_shape(other_shape)
                ),
            ));
        }
        Ok(shape.to_vec())
    }

    fn build(self, g: &mut Graph, xs: &[NodeId], name: &str) -> Result<NodeId> {
        let (&first, rest) = xs.split_first().ok_or_else(|| Error::invalid(name, "has no inputs"))?;
        let op = match self {
            Elementwise::Add | Elementwise::Average => Op::Add,
            Elementwise::Subtract => Op::Binary(BinaryOp::Subtract),
            Elementwise::Multiply => Op::Binary(BinaryOp::Multiply),
            Elementwise::Maximum => Op::Binary(BinaryOp::Maximum),
            Elementwise::Minimum => Op::Binary(BinaryOp::Minimum),
        };
        // Left to right: ((x0 ∘ x1) ∘ x2) …, a fixed order on every backend.
        let mut y = first;
        for &x in rest {
            y = g.add(op.clone(), &[y, x], name)?;
        }
        if self == Elementwise::Average {
            y = g.add(Op::Affine { scale: 1.0 / xs.len() as f32, shift: 0.0 }, &[y], name)?;
        }
        Ok(y)
    }
}

macro_rules! elementwise_layer {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name;

        impl Layer for $name {
            fn class_name(&self) -> &'static str {
                Elementwise::$name.class_name()
            }
            fn base_name(&self) -> &'static str {
                Elementwise::$name.base_name()
            }
            fn config(&self) -> serde_json::Value {
                serde_json::json!({ "type": self.class_name() })
            }
            fn merges(&self) -> bool {
                true
            }
            fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>> {
                self.output_shape_many(name, &[("input", input)])
            }
            fn output_shape_many(&self, name: &str, inputs: &[(&str, &[usize])]) -> Result<Vec<usize>> {
                Elementwise::$name.output_shape(name, inputs)
            }
            fn params(&self, _input: &[usize]) -> Vec<ParamSpec> {
                vec![]
            }
            fn build(&self, g: &mut Graph, x: NodeId, ctx: &BuildContext) -> Result<NodeId> {
                self.build_many(g, &[x], ctx)
            }
            fn build_many(&self, g: &mut Graph, xs: &[NodeId], ctx: &BuildContext) -> Result<NodeId> {
                Elementwise::$name.build(g, xs, ctx.name)
            }
            // The mask of a merge is the product (logical and) of its inputs' masks, which the
            // model combines before the call; it passes through.
            fn output_mask(&self, _g: &mut Graph, _x: NodeId, ctx: &BuildContext) -> Result<Option<NodeId>> {
                Ok(ctx.mask)
            }
        }
    };
}

elementwise_layer!(
    /// The sum of its inputs (Keras `Add`), e.g. a residual connection.
    Add
);
elementwise_layer!(
    /// The first input minus the second (Keras `Subtract`).
    Subtract
);
elementwise_layer!(
    /// The element-wise product of its inputs (Keras `Multiply`).
    Multiply
);
elementwise_layer!(
    /// The element-wise mean of its inputs (Keras `Average`).
    Average
);
elementwise_layer!(
    /// The element-wise maximum of its inputs (Keras `Maximum`).
    Maximum
);
elementwise_layer!(
    /// The element-wise minimum of its inputs (Keras `Minimum`).
    Minimum
);

/// Its inputs joined along the last axis (Keras `Concatenate(axis=-1)`): the channels of
/// images, the features of vectors or of every step of sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concatenate {
    /// Keras's axis, counted with the batch as axis 0: −1 (the default) or the last axis.
    pub axis: i64,
}

impl Default for Concatenate {
    fn default() -> Concatenate {
        Concatenate { axis: -1 }
    }
}

impl Concatenate {
    /// Join along the last axis.
    pub fn new() -> Concatenate {
        Concatenate::default()
    }

    /// Join along `axis` (Keras numbering: 0 is the batch; −1 the last).
    pub fn axis(axis: i64) -> Concatenate {
        Concatenate { axis }
    }
}

impl Layer for Concatenate {
    fn class_name(&self) -> &'static str {
        "Concatenate"
    }
    fn base_name(&self) -> &'static str {
        "concatenate"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "type": "Concatenate", "axis": self.axis })
    }
    fn merges(&self) -> bool {
        true
    }
    fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>> {
        self.output_shape_many(name, &[("input", input)])
    }
    fn output_shape_many(&self, name: &str, inputs: &[(&str, &[usize])]) -> Result<Vec<usize>> {
        let what = format!("layer '{name}' (Concatenate)");
        if inputs.len() < 2 {
            return Err(Error::invalid(what, format!("takes at least two inputs, got {}", inputs.len())));
        }
        let (first, shape) = inputs[0];
        // Keras's axis counts the batch: the last per-sample axis is `shape.len()`.
        if self.axis != -1 && self.axis != shape.len() as i64 {
            return Err(Error::invalid(
                what,
                format!("joins along the last axis only (-1 or {}), got axis {}", shape.len(), self.axis),
            ));
        }
        let lead = &shape[..shape.len().saturating_sub(1)];
        let mut out = shape.to_vec();
        for (other, other_shape) in &inputs[1..] {
            if shape.is_empty() || other_shape.len() != shape.len() || &other_shape[..lead.len()] != lead {
                return Err(Error::invalid(
                    what,
                    format!(
                        "needs inputs that differ in the last axis only, but '{first}' gives {} and \
                         '{other}' gives {}",
                        batch_shape(shape),
                        batch_shape(other_shape)
                    ),
                ));
            }
            if let (Some(total), Some(add)) = (out.last_mut(), other_shape.last()) {
                *total += add;
            }
        }
        Ok(out)
    }
    fn params(&self, _input: &[usize]) -> Vec<ParamSpec> {
        vec![]
    }
    fn build(&self, g: &mut Graph, x: NodeId, ctx: &BuildContext) -> Result<NodeId> {
        self.build_many(g, &[x], ctx)
    }
    fn build_many(&self, g: &mut Graph, xs: &[NodeId], ctx: &BuildContext) -> Result<NodeId> {
        let (&first, rest) = xs.split_first().ok_or_else(|| Error::invalid(ctx.name, "has no inputs"))?;
        rest.iter().try_fold(first, |y, &x| g.add(Op::ConcatColumns, &[y, x], ctx.name))
    }
    fn output_mask(&self, _g: &mut Graph, _x: NodeId, ctx: &BuildContext) -> Result<Option<NodeId>> {
        Ok(ctx.mask)
    }
}
