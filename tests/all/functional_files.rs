//! Functional models as data: model files whose layers name their inputs, the round trip of
//! `Model::config` (shared layers included) and of checkpoints, training a branched file
//! through the CLI, and the errors of a broken graph.
use kiln::cli::{TrainArgs, train};
use kiln::model::spec::{load_model_file, parse_model};
use kiln::model::{CallLayer, Input, Model, Shared};
use kiln::nn::{Add, Concatenate};
use kiln::{Activation, Checkpoint, CompileOptions, Dense, Device, FitOptions, Loss, Optimizer, Tensor};

use crate::common;

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    common::temp_file("functional", name, text)
}

/// A residual MLP for the bundled digits (64 features): the skip adds `stem` to `dense_1`.
const RESIDUAL_MLP: &str = r#"
[[layers]]
type = "Dense"
name = "stem"
units = 64
activation = "relu"

[[layers]]
type = "Dense"
units = 64
activation = "relu"

[[layers]]
type = "Dense"
units = 64

[[layers]]
type = "Add"
inputs = ["stem", "dense_1"]

[[layers]]
type = "Dense"
units = 10
activation = "softmax"
"#;

#[test]
fn a_branched_model_file_trains_through_the_cli() {
    let path = temp_file("residual.toml", RESIDUAL_MLP);
    let spec = load_model_file(&path).unwrap();
    let model = spec.into_model(&[64], 0);
    assert!(model.is_functional());
    assert_eq!(model.layer_names(), ["stem", "dense", "dense_1", "add", "dense_2"]);
    let summary = model.summary().unwrap();
    assert!(summary.contains("['stem[0][0]',") && summary.contains(" 'dense_1[0][0]']"), "{summary}");
    // 3 · (64·64 + 64) + 64·10 + 10.
    assert_eq!(model.param_count().unwrap(), 3 * 4160 + 650);
    let args = TrainArgs {
        model: path.display().to_string(),
        device: "cpu".into(),
        epochs: 10,
        json: true,
        ..TrainArgs::default()
    };
    let r = train(&args).unwrap();
    assert!(r.test_accuracy > 0.95, "digits with a residual model file: {}", r.test_accuracy);
}

/// Two branches of one shared Dense, joined; then a head.
fn shared_branches() -> Model {
    let x = Input::named("features", &[5]);
    let shared = Shared::new(Dense::new(5, Activation::Tanh));
    let a = shared.call(&x).unwrap();
    let b = Dense::new(5, Activation::Relu).call(&x).unwrap();
    let c = shared.call(&b).unwrap();
    let joined = Concatenate::new().call_many(&[&a, &c, &b]).unwrap();
    let sum = Add.call_many(&[&a, &c]).unwrap();
    let both = Concatenate::new().call_many(&[&joined, &sum]).unwrap();
    let out = Dense::new(3, Activation::Softmax).call(&both).unwrap();
    Model::new(&[x], &[out]).unwrap().with_seed(6)
}

#[test]
fn functional_models_round_trip_through_config_and_checkpoints() {
    let model = shared_branches();
    let config = model.config();
    // The shared layer lists one input list per call; the second call is read as `dense[1]`.
    assert_eq!(config["layers"][0]["inputs"], serde_json::json!([["features"], ["dense_1"]]));
    assert!(config.to_string().contains("\"dense[1]\""), "{config}");
    let text = serde_json::to_string_pretty(&config).unwrap();
    let back = load_model_file(&temp_file("shared.json", &text)).unwrap().into_model(&[1], 6);
    assert_eq!(back.config(), config);
    assert_eq!(back.calls(), model.calls());
    assert_eq!(back.summary().unwrap(), model.summary().unwrap());
    // Trained, saved and loaded: the same predictions, bit for bit.
    let mut rng = common::rng(5);
    let x = Tensor::new(&[40, 5], common::uniform(&mut rng, 200, -1.0, 1.0)).unwrap();
    let y = Tensor::new(&[40], (0..40).map(|i| (i % 3) as f32).collect()).unwrap();
    let mut m = model;
    m.compile(CompileOptions::new(Optimizer::adam(1e-2), Loss::SparseCategoricalCrossentropy, Device::Cpu))
        .unwrap();
    m.fit(&x, &y, &FitOptions { batch_size: 8, epochs: 2, verbose: 0, ..Default::default() }).unwrap();
    let path = temp_file("shared.safetensors", "");
    m.save(&path).unwrap();
    let mut loaded = Checkpoint::load(&path).unwrap().into_model(Device::Cpu).unwrap();
    assert!(loaded.is_functional());
    assert_eq!(loaded.predict(&x, 16).unwrap(), m.predict(&x, 16).unwrap());
}

#[test]
fn broken_graphs_in_model_files_name_the_layer() {
    let bad = |text: &str| {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        match parse_model(&v) {
            Err(e) => e.to_string(),
            Ok(spec) => {
                spec.into_model(&[4], 0).output_shapes().err().map(|e| e.to_string()).unwrap_or_default()
            }
        }
    };
    let e = bad(r#"{"layers": [{"type": "Dense", "units": 4, "name": "a", "inputs": ["b"]},
                       {"type": "Dense", "units": 4, "name": "b", "inputs": ["a"]}]}"#);
    assert!(e.contains("layer 'a'") && e.contains("cycle") && e.contains("a → b → a"), "{e}");
    let e =
        bad(r#"{"layers": [{"type": "Dense", "units": 4}, {"type": "Add", "inputs": ["dense", "dens"]}]}"#);
    assert!(e.contains("layer 'add'") && e.contains("'dens'") && e.contains("known: input, dense"), "{e}");
    let e =
        bad(r#"{"layers": [{"type": "Dense", "units": 3}, {"type": "Add", "inputs": ["input", "dense"]}]}"#);
    assert!(e.contains("layer 'add' (Add)") && e.contains("(None, 4)") && e.contains("(None, 3)"), "{e}");
    let e = bad(
        r#"{"layers": [{"type": "Dense", "units": 3, "name": "x"}, {"type": "Dense", "units": 3, "name": "x"}]}"#,
    );
    assert!(e.contains("name already taken"), "{e}");
    let e = bad(r#"{"layers": [{"type": "Dense", "units": 3}], "outputs": ["dense[1]"]}"#);
    assert!(e.contains("'dense[1]'"), "{e}");
    let e = bad(r#"{"inputs": [{"name": "a"}, {"name": "a"}], "layers": [{"type": "Dense", "units": 3}]}"#);
    assert!(e.contains("listed twice"), "{e}");
}

/// Two heads on one hidden layer, named in the file's `outputs`.
const TWO_HEADS: &str = r#"
outputs = ["class", "ink"]

[[layers]]
type = "Dense"
name = "hidden"
units = 16
activation = "relu"

[[layers]]
type = "Dense"
name = "class"
inputs = ["hidden"]
units = 10
activation = "softmax"

[[layers]]
type = "Dense"
name = "ink"
inputs = ["hidden"]
units = 1
"#;

#[test]
fn a_model_file_of_two_outputs_loads_round_trips_and_the_cli_says_what_it_cannot_train() {
    let path = temp_file("two_heads.toml", TWO_HEADS);
    let model = load_model_file(&path).unwrap().into_model(&[64], 0);
    assert_eq!(model.output_names(), ["class", "ink"]);
    let config = model.config();
    assert_eq!(config["outputs"], serde_json::json!(["class", "ink"]));
    let again = parse_model(&config).unwrap().into_model(&[64], 0);
    assert_eq!(again.output_names(), ["class", "ink"]);
    assert_eq!(again.config(), config);
    assert_eq!(again.summary().unwrap(), model.summary().unwrap());
    // `kiln train` has one label set: it refuses before training, naming both outputs.
    let args = TrainArgs { model: path.display().to_string(), device: "cpu".into(), ..TrainArgs::default() };
    let message = train(&args).unwrap_err().to_string();
    assert!(message.contains("2 outputs (class, ink)") && message.contains("with_outputs"), "{message}");
}
