//! Data sets: a [`Dataset`] (features + labels) with the operations training needs
//! (subset, stratified split, shuffle, label checks, one-hot), feature scaling, augmentation,
//! and loaders for CSV, IDX (MNIST / Fashion-MNIST), image folders, sktime/UEA `.ts` time
//! series ([`ts::SequenceSet`]), univariate series for forecasting ([`series::Series`]),
//! character-level text ([`text::TextCorpus`]) and the bundled sets.
pub mod augment;
pub mod builtin;
pub mod csv;
mod file;
pub mod idx;
pub mod image;
pub mod mnist;
mod scaling;
pub mod series;
pub mod text;
pub mod ts;

pub use self::image::{
    DEFAULT_MAX_SIDE, ImageOptions, is_image_file, load_image, load_image_folder,
    load_image_folder_with_progress,
};
pub use augment::random_horizontal_flip;

pub use scaling::{Scaler, Scaling};

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Samples and their labels; `x` is `[N, features...]`, `y` has `label_steps` entries per
/// sample (one, or one per time step for per-step targets such as a language model's).
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Features, batch first: `[N, F]` for tables, `[N, H, W, C]` for images.
    pub x: Tensor,
    /// Class index per sample (as f32), or the regression target; `[N, label_steps]` in
    /// row-major order.
    pub y: Vec<f32>,
    /// Number of classes; 0 for regression.
    pub classes: usize,
    /// One name per class (empty for regression).
    pub class_names: Vec<String>,
    /// Labels per sample: 1, or the steps of a per-step target.
    pub label_steps: usize,
}

impl Dataset {
    /// A data set from parts; errors when `x` and `y` disagree on the sample count.
    pub fn new(x: Tensor, y: Vec<f32>, classes: usize, class_names: Vec<String>) -> Result<Dataset> {
        let n = x.shape.first().copied().unwrap_or(0);
        if x.shape.is_empty() || n != y.len() {
            return Err(Error::shape("dataset (x rows vs y labels)", &[y.len()], &x.shape));
        }
        if classes > 0 && !class_names.is_empty() && class_names.len() != classes {
            return Err(Error::invalid(
                "dataset",
                format!("{classes} classes but {} class names", class_names.len()),
            ));
        }
        Ok(Dataset { x, y, classes, class_names, label_steps: 1 })
    }

    /// A data set with `steps` labels per sample (`y` is `[N, steps]`): per-step targets.
    pub fn with_label_steps(
        x: Tensor,
        y: Vec<f32>,
        steps: usize,
        classes: usize,
        class_names: Vec<String>,
    ) -> Result<Dataset> {
        let n = x.shape.first().copied().unwrap_or(0);
        if steps == 0 || y.len() != n * steps {
            return Err(Error::shape("dataset (per-step labels)", &[n, steps], &[y.len()]));
        }
        let mut d = Dataset::new(x, vec![0.0; n], classes, class_names)?;
        d.y = y;
        d.label_steps = steps;
        Ok(d)
    }

    /// The same samples with only the last of each sample's per-step labels (a many-to-one
    /// model's target); unchanged with one label per sample.
    pub fn last_labels(mut self) -> Dataset {
        let k = self.label_steps;
        if k > 1 {
            self.y = self.y.chunks(k).map(|c| c[k - 1]).collect();
            self.label_steps = 1;
        }
        self
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.x.shape.first().copied().unwrap_or(0)
    }

    /// True when the data set holds no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Elements per sample (product of all dimensions of `x` but the first).
    pub fn features(&self) -> usize {
        self.x.row_len()
    }

    /// Shape of one sample (`x.shape` without the batch dimension).
    pub fn sample_shape(&self) -> &[usize] {
        self.x.shape.get(1..).unwrap_or(&[])
    }

    /// The same samples viewed with another per-sample shape, e.g. `[64]` → `[8, 8, 1]`.
    pub fn with_sample_shape(mut self, sample_shape: &[usize]) -> Result<Dataset> {
        let want: usize = sample_shape.iter().product();
        if want != self.features() {
            return Err(Error::shape("dataset reshape (elements per sample)", &[self.features()], &[want]));
        }
        let mut shape = vec![self.len()];
        shape.extend_from_slice(sample_shape);
        self.x.shape = shape;
        Ok(self)
    }

    /// The samples at `indices`, in that order (repeats allowed).
    ///
    /// # Panics
    /// When an index is `>= self.len()`, like slice indexing.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let w = self.features();
        let mut data = Vec::with_capacity(indices.len() * w);
        let k = self.label_steps;
        let mut y = Vec::with_capacity(indices.len() * k);
        for &i in indices {
            data.extend_from_slice(self.x.row(i));
            y.extend_from_slice(&self.y[i * k..(i + 1) * k]);
        }
        let mut shape = self.x.shape.clone();
        shape[0] = indices.len();
        Dataset { x: Tensor { shape, data }, y, label_steps: k, ..self.clone_meta() }
    }

    /// An empty data set with this one's classes and layout.
    fn clone_meta(&self) -> Dataset {
        Dataset {
            x: Tensor { shape: vec![0], data: Vec::new() },
            y: Vec::new(),
            classes: self.classes,
            class_names: self.class_names.clone(),
            label_steps: self.label_steps,
        }
    }

    /// The samples in a seeded random order (ChaCha8).
    pub fn shuffled(&self, seed: u64) -> Dataset {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        self.subset(&order)
    }

    /// Splits into `(train, test)`: per class, a seeded shuffle and `round(fraction · count)`
    /// samples into test, so both sides keep the class proportions. Regression data
    /// (`classes == 0`) and per-step labels are split at random. Each side keeps the original
    /// sample order.
    pub fn stratified_split(&self, test_fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(test_fraction > 0.0 && test_fraction < 1.0) {
            return Err(Error::invalid(
                "test fraction",
                format!("{test_fraction} is not strictly between 0 and 1"),
            ));
        }
        self.validate_labels()?;
        let groups: Vec<Vec<usize>> = if self.classes == 0 || self.label_steps > 1 {
            vec![(0..self.len()).collect()]
        } else {
            let mut groups = vec![Vec::new(); self.classes];
            for (i, &label) in self.y.iter().enumerate() {
                groups[label as usize].push(i);
            }
            groups
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for mut group in groups {
            group.shuffle(&mut rng);
            let take = (test_fraction * group.len() as f64).round() as usize;
            test.extend_from_slice(&group[..take]);
            train.extend_from_slice(&group[take..]);
        }
        if train.is_empty() || test.is_empty() {
            return Err(Error::invalid(
                "test fraction",
                format!(
                    "{test_fraction} of {} samples leaves {} for training and {} for testing",
                    self.len(),
                    train.len(),
                    test.len()
                ),
            ));
        }
        train.sort_unstable();
        test.sort_unstable();
        Ok((self.subset(&train), self.subset(&test)))
    }

    /// Checks that every label is an integer in `0..classes` (nothing to check for regression).
    pub fn validate_labels(&self) -> Result<()> {
        if self.classes == 0 {
            return Ok(());
        }
        for (index, &label) in self.y.iter().enumerate() {
            if !is_class_index(label as f64, self.classes) {
                return Err(Error::LabelOutOfRange {
                    label: label as f64,
                    index,
                    classes: self.classes,
                    file: None,
                });
            }
        }
        Ok(())
    }

    /// Number of samples per class (`classes` entries; labels out of range are not counted).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes];
        for &label in &self.y {
            if is_class_index(label as f64, self.classes) {
                counts[label as usize] += 1;
            }
        }
        counts
    }

    /// Labels as one-hot rows: `[N, classes]` (`[N, steps, classes]` for per-step labels). A
    /// label outside `0..classes` gives an all-zero row; the loaders reject such labels, see
    /// [`Dataset::validate_labels`].
    pub fn one_hot(&self) -> Tensor {
        let c = self.classes;
        let shape = match self.label_steps {
            1 => vec![self.len(), c],
            k => vec![self.len(), k, c],
        };
        let mut t = Tensor::zeros(&shape);
        for (i, &label) in self.y.iter().enumerate() {
            if is_class_index(label as f64, c) {
                t.data[i * c + label as usize] = 1.0;
            }
        }
        t
    }
}

/// The most classes a data set may have (one output unit each): labels are class indices
/// below this.
pub const MAX_CLASSES: usize = 65_536;

/// True when `label` is an integer in `0..classes`.
pub(crate) fn is_class_index(label: f64, classes: usize) -> bool {
    label.fract() == 0.0 && label >= 0.0 && label < classes as f64
}

/// Class names "0", "1", … for data sets whose classes have no names.
pub(crate) fn numbered_class_names(classes: usize) -> Vec<String> {
    (0..classes).map(|c| c.to_string()).collect()
}
