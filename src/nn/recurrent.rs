//! Recurrent layers over `[batch, steps, features]` sequences: Keras `SimpleRNN`, `LSTM` and
//! `GRU`.
//! Each builds: the input projection of every step as one GEMM (x·W + b over the
//! `[batch·steps, features]` rows), the time loop (`Op::Recurrent`, one fused step kernel per
//! time step), then the last output or the whole sequence.
use super::{Activation, BuildContext, Init, Layer, ParamSpec};
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId, Op};
use crate::program::{Recurrence, RecurrentCell, SequencePart};

/// What every recurrent layer has.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecurrentOptions {
    pub units: usize,
    pub use_bias: bool,
    /// Return the output of every step (`[steps, units]`) instead of the last (`[units]`).
    pub return_sequences: bool,
    /// Process the sequence last step first; a returned sequence is in processing order
    /// (reversed), as Keras returns it.
    pub go_backwards: bool,
    /// Return a sequence in input-time order even with `go_backwards` (how `Bidirectional`
    /// returns its backward half; not a Keras key).
    pub input_order: bool,
    /// Keras `dropout`: the fraction of the input's features dropped in training, with one
    /// mask per sequence (the same features dropped at every step), as Keras.
    pub dropout: f32,
    /// Keras `recurrent_dropout`: the fraction of h_{t−1}'s units dropped before the recurrent
    /// product in training, one mask per sequence (the state itself is kept whole).
    pub recurrent_dropout: f32,
    /// Keras `return_state`: the call also returns the final state, h (and an LSTM's c), as
    /// further outputs (functional models; a Sequential model refuses it, as Keras).
    pub return_state: bool,
}

impl RecurrentOptions {
    /// `units` units, with a bias, returning the last output, forwards.
    pub fn new(units: usize) -> RecurrentOptions {
        RecurrentOptions {
            units,
            use_bias: true,
            return_sequences: false,
            go_backwards: false,
            input_order: false,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            return_state: false,
        }
    }

    fn config(&self, class: &str) -> serde_json::Value {
        let mut c = serde_json::json!({
            "type": class,
            "units": self.units,
            "use_bias": self.use_bias,
            "return_sequences": self.return_sequences,
            "go_backwards": self.go_backwards,
        });
        // Only when set, so that the descriptions of earlier checkpoints still match.
        if self.dropout > 0.0 {
            c["dropout"] = crate::json::short(self.dropout);
        }
        if self.recurrent_dropout > 0.0 {
            c["recurrent_dropout"] = crate::json::short(self.recurrent_dropout);
        }
        if self.return_state {
            c["return_state"] = true.into();
        }
        c
    }

    fn output_shape(&self, name: &str, class: &str, input: &[usize]) -> Result<Vec<usize>> {
        let steps = match *input {
            [steps, _features] => steps,
            _ => {
                return Err(Error::invalid(
                    format!("layer '{name}' ({class})"),
                    format!("expects sequences (steps, features), got {input:?}"),
                ));
            }
        };
        for (key, rate) in [("dropout", self.dropout), ("recurrent_dropout", self.recurrent_dropout)] {
            if !(0.0..1.0).contains(&rate) {
                return Err(Error::invalid(
                    format!("layer '{name}' ({class})"),
                    format!("{key} must be in [0, 1), got {rate}"),
                ));
            }
        }
        if self.units == 0 || steps == 0 {
            return Err(Error::invalid(
                format!("layer '{name}' ({class})"),
                "units and steps must be at least 1",
            ));
        }
        Ok(if self.return_sequences { vec![steps, self.units] } else { vec![self.units] })
    }

    /// kernel `[features, gates·units]` (Glorot uniform), recurrent_kernel `[units, gates·units]`
    /// (orthogonal), bias `[gates·units]`.
    fn params(&self, input: &[usize], gates: usize, bias: Init, bias_rows: usize) -> Vec<ParamSpec> {
        let features = input.last().copied().unwrap_or(0);
        let (u, g) = (self.units, gates * self.units);
        let mut p = vec![
            ParamSpec::new("kernel", vec![features, g], Init::GlorotUniform { fan_in: features, fan_out: g }),
            ParamSpec::new("recurrent_kernel", vec![u, g], Init::Orthogonal { rows: u, cols: g }),
        ];
        if self.use_bias {
            let shape = if bias_rows > 1 { vec![bias_rows, g] } else { vec![g] };
            p.push(ParamSpec::new("bias", shape, bias));
        }
        p
    }

    /// x `[batch, steps, features]` → the projection, the loop, the returned part. A GRU's
    /// bias is `[2, gates·units]`: the input projection's, then the recurrent one.
    /// The outputs of a call: the returned part, then with `return_state` the final h (and
    /// an LSTM's c), the last processing step's (a masked step keeps the state, so the last
    /// valid one's).
    fn build_outputs(
        &self,
        cell: RecurrentCell,
        g: &mut Graph,
        x: NodeId,
        ctx: &BuildContext,
    ) -> Result<Vec<NodeId>> {
        let name = ctx.name;
        let [batch, steps, features] = match *g.shape(x) {
            [b, t, f] => [b, t, f],
            ref other => return Err(Error::invalid(format!("layer '{name}'"), format!("input {other:?}"))),
        };
        let (units, go_backwards, masked) = (self.units, self.go_backwards, ctx.mask.is_some());
        let recurrent_dropout = ctx.training && self.recurrent_dropout > 0.0;
        let rec = Recurrence { cell, batch, steps, units, go_backwards, masked, recurrent_dropout };
        let empty = |g: &mut Graph| g.add(Op::Fill { shape: vec![0], value: 0.0 }, &[], name);
        let width = rec.gates() * self.units;
        let x = match ctx.training && self.dropout > 0.0 {
            true => g.add(Op::Dropout { rate: self.dropout, seed: ctx.seed, steps }, &[x], name)?,
            false => x,
        };
        let rows = g.add(Op::Reshape { shape: vec![batch * steps, features] }, &[x], name)?;
        let mut z = g.add(Op::MatMul { trans_a: false, trans_b: false }, &[rows, ctx.params[0]], name)?;
        let recurrent_bias = match (rec.has_recurrent_bias(), self.use_bias) {
            (true, true) => g.add(Op::Row { index: 1 }, &[ctx.params[2]], name)?,
            (true, false) => g.add(Op::Fill { shape: vec![width], value: 0.0 }, &[], name)?,
            (false, _) => empty(g)?,
        };
        let mask = match ctx.mask {
            Some(mask) => mask,
            None => empty(g)?,
        };
        if self.use_bias {
            let bias = match rec.has_recurrent_bias() {
                true => g.add(Op::Row { index: 0 }, &[ctx.params[2]], name)?,
                false => ctx.params[2],
            };
            z = g.add(Op::BiasAdd, &[z, bias], name)?;
        }
        let z = g.add(Op::Reshape { shape: vec![batch, steps, width] }, &[z], name)?;
        // One mask per sequence over h_{t−1}'s units, its own seed (not the inputs' mask).
        let drop = match recurrent_dropout {
            true => {
                let ones = g.add(Op::Fill { shape: vec![batch, steps, units], value: 1.0 }, &[], name)?;
                let (rate, seed) = (self.recurrent_dropout, ctx.seed ^ 0x27d4_eb2f);
                g.add(Op::Dropout { rate, seed, steps }, &[ones], name)?
            }
            false => empty(g)?,
        };
        let states = g.add(Op::Recurrent(rec), &[z, ctx.params[1], recurrent_bias, mask, drop], name)?;
        let part = match (self.return_sequences, self.input_order) {
            (false, _) => SequencePart::Last,
            (true, false) => SequencePart::Sequence,
            (true, true) => SequencePart::InputOrder,
        };
        let out = g.add(Op::RecurrentGather { rec, part }, &[states], name)?;
        if !self.return_state {
            return Ok(vec![out]);
        }
        let h = match part {
            SequencePart::Last => out,
            _ => g.add(Op::RecurrentGather { rec, part: SequencePart::Last }, &[states], name)?,
        };
        let mut outputs = vec![out, h];
        if cell == RecurrentCell::Lstm {
            outputs.push(g.add(
                Op::RecurrentGather { rec, part: SequencePart::LastCell },
                &[states],
                name,
            )?);
        }
        Ok(outputs)
    }

    /// The output shapes of a call: the returned part's (`first`), then with `return_state`
    /// the `states` final states' `[units]`.
    fn with_state_shapes(&self, first: Vec<usize>, states: usize) -> Vec<Vec<usize>> {
        let count = if self.return_state { states } else { 0 };
        std::iter::once(first).chain(std::iter::repeat_n(vec![self.units], count)).collect()
    }
}

/// The call methods of a recurrent layer `Layer` impl: `$class` its Keras name, `$states`
/// the final states `return_state` adds (h; an LSTM's h and c), `$cell` its recurrence
/// (an expression of `$layer`, the layer).
macro_rules! recurrent_calls {
    ($class:literal, $states:literal, |$layer:ident| $cell:expr) => {
        fn build(&self, g: &mut Graph, x: NodeId, ctx: &BuildContext) -> Result<NodeId> {
            Ok(self.build_all(g, &[x], ctx)?.swap_remove(0))
        }
        fn output_count(&self) -> usize {
            if self.options.return_state { 1 + $states } else { 1 }
        }
        fn output_shapes_all(&self, name: &str, inputs: &[(&str, &[usize])]) -> Result<Vec<Vec<usize>>> {
            let first = self.output_shape(name, single_input(name, $class, inputs)?.1)?;
            Ok(self.options.with_state_shapes(first, $states))
        }
        fn build_all(&self, g: &mut Graph, xs: &[NodeId], ctx: &BuildContext) -> Result<Vec<NodeId>> {
            let x = *single_input(ctx.name, $class, xs)?;
            let $layer = self;
            self.options.build_outputs($cell, g, x, ctx)
        }
        fn output_mask(&self, _g: &mut Graph, _x: NodeId, ctx: &BuildContext) -> Result<Option<NodeId>> {
            Ok(self.options.output_mask(ctx))
        }
    };
}

impl RecurrentOptions {
    /// A returned sequence keeps the input's mask; the last output has no time axis.
    fn output_mask(&self, ctx: &BuildContext) -> Option<NodeId> {
        ctx.mask.filter(|_| self.return_sequences)
    }
}

/// The one input of a call, or an error naming the layer.
fn single_input<'a, T>(name: &str, class: &str, inputs: &'a [T]) -> Result<&'a T> {
    match inputs {
        [one] => Ok(one),
        _ => Err(Error::invalid(
            format!("layer '{name}' ({class})"),
            format!("takes one input, got {}", inputs.len()),
        )),
    }
}

/// Keras `Masking(mask_value=0.0)`: marks the steps of a `[steps, features]` sequence whose
/// features all equal `mask_value` as padding, for the recurrent layers downstream (which keep
/// their state there). Its output is its input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Masking {
    pub mask_value: f32,
}

impl Layer for Masking {
    fn class_name(&self) -> &'static str {
        "Masking"
    }
    fn base_name(&self) -> &'static str {
        "masking"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "type": "Masking", "mask_value": self.mask_value })
    }
    fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>> {
        match input {
            [_, _] => Ok(input.to_vec()),
            _ => Err(Error::invalid(
                format!("layer '{name}' (Masking)"),
                format!("expects sequences (steps, features), got {input:?}"),
            )),
        }
    }
    fn params(&self, _input: &[usize]) -> Vec<ParamSpec> {
        Vec::new()
    }
    fn build(&self, _g: &mut Graph, x: NodeId, _ctx: &BuildContext) -> Result<NodeId> {
        Ok(x)
    }
    fn output_mask(&self, g: &mut Graph, x: NodeId, ctx: &BuildContext) -> Result<Option<NodeId>> {
        Ok(Some(g.add(Op::SequenceMask { value: self.mask_value }, &[x], ctx.name)?))
    }
}

/// Keras `SimpleRNN(units, activation="tanh")`: h_t = f(x_t·W + b + h_{t−1}·U).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimpleRnn {
    pub options: RecurrentOptions,
    /// The output activation (any elementwise one, or linear).
    pub activation: Activation,
}

/// Keras `LSTM(units)`: tanh activation, sigmoid recurrent activation, `unit_forget_bias`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lstm {
    pub options: RecurrentOptions,
    /// Initialise the forget gate's bias to ones (Keras's default).
    pub unit_forget_bias: bool,
}

/// The builder methods both layers share.
macro_rules! recurrent_builders {
    ($layer:ident) => {
        impl $layer {
            /// Return every step's output (`[steps, units]`).
            pub fn return_sequences(mut self, on: bool) -> $layer {
                self.options.return_sequences = on;
                self
            }

            /// Also return the final state (Keras `return_state`): h, and an LSTM's c.
            pub fn return_state(mut self, on: bool) -> $layer {
                self.options.return_state = on;
                self
            }

            /// Process the sequence from its end (Keras `go_backwards`).
            pub fn go_backwards(mut self, on: bool) -> $layer {
                self.options.go_backwards = on;
                self
            }

            /// Without the bias.
            pub fn use_bias(mut self, on: bool) -> $layer {
                self.options.use_bias = on;
                self
            }

            /// Keras `dropout`: drop this fraction of the input features in training, one
            /// mask per sequence.
            pub fn dropout(mut self, rate: f32) -> $layer {
                self.options.dropout = rate;
                self
            }

            /// Keras `recurrent_dropout`: drop this fraction of h_{t−1}'s units before the
            /// recurrent product in training, one mask per sequence.
            pub fn recurrent_dropout(mut self, rate: f32) -> $layer {
                self.options.recurrent_dropout = rate;
                self
            }
        }
    };
}
recurrent_builders!(SimpleRnn);
recurrent_builders!(Lstm);
recurrent_builders!(Gru);

/// A recurrent layer whose options a wrapper (`Bidirectional`) can change.
pub trait RecurrentLayer: Layer {
    fn options(&self) -> &RecurrentOptions;
    fn options_mut(&mut self) -> &mut RecurrentOptions;
    /// A copy of the layer.
    fn boxed_clone(&self) -> Box<dyn RecurrentLayer>;
}

macro_rules! recurrent_layer {
    ($($layer:ident),*) => {$(
        impl RecurrentLayer for $layer {
            fn options(&self) -> &RecurrentOptions {
                &self.options
            }
            fn options_mut(&mut self) -> &mut RecurrentOptions {
                &mut self.options
            }
            fn boxed_clone(&self) -> Box<dyn RecurrentLayer> {
                Box::new(*self)
            }
        }
    )*};
}
recurrent_layer!(SimpleRnn, Lstm, Gru);

/// Keras `GRU(units)` with `reset_after=True` (Keras 3's default and the cuDNN form): tanh
/// activation, sigmoid recurrent activation, bias `[2, 3·units]` (input, recurrent).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gru {
    pub options: RecurrentOptions,
}

impl Gru {
    /// A GRU with `units` units and Keras's defaults.
    pub fn new(units: usize) -> Gru {
        Gru { options: RecurrentOptions::new(units) }
    }
}

impl Layer for Gru {
    fn class_name(&self) -> &'static str {
        "GRU"
    }
    fn base_name(&self) -> &'static str {
        "gru"
    }
    fn config(&self) -> serde_json::Value {
        let mut c = self.options.config("GRU");
        c["reset_after"] = true.into();
        c
    }
    fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>> {
        self.options.output_shape(name, "GRU", input)
    }
    fn params(&self, input: &[usize]) -> Vec<ParamSpec> {
        self.options.params(input, 3, Init::Zeros, 2)
    }
    recurrent_calls!("GRU", 1, |_gru| RecurrentCell::Gru);
}

impl SimpleRnn {
    /// A SimpleRNN with `units` units and tanh.
    pub fn new(units: usize) -> SimpleRnn {
        SimpleRnn { options: RecurrentOptions::new(units), activation: Activation::Tanh }
    }

    /// With another output activation (an elementwise one or linear).
    pub fn activation(mut self, activation: Activation) -> SimpleRnn {
        self.activation = activation;
        self
    }
}

impl Lstm {
    /// An LSTM with `units` units and Keras's defaults.
    pub fn new(units: usize) -> Lstm {
        Lstm { options: RecurrentOptions::new(units), unit_forget_bias: true }
    }
}

impl Layer for SimpleRnn {
    fn class_name(&self) -> &'static str {
        "SimpleRNN"
    }
    fn base_name(&self) -> &'static str {
        "simple_rnn"
    }
    fn config(&self) -> serde_json::Value {
        let mut c = self.options.config("SimpleRNN");
        c["activation"] = self.activation.name().into();
        c
    }
    fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>> {
        if self.activation == Activation::Softmax {
            return Err(Error::invalid(
                format!("layer '{name}' (SimpleRNN)"),
                "the activation must be elementwise (softmax is not)",
            ));
        }
        self.options.output_shape(name, "SimpleRNN", input)
    }
    fn params(&self, input: &[usize]) -> Vec<ParamSpec> {
        self.options.params(input, 1, Init::Zeros, 1)
    }
    recurrent_calls!("SimpleRNN", 1, |rnn| RecurrentCell::Simple { activation: rnn.activation.unary() });
}

impl Layer for Lstm {
    fn class_name(&self) -> &'static str {
        "LSTM"
    }
    fn base_name(&self) -> &'static str {
        "lstm"
    }
    fn config(&self) -> serde_json::Value {
        let mut c = self.options.config("LSTM");
        c["unit_forget_bias"] = self.unit_forget_bias.into();
        c
    }
    fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>> {
        self.options.output_shape(name, "LSTM", input)
    }
    fn params(&self, input: &[usize]) -> Vec<ParamSpec> {
        let bias =
            if self.unit_forget_bias { Init::ForgetBias { units: self.options.units } } else { Init::Zeros };
        self.options.params(input, 4, bias, 1)
    }
    recurrent_calls!("LSTM", 2, |_lstm| RecurrentCell::Lstm);
}
