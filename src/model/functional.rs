//! The functional API (Keras `keras.Input`, `layer(x)`, `keras.Model(inputs, outputs)`):
//! symbolic tensors record the layer calls that make them, with their shapes checked as each
//! call is made; [`Model::new`] collects the calls between the inputs and the outputs.
//!
//! ```
//! use kiln::model::{CallLayer, Input, Model};
//! use kiln::nn::{Activation, Add, Dense};
//! let x = Input::new(&[8]);
//! let h = Dense::new(8, Activation::Relu).call(&x)?;
//! let skip = Add.call_many(&[&x, &h])?; // a residual connection
//! let out = Dense::new(3, Activation::Softmax).call(&skip)?;
//! let model = Model::new(&[x], &[out])?;
//! assert_eq!(model.layer_names(), ["dense", "add", "dense_1"]);
//! # Ok::<(), kiln::Error>(())
//! ```
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use super::sequential::unique_name;
use super::{Call, Model, ModelInput, TensorRef};
use crate::error::{Error, Result};
use crate::nn::Layer;

/// A value of a model under construction: a model input, or an output of a layer call. It
/// holds its per-sample shape and what made it.
#[derive(Debug, Clone)]
pub struct SymbolicTensor {
    shape: Vec<usize>,
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    Input(Rc<InputNode>),
    /// Output `index` of a call.
    Output {
        call: Rc<CallNode>,
        index: usize,
    },
}

#[derive(Debug)]
struct InputNode {
    name: String,
}

#[derive(Debug)]
struct CallNode {
    layer: Arc<dyn Layer>,
    inputs: Vec<SymbolicTensor>,
    /// When the call was made (process-wide): a call's inputs are always older, so this order
    /// is topological, and it is the order a reader wrote the model in.
    seq: u64,
}

/// The next call's `seq`.
fn next_seq() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl SymbolicTensor {
    /// Per-sample shape (without the batch).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// A short description for errors: the input's name or the layer's class.
    fn describe(&self) -> String {
        match &self.source {
            Source::Input(input) => input.name.clone(),
            Source::Output { call, .. } => call.layer.base_name().to_string(),
        }
    }
}

/// Model inputs (Keras `keras.Input`).
pub struct Input;

impl Input {
    /// A model input taking samples of `shape` (without the batch), named `input`.
    #[allow(clippy::new_ret_no_self)] // Keras's `Input(shape)` makes a tensor, not a layer
    pub fn new(shape: &[usize]) -> SymbolicTensor {
        Input::named("input", shape)
    }

    /// A model input with a name (for summaries and, with several inputs, data).
    pub fn named(name: &str, shape: &[usize]) -> SymbolicTensor {
        let input = Rc::new(InputNode { name: name.into() });
        SymbolicTensor { shape: shape.to_vec(), source: Source::Input(input) }
    }
}

/// A layer that can be called on symbolic tensors. Calling a plain layer makes a new layer
/// (its own weights); calling a [`Shared`] layer again reuses its weights, as calling one
/// Keras layer object twice does.
pub trait CallLayer {
    /// The layer applied to `x`.
    fn call(self, x: &SymbolicTensor) -> Result<SymbolicTensor>;
    /// The layer applied to several inputs (merge layers: `Add`, `Concatenate`, …).
    fn call_many(self, xs: &[&SymbolicTensor]) -> Result<SymbolicTensor>;
    /// Every output of the layer on `xs`: for a recurrent layer with `return_state`, its
    /// output then the final states (`[output, h, c]` for an LSTM), as Keras returns them.
    fn call_outputs(self, xs: &[&SymbolicTensor]) -> Result<Vec<SymbolicTensor>>;
}

impl<L: Layer + 'static> CallLayer for L {
    fn call(self, x: &SymbolicTensor) -> Result<SymbolicTensor> {
        single(apply(Arc::new(self), &[x])?)
    }
    fn call_many(self, xs: &[&SymbolicTensor]) -> Result<SymbolicTensor> {
        single(apply(Arc::new(self), xs)?)
    }
    fn call_outputs(self, xs: &[&SymbolicTensor]) -> Result<Vec<SymbolicTensor>> {
        apply(Arc::new(self), xs)
    }
}

/// The one output of a call, or an error saying to take them all.
fn single(mut outputs: Vec<SymbolicTensor>) -> Result<SymbolicTensor> {
    match outputs.len() {
        1 => Ok(outputs.swap_remove(0)),
        n => {
            let class = outputs.first().map_or(String::new(), |t| t.describe());
            Err(Error::invalid(
                format!("layer {class}"),
                format!("returns {n} tensors (return_state): take them with call_outputs"),
            ))
        }
    }
}

/// A layer used at several places of a model with one set of weights (Keras: one layer object
/// called several times). The gradients of every use add up.
#[derive(Debug, Clone)]
pub struct Shared(Arc<dyn Layer>);

impl Shared {
    pub fn new(layer: impl Layer + 'static) -> Shared {
        Shared(Arc::new(layer))
    }
}

impl CallLayer for &Shared {
    fn call(self, x: &SymbolicTensor) -> Result<SymbolicTensor> {
        single(apply(self.0.clone(), &[x])?)
    }
    fn call_many(self, xs: &[&SymbolicTensor]) -> Result<SymbolicTensor> {
        single(apply(self.0.clone(), xs)?)
    }
    fn call_outputs(self, xs: &[&SymbolicTensor]) -> Result<Vec<SymbolicTensor>> {
        apply(self.0.clone(), xs)
    }
}

/// The outputs of `layer` on `xs`, their shapes checked now (so a mistake shows where it is
/// made).
fn apply(layer: Arc<dyn Layer>, xs: &[&SymbolicTensor]) -> Result<Vec<SymbolicTensor>> {
    if xs.is_empty() {
        return Err(Error::invalid(format!("layer {}", layer.class_name()), "called on no inputs"));
    }
    let names: Vec<String> = xs.iter().map(|x| x.describe()).collect();
    let inputs: Vec<(&str, &[usize])> =
        names.iter().map(String::as_str).zip(xs.iter().map(|x| x.shape())).collect();
    let shapes = layer.output_shapes_all(layer.base_name(), &inputs)?;
    let inputs = xs.iter().map(|&x| x.clone()).collect();
    let call = Rc::new(CallNode { layer, inputs, seq: next_seq() });
    Ok(shapes
        .into_iter()
        .enumerate()
        .map(|(index, shape)| SymbolicTensor { shape, source: Source::Output { call: call.clone(), index } })
        .collect())
}

impl Model {
    /// The model computing `outputs` from `inputs` (Keras `keras.Model(inputs, outputs)`):
    /// every layer call between them, layers named Keras-style (`dense`, `dense_1`, …) in the
    /// order of their first call. An output that needs an input not listed is an error.
    pub fn new(inputs: &[SymbolicTensor], outputs: &[SymbolicTensor]) -> Result<Model> {
        if inputs.is_empty() || outputs.is_empty() {
            return Err(Error::invalid("model", "needs at least one input and one output"));
        }
        let mut collect = Collect { input_index: HashMap::new(), ..Collect::default() };
        let mut model_inputs = Vec::new();
        for (i, x) in inputs.iter().enumerate() {
            let Source::Input(node) = &x.source else {
                return Err(Error::invalid(
                    "model",
                    format!("input {} is the output of a layer, not an Input", i + 1),
                ));
            };
            let name = &node.name;
            if collect.input_index.insert(Rc::as_ptr(node), i).is_some() {
                return Err(Error::invalid("model", format!("input '{name}' is listed twice")));
            }
            let taken: Vec<String> = model_inputs.iter().map(|m: &ModelInput| m.name.clone()).collect();
            model_inputs.push(ModelInput { name: unique_name(&taken, name), shape: x.shape().to_vec() });
        }
        for y in outputs {
            collect.reach(y)?;
        }
        collect.place();
        let outputs: Vec<TensorRef> = outputs.iter().map(|y| collect.reference(y)).collect();
        if outputs.iter().any(|r| matches!(r, TensorRef::Input(_))) {
            return Err(Error::invalid("model", "an output is a model input: add a layer between them"));
        }
        let mut names = Vec::new();
        for layer in &collect.layers {
            names.push(unique_name(&names, layer.base_name()));
        }
        Ok(Model::from_parts(model_inputs, collect.layers, names, collect.calls, outputs, true))
    }
}

/// The calls reached from the outputs, placed in the order they were made (Keras names layers
/// in that order too).
#[derive(Default)]
struct Collect {
    input_index: HashMap<*const InputNode, usize>,
    /// The calls reached, by node.
    reached: HashMap<*const CallNode, Rc<CallNode>>,
    placed: HashMap<*const CallNode, usize>,
    layer_index: HashMap<*const (), usize>,
    layers: Vec<Arc<dyn Layer>>,
    calls: Vec<Call>,
}

impl Collect {
    /// Every call `root` depends on (an explicit stack: deep models do not exhaust the
    /// thread's stack); inputs must be the model's.
    fn reach(&mut self, root: &SymbolicTensor) -> Result<()> {
        let mut stack = vec![root.clone()];
        while let Some(t) = stack.pop() {
            match &t.source {
                Source::Input(node) => {
                    if !self.input_index.contains_key(&Rc::as_ptr(node)) {
                        return Err(Error::invalid(
                            "model",
                            format!(
                                "an output depends on the input '{}' ({:?}), which is not among the \
                                 model's inputs",
                                node.name,
                                t.shape()
                            ),
                        ));
                    }
                }
                Source::Output { call, .. } => {
                    if self.reached.insert(Rc::as_ptr(call), call.clone()).is_none() {
                        stack.extend(call.inputs.iter().cloned());
                    }
                }
            }
        }
        Ok(())
    }

    /// Where `t` comes from, once its call is placed.
    fn reference(&self, t: &SymbolicTensor) -> TensorRef {
        match &t.source {
            Source::Input(node) => TensorRef::Input(self.input_index[&Rc::as_ptr(node)]),
            Source::Output { call, index } => TensorRef::Call(self.placed[&Rc::as_ptr(call)], *index),
        }
    }

    /// The reached calls in creation order (each after its inputs), shared layers once.
    fn place(&mut self) {
        let mut calls: Vec<Rc<CallNode>> = self.reached.values().cloned().collect();
        calls.sort_by_key(|c| c.seq);
        for call in calls {
            // Shared layers are one entry, found by the identity of their Arc.
            let id = Arc::as_ptr(&call.layer) as *const ();
            let next = self.layers.len();
            let index = *self.layer_index.entry(id).or_insert(next);
            if index == next {
                self.layers.push(call.layer.clone());
            }
            let inputs = call.inputs.iter().map(|x| self.reference(x)).collect();
            self.calls.push(Call { layer: index, inputs });
            self.placed.insert(Rc::as_ptr(&call), self.calls.len() - 1);
        }
    }
}
