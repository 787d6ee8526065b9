//! The layer graph of a [`Model`]: which layer each call runs and where its inputs come from,
//! and what follows from it per sample (shapes, parameters, names for errors and summaries).
use super::Model;
use crate::error::{Error, Result};
use crate::nn::{Layer, ParamSpec};

/// Where a value of the layer graph comes from: a model input, or output `k` of a layer call
/// (`Call(call, k)`; k > 0 only for layers of several outputs, such as `return_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TensorRef {
    Input(usize),
    Call(usize, usize),
}

/// One application of a layer to its inputs. Calls are stored so that each reads only model
/// inputs and earlier calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Index into the model's layers.
    pub layer: usize,
    pub inputs: Vec<TensorRef>,
}

/// A model input: its name (`input` by default, as in model files) and per-sample shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInput {
    pub name: String,
    pub shape: Vec<usize>,
}

impl Model {
    /// Per-sample output shape of every call, in call order; errors name the first layer whose
    /// inputs do not fit.
    pub fn output_shapes(&self) -> Result<Vec<Vec<usize>>> {
        Ok(self.call_shapes()?.into_iter().map(|mut s| s.swap_remove(0)).collect())
    }

    /// Per-sample shapes of every output of every call.
    pub(crate) fn call_shapes(&self) -> Result<Vec<Vec<Vec<usize>>>> {
        let mut shapes: Vec<Vec<Vec<usize>>> = Vec::with_capacity(self.calls.len());
        for call in &self.calls {
            let layer = &self.layers[call.layer];
            let name = &self.names[call.layer];
            let what = || format!("layer '{name}' ({})", layer.class_name());
            if !self.functional && layer.output_count() > 1 {
                return Err(Error::invalid(
                    what(),
                    "returns several tensors (return_state), which a Sequential model cannot take (as in \
                     Keras): build a functional model",
                ));
            }
            for &r in &call.inputs {
                if let TensorRef::Call(c, k) = r
                    && shapes.get(c).is_none_or(|s| k >= s.len())
                {
                    return Err(Error::invalid(
                        what(),
                        format!("reads output {k} of a call that has no such output"),
                    ));
                }
            }
            let inputs: Vec<(&str, &[usize])> =
                call.inputs.iter().map(|&r| (self.source_name(r), self.shape_in(r, &shapes))).collect();
            shapes.push(layer.output_shapes_all(name, &inputs)?);
        }
        Ok(shapes)
    }

    /// Per-sample shape of the (first) output.
    pub fn output_shape(&self) -> Result<Vec<usize>> {
        let shapes = self.call_shapes()?;
        Ok(match self.outputs.first() {
            Some(&r) => self.shape_in(r, &shapes).to_vec(),
            None => Vec::new(),
        })
    }

    /// The calls, in order.
    pub fn calls(&self) -> &[Call] {
        &self.calls
    }

    /// The model's outputs.
    pub fn outputs(&self) -> &[TensorRef] {
        &self.outputs
    }

    /// The shape of `r` given the shapes of the calls before it.
    pub(crate) fn shape_in<'a>(&'a self, r: TensorRef, call_shapes: &'a [Vec<Vec<usize>>]) -> &'a [usize] {
        match r {
            TensorRef::Input(i) => self.inputs.get(i).map_or(&[], |x| &x.shape),
            TensorRef::Call(c, k) => call_shapes.get(c).and_then(|s| s.get(k)).map_or(&[], |s| s),
        }
    }

    /// The name of what `r` is: the input's name or the called layer's.
    pub(crate) fn source_name(&self, r: TensorRef) -> &str {
        match r {
            TensorRef::Input(i) => self.inputs.get(i).map_or("input", |x| &x.name),
            TensorRef::Call(c, _) => self.calls.get(c).map_or("?", |call| &self.names[call.layer]),
        }
    }

    /// The layer (and its name) of the call that makes the (first) output; None when the output
    /// is a model input.
    pub(crate) fn output_layer(&self) -> Option<(&dyn Layer, &str)> {
        match self.outputs.first() {
            Some(&TensorRef::Call(c, _)) => {
                let layer = self.calls.get(c)?.layer;
                Some((self.layers[layer].as_ref(), &self.names[layer]))
            }
            _ => None,
        }
    }

    /// The calls that read model input `input`, with their layers' names.
    pub(crate) fn readers_of_input(&self, input: usize) -> impl Iterator<Item = (&dyn Layer, &str)> {
        self.calls.iter().filter(move |c| c.inputs.contains(&TensorRef::Input(input))).map(|c| {
            let layer = c.layer;
            (self.layers[layer].as_ref(), self.names[layer].as_str())
        })
    }

    /// Each layer's parameter specs (by layer index), from its first call's input shape. A
    /// layer called again must fit the same parameters (a shared layer has one set).
    pub(crate) fn layer_params(&self) -> Result<Vec<Vec<ParamSpec>>> {
        let shapes = self.call_shapes()?;
        let mut by_layer: Vec<Option<Vec<ParamSpec>>> = vec![None; self.layers.len()];
        for call in &self.calls {
            let first = call.inputs.first().map_or(&[][..], |&r| self.shape_in(r, &shapes));
            let specs = self.layers[call.layer].params(first);
            match &by_layer[call.layer] {
                None => by_layer[call.layer] = Some(specs),
                Some(made) => {
                    let shapes = |s: &[ParamSpec]| s.iter().map(|p| p.shape.clone()).collect::<Vec<_>>();
                    if shapes(made) != shapes(&specs) {
                        return Err(Error::invalid(
                            format!(
                                "layer '{}' ({})",
                                self.names[call.layer],
                                self.layers[call.layer].class_name()
                            ),
                            format!(
                                "is called on inputs of shape {:?}, which need other weights than its first \
                                 call's (a shared layer has one set of weights)",
                                first
                            ),
                        ));
                    }
                }
            }
        }
        Ok(by_layer.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// Parameter specs of every layer, named `<layer>.<param>`, in layer order (the order of
    /// the parameter slots).
    pub(crate) fn param_specs(&self) -> Result<Vec<(String, ParamSpec)>> {
        Ok(self
            .layer_params()?
            .into_iter()
            .zip(&self.names)
            .flat_map(|(specs, name)| specs.into_iter().map(move |p| (format!("{name}.{}", p.name), p)))
            .collect())
    }

    /// `layer` placed before every call that reads the (first) model input, reading it in
    /// their place (data augmentation such as `RandomFlip` in front of a model). The other
    /// layers keep their names.
    pub fn prepend(mut self, layer: impl Layer + 'static) -> Model {
        let shift = |r: &mut TensorRef| match r {
            TensorRef::Call(c, _) => *c += 1,
            TensorRef::Input(0) => *r = TensorRef::Call(0, 0),
            TensorRef::Input(_) => {}
        };
        for call in &mut self.calls {
            call.layer += 1;
            call.inputs.iter_mut().for_each(shift);
        }
        self.outputs.iter_mut().for_each(shift);
        self.calls.insert(0, Call { layer: 0, inputs: vec![TensorRef::Input(0)] });
        self.names.insert(0, super::sequential::unique_name(&self.names, layer.base_name()));
        self.layers.insert(0, std::sync::Arc::new(layer));
        self.compiled = None;
        self
    }
}
