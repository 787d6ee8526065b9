//! The options of `kiln train` (and `kiln summary`), and the data set they name by default.
use clap::Args;

/// Options of `kiln train` (and `kiln summary`).
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Data set: digits, iris, breast-cancer (bundled), fashion-mnist, mnist (system packages),
    /// a CSV file (label in the last column), a directory of MNIST IDX files, an image folder
    /// (one subdirectory of .png/.jpg images per class), japanese-vowels or X_TRAIN.ts
    /// (sequences), shakespeare or FILE.txt (text: next character from a window, the last
    /// 10% held out) or airline / a CSV with --window (series: next value from a window, the
    /// last 20% in time for testing). Sources with their own test split use it; the others
    /// are split 80/20. Default: fashion-mnist for mnist-cnn and resnet-small, else digits.
    #[arg(long)]
    pub data: Option<String>,
    /// Model: a preset (mlp, cnn for small images such as digits, mnist-cnn for 28×28 images,
    /// resnet-small (a residual CNN) for images,
    /// lstm for sequences and series, char-lstm and bilstm-text for text) or a model file
    /// (.toml or .json, one table per layer; see the README).
    #[arg(long, default_value = "mlp")]
    pub model: String,
    /// auto, cpu, gpu or gpu:N (see `kiln devices`).
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Passes over the training data.
    #[arg(long, allow_negative_numbers = true, default_value_t = 30)]
    pub epochs: usize,
    /// Samples per step.
    #[arg(long, allow_negative_numbers = true, default_value_t = 32)]
    pub batch_size: usize,
    /// sgd, adam, adamw, adagrad or rmsprop (Keras defaults).
    #[arg(long, default_value = "adam")]
    pub optimizer: String,
    /// Learning rate (default: 0.01 for sgd, 0.001 for the others).
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f32>,
    /// Momentum for sgd and rmsprop.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0)]
    pub momentum: f32,
    /// Nesterov momentum for sgd.
    #[arg(long)]
    pub nesterov: bool,
    /// Decoupled weight decay for adamw (default 0.004).
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f32>,
    /// AMSGrad variant of adam and adamw.
    #[arg(long)]
    pub amsgrad: bool,
    /// Centered rmsprop.
    #[arg(long)]
    pub centered: bool,
    /// Loss (Keras name): sparse_categorical_crossentropy, categorical_crossentropy (one-hot
    /// labels), binary_crossentropy (two classes), mse, mae, huber, or a cross-entropy with
    /// `_from_logits`. The preset's output layer follows it (softmax, sigmoid, or linear for
    /// logits and regression losses). Default: sparse categorical cross-entropy for classes,
    /// binary cross-entropy for two, mse for a regression target.
    #[arg(long, value_name = "NAME")]
    pub loss: Option<String>,
    /// The cross-entropy takes logits (Keras from_logits=True): a linear output layer; eval
    /// and predict turn the outputs into probabilities.
    #[arg(long)]
    pub from_logits: bool,
    /// Metrics reported per epoch and on the test split, comma-separated Keras names:
    /// accuracy, top_k_categorical_accuracy (top_<k>_…), precision, recall, f1_score (binary),
    /// macro_precision, macro_recall, macro_f1, auc (200 thresholds, auc_<n>), mae, mse.
    /// Default: accuracy for classes, none for a regression target. Classes always report
    /// accuracy.
    #[arg(long, value_name = "LIST")]
    pub metrics: Option<String>,
    /// Keras class_weight for the training loss: "balanced" (n_samples / (n_classes · count_c)
    /// over the training split, as scikit-learn) or CLASS:WEIGHT pairs, e.g. "0:1,1:5"
    /// (unlisted classes weigh 1).
    #[arg(long, value_name = "balanced|C:W,...")]
    pub class_weight: Option<String>,
    /// Clip each parameter's gradient to this L2 norm (Keras clipnorm).
    #[arg(long, allow_negative_numbers = true)]
    pub clipnorm: Option<f32>,
    /// Clip all gradients together to this global L2 norm (Keras global_clipnorm).
    #[arg(long, allow_negative_numbers = true)]
    pub global_clipnorm: Option<f32>,
    /// Clip every gradient element to [-F, F] (Keras clipvalue).
    #[arg(long, allow_negative_numbers = true)]
    pub clipvalue: Option<f32>,
    /// Learning-rate schedule, in epochs: constant, cosine (to 0 over the run), cosine:W (linear
    /// warm-up from 0 over W epochs, then cosine), exponential:R (× R per epoch, smoothly),
    /// step:E:F (× F every E epochs).
    #[arg(long, default_value = "constant")]
    pub lr_schedule: String,
    /// Seed for the split, initialisation and shuffling.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
    pub seed: u64,
    /// 0 silent, 1 progress, 2 one line per epoch.
    #[arg(long, allow_negative_numbers = true, default_value_t = 2)]
    pub verbose: u8,
    /// End with one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Input scaling, fitted on the training split: unit-range (pixels into [0, 1]),
    /// standardize (per feature), per-channel (mean/std per image channel) or none. Default:
    /// unit-range for image models, standardize for dense ones.
    #[arg(long)]
    pub scaling: Option<String>,
    /// Augment training images with random horizontal flips (a RandomFlip layer in front of
    /// an image model; identity in evaluation).
    #[arg(long)]
    pub flip: bool,
    /// Size image-folder images are resized to, HxW (Keras image_size), e.g. 224x224 or 64
    /// for 64x64. Default: the model file's input_shape when it has one, else the images' most
    /// common size, at most 256 per side (aspect kept). Stored with the run, so eval and
    /// predict resize the same way.
    #[arg(long, value_name = "HxW")]
    pub image_size: Option<String>,
    /// Text and series: the window length (default 100 characters, 12 values). A CSV with
    /// --window is read as a series (its last column).
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub window: Option<usize>,
    /// Text: the step between window starts (default: the window length).
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub stride: Option<usize>,
    /// Run directory: last.safetensors every epoch, model.safetensors, history.csv/.json/.png.
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
    /// Continue the run in DIR from its last.safetensors (same data, model, optimizer, seed,
    /// batch size and metrics: options typed that differ are refused; --device, --verbose and
    /// --json apply). It trains on to the run's epoch count, or to --epochs when that is given
    /// (to extend a finished run).
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    pub resume: Option<std::path::PathBuf>,
    /// `epochs` was given explicitly (on the command line): a resumed run trains on to it
    /// instead of the stored epoch count.
    #[arg(skip)]
    pub epochs_given: bool,
    /// The options typed on the command line (clap ids, e.g. `batch_size`): a resumed run
    /// refuses those that conflict with its checkpoint.
    #[arg(skip)]
    pub given: Vec<String>,
    /// Fraction of the training split held out for validation after each epoch (stratified,
    /// seeded). Default: 0.1 with --out (so history has val_ curves), else 0.
    #[arg(long, allow_negative_numbers = true, value_name = "F")]
    pub validation_split: Option<f64>,
    /// With --out: model.safetensors keeps the epoch with the best --monitor value.
    #[arg(long)]
    pub save_best_only: bool,
    /// The value --save-best-only compares (lower is better unless it is an accuracy).
    #[arg(long, default_value = "val_loss")]
    pub monitor: String,
    /// With --out: start over in a directory that holds a run already (else refused).
    #[arg(long)]
    pub overwrite: bool,
}

impl Default for TrainArgs {
    fn default() -> Self {
        TrainArgs {
            data: None,
            model: "mlp".into(),
            device: "auto".into(),
            epochs: 30,
            batch_size: 32,
            optimizer: "adam".into(),
            lr: None,
            momentum: 0.0,
            nesterov: false,
            weight_decay: None,
            amsgrad: false,
            centered: false,
            loss: None,
            from_logits: false,
            metrics: None,
            class_weight: None,
            epochs_given: false,
            given: Vec::new(),
            clipnorm: None,
            global_clipnorm: None,
            clipvalue: None,
            lr_schedule: "constant".into(),
            seed: 0,
            verbose: 2,
            json: false,
            flip: false,
            image_size: None,
            window: None,
            stride: None,
            scaling: None,
            out: None,
            resume: None,
            validation_split: None,
            save_best_only: false,
            monitor: "val_loss".into(),
            overwrite: false,
        }
    }
}

impl TrainArgs {
    /// The data set: `--data`, or the preset's usual one (fashion-mnist for mnist-cnn and
    /// resnet-small, else digits).
    pub fn data_name(&self) -> &str {
        match (&self.data, self.model.as_str()) {
            (Some(d), _) => d,
            (None, "mnist-cnn" | "resnet-small") => "fashion-mnist",
            (None, "char-lstm" | "bilstm-text") => "shakespeare",
            (None, "lstm") => "japanese-vowels",
            (None, _) => "digits",
        }
    }
}

/// Options of `kiln summary`: the model (a preset or model file, on a data set's samples) or
/// a checkpoint, and only what shapes the model.
#[derive(Args, Debug, Clone)]
pub struct SummaryArgs {
    /// Summarise the model in this checkpoint (and what it holds) instead of a preset or a
    /// model file.
    #[arg(long, conflicts_with_all = ["model", "data", "image_size", "window", "loss", "from_logits"])]
    pub checkpoint: Option<std::path::PathBuf>,
    /// A preset (mlp, cnn, mnist-cnn, resnet-small, lstm, char-lstm, bilstm-text) or a model file (.toml,
    /// .json). Default: mlp.
    #[arg(long)]
    pub model: Option<String>,
    /// The data set whose samples the model takes (as `kiln train --data`; default as there).
    #[arg(long)]
    pub data: Option<String>,
    /// Image folders: the size images are resized to, HxW (as `kiln train --image-size`).
    #[arg(long, value_name = "HxW")]
    pub image_size: Option<String>,
    /// Text and series: the window length (as `kiln train --window`).
    #[arg(long)]
    pub window: Option<usize>,
    /// The loss, which sets a preset's output activation (as `kiln train --loss`).
    #[arg(long, value_name = "NAME")]
    pub loss: Option<String>,
    /// A linear output layer for a cross-entropy on logits (as `kiln train --from-logits`).
    #[arg(long)]
    pub from_logits: bool,
}

impl SummaryArgs {
    /// The `kiln train` arguments that build the same model.
    pub fn train_args(&self) -> TrainArgs {
        TrainArgs {
            model: self.model.clone().unwrap_or_else(|| "mlp".into()),
            data: self.data.clone(),
            image_size: self.image_size.clone(),
            window: self.window,
            loss: self.loss.clone(),
            from_logits: self.from_logits,
            ..TrainArgs::default()
        }
    }
}
