//! The `resnet-small` preset: a small residual CNN (He et al.'s basic blocks) built with the
//! functional API, for 28×28 images (Fashion-MNIST) and image folders.
use crate::error::Result;
use crate::model::{CallLayer, Input, Model, SymbolicTensor};
use crate::nn::{
    Activation, ActivationLayer, Add, BatchNormalization, Conv2D, Dense, GlobalAveragePooling2D,
};
use crate::program::Padding;

/// A 3×3 (or 1×1) convolution without bias (the BatchNorm after it has the shift), "same".
fn conv(filters: usize, kernel: usize, stride: usize) -> Conv2D {
    let mut c =
        Conv2D::new(filters, kernel, Activation::Linear).padding(Padding::Same).strides(stride, stride);
    c.use_bias = false;
    c
}

fn relu(x: &SymbolicTensor) -> Result<SymbolicTensor> {
    ActivationLayer(Activation::Relu).call(x)
}

/// conv 3×3 (stride) → BN → relu → conv 3×3 → BN, plus the skip (a 1×1 stride convolution and
/// BN where the shape changes), then relu.
fn block(x: &SymbolicTensor, filters: usize, stride: usize) -> Result<SymbolicTensor> {
    let h = BatchNormalization::new().call(&conv(filters, 3, stride).call(x)?)?;
    let h = BatchNormalization::new().call(&conv(filters, 3, 1).call(&relu(&h)?)?)?;
    let channels = x.shape().last().copied().unwrap_or(0);
    let skip = match stride == 1 && channels == filters {
        true => x.clone(),
        false => BatchNormalization::new().call(&conv(filters, 1, stride).call(x)?)?,
    };
    relu(&Add.call_many(&[&skip, &h])?)
}

/// Stem conv 16 → BN → relu; blocks of 16, 32 (stride 2) and 64 (stride 2) filters; global
/// average pooling; `output`. 78,426 parameters for 10 classes (672 of them BatchNorm moving
/// statistics).
pub fn resnet_small(image: [usize; 3], output: Dense, seed: u64) -> Result<Model> {
    let x = Input::new(&image);
    let h = relu(&BatchNormalization::new().call(&conv(16, 3, 1).call(&x)?)?)?;
    let h = block(&h, 16, 1)?;
    let h = block(&h, 32, 2)?;
    let h = block(&h, 64, 2)?;
    let out = output.call(&GlobalAveragePooling2D.call(&h)?)?;
    Ok(Model::new(&[x], &[out])?.with_seed(seed))
}
