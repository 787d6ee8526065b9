//! `return_state` (Keras): a recurrent layer's call also returns its final states, h (and an
//! LSTM's c), as further outputs of a functional model: values, gradients through them, GPU =
//! CPU, the config round trip and the errors.
use kiln::model::{CallLayer, Input, Model};
use kiln::nn::{Concatenate, Gru, Lstm, SimpleRnn, Subtract};
use kiln::{Activation, CompileOptions, Dense, Device, FitOptions, Loss, Optimizer, Tensor};

use crate::common;
use crate::gradcheck::{Fill, TestInput, check_graph};

fn compiled(mut m: Model, device: Device, loss: Loss) -> Model {
    m.compile(CompileOptions::new(Optimizer::adam(1e-2), loss, device)).unwrap();
    m
}

fn sequences(rows: usize, steps: usize, features: usize, seed: u64) -> Tensor {
    let mut rng = common::rng(seed);
    Tensor::new(&[rows, steps, features], common::uniform(&mut rng, rows * steps * features, -1.0, 1.0))
        .unwrap()
}

#[test]
fn the_states_are_the_last_output_and_the_cell_and_carry_gradients() {
    let x = Input::new(&[5, 2]);
    // h is the last output: out − h is exactly zero; with return_sequences, h is the last step.
    let outs = Lstm::new(3).return_state(true).call_outputs(&[&x]).unwrap();
    assert_eq!(outs.len(), 3);
    assert!(outs.iter().all(|o| o.shape() == [3]));
    let zero = Subtract.call_many(&[&outs[0], &outs[1]]).unwrap();
    let mut m =
        compiled(Model::new(std::slice::from_ref(&x), &[zero]).unwrap(), Device::Cpu, Loss::MeanSquaredError);
    let data = sequences(4, 5, 2, 1);
    assert!(m.predict(&data, 4).unwrap().data.iter().all(|&v| v == 0.0));
    let seq = Lstm::new(3).return_sequences(true).return_state(true).call_outputs(&[&x]).unwrap();
    assert_eq!(seq[0].shape(), [5, 3]);
    let both = Concatenate::new().call_many(&[&seq[1], &seq[2]]).unwrap();
    let mut m =
        compiled(Model::new(std::slice::from_ref(&x), &[both]).unwrap(), Device::Cpu, Loss::MeanSquaredError);
    let hc = m.predict(&data, 4).unwrap();
    let mut seq_model = compiled(
        Model::new(std::slice::from_ref(&x), &[seq[0].clone()]).unwrap(),
        Device::Cpu,
        Loss::MeanSquaredError,
    );
    seq_model.set_weights(&m.get_weights().unwrap()).unwrap();
    let all = seq_model.predict(&data, 4).unwrap();
    for b in 0..4 {
        assert_eq!(
            &hc.data[b * 6..b * 6 + 3],
            &all.data[(b * 5 + 4) * 3..(b * 5 + 5) * 3],
            "h of sample {b}"
        );
    }
    // Bidirectional: [out, h_f, c_f, h_b, c_b]; the concatenated last output is [h_f, h_b].
    let bi = kiln::nn::Bidirectional::new(Lstm::new(3).return_state(true)).call_outputs(&[&x]).unwrap();
    assert_eq!(bi.len(), 5);
    assert_eq!(bi[0].shape(), [6]);
    let states = Concatenate::new().call_many(&[&bi[1], &bi[3]]).unwrap();
    let zero = Subtract.call_many(&[&bi[0], &states]).unwrap();
    let mut m =
        compiled(Model::new(std::slice::from_ref(&x), &[zero]).unwrap(), Device::Cpu, Loss::MeanSquaredError);
    assert!(m.predict(&data, 4).unwrap().data.iter().all(|&v| v == 0.0));
    let out = Dense::new(2, Activation::Linear)
        .call(&Concatenate::new().call_many(&[&bi[2], &bi[4]]).unwrap())
        .unwrap();
    let model = Model::new(std::slice::from_ref(&x), &[out]).unwrap();
    let mut inputs: Vec<TestInput> = vec![(vec![2, 5, 2], Fill::Random, true)];
    for (_, shape) in model.parameter_shapes().unwrap() {
        inputs.push((shape, Fill::Random, true));
    }
    check_graph("bidirectional return_state", &inputs, &|g, n| {
        model.forward_on(g, &n[..1], &n[1..]).unwrap()
    });
    // Gradients through every state output (f64 central differences), for each cell and
    // processing direction.
    for backwards in [false, true] {
        let lstm = Lstm::new(3).go_backwards(backwards).return_state(true).call_outputs(&[&x]).unwrap();
        let gru = Gru::new(2).go_backwards(backwards).return_state(true).call_outputs(&[&x]).unwrap();
        let rnn = SimpleRnn::new(2).return_sequences(true).return_state(true).call_outputs(&[&x]).unwrap();
        let joined = Concatenate::new().call_many(&[&lstm[1], &lstm[2], &gru[1], &rnn[1]]).unwrap();
        let out = Dense::new(2, Activation::Linear).call(&joined).unwrap();
        let model = Model::new(std::slice::from_ref(&x), &[out]).unwrap();
        let mut inputs: Vec<TestInput> = vec![(vec![3, 5, 2], Fill::Random, true)];
        for (_, shape) in model.parameter_shapes().unwrap() {
            inputs.push((shape, Fill::Random, true));
        }
        check_graph("return_state", &inputs, &|g, n| model.forward_on(g, &n[..1], &n[1..]).unwrap());
    }
}

#[test]
fn masked_sequences_return_the_last_valid_steps_states_with_their_gradients() {
    // Lengths 5, 3 and 1, padded with zeros at the end; Masking(0) before the LSTM.
    let lengths = [5usize, 3, 1];
    let mut rng = common::rng(9);
    let mut data = Vec::new();
    for &len in &lengths {
        for t in 0..5 {
            let v = common::uniform(&mut rng, 2, 0.2, 1.0);
            data.extend(if t < len { v } else { vec![0.0, 0.0] });
        }
    }
    let x = Input::new(&[5, 2]);
    let masked = kiln::nn::Masking { mask_value: 0.0 }.call(&x).unwrap();
    let outs = Lstm::new(3).return_state(true).call_outputs(&[&masked]).unwrap();
    let joined = Concatenate::new().call_many(&[&outs[1], &outs[2]]).unwrap();
    let out = Dense::new(2, Activation::Linear).call(&joined).unwrap();
    let model = Model::new(&[x], &[out]).unwrap();
    let as_f64: Vec<f64> = data.iter().map(|&v| f64::from(v)).collect();
    let mut inputs: Vec<TestInput> = vec![(vec![3, 5, 2], Fill::Fixed(as_f64), false)];
    for (_, shape) in model.parameter_shapes().unwrap() {
        inputs.push((shape, Fill::Random, true));
    }
    check_graph("masked return_state", &inputs, &|g, n| model.forward_on(g, &n[..1], &n[1..]).unwrap());
    // The states of a padded sequence are those of the same sequence without its padding.
    let mut m = compiled(model, Device::Cpu, Loss::MeanSquaredError);
    let full = m.predict(&Tensor::new(&[3, 5, 2], data.clone()).unwrap(), 3).unwrap();
    let short_x = Input::new(&[3, 2]);
    let outs = Lstm::new(3).return_state(true).call_outputs(&[&short_x]).unwrap();
    let joined = Concatenate::new().call_many(&[&outs[1], &outs[2]]).unwrap();
    let out = Dense::new(2, Activation::Linear).call(&joined).unwrap();
    let mut short = compiled(Model::new(&[short_x], &[out]).unwrap(), Device::Cpu, Loss::MeanSquaredError);
    short.set_weights(&m.get_weights().unwrap()).unwrap();
    let second: Vec<f32> = data[10..16].to_vec(); // sample 1's three valid steps
    let p = short.predict(&Tensor::new(&[1, 3, 2], second).unwrap(), 1).unwrap();
    for (a, b) in p.data.iter().zip(&full.data[2..4]) {
        assert!((a - b).abs() < 1e-6, "{:?} vs {:?}", p.data, &full.data[2..4]);
    }
}

/// An encoder whose final h and c feed a classifier.
fn state_classifier(device: Device) -> Model {
    let x = Input::new(&[7, 3]);
    let outs = Lstm::new(5).return_state(true).call_outputs(&[&x]).unwrap();
    let gru = Gru::new(4).return_sequences(true).return_state(true).call_outputs(&[&x]).unwrap();
    let joined = Concatenate::new().call_many(&[&outs[1], &outs[2], &gru[1]]).unwrap();
    let out = Dense::new(3, Activation::Softmax).call(&joined).unwrap();
    compiled(Model::new(&[x], &[out]).unwrap().with_seed(5), device, Loss::SparseCategoricalCrossentropy)
}

#[test]
fn return_state_models_train_the_same_on_gpu_and_cpu_and_round_trip() {
    let x = sequences(17, 7, 3, 2);
    let y = Tensor::new(&[17], (0..17).map(|i| (i % 3) as f32).collect()).unwrap();
    let mut cpu = state_classifier(Device::Cpu);
    let summary = cpu.summary().unwrap();
    assert!(summary.contains("[(None, 5), (None, 5), (None, 5)]"), "{summary}");
    assert!(summary.contains("'lstm[0][1]',") && summary.contains("'lstm[0][2]'"), "{summary}");
    let config = cpu.config();
    assert!(config.to_string().contains("\"lstm[0][2]\""), "{config}");
    let back = kiln::model::spec::parse_model(&config).unwrap().into_model(&[1], 5);
    assert_eq!(back.config(), config);
    assert_eq!(back.calls(), cpu.calls());
    if common::gpu().is_some() {
        let mut gpu = state_classifier(Device::Gpu(None));
        common::fit_both_and_compare(&mut cpu, &mut gpu, &x, &y, 2, "return_state: ");
    } else {
        cpu.fit(&x, &y, &FitOptions { epochs: 2, verbose: 0, ..Default::default() }).unwrap();
    }
    // A layer of several outputs called as one is an error that says what to do.
    let input = Input::new(&[7, 3]);
    let e = Lstm::new(2).return_state(true).call(&input).unwrap_err().to_string();
    assert!(e.contains("returns 3 tensors") && e.contains("call_outputs"), "{e}");
    // A reference to an output the layer does not have.
    let bad = serde_json::json!({"layers": [
        {"type": "LSTM", "units": 2, "name": "enc", "inputs": ["input"]},
        {"type": "Dense", "units": 2, "inputs": ["enc[0][1]"]}]});
    let e = kiln::model::spec::parse_model(&bad).unwrap().into_model(&[4, 2], 0).output_shapes().unwrap_err();
    assert!(e.to_string().contains("no such output"), "{e}");
}
