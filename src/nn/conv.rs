//! 2-D convolution (Keras `Conv2D`) over NHWC images with HWIO filters.
use super::{Activation, BuildContext, Init, Layer, ParamSpec, Regularizer, image_shape};
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId, Op};
use crate::program::{Padding, Window2d};

/// Keras `Conv2D(filters, kernel_size, strides, padding, dilation_rate, activation)`: kernel
/// `[kh, kw, in_channels, filters]` Glorot-uniform, bias `[filters]` zeros.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conv2D {
    pub filters: usize,
    pub kernel_size: (usize, usize),
    pub strides: (usize, usize),
    pub padding: Padding,
    pub dilation: (usize, usize),
    pub activation: Activation,
    pub use_bias: bool,
    /// Weight penalty on the kernel (Keras `kernel_regularizer`), added to the loss.
    pub kernel_regularizer: Option<Regularizer>,
}

impl Conv2D {
    /// A `k`×`k` convolution with stride 1, `valid` padding and a bias.
    pub fn new(filters: usize, k: usize, activation: Activation) -> Conv2D {
        Conv2D {
            filters,
            kernel_size: (k, k),
            strides: (1, 1),
            padding: Padding::Valid,
            dilation: (1, 1),
            activation,
            use_bias: true,
            kernel_regularizer: None,
        }
    }

    /// The same layer with a kernel regulariser (Keras `kernel_regularizer=l2(0.01)`).
    pub fn kernel_regularizer(mut self, r: Regularizer) -> Conv2D {
        self.kernel_regularizer = Some(r);
        self
    }

    /// The same layer with strides `(sh, sw)`.
    pub fn strides(mut self, sh: usize, sw: usize) -> Conv2D {
        self.strides = (sh, sw);
        self
    }

    /// The same layer with `padding`.
    pub fn padding(mut self, padding: Padding) -> Conv2D {
        self.padding = padding;
        self
    }

    /// The same layer with dilation `(dh, dw)`.
    pub fn dilation(mut self, dh: usize, dw: usize) -> Conv2D {
        self.dilation = (dh, dw);
        self
    }

    fn window(&self, name: &str, batch: usize, [h, w, c]: [usize; 3]) -> Result<Window2d> {
        let context = || format!("layer '{name}' (Conv2D)");
        if self.filters == 0 {
            return Err(Error::invalid(context(), "filters must be at least 1"));
        }
        super::pool::check_window_sizes(&context(), self.kernel_size, self.strides, Some(self.dilation))?;
        if self.dilation != (1, 1) && self.strides != (1, 1) {
            // Keras refuses this combination too.
            return Err(Error::invalid(context(), "strides > 1 together with dilation > 1 is not supported"));
        }
        Window2d::new([batch, h, w, c], self.kernel_size, self.strides, self.dilation, self.padding)
            .ok_or_else(|| {
                Error::invalid(
                    context(),
                    format!(
                        "kernel {:?} (dilation {:?}, strides {:?}, {:?} padding) does not fit input {:?}",
                        self.kernel_size,
                        self.dilation,
                        self.strides,
                        self.padding,
                        [h, w, c]
                    ),
                )
            })
    }
}

/// Keras's name of a padding mode.
pub(crate) fn padding_name(p: Padding) -> &'static str {
    match p {
        Padding::Valid => "valid",
        Padding::Same => "same",
    }
}

impl Layer for Conv2D {
    fn class_name(&self) -> &'static str {
        "Conv2D"
    }
    fn base_name(&self) -> &'static str {
        "conv2d"
    }
    fn config(&self) -> serde_json::Value {
        let mut c = serde_json::json!({
            "type": "Conv2D",
            "filters": self.filters,
            "kernel_size": [self.kernel_size.0, self.kernel_size.1],
            "strides": [self.strides.0, self.strides.1],
            "padding": padding_name(self.padding),
            "dilation_rate": [self.dilation.0, self.dilation.1],
            "activation": self.activation.name(),
            "use_bias": self.use_bias,
        });
        if let Some(r) = self.kernel_regularizer {
            c["kernel_regularizer"] = r.config();
        }
        c
    }
    fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>> {
        let win = self.window(name, 1, image_shape(name, "Conv2D", input)?)?;
        if let Some(r) = self.kernel_regularizer {
            r.validate(&format!("layer '{name}' (Conv2D)"))?;
        }
        Ok(vec![win.out.0, win.out.1, self.filters])
    }
    fn params(&self, input: &[usize]) -> Vec<ParamSpec> {
        let c = input.last().copied().unwrap_or(1);
        let (kh, kw) = self.kernel_size;
        let mut p = vec![
            ParamSpec::new(
                "kernel",
                vec![kh, kw, c, self.filters],
                Init::GlorotUniform { fan_in: kh * kw * c, fan_out: kh * kw * self.filters },
            )
            .regularized(self.kernel_regularizer),
        ];
        if self.use_bias {
            p.push(ParamSpec::new("bias", vec![self.filters], Init::Zeros));
        }
        p
    }
    fn activation(&self) -> Activation {
        self.activation
    }
    // x [N,H,W,C] → patches [N·OH·OW, KH·KW·C] · kernel viewed as [KH·KW·C, F] → [N,OH,OW,F].
    // Bias and activation act on the [N·OH·OW, F] matrix, so the planner fuses them into the
    // matmul as for Dense.
    fn build(&self, g: &mut Graph, x: NodeId, ctx: &BuildContext) -> Result<NodeId> {
        let name = ctx.name;
        let shape = g.shape(x).to_vec();
        let (batch, image) = match shape.split_first() {
            Some((&b, rest)) => (b, image_shape(name, "Conv2D", rest)?),
            None => return Err(Error::invalid(name, "input has no batch dimension")),
        };
        let win = self.window(name, batch, image)?;
        let pointwise = self.kernel_size == (1, 1) && self.strides == (1, 1);
        let cols = if pointwise {
            g.add(Op::Reshape { shape: vec![win.positions(), win.channels] }, &[x], name)?
        } else {
            g.add(Op::Im2Col { win }, &[x], name)?
        };
        let kernel =
            g.add(Op::Reshape { shape: vec![win.patch_len(), self.filters] }, &[ctx.params[0]], name)?;
        let mut y = g.add(Op::MatMul { trans_a: false, trans_b: false }, &[cols, kernel], name)?;
        if self.use_bias {
            y = g.add(Op::BiasAdd, &[y, ctx.params[1]], name)?;
        }
        if ctx.activation {
            y = self.activation.build(g, y, name)?;
        }
        g.add(Op::Reshape { shape: vec![batch, win.out.0, win.out.1, self.filters] }, &[y], name)
    }
}
