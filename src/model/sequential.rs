//! `Sequential` (Keras `Sequential`): a [`Model`] whose layers form a chain, each reading the
//! one before. It is a `Model` (it dereferences to one), so compile, fit, evaluate, predict,
//! summary, checkpoints and callbacks are the same.
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::{Call, Model, ModelInput, TensorRef};
use crate::nn::Layer;

/// A linear stack of layers (Keras `Sequential`).
pub struct Sequential(Model);

impl Sequential {
    /// An empty model taking samples of `input_shape` (without the batch dimension).
    pub fn new(input_shape: &[usize]) -> Sequential {
        let input = ModelInput { name: "input".into(), shape: input_shape.to_vec() };
        Sequential(Model::from_parts(vec![input], Vec::new(), Vec::new(), Vec::new(), Vec::new(), false))
    }

    /// Seed for weight initialisation and shuffling (default 0).
    pub fn with_seed(self, seed: u64) -> Sequential {
        Sequential(self.0.with_seed(seed))
    }

    /// Append a layer; it is named `<base>`, `<base>_1`, ... as in Keras.
    #[allow(clippy::should_implement_trait)] // Keras's name for it
    pub fn add(self, layer: impl Layer + 'static) -> Sequential {
        self.add_boxed(Box::new(layer))
    }

    /// Insert a layer at `index` (0: first); layers are renamed Keras-style in their new order.
    pub fn insert(mut self, index: usize, layer: impl Layer + 'static) -> Sequential {
        let mut layers = std::mem::take(&mut self.0.layers);
        self.0.names.clear();
        self.0.calls.clear();
        layers.insert(index.min(layers.len()), Arc::new(layer));
        layers.into_iter().fold(self, |m, l| m.push(l))
    }

    /// Append an already boxed layer (model files build layers at run time).
    pub fn add_boxed(self, layer: Box<dyn Layer>) -> Sequential {
        self.push(Arc::from(layer))
    }

    fn push(mut self, layer: Arc<dyn Layer>) -> Sequential {
        let m = &mut self.0;
        m.names.push(unique_name(&m.names, layer.base_name()));
        let input = match m.calls.len() {
            0 => TensorRef::Input(0),
            n => TensorRef::Call(n - 1, 0),
        };
        m.calls.push(Call { layer: m.layers.len(), inputs: vec![input] });
        m.layers.push(layer);
        m.outputs = vec![TensorRef::Call(m.calls.len() - 1, 0)];
        m.compiled = None;
        self
    }

    /// The model (a Sequential is one).
    pub fn into_model(self) -> Model {
        self.0
    }
}

/// Keras's automatic layer name: `base` for the first layer of its kind, then `base_1`, … (the
/// count of names taken so far that are `base` or `base_<n>`).
pub(crate) fn unique_name(taken: &[String], base: &str) -> String {
    let count = taken
        .iter()
        .filter(|n| {
            n.as_str() == base
                || n.strip_prefix(base).and_then(|r| r.strip_prefix('_')).is_some_and(is_number)
        })
        .count();
    let mut name = if count == 0 { base.to_string() } else { format!("{base}_{count}") };
    // A name the user chose may already be `base_<count>`: go on counting.
    let mut n = count;
    while taken.contains(&name) {
        n += 1;
        name = format!("{base}_{n}");
    }
    name
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

impl Deref for Sequential {
    type Target = Model;
    fn deref(&self) -> &Model {
        &self.0
    }
}

impl DerefMut for Sequential {
    fn deref_mut(&mut self) -> &mut Model {
        &mut self.0
    }
}

impl From<Sequential> for Model {
    fn from(s: Sequential) -> Model {
        s.0
    }
}
