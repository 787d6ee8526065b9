//! Data augmentation on NHWC image batches, seeded by the caller's RNG.
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use rand::Rng;

/// Mirrors each image of `x: [N, H, W, C]` left to right with probability `p`, in place.
/// Draws exactly one random number per image (whether flipped or not), so a seeded `rng`
/// gives the same flips for the same batch size. Returns how many images were flipped.
pub fn random_horizontal_flip<R: Rng + ?Sized>(x: &mut Tensor, rng: &mut R, p: f64) -> Result<usize> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::invalid("flip probability", format!("{p} is not in [0, 1]")));
    }
    let &[n, h, w, c] = x.shape.as_slice() else {
        return Err(Error::invalid(
            "random_horizontal_flip",
            format!("expects an NHWC batch [N, H, W, C], got shape {:?}", x.shape),
        ));
    };
    let per_image = h * w * c;
    if n == 0 || per_image == 0 {
        return Ok(0);
    }
    let mut flipped = 0;
    for image in x.data.chunks_exact_mut(per_image) {
        // One uniform draw in [0, 1) per image: p = 1 flips all, p = 0 none.
        if rng.random::<f64>() < p {
            flip_rows(image, w, c);
            flipped += 1;
        }
    }
    Ok(flipped)
}

/// Reverses the order of the `w` pixels (of `c` values each) in every row of `image`.
// image: [H, W, C], row-major
fn flip_rows(image: &mut [f32], w: usize, c: usize) {
    for row in image.chunks_exact_mut(w * c) {
        for j in 0..w / 2 {
            let mirror = w - 1 - j;
            for k in 0..c {
                row.swap(j * c + k, mirror * c + k);
            }
        }
    }
}
