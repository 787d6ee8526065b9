//! Sequence models through `kiln train`: the JapaneseVowels protocol (LSTM(64), Adam 1e-3,
//! batch 32, 60 epochs; PyTorch reaches 0.960 / 0.962 / 0.968 over 3 seeds) on the CPU and on
//! the GPU adapter, `.ts` files found by the UEA naming, and `kiln eval` of a checkpoint.
use kiln::cli::{EvalArgs, PredictArgs, TrainArgs, eval, predict, train};

use crate::common::{self, TempDir};

fn vowels(device: &str, epochs: usize) -> TrainArgs {
    TrainArgs {
        data: Some("japanese-vowels".into()),
        model: "lstm".into(),
        device: device.into(),
        epochs,
        batch_size: 32,
        json: true,
        ..TrainArgs::default()
    }
}

#[test]
fn japanese_vowels_lstm_reaches_0955_on_the_cpu_and_the_gpu() {
    let r = train(&vowels("cpu", 60)).unwrap();
    assert!(r.test_accuracy >= 0.955, "JapaneseVowels LSTM(64), CPU: test accuracy {}", r.test_accuracy);
    if common::gpu().is_some() {
        let g = train(&vowels("gpu", 60)).unwrap();
        assert!(g.test_accuracy >= 0.955, "JapaneseVowels LSTM(64), GPU: test accuracy {}", g.test_accuracy);
    }
}

#[test]
fn a_ts_file_pair_trains_and_its_checkpoint_evaluates_alike() {
    let dir = TempDir::new("ts-pair");
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    for split in ["TRAIN", "TEST"] {
        let name = format!("JapaneseVowels_{split}.ts.gz");
        std::fs::copy(assets.join(&name), dir.join(format!("Vowels_{split}.ts.gz"))).unwrap();
    }
    let data = dir.join("Vowels_TRAIN.ts.gz").display().to_string();
    let out = dir.join("run");
    let args = TrainArgs { data: Some(data), epochs: 15, out: Some(out.clone()), ..vowels("cpu", 15) };
    let r = train(&args).unwrap();
    assert!(r.test_accuracy > 0.8, "15 epochs on the copied files: {}", r.test_accuracy);
    let e = eval(&EvalArgs {
        checkpoint: out.join("model.safetensors"),
        data: None,
        split: "test".into(),
        seed: None,
        device: "cpu".into(),
        batch_size: 64,
        json: true,
        metrics: None,
    })
    .unwrap();
    assert_eq!(e.samples, 370, "the _TEST file beside the _TRAIN one is the test split");
    assert!(
        (e.accuracy - r.test_accuracy).abs() < 1e-6,
        "eval {} vs train's {}",
        e.accuracy,
        r.test_accuracy
    );
    // `kiln predict` on the .ts file: one prediction per series, padded and standardised as
    // in training, so its top classes score the same accuracy.
    let test_file = dir.join("Vowels_TEST.ts.gz");
    let p = predict(&PredictArgs {
        checkpoint: out.join("model.safetensors"),
        inputs: vec![test_file.clone()],
        top: 1,
        device: "cpu".into(),
        json: true,
        horizon: 1,
    })
    .unwrap();
    let labels = kiln::data::ts::load_ts(&test_file).unwrap();
    assert_eq!((p.len(), p[0].input.clone()), (370, format!("{}:1", test_file.display())));
    let right = p.iter().zip(&labels.y).filter(|(p, y)| p.top[0].0 == **y as usize).count();
    assert!((right as f32 / 370.0 - e.accuracy).abs() < 1e-6, "predict {right}/370 vs eval {}", e.accuracy);
}
