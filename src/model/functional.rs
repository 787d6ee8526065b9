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

/// A value of a model under construction: a model input, or the output of a layer call. It
/// holds its per-sample shape and what made it.
#[derive(Debug, Clone)]
pub struct SymbolicTensor(Rc<Node>);

#[derive(Debug)]
struct Node {
    shape: Vec<usize>,
    source: Source,
    /// When the node was made (process-wide): a node's inputs are always older, so this
    /// order is topological, and it is the order a reader wrote the model in.
    seq: u64,
}

/// The next node's `seq`.
fn next_seq() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[derive(Debug)]
enum Source {
    Input { name: String },
    Call { layer: Arc<dyn Layer>, inputs: Vec<SymbolicTensor> },
}

impl SymbolicTensor {
    /// Per-sample shape (without the batch).
    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }

    /// A short description for errors: the input's name or the layer's class.
    fn describe(&self) -> String {
        match &self.0.source {
            Source::Input { name } => name.clone(),
            Source::Call { layer, .. } => layer.base_name().to_string(),
        }
    }

    fn key(&self) -> *const Node {
        Rc::as_ptr(&self.0)
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
        SymbolicTensor(Rc::new(Node {
            shape: shape.to_vec(),
            source: Source::Input { name: name.into() },
            seq: next_seq(),
        }))
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
}

impl<L: Layer + 'static> CallLayer for L {
    fn call(self, x: &SymbolicTensor) -> Result<SymbolicTensor> {
        apply(Arc::new(self), &[x])
    }
    fn call_many(self, xs: &[&SymbolicTensor]) -> Result<SymbolicTensor> {
        apply(Arc::new(self), xs)
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
        apply(self.0.clone(), &[x])
    }
    fn call_many(self, xs: &[&SymbolicTensor]) -> Result<SymbolicTensor> {
        apply(self.0.clone(), xs)
    }
}

/// The output of `layer` on `xs`, its shape checked now (so a mistake shows where it is made).
fn apply(layer: Arc<dyn Layer>, xs: &[&SymbolicTensor]) -> Result<SymbolicTensor> {
    if xs.is_empty() {
        return Err(Error::invalid(format!("layer {}", layer.class_name()), "called on no inputs"));
    }
    let names: Vec<String> = xs.iter().map(|x| x.describe()).collect();
    let inputs: Vec<(&str, &[usize])> =
        names.iter().map(String::as_str).zip(xs.iter().map(|x| x.shape())).collect();
    let shape = layer.output_shape_many(layer.base_name(), &inputs)?;
    let inputs = xs.iter().map(|&x| x.clone()).collect();
    Ok(SymbolicTensor(Rc::new(Node { shape, source: Source::Call { layer, inputs }, seq: next_seq() })))
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
            let Source::Input { name } = &x.0.source else {
                return Err(Error::invalid(
                    "model",
                    format!("input {} is the output of a layer, not an Input", i + 1),
                ));
            };
            if collect.input_index.insert(x.key(), i).is_some() {
                return Err(Error::invalid("model", format!("input '{name}' is listed twice")));
            }
            let taken: Vec<String> = model_inputs.iter().map(|m: &ModelInput| m.name.clone()).collect();
            model_inputs.push(ModelInput { name: unique_name(&taken, name), shape: x.shape().to_vec() });
        }
        for y in outputs {
            collect.reach(y)?;
        }
        collect.place();
        let outputs: Vec<TensorRef> = outputs.iter().map(|y| collect.done[&y.key()]).collect();
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
    input_index: HashMap<*const Node, usize>,
    /// The calls reached, by node.
    reached: HashMap<*const Node, SymbolicTensor>,
    done: HashMap<*const Node, TensorRef>,
    layer_index: HashMap<*const (), usize>,
    layers: Vec<Arc<dyn Layer>>,
    calls: Vec<Call>,
}

impl Collect {
    /// Every node `root` depends on (an explicit stack: deep models do not exhaust the
    /// thread's stack); inputs must be the model's.
    fn reach(&mut self, root: &SymbolicTensor) -> Result<()> {
        let mut stack = vec![root.clone()];
        while let Some(t) = stack.pop() {
            if self.done.contains_key(&t.key()) || self.reached.contains_key(&t.key()) {
                continue;
            }
            match &t.0.source {
                Source::Input { name } => {
                    let index = self.input_index.get(&t.key()).copied().ok_or_else(|| {
                        Error::invalid(
                            "model",
                            format!(
                                "an output depends on the input '{name}' ({:?}), which is not among the \
                                 model's inputs",
                                t.shape()
                            ),
                        )
                    })?;
                    self.done.insert(t.key(), TensorRef::Input(index));
                }
                Source::Call { inputs, .. } => {
                    stack.extend(inputs.iter().cloned());
                    self.reached.insert(t.key(), t.clone());
                }
            }
        }
        Ok(())
    }

    /// The reached calls in creation order (each after its inputs), shared layers once.
    fn place(&mut self) {
        let mut nodes: Vec<SymbolicTensor> = self.reached.values().cloned().collect();
        nodes.sort_by_key(|t| t.0.seq);
        for t in nodes {
            let Source::Call { layer, inputs } = &t.0.source else { continue };
            // Shared layers are one entry, found by the identity of their Arc.
            let id = Arc::as_ptr(layer) as *const ();
            let next = self.layers.len();
            let index = *self.layer_index.entry(id).or_insert(next);
            if index == next {
                self.layers.push(layer.clone());
            }
            let inputs = inputs.iter().map(|x| self.done[&x.key()]).collect();
            self.calls.push(Call { layer: index, inputs });
            self.done.insert(t.key(), TensorRef::Call(self.calls.len() - 1));
        }
    }
}
