//! A functional model with two outputs: from each bundled digit (8×8 grey pixels, UCI
//! optdigits) it predicts the digit's class and, as a regression, how much ink the image holds
//! (its mean pixel, standardised over the training images). Both targets are real properties of
//! the same images. Each output has its own loss, loss weight and metrics, as Keras's
//! `compile(loss=[…], loss_weights=[…], metrics=[[…], […]])`; History names them per output.
//!
//! cargo run --release --example two_outputs
use kiln::model::{CallLayer, Input, Model, OutputOptions};
use kiln::{Activation, CompileOptions, Dense, Device, FitOptions, Loss, Metric, Optimizer, Tensor};

/// Each image's mean ink, standardised with the given mean and standard deviation.
fn ink(pixels: &Tensor, mean: f32, sd: f32) -> kiln::Result<Tensor> {
    let values = pixels.data.chunks(64).map(|p| (p.iter().sum::<f32>() / 64.0 - mean) / sd).collect();
    Tensor::new(&[pixels.rows(), 1], values)
}

fn main() -> kiln::Result<()> {
    let digits = kiln::data::builtin::digits()?;
    let (train, test) = digits.stratified_split(0.2, 0)?;
    let pixels =
        |d: &kiln::data::Dataset| Tensor::new(&[d.len(), 64], d.x.data.iter().map(|p| p / 16.0).collect());
    let (x, test_x) = (pixels(&train)?, pixels(&test)?);
    let means: Vec<f32> = x.data.chunks(64).map(|p| p.iter().sum::<f32>() / 64.0).collect();
    let mean = means.iter().sum::<f32>() / means.len() as f32;
    let sd = (means.iter().map(|m| (m - mean).powi(2)).sum::<f32>() / means.len() as f32).sqrt();
    let (y, test_y) =
        (Tensor::new(&[train.len()], train.y.clone())?, Tensor::new(&[test.len()], test.y.clone())?);
    let (ink_y, test_ink) = (ink(&x, mean, sd)?, ink(&test_x, mean, sd)?);

    let input = Input::new(&[64]);
    let h = Dense::new(64, Activation::Relu).call(&input)?;
    let class = Dense::new(10, Activation::Softmax).call(&h)?; // named dense_1
    let amount = Dense::new(1, Activation::Linear).call(&h)?; // named dense_2
    let mut model = Model::new(&[input], &[class, amount])?;
    println!("{}", model.summary()?);
    let outputs = vec![
        OutputOptions::new(Loss::SparseCategoricalCrossentropy).metrics(&[Metric::Accuracy]),
        OutputOptions::new(Loss::MeanSquaredError).weight(0.5).metrics(&[Metric::MeanAbsoluteError]),
    ];
    // The single `loss` argument is unused when every output has its own.
    let opts =
        CompileOptions::new(Optimizer::adam(3e-3), Loss::MeanSquaredError, Device::Cpu).with_outputs(outputs);
    model.compile(opts)?;
    let fit = FitOptions { batch_size: 32, epochs: 15, verbose: 2, ..FitOptions::default() };
    model.fit(&x, [&y, &ink_y], &fit)?;
    let logs = model.evaluate_metrics(&test_x, [&test_y, &test_ink], 256)?;
    for (key, value) in &logs {
        println!("test {key}: {value:.4}");
    }
    let predictions = model.predict_outputs(&test_x, 256)?; // one tensor per output, in order
    let (p_class, p_ink) = (&predictions[0], &predictions[1]);
    println!(
        "first test image: class {} (label {}), ink {:+.3} (true {:+.3})",
        p_class.argmax_rows()[0],
        test_y.data[0],
        p_ink.data[0],
        test_ink.data[0]
    );
    Ok(())
}
