//! Model files: a network described as data (JSON or TOML, one table per layer) so users
//! build their own models without writing Rust, and the description a checkpoint keeps.
//!
//! ```toml
//! input_shape = [28, 28, 1]        # optional: the data's sample shape
//! [[layers]]
//! type = "Conv2D"                  # Keras class names (or snake_case: conv2d)
//! filters = 32
//! kernel_size = 3                  # or [3, 3]; strides, dilation_rate, pool_size alike
//! activation = "relu"
//! [[layers]]
//! type = "MaxPooling2D"
//! pool_size = 2
//! [[layers]]
//! type = "Flatten"
//! [[layers]]
//! type = "Dense"
//! units = 10
//! activation = "softmax"
//! kernel_regularizer = { l2 = 1e-4 }  # Dense and Conv2D; or "l1" / "l2" (factor 0.01)
//! ```
//! JSON is the same object: `{"input_shape": [...], "layers": [{"type": "Dense", ...}]}`.
//! Unknown layer types and keys are errors naming the layer, so typos do not pass silently.
use std::path::Path;

use serde_json::{Map, Value};

use super::Model;
use crate::error::{Error, Result};
use crate::nn::{
    Activation, ActivationLayer, Add, Average, AveragePooling2D, BatchNormalization, Bidirectional,
    Concatenate, Conv1D, Conv2D, Dense, Dropout, Embedding, Flatten, GlobalAveragePooling1D,
    GlobalAveragePooling2D, GlobalMaxPooling1D, Gru, Layer, Lstm, Masking, MaxPooling2D, Maximum, MergeMode,
    Minimum, Multiply, RandomFlip, RecurrentLayer, RecurrentOptions, Regularizer, Reshape, SimpleRnn,
    Subtract,
};
use crate::program::Padding;

/// A parsed model file: the layers and, if given, the per-sample input shape.
#[derive(Debug)]
pub struct ModelSpec {
    pub input_shape: Option<Vec<usize>>,
    pub layers: Vec<Box<dyn Layer>>,
    /// The layer graph of a file that names layers' inputs (a functional model); None for a
    /// chain of layers (a Sequential model).
    pub graph: Option<super::spec_graph::SpecGraph>,
}

impl ModelSpec {
    /// The model for samples of `input_shape` (the file's own shape wins when it has one).
    pub fn into_model(self, input_shape: &[usize], seed: u64) -> Model {
        let shape = self.input_shape.unwrap_or_else(|| input_shape.to_vec());
        if let Some(graph) = self.graph {
            return graph.into_model(self.layers, &shape).with_seed(seed);
        }
        let mut m = super::Sequential::new(&shape).with_seed(seed);
        for layer in self.layers {
            m = m.add_boxed(layer);
        }
        m.into_model()
    }

    /// Whether the first layer takes images (so flat data should be viewed as images).
    pub fn wants_images(&self) -> bool {
        self.layers.first().is_some_and(|l| {
            matches!(
                l.class_name(),
                "Conv2D" | "MaxPooling2D" | "AveragePooling2D" | "GlobalAveragePooling2D" | "RandomFlip"
            )
        })
    }
}

impl ModelSpec {
    /// Whether the first layer takes sequences `(steps, features)`.
    pub fn wants_sequences(&self) -> bool {
        self.layers.first().is_some_and(|l| {
            matches!(
                l.class_name(),
                "Masking"
                    | "SimpleRNN"
                    | "LSTM"
                    | "GRU"
                    | "Bidirectional"
                    | "Conv1D"
                    | "GlobalAveragePooling1D"
                    | "GlobalMaxPooling1D"
            )
        })
    }
}

/// Read a model file (`.json`, else TOML).
pub fn load_model_file(path: &Path) -> Result<ModelSpec> {
    let text =
        std::fs::read_to_string(path).map_err(|source| Error::Io { source, path: path.to_path_buf() })?;
    parse_model_text(&text, path)
}

/// A model file's text: JSON when `path` ends in `.json`, else TOML; `path` names it in errors.
pub fn parse_model_text(text: &str, path: &Path) -> Result<ModelSpec> {
    let parse_error = |message: String| Error::Parse {
        path: path.to_path_buf(),
        location: "model file".into(),
        message: crate::error::shorten_lines(&message),
    };
    let value: Value = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
        serde_json::from_str(text).map_err(|e| parse_error(e.to_string()))?
    } else {
        let t: toml::Value = toml::from_str(text).map_err(|e| parse_error(e.to_string()))?;
        serde_json::to_value(t).map_err(|e| parse_error(e.to_string()))?
    };
    parse_model(&value).map_err(|e| match e {
        Error::Invalid { what, message } => Error::Parse {
            path: path.to_path_buf(),
            location: crate::error::shorten_lines(&what),
            message: crate::error::shorten_lines(&message),
        },
        other => other,
    })
}

/// A model description from its JSON value.
pub fn parse_model(value: &Value) -> Result<ModelSpec> {
    let obj = value.as_object().ok_or_else(|| Error::invalid("model", "must be a table/object"))?;
    const KEYS: [&str; 4] = ["input_shape", "inputs", "layers", "outputs"];
    if let Some(key) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(Error::invalid("model", format!("unknown key '{key}' (known: {})", KEYS.join(", "))));
    }
    let mut input_shape = match obj.get("input_shape") {
        None => None,
        Some(v) => Some(usizes(v).ok_or_else(|| Error::invalid("input_shape", "must be a list of sizes"))?),
    };
    let list = obj
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::invalid("model", "needs a list of layers ([[layers]] tables in TOML)"))?;
    // A layer's place in the graph (`name`, `inputs`) is the model's, not the layer's settings.
    let settings = |l: &Value| match l.as_object() {
        Some(map) => {
            let mut map = map.clone();
            map.remove("name");
            map.remove("inputs");
            Value::Object(map)
        }
        None => l.clone(),
    };
    let layers =
        list.iter().enumerate().map(|(i, l)| parse_layer(i, &settings(l))).collect::<Result<Vec<_>>>()?;
    if layers.is_empty() {
        return Err(Error::invalid("model", "has no layers"));
    }
    let graph = match super::spec_graph::is_graph(obj, list) {
        true => {
            let graph = super::spec_graph::parse_graph(obj, list, &layers, input_shape.as_deref())?;
            if let Some((_, Some(shape))) = graph.inputs.first() {
                input_shape = Some(shape.clone());
            }
            Some(graph)
        }
        false => None,
    };
    Ok(ModelSpec { input_shape, layers, graph })
}

impl Model {
    /// The model description (the model-file format as JSON): input shape and layer configs.
    pub fn config(&self) -> Value {
        if self.functional {
            return self.graph_config();
        }
        let layers: Vec<Value> = self.layers.iter().map(|l| l.config()).collect();
        serde_json::json!({ "input_shape": self.input_shape(), "layers": layers })
    }
}

pub(crate) fn usizes(v: &Value) -> Option<Vec<usize>> {
    v.as_array()?.iter().map(|x| x.as_u64().and_then(|n| usize::try_from(n).ok())).collect()
}

/// The settings of one layer table, with errors naming the layer.
struct Table<'a> {
    map: &'a Map<String, Value>,
    context: String,
}

impl Table<'_> {
    fn error(&self, message: String) -> Error {
        Error::invalid(self.context.clone(), message)
    }

    fn only(&self, known: &[&str]) -> Result<()> {
        match self.map.keys().find(|k| *k != "type" && !known.contains(&k.as_str())) {
            Some(k) => Err(self.error(format!("unknown key '{k}' (known: {})", known.join(", ")))),
            None => Ok(()),
        }
    }

    fn size(&self, key: &str) -> Result<Option<usize>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| self.error(format!("'{key}' must be a non-negative integer, got {v}"))),
        }
    }

    fn required(&self, key: &str) -> Result<usize> {
        self.size(key)?.ok_or_else(|| self.error(format!("needs '{key}'")))
    }

    /// An integer or a pair of integers.
    fn pair(&self, key: &str) -> Result<Option<(usize, usize)>> {
        let Some(v) = self.map.get(key) else { return Ok(None) };
        let bad = || self.error(format!("'{key}' must be an integer or a pair of integers, got {v}"));
        if let Some(n) = v.as_u64() {
            let n = usize::try_from(n).map_err(|_| bad())?;
            return Ok(Some((n, n)));
        }
        match usizes(v).as_deref() {
            Some(&[a, b]) => Ok(Some((a, b))),
            _ => Err(bad()),
        }
    }

    fn float(&self, key: &str) -> Result<Option<f32>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(|f| Some(f as f32))
                .ok_or_else(|| self.error(format!("'{key}' must be a number"))),
        }
    }

    fn flag(&self, key: &str) -> Result<Option<bool>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(v) => {
                v.as_bool().map(Some).ok_or_else(|| self.error(format!("'{key}' must be true or false")))
            }
        }
    }

    /// `kernel_regularizer`: "l1" or "l2" (Keras's factor 0.01), or a table `{ l1 = …, l2 = … }`.
    fn regularizer(&self) -> Result<Option<Regularizer>> {
        let Some(v) = self.map.get("kernel_regularizer") else { return Ok(None) };
        let bad = || {
            self.error(format!(
                "'kernel_regularizer' must be \"l1\", \"l2\" or a table {{ l1 = F, l2 = F }}, got {v}"
            ))
        };
        let r = match v {
            Value::String(s) if s == "l1" => Regularizer::l1(0.01),
            Value::String(s) if s == "l2" => Regularizer::l2(0.01),
            Value::Object(m) => {
                let factor = |k: &str| m.get(k).map_or(Some(0.0), |f| f.as_f64().map(|f| f as f32));
                if m.keys().any(|k| k != "l1" && k != "l2") {
                    return Err(bad());
                }
                Regularizer::l1_l2(factor("l1").ok_or_else(bad)?, factor("l2").ok_or_else(bad)?)
            }
            _ => return Err(bad()),
        };
        r.validate(&self.context)?;
        Ok(Some(r))
    }

    fn activation(&self) -> Result<Activation> {
        match self.map.get("activation") {
            None => Ok(Activation::Linear),
            Some(v) => v.as_str().and_then(Activation::parse).ok_or_else(|| {
                self.error(format!("unknown activation {v} (known: {})", Activation::known_names()))
            }),
        }
    }

    fn padding(&self) -> Result<Padding> {
        match self.map.get("padding").map(|v| v.as_str()) {
            None | Some(Some("valid")) => Ok(Padding::Valid),
            Some(Some("same")) => Ok(Padding::Same),
            Some(_) => Err(self.error("'padding' must be \"valid\" or \"same\"".into())),
        }
    }
}

/// The keys of Conv2D and Conv1D tables (Keras's).
const CONV_KEYS: [&str; 8] = [
    "filters",
    "kernel_size",
    "strides",
    "padding",
    "dilation_rate",
    "activation",
    "use_bias",
    "kernel_regularizer",
];

fn parse_layer(index: usize, value: &Value) -> Result<Box<dyn Layer>> {
    let context = format!("layer {}", index + 1);
    let map = value.as_object().ok_or_else(|| Error::invalid(&context, "must be a table/object"))?;
    let kind = map
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid(&context, "needs a 'type' (e.g. \"Dense\")"))?;
    let t = Table { map, context: format!("{context} ({kind})") };
    let normalized: String = kind.chars().filter(|c| *c != '_').collect::<String>().to_ascii_lowercase();
    Ok(match normalized.as_str() {
        "dense" => {
            t.only(&["units", "activation", "use_bias", "kernel_regularizer"])?;
            let mut d = Dense::new(t.required("units")?, t.activation()?);
            d.use_bias = t.flag("use_bias")?.unwrap_or(true);
            d.kernel_regularizer = t.regularizer()?;
            Box::new(d)
        }
        "conv2d" => {
            t.only(&CONV_KEYS)?;
            let kernel = t.pair("kernel_size")?.ok_or_else(|| t.error("needs 'kernel_size'".into()))?;
            let mut c = Conv2D::new(t.required("filters")?, 1, t.activation()?).padding(t.padding()?);
            c.kernel_size = kernel;
            c.strides = t.pair("strides")?.unwrap_or((1, 1));
            c.dilation = t.pair("dilation_rate")?.unwrap_or((1, 1));
            c.use_bias = t.flag("use_bias")?.unwrap_or(true);
            c.kernel_regularizer = t.regularizer()?;
            Box::new(c)
        }
        "conv1d" => {
            t.only(&CONV_KEYS)?;
            // An integer, or Keras's saved one-element list.
            let one = |key: &str| -> Result<Option<usize>> {
                match t.map.get(key).and_then(usizes).as_deref() {
                    Some(&[k]) => Ok(Some(k)),
                    _ => t.size(key),
                }
            };
            let kernel = one("kernel_size")?.ok_or_else(|| t.error("needs 'kernel_size'".into()))?;
            let mut c = Conv1D::new(t.required("filters")?, kernel, t.activation()?).padding(t.padding()?);
            c.strides = one("strides")?.unwrap_or(1);
            c.dilation = one("dilation_rate")?.unwrap_or(1);
            c.use_bias = t.flag("use_bias")?.unwrap_or(true);
            c.kernel_regularizer = t.regularizer()?;
            Box::new(c)
        }
        // Keras TimeDistributed(Dense): Dense on sequences applies to every step already.
        "timedistributed" => {
            t.only(&["layer"])?;
            let inner = t.map.get("layer").and_then(Value::as_object);
            let inner = inner.filter(|l| l.get("type").and_then(Value::as_str) == Some("Dense")).ok_or_else(
                || t.error("needs 'layer', a Dense table (e.g. { type = \"Dense\", units = 8 })".into()),
            )?;
            parse_layer(index, &Value::Object(inner.clone()))?
        }
        "maxpooling2d" | "averagepooling2d" => {
            t.only(&["pool_size", "strides", "padding"])?;
            let pool = t.pair("pool_size")?.unwrap_or((2, 2));
            let strides = t.pair("strides")?.unwrap_or(pool);
            if normalized == "maxpooling2d" {
                let mut p = MaxPooling2D::new(1).strides(strides.0, strides.1).padding(t.padding()?);
                p.0.pool_size = pool;
                Box::new(p)
            } else {
                let mut p = AveragePooling2D::new(1).strides(strides.0, strides.1).padding(t.padding()?);
                p.0.pool_size = pool;
                Box::new(p)
            }
        }
        // The layers without settings.
        "globalaveragepooling1d" | "globalmaxpooling1d" | "globalaveragepooling2d" | "flatten" => {
            t.only(&[])?;
            match normalized.as_str() {
                "globalaveragepooling1d" => Box::new(GlobalAveragePooling1D),
                "globalmaxpooling1d" => Box::new(GlobalMaxPooling1D),
                "globalaveragepooling2d" => Box::new(GlobalAveragePooling2D),
                _ => Box::new(Flatten),
            }
        }
        "reshape" => {
            t.only(&["target_shape"])?;
            let shape = t.map.get("target_shape").and_then(usizes);
            Box::new(Reshape::new(
                &shape.ok_or_else(|| t.error("needs 'target_shape', a list of sizes".into()))?,
            ))
        }
        "dropout" => {
            t.only(&["rate"])?;
            Box::new(Dropout::new(t.float("rate")?.ok_or_else(|| t.error("needs 'rate'".into()))?))
        }
        "batchnormalization" => {
            t.only(&["momentum", "epsilon"])?;
            let d = BatchNormalization::default();
            Box::new(BatchNormalization {
                momentum: t.float("momentum")?.unwrap_or(d.momentum),
                epsilon: t.float("epsilon")?.unwrap_or(d.epsilon),
            })
        }
        "randomflip" => {
            t.only(&["mode"])?;
            match t.map.get("mode").and_then(Value::as_str) {
                None | Some("horizontal") => Box::new(RandomFlip),
                Some(other) => {
                    return Err(t.error(format!("mode '{other}' is not supported (only \"horizontal\")")));
                }
            }
        }
        "add" | "subtract" | "multiply" | "average" | "maximum" | "minimum" => {
            t.only(&[])?;
            match normalized.as_str() {
                "add" => Box::new(Add),
                "subtract" => Box::new(Subtract),
                "multiply" => Box::new(Multiply),
                "average" => Box::new(Average),
                "maximum" => Box::new(Maximum),
                _ => Box::new(Minimum),
            }
        }
        "concatenate" => {
            t.only(&["axis"])?;
            let axis = match t.map.get("axis") {
                None => -1,
                Some(v) => {
                    v.as_i64().ok_or_else(|| t.error(format!("'axis' must be an integer, got {v}")))?
                }
            };
            Box::new(Concatenate::axis(axis))
        }
        "activation" => {
            t.only(&["activation"])?;
            Box::new(ActivationLayer(t.activation()?))
        }
        "embedding" => {
            t.only(&["input_dim", "output_dim", "mask_zero"])?;
            let e = Embedding::new(t.required("input_dim")?, t.required("output_dim")?);
            Box::new(e.mask_zero(t.flag("mask_zero")?.unwrap_or(false)))
        }
        "masking" => {
            t.only(&["mask_value"])?;
            Box::new(Masking { mask_value: t.float("mask_value")?.unwrap_or(0.0) })
        }
        "simplernn" | "lstm" | "gru" => recurrent_layer(&t, &normalized)?,
        "bidirectional" => {
            t.only(&["layer", "merge_mode"])?;
            let inner = t.map.get("layer").and_then(Value::as_object).ok_or_else(|| {
                t.error(
                    "needs 'layer', a table with the recurrent layer (e.g. { type = \"LSTM\", units = 32 })"
                        .into(),
                )
            })?;
            let kind = inner.get("type").and_then(Value::as_str).unwrap_or_default();
            let inner_t = Table { map: inner, context: format!("{} layer ({kind})", t.context) };
            let normalized: String =
                kind.chars().filter(|c| *c != '_').collect::<String>().to_ascii_lowercase();
            if !matches!(normalized.as_str(), "simplernn" | "lstm" | "gru") {
                return Err(t.error(format!("wraps a SimpleRNN, LSTM or GRU, not '{kind}'")));
            }
            let layer = recurrent_layer(&inner_t, &normalized)?;
            let mode = match t.map.get("merge_mode").and_then(Value::as_str) {
                None => MergeMode::Concat,
                Some(m) => MergeMode::parse(m)
                    .ok_or_else(|| t.error(format!("merge_mode '{m}' (known: concat, sum, mul, ave)")))?,
            };
            Box::new(Bidirectional::of(layer.as_ref()).merge_mode(mode))
        }
        _ => {
            return Err(t.error(format!(
                "unknown layer type '{kind}' (known: Dense, Conv2D, MaxPooling2D, AveragePooling2D, \
                 GlobalAveragePooling2D, Flatten, Reshape, Dropout, BatchNormalization, RandomFlip, Activation, \
                 Embedding, Masking, SimpleRNN, LSTM, GRU, Bidirectional, Conv1D, GlobalAveragePooling1D, \
                 GlobalMaxPooling1D, TimeDistributed, Add, Subtract, Multiply, Average, Maximum, Minimum, \
                 Concatenate)"
            )));
        }
    })
}

/// A SimpleRNN, LSTM or GRU (`normalized`: its lower-case type) from its table.
fn recurrent_layer(t: &Table, normalized: &str) -> Result<Box<dyn RecurrentLayer>> {
    let mut keys = vec![
        "units",
        "use_bias",
        "return_sequences",
        "go_backwards",
        "dropout",
        "recurrent_dropout",
        "return_state",
    ];
    match normalized {
        "lstm" => keys.push("unit_forget_bias"),
        "gru" => keys.push("reset_after"),
        _ => keys.push("activation"),
    }
    t.only(&keys)?;
    let mut options = RecurrentOptions::new(t.required("units")?);
    options.use_bias = t.flag("use_bias")?.unwrap_or(true);
    options.return_sequences = t.flag("return_sequences")?.unwrap_or(false);
    options.go_backwards = t.flag("go_backwards")?.unwrap_or(false);
    options.dropout = t.float("dropout")?.unwrap_or(0.0);
    options.recurrent_dropout = t.float("recurrent_dropout")?.unwrap_or(0.0);
    // Several outputs: a functional model takes them (`name[k][j]`), a chain refuses them.
    options.return_state = t.flag("return_state")?.unwrap_or(false);
    Ok(match normalized {
        "lstm" => Box::new(Lstm { options, unit_forget_bias: t.flag("unit_forget_bias")?.unwrap_or(true) }),
        "gru" => {
            if t.flag("reset_after")? == Some(false) {
                return Err(
                    t.error("reset_after = false is not supported (Keras 3's default, true, is)".into())
                );
            }
            Box::new(Gru { options })
        }
        _ => {
            let activation =
                if t.map.contains_key("activation") { t.activation()? } else { Activation::Tanh };
            Box::new(SimpleRnn { options, activation })
        }
    })
}
