//! A functional model with two inputs: each bundled digit (8×8 grey pixels, UCI optdigits) as an
//! image, and beside it 16 summary features of the same pixels: the ink of each row and of each
//! column. A convolutional branch reads the image, a dense branch the features; the branches
//! are joined and classified. Both inputs come from the same real images, so this shows the
//! plumbing (two tensors in, one prediction out), not extra information.
//!
//! cargo run --release --example two_inputs
use kiln::model::{CallLayer, Input, Model};
use kiln::nn::Concatenate;
use kiln::{
    Activation, CompileOptions, Conv2D, Dense, Device, FitOptions, Flatten, Loss, MaxPooling2D, Optimizer,
};
use kiln::{Padding, Tensor};

/// Row sums then column sums of each 8×8 image, scaled to [0, 1].
fn ink_profile(pixels: &Tensor) -> kiln::Result<Tensor> {
    let n = pixels.rows();
    let mut out = Vec::with_capacity(n * 16);
    for image in pixels.data.chunks(64) {
        out.extend((0..8).map(|r| (0..8).map(|c| image[r * 8 + c]).sum::<f32>() / 8.0));
        out.extend((0..8).map(|c| (0..8).map(|r| image[r * 8 + c]).sum::<f32>() / 8.0));
    }
    Tensor::new(&[n, 16], out)
}

fn main() -> kiln::Result<()> {
    let digits = kiln::data::builtin::digits()?;
    let (train, test) = digits.stratified_split(0.2, 0)?;
    let inputs = |d: &kiln::data::Dataset| -> kiln::Result<(Tensor, Tensor, Tensor)> {
        let pixels = Tensor::new(&[d.len(), 64], d.x.data.iter().map(|p| p / 16.0).collect())?;
        let features = ink_profile(&pixels)?;
        let image = Tensor::new(&[d.len(), 8, 8, 1], pixels.data)?;
        Ok((image, features, Tensor::new(&[d.len()], d.y.clone())?))
    };
    let (image, features, y) = inputs(&train)?;
    let (test_image, test_features, test_y) = inputs(&test)?;

    let image_in = Input::named("image", &[8, 8, 1]);
    let features_in = Input::named("ink", &[16]);
    let h = Conv2D::new(16, 3, Activation::Relu).padding(Padding::Same).call(&image_in)?;
    let h = Flatten.call(&MaxPooling2D::new(2).call(&h)?)?;
    let f = Dense::new(32, Activation::Relu).call(&features_in)?;
    let joined = Concatenate::new().call_many(&[&h, &f])?;
    let out = Dense::new(10, Activation::Softmax).call(&joined)?;
    let mut model = Model::new(&[image_in, features_in], &[out])?;
    println!("{}", model.summary()?);
    let loss = Loss::SparseCategoricalCrossentropy;
    model.compile(CompileOptions::new(Optimizer::adam(1e-3), loss, Device::Cpu))?;
    let opts = FitOptions { batch_size: 32, epochs: 15, verbose: 2, ..FitOptions::default() };
    model.fit([&image, &features], &y, &opts)?;
    let (loss, accuracy) = model.evaluate([&test_image, &test_features], &test_y, 256)?;
    println!("test loss {loss:.4}, test accuracy {accuracy:.4} ({} test images)", test_y.rows());
    Ok(())
}
