//! Model files (TOML / JSON): parsing, the round trip through `Model::config`, training
//! a user's file through the CLI path, and errors naming the layer and key.
use kiln::cli::{TrainArgs, preset, train};
use kiln::model::spec::{load_model_file, parse_model};

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    crate::common::temp_file("spec", name, text)
}

const SMALL_CNN: &str = r#"
# The bundled digits are 8x8 grey images; input_shape comes from the data.
[[layers]]
type = "Conv2D"
filters = 8
kernel_size = 3
padding = "same"
activation = "relu"

[[layers]]
type = "BatchNormalization"

[[layers]]
type = "MaxPooling2D"
pool_size = [2, 2]

[[layers]]
type = "Dropout"
rate = 0.1

[[layers]]
type = "Flatten"

[[layers]]
type = "Dense"
units = 10
activation = "softmax"
"#;

#[test]
fn a_toml_model_file_trains_through_the_cli() {
    let path = temp_file("small_cnn.toml", SMALL_CNN);
    let args = TrainArgs {
        model: path.display().to_string(),
        device: "cpu".into(),
        epochs: 20,
        json: true,
        ..TrainArgs::default()
    };
    let r = train(&args).unwrap();
    assert!(r.test_accuracy > 0.96, "digits with a TOML CNN: {}", r.test_accuracy);
    let spec = load_model_file(&path).unwrap();
    assert!(spec.wants_images() && spec.input_shape.is_none());
    let m = spec.into_model(&[8, 8, 1], 0);
    // conv 3·3·1·8 + 8, batch norm 4·8 (16 non-trainable), dense 4·4·8·10 + 10.
    assert_eq!(m.param_count().unwrap(), 80 + 32 + 1290);
    assert!(m.summary().unwrap().contains("Non-trainable params: 16"));
}

#[test]
fn presets_round_trip_through_their_json_description() {
    for (name, shape) in [("mnist-cnn", vec![28, 28, 1]), ("cnn", vec![8, 8, 1]), ("mlp", vec![64])] {
        let m = preset(name, &shape, 10, 0).unwrap();
        let json = m.config();
        let text = serde_json::to_string_pretty(&json).unwrap();
        let path = temp_file(&format!("{name}.json"), &text);
        let back = load_model_file(&path).unwrap().into_model(&[1], 0);
        assert_eq!(back.config(), json, "{name}");
        assert_eq!(back.param_count().unwrap(), m.param_count().unwrap());
        assert_eq!(back.summary().unwrap(), m.summary().unwrap());
    }
}

#[test]
fn model_file_errors_name_the_layer_and_the_problem() {
    let bad = |text: &str| {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        parse_model(&v).err().map(|e| e.to_string()).unwrap_or_default()
    };
    let e = bad(r#"{"layers": [{"type": "Dense", "units": 4}, {"type": "Dense", "unit": 3}]}"#);
    assert!(e.contains("layer 2 (Dense)") && e.contains("unknown key 'unit'"), "{e}");
    let e = bad(r#"{"layers": [{"type": "ConvLSTM2D", "units": 4}]}"#);
    assert!(e.contains("unknown layer type 'ConvLSTM2D'"), "{e}");
    let e = bad(r#"{"layers": [{"type": "Conv2D", "filters": 4, "kernel_size": [3, 3, 3]}]}"#);
    assert!(e.contains("kernel_size") && e.contains("pair"), "{e}");
    let e = bad(r#"{"layers": [{"type": "Dense", "units": 4, "activation": "gelux"}]}"#);
    assert!(e.contains("unknown activation"), "{e}");
    let e = bad(r#"{"layers": []}"#);
    assert!(e.contains("no layers"), "{e}");
    let e = bad(r#"{"layer": []}"#);
    assert!(e.contains("unknown key 'layer'"), "{e}");
    // Through the CLI: a TOML syntax error names the file.
    let path = temp_file("broken.toml", "[[layers]\ntype = ");
    let args = TrainArgs { model: path.display().to_string(), epochs: 1, json: true, ..TrainArgs::default() };
    let e = train(&args).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("broken.toml"), "{e}");
    // A file whose input_shape does not match the data.
    let path = temp_file("wrong.toml", "input_shape = [28, 28, 1]\n[[layers]]\ntype = \"Flatten\"\n");
    let args = TrainArgs { model: path.display().to_string(), epochs: 1, json: true, ..TrainArgs::default() };
    let e = train(&args).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("does not match"), "{e}");
}
