//! The layer graph of a model file (functional models):
//!
//! ```toml
//! inputs = [{ name = "image", shape = [28, 28, 1] }]  # or input_shape (one input, "input")
//! outputs = ["head"]               # default: the last layer
//! [[layers]]
//! type = "Conv2D"
//! name = "stem"                    # default: Keras's automatic name (conv2d, conv2d_1, …)
//! inputs = ["image"]               # default: the layer before (the model input for the first)
//! [[layers]]
//! type = "Add"
//! inputs = ["stem", "conv2d"]      # a merge names all its inputs
//! ```
//! A layer used several times with one set of weights (a shared layer) lists one input list
//! per call, `inputs = [["a"], ["b"]]`; its second call's output is `name[1]`, and output j of
//! call k of a layer with several (`return_state`) `name[k][j]`. A cycle, a name
//! that is no layer or input, or a shape that does not fit is an error naming the layer.
use std::collections::HashMap;

use serde_json::{Map, Value};

use super::sequential::unique_name;
use super::{Call, Model, ModelInput, TensorRef};
use crate::error::{Error, Result};
use crate::nn::Layer;

/// A model file's graph: names, inputs, and every call of every layer.
#[derive(Debug, Clone)]
pub struct SpecGraph {
    pub names: Vec<String>,
    /// The model inputs' names and (when the file gives them) shapes.
    pub inputs: Vec<(String, Option<Vec<usize>>)>,
    pub calls: Vec<Call>,
    pub outputs: Vec<TensorRef>,
}

/// Whether a model file describes a graph rather than a chain of layers.
pub(crate) fn is_graph(obj: &Map<String, Value>, layers: &[Value]) -> bool {
    obj.contains_key("inputs")
        || obj.contains_key("outputs")
        || layers.iter().any(|l| l.get("inputs").is_some() || l.get("name").is_some())
}

/// The graph of a model file whose layer tables are `tables` (their `name` and `inputs` keys).
pub(crate) fn parse_graph(
    obj: &Map<String, Value>,
    tables: &[Value],
    layers: &[Box<dyn Layer>],
    input_shape: Option<&[usize]>,
) -> Result<SpecGraph> {
    let inputs = match obj.get("inputs") {
        None => vec![("input".to_string(), input_shape.map(<[usize]>::to_vec))],
        Some(v) => model_inputs(v)?,
    };
    // Names: the explicit ones, then Keras's automatic ones for the others, in order.
    let explicit: Vec<Option<String>> = tables
        .iter()
        .enumerate()
        .map(|(i, t)| match t.get("name") {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() && !s.contains(['[', ']']) => Ok(Some(s.clone())),
            Some(v) => Err(Error::invalid(
                format!("layer {}", i + 1),
                format!("'name' must be a non-empty string without brackets, got {v}"),
            )),
        })
        .collect::<Result<_>>()?;
    let mut taken: Vec<String> = explicit.iter().flatten().cloned().collect();
    taken.extend(inputs.iter().map(|(n, _)| n.clone()));
    let mut names = Vec::new();
    for (i, (layer, name)) in layers.iter().zip(&explicit).enumerate() {
        let name = match name {
            Some(n) => n.clone(),
            None => {
                let n = unique_name(&taken, layer.base_name());
                taken.push(n.clone());
                n
            }
        };
        if names.contains(&name) || inputs.iter().any(|(n, _)| *n == name) {
            return Err(Error::invalid(format!("layer {} ({name})", i + 1), "has a name already taken"));
        }
        names.push(name);
    }
    // Every call as (layer, the names of its inputs), the default being the layer before.
    let mut wanted: Vec<(usize, Vec<String>)> = Vec::new();
    for (i, table) in tables.iter().enumerate() {
        let what = || format!("layer '{}'", names[i]);
        let lists: Vec<Vec<String>> = match table.get("inputs") {
            None if i == 0 => vec![vec![inputs[0].0.clone()]],
            None => vec![vec![names[i - 1].clone()]],
            Some(v) => input_lists(v).ok_or_else(|| {
                Error::invalid(
                    what(),
                    format!(
                        "'inputs' must be a list of names, or one list per call of a shared layer, got {v}"
                    ),
                )
            })?,
        };
        wanted.extend(lists.into_iter().map(|l| (i, l)));
    }
    let outputs: Vec<String> = match obj.get("outputs") {
        None => vec![names.last().cloned().unwrap_or_default()],
        Some(v) => strings(v).ok_or_else(|| Error::invalid("model", "'outputs' must be a list of names"))?,
    };
    let mut order =
        Order { names: &names, inputs: &inputs, wanted: &wanted, placed: HashMap::new(), calls: vec![] };
    for c in 0..wanted.len() {
        order.place(c, &mut Vec::new())?;
    }
    let outputs = outputs.iter().map(|o| order.resolve(o, "model outputs")).collect::<Result<Vec<_>>>()?;
    let calls = order.calls;
    Ok(SpecGraph { names, inputs, calls, outputs })
}

/// Calls placed so that each follows its inputs (depth first over the file's order).
struct Order<'a> {
    names: &'a [String],
    inputs: &'a [(String, Option<Vec<usize>>)],
    wanted: &'a [(usize, Vec<String>)],
    /// Wanted call → placed call index.
    placed: HashMap<usize, usize>,
    calls: Vec<Call>,
}

impl Order<'_> {
    /// The wanted call and output that `reference` ("name", "name[k]" for call k, or
    /// "name[k][j]" for its output j) names, or the model input.
    fn target(&self, reference: &str, reader: &str) -> Result<std::result::Result<(usize, usize), usize>> {
        let mut parts = reference.split('[');
        let name = parts.next().unwrap_or_default();
        let indices: Vec<Option<usize>> =
            parts.map(|p| p.strip_suffix(']').and_then(|n| n.parse::<usize>().ok())).collect();
        let (k, j) = match indices.as_slice() {
            [] => (Some(0), Some(0)),
            [k] => (*k, Some(0)),
            [k, j] => (*k, *j),
            _ => (None, None),
        };
        if let Some(i) = self.inputs.iter().position(|(n, _)| n == name) {
            return Ok(Err(i));
        }
        let layer = self.names.iter().position(|n| n == name);
        let call = layer.zip(k).and_then(|(l, k)| {
            self.wanted.iter().enumerate().filter(|(_, (wl, _))| *wl == l).nth(k).map(|(c, _)| c)
        });
        call.zip(j).map(Ok).ok_or_else(|| {
            let known: Vec<&str> = self
                .inputs
                .iter()
                .map(|(n, _)| n.as_str())
                .chain(self.names.iter().map(String::as_str))
                .collect();
            Error::invalid(
                reader.to_string(),
                format!(
                    "reads '{reference}', which is no layer (call) or input (known: {})",
                    known.join(", ")
                ),
            )
        })
    }

    fn resolve(&self, reference: &str, reader: &str) -> Result<TensorRef> {
        Ok(match self.target(reference, reader)? {
            Err(input) => TensorRef::Input(input),
            Ok((c, j)) => TensorRef::Call(self.placed[&c], j),
        })
    }

    /// Place wanted call `c` after its inputs; `path`: the calls being placed (cycle check).
    fn place(&mut self, c: usize, path: &mut Vec<usize>) -> Result<()> {
        if self.placed.contains_key(&c) {
            return Ok(());
        }
        let (layer, refs) = &self.wanted[c];
        let reader = format!("layer '{}'", self.names[*layer]);
        if path.contains(&c) {
            let cycle: Vec<&str> =
                path.iter().chain([&c]).map(|&p| self.names[self.wanted[p].0].as_str()).collect();
            return Err(Error::invalid(reader, format!("is in a cycle of inputs: {}", cycle.join(" → "))));
        }
        path.push(c);
        for r in refs {
            if let Ok((dep, _)) = self.target(r, &reader)? {
                self.place(dep, path)?;
            }
        }
        path.pop();
        let inputs = refs.iter().map(|r| self.resolve(r, &reader)).collect::<Result<Vec<_>>>()?;
        self.calls.push(Call { layer: *layer, inputs });
        self.placed.insert(c, self.calls.len() - 1);
        Ok(())
    }
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array()?.iter().map(|s| s.as_str().map(String::from)).collect()
}

/// `["a", "b"]` (one call) or `[["a"], ["b"]]` (one list per call).
fn input_lists(v: &Value) -> Option<Vec<Vec<String>>> {
    let list = v.as_array()?;
    if list.iter().all(Value::is_array) && !list.is_empty() {
        list.iter().map(strings).collect()
    } else {
        strings(v).filter(|l| !l.is_empty()).map(|l| vec![l])
    }
}

/// `[{ name = "image", shape = [28, 28, 1] }, …]`.
fn model_inputs(v: &Value) -> Result<Vec<(String, Option<Vec<usize>>)>> {
    let bad = || Error::invalid("inputs", "must be a list of tables { name = \"…\", shape = [sizes] }");
    let list = v.as_array().filter(|l| !l.is_empty()).ok_or_else(bad)?;
    let mut out: Vec<(String, Option<Vec<usize>>)> = Vec::new();
    for item in list {
        let t = item.as_object().ok_or_else(bad)?;
        if t.keys().any(|k| k != "name" && k != "shape") {
            return Err(bad());
        }
        let name = t.get("name").and_then(Value::as_str).ok_or_else(bad)?.to_string();
        let shape = match t.get("shape") {
            None => None,
            Some(s) => Some(super::spec::usizes(s).ok_or_else(bad)?),
        };
        if out.iter().any(|(n, _)| *n == name) {
            return Err(Error::invalid("inputs", format!("'{name}' is listed twice")));
        }
        out.push((name, shape));
    }
    Ok(out)
}

impl SpecGraph {
    /// The model of `layers` on this graph; the first input's shape defaults to `input_shape`.
    pub(crate) fn into_model(self, layers: Vec<Box<dyn Layer>>, input_shape: &[usize]) -> Model {
        let inputs = self
            .inputs
            .into_iter()
            .enumerate()
            .map(|(i, (name, shape))| ModelInput {
                name,
                shape: shape.unwrap_or_else(|| if i == 0 { input_shape.to_vec() } else { Vec::new() }),
            })
            .collect();
        let layers = layers.into_iter().map(std::sync::Arc::from).collect();
        Model::from_parts(inputs, layers, self.names, self.calls, self.outputs, true)
    }
}

impl Model {
    /// A reference to `r` as model files write it: the input's or layer's name, `name[k]` for
    /// the k-th call (from 0) of a shared layer.
    fn reference(&self, r: TensorRef) -> String {
        match r {
            TensorRef::Input(i) => self.inputs[i].name.clone(),
            TensorRef::Call(c, j) => {
                let layer = self.calls[c].layer;
                let k = self.calls[..c].iter().filter(|x| x.layer == layer).count();
                match (k, j) {
                    (0, 0) => self.names[layer].clone(),
                    (k, 0) => format!("{}[{k}]", self.names[layer]),
                    (k, j) => format!("{}[{k}][{j}]", self.names[layer]),
                }
            }
        }
    }

    /// The config of a functional model: inputs, layers with their names and inputs, outputs.
    pub(crate) fn graph_config(&self) -> Value {
        let layers: Vec<Value> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                let mut config = layer.config();
                let calls: Vec<Vec<String>> = self
                    .calls
                    .iter()
                    .filter(|c| c.layer == i)
                    .map(|c| c.inputs.iter().map(|&r| self.reference(r)).collect())
                    .collect();
                if let Some(map) = config.as_object_mut() {
                    map.insert("name".into(), Value::from(self.names[i].clone()));
                    let inputs = match calls.as_slice() {
                        [one] => serde_json::json!(one),
                        _ => serde_json::json!(calls),
                    };
                    map.insert("inputs".into(), inputs);
                }
                config
            })
            .collect();
        let inputs: Vec<Value> =
            self.inputs.iter().map(|i| serde_json::json!({ "name": i.name, "shape": i.shape })).collect();
        let outputs: Vec<String> = self.outputs.iter().map(|&r| self.reference(r)).collect();
        serde_json::json!({ "inputs": inputs, "layers": layers, "outputs": outputs })
    }
}
