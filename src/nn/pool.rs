//! Pooling layers over NHWC images: Keras `MaxPooling2D`, `AveragePooling2D`,
//! `GlobalAveragePooling2D`.
use super::{BuildContext, Layer, ParamSpec, image_shape};
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId, Op};
use crate::program::{Padding, Window2d};

/// Window and stride of a pooling layer (strides default to the pool size, as Keras).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pool2d {
    pub pool_size: (usize, usize),
    pub strides: (usize, usize),
    pub padding: Padding,
}

impl Pool2d {
    fn window(&self, name: &str, class: &str, batch: usize, [h, w, c]: [usize; 3]) -> Result<Window2d> {
        check_window_sizes(&format!("layer '{name}' ({class})"), self.pool_size, self.strides, None)?;
        Window2d::new([batch, h, w, c], self.pool_size, self.strides, (1, 1), self.padding).ok_or_else(|| {
            Error::invalid(
                format!("layer '{name}' ({class})"),
                format!(
                    "pool {:?} (strides {:?}, {:?} padding) does not fit input {:?}",
                    self.pool_size,
                    self.strides,
                    self.padding,
                    [h, w, c]
                ),
            )
        })
    }

    fn output_shape(&self, name: &str, class: &str, input: &[usize]) -> Result<Vec<usize>> {
        let win = self.window(name, class, 1, image_shape(name, class, input)?)?;
        Ok(vec![win.out.0, win.out.1, win.channels])
    }

    fn build(&self, g: &mut Graph, x: NodeId, name: &str, class: &str, max: bool) -> Result<NodeId> {
        let shape = g.shape(x).to_vec();
        let Some((&batch, rest)) = shape.split_first() else {
            return Err(Error::invalid(name, "input has no batch dimension"));
        };
        let win = self.window(name, class, batch, image_shape(name, class, rest)?)?;
        let op = if max { Op::MaxPool { win } } else { Op::AvgPool { win } };
        g.add(op, &[x], name)
    }
}

macro_rules! pooling_layer {
    ($(#[$doc:meta])* $name:ident, $class:literal, $base:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub struct $name(pub Pool2d);

        impl $name {
            /// A `k`×`k` pool with stride `k` and `valid` padding.
            pub fn new(k: usize) -> $name {
                $name(Pool2d { pool_size: (k, k), strides: (k, k), padding: Padding::Valid })
            }

            /// The same layer with strides `(sh, sw)`.
            pub fn strides(mut self, sh: usize, sw: usize) -> $name {
                self.0.strides = (sh, sw);
                self
            }

            /// The same layer with `padding`.
            pub fn padding(mut self, padding: Padding) -> $name {
                self.0.padding = padding;
                self
            }
        }

        impl Layer for $name {
            fn class_name(&self) -> &'static str {
                $class
            }
            fn base_name(&self) -> &'static str {
                $base
            }
            fn config(&self) -> serde_json::Value {
                let p = &self.0;
                serde_json::json!({
                    "type": $class,
                    "pool_size": [p.pool_size.0, p.pool_size.1],
                    "strides": [p.strides.0, p.strides.1],
                    "padding": super::conv::padding_name(p.padding),
                })
            }
            fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>> {
                self.0.output_shape(name, $class, input)
            }
            fn params(&self, _input: &[usize]) -> Vec<ParamSpec> {
                vec![]
            }
            fn build(&self, g: &mut Graph, x: NodeId, ctx: &BuildContext) -> Result<NodeId> {
                self.0.build(g, x, ctx.name, $class, $max)
            }
        }
    };
}

pooling_layer!(
    /// Keras `MaxPooling2D(pool_size, strides, padding)`: the maximum of each window.
    MaxPooling2D,
    "MaxPooling2D",
    "max_pooling2d",
    true
);
pooling_layer!(
    /// Keras `AveragePooling2D(pool_size, strides, padding)`: the mean of each window
    /// (positions in the padding are not counted).
    AveragePooling2D,
    "AveragePooling2D",
    "average_pooling2d",
    false
);

/// Keras `GlobalAveragePooling2D`: `[H, W, C]` → `[C]`, the mean over all positions.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GlobalAveragePooling2D;

impl Layer for GlobalAveragePooling2D {
    fn class_name(&self) -> &'static str {
        "GlobalAveragePooling2D"
    }
    fn base_name(&self) -> &'static str {
        "global_average_pooling2d"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "type": "GlobalAveragePooling2D" })
    }
    fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>> {
        let [_, _, c] = image_shape(name, "GlobalAveragePooling2D", input)?;
        Ok(vec![c])
    }
    fn params(&self, _input: &[usize]) -> Vec<ParamSpec> {
        vec![]
    }
    fn build(&self, g: &mut Graph, x: NodeId, ctx: &BuildContext) -> Result<NodeId> {
        let shape = g.shape(x).to_vec();
        let [batch, h, w, c] = shape[..] else {
            return Err(Error::invalid(
                ctx.name,
                format!("expects [batch, height, width, channels], got {shape:?}"),
            ));
        };
        let pool = Pool2d { pool_size: (h, w), strides: (h, w), padding: Padding::Valid };
        let pooled = pool.build(g, x, ctx.name, "GlobalAveragePooling2D", false)?;
        g.add(Op::Reshape { shape: vec![batch, c] }, &[pooled], ctx.name)
    }
}

/// A window's sizes must be at least 1: the error names the zero (not the window's fit).
pub(super) fn check_window_sizes(
    context: &str,
    size: (usize, usize),
    strides: (usize, usize),
    dilation: Option<(usize, usize)>,
) -> Result<()> {
    let named =
        [("kernel or pool size", Some(size)), ("strides", Some(strides)), ("dilation_rate", dilation)];
    for (what, v) in named {
        if let Some((a, b)) = v
            && (a == 0 || b == 0)
        {
            return Err(Error::invalid(
                context,
                format!("{what} ({a}, {b}) must be at least 1 in each direction"),
            ));
        }
    }
    Ok(())
}
