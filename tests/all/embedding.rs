//! Embedding: lookups and their scatter-add gradient (f64 finite differences, GPU = CPU to the
//! bit: both sum in id order), ids checked on the host, `mask_zero` padding that changes
//! nothing, and an Embedding → Bidirectional(LSTM) text classifier's training step on both
//! backends.
use kiln::graph::Op;
use kiln::program::Kernel;
use kiln::{
    Activation, Bidirectional, CompileOptions, Dense, Device, Embedding, Loss, Lstm, Optimizer, Sequential,
    Tensor,
};

use crate::common::{self, rng, uniform};
use crate::gpu_parity::{Builder, check};
use crate::gradcheck::{Fill, check_graph, op, rand_in};

#[test]
fn lookups_have_the_right_gradient_with_repeated_ids() {
    let ids = vec![3.0, 0.0, 3.0, 1.0, 4.0, 3.0];
    let inputs = [rand_in(&[5, 3]), (vec![2, 3], Fill::Fixed(ids), false)];
    check_graph("embedding", &inputs, &|g, x| op(g, Op::Embedding, x));
}

#[test]
fn lookups_and_their_gradient_match_the_cpu_bit_for_bit() {
    let mut r = rng(81);
    let mut b = Builder::default();
    for (n, vocab, dim) in [(1, 1, 1), (37, 5, 3), (300, 65, 17)] {
        let table = b.input(uniform(&mut r, vocab * dim, -1.0, 1.0));
        let ids: Vec<f32> = (0..n).map(|i| ((i * 7 + i / 3) % vocab) as f32).collect();
        let ids = b.input(ids);
        b.op(Kernel::Embedding { ids: n, vocab, dim }, &[table, ids], n * dim);
        let dy = b.input(uniform(&mut r, n * dim, -1.0, 1.0));
        b.op(Kernel::EmbeddingGrad { ids: n, vocab, dim }, &[ids, dy], vocab * dim);
    }
    check(&b, 0.0);
}

/// SGD: Adam would turn the few gradients that are nearly zero (rounding noise, whose sign
/// differs between backends) into full-size steps.
fn classifier(steps: usize, device: Device) -> Sequential {
    let mut m = Sequential::new(&[steps])
        .with_seed(6)
        .add(Embedding::new(20, 8).mask_zero(true))
        .add(Bidirectional::new(Lstm::new(6)))
        .add(Dense::new(3, Activation::Softmax));
    m.compile(CompileOptions::new(Optimizer::sgd(0.5), Loss::SparseCategoricalCrossentropy, device)).unwrap();
    m
}

#[test]
fn ids_outside_the_table_are_errors_naming_the_row_and_the_id() {
    let mut m = classifier(4, Device::Cpu);
    for (bad, what) in [(20.0, "id 20 at batch row 1, step 2"), (-1.0, "id -1"), (2.5, "id 2.5")] {
        let mut ids = vec![1.0; 8];
        ids[6] = bad;
        let e = m
            .predict(&Tensor::new(&[2, 4], ids).unwrap(), 2)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains(what) && e.contains("Embedding"), "{e}");
    }
}

#[test]
fn zero_ids_behind_mask_zero_change_nothing() {
    let ids = [5.0, 3.0, 9.0];
    for device in common::devices() {
        let mut short = classifier(3, device);
        let mut padded = classifier(5, device);
        padded.set_weights(&short.get_weights().unwrap()).unwrap();
        let a = short.predict(&Tensor::new(&[1, 3], ids.to_vec()).unwrap(), 1).unwrap();
        let b = padded.predict(&Tensor::new(&[1, 5], [&ids[..], &[0.0, 0.0]].concat()).unwrap(), 1).unwrap();
        let worst = a.data.iter().zip(&b.data).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-6, "{device:?}: {:?} vs {:?}", a.data, b.data);
    }
}

#[test]
fn a_text_classifier_training_step_matches_between_gpu_and_cpu() {
    if common::gpu().is_none() {
        return;
    }
    let (rows, steps) = (6, 7);
    // Sequences of ids 1..19, each padded with zeros at the end by (row % 3).
    let ids: Vec<f32> = (0..rows * steps)
        .map(|i| if i % steps >= steps - (i / steps) % 3 { 0.0 } else { (1 + (i * 5) % 19) as f32 })
        .collect();
    let x = Tensor::new(&[rows, steps], ids).unwrap();
    let y = Tensor::new(&[rows], (0..rows).map(|i| (i % 3) as f32).collect()).unwrap();
    let (mut cpu, mut gpu) = (classifier(steps, Device::Cpu), classifier(steps, Device::Gpu(None)));
    common::fit_both_and_compare(&mut cpu, &mut gpu, &x, &y, 2, "");
    // Keras: 20·8 embeddings + 2·4·(8·6 + 6·6 + 6) + (12·3 + 3).
    assert_eq!(cpu.param_count().unwrap(), 160 + 2 * 4 * (48 + 36 + 6) + 39);
}
