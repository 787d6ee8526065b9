//! MNIST and Fashion-MNIST where a system package installed them: the Debian package
//! `dataset-fashion-mnist` puts the original IDX files in `/usr/share/datasets/fashion-mnist/`.
//! Both come with their own test split: the loaders return `(train, test)`, images
//! `[N, 28, 28, 1]` with pixel values 0..255.
use super::Dataset;
use super::idx::load_mnist_dir;
use crate::error::{Error, Result};
use std::path::Path;

/// Where the Debian package `dataset-fashion-mnist` installs the IDX files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Where [`mnist`] looks for the original MNIST IDX files.
pub const MNIST_DIR: &str = "/usr/share/datasets/mnist";

/// The ten Fashion-MNIST classes, by label.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Fashion-MNIST from [`FASHION_MNIST_DIR`] as `(train, test)`: 60,000 and 10,000 images.
pub fn fashion_mnist() -> Result<(Dataset, Dataset)> {
    load_fashion_mnist_dir(Path::new(FASHION_MNIST_DIR))
}

/// Fashion-MNIST from the IDX files in `dir`, with the class names of
/// [`FASHION_MNIST_CLASSES`]. When `dir` does not exist, the error says which Debian package
/// installs it.
pub fn load_fashion_mnist_dir(dir: &Path) -> Result<(Dataset, Dataset)> {
    if !dir.is_dir() {
        return Err(missing(
            dir,
            "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)",
        ));
    }
    let (mut train, mut test) = load_mnist_dir(dir)?;
    let names: Vec<String> = FASHION_MNIST_CLASSES.iter().map(|s| s.to_string()).collect();
    train.class_names.clone_from(&names);
    test.class_names = names;
    Ok((train, test))
}

/// MNIST digits from [`MNIST_DIR`] as `(train, test)`, class names "0" to "9". When that
/// directory does not exist, the error says to pass the directory holding the IDX files.
pub fn mnist() -> Result<(Dataset, Dataset)> {
    load_mnist_named_dir(Path::new(MNIST_DIR))
}

/// MNIST from `dir`, with the error of [`mnist`] when it does not exist.
pub fn load_mnist_named_dir(dir: &Path) -> Result<(Dataset, Dataset)> {
    if !dir.is_dir() {
        return Err(missing(
            dir,
            "MNIST is not installed there; pass the directory holding train-images-idx3-ubyte.gz, \
             train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz \
             instead (e.g. --data ./path/to/mnist)",
        ));
    }
    load_mnist_dir(dir)
}

/// A not-found Io error on `dir` that tells the user what to do.
fn missing(dir: &Path, advice: &str) -> Error {
    Error::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, format!("no such directory; {advice}")),
    }
}
