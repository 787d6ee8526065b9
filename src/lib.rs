//! kiln: a deep-learning training engine. Describe a network, train it on the CPU or on any
//! GPU that wgpu reaches, with the same numbers. Pipeline: layers → graph of primitive ops →
//! autodiff → planner → Program → backend (CPU interpreter or WGSL kernels through wgpu).
pub mod backend;
#[cfg(feature = "cli")]
pub mod bench;
pub mod callbacks;
pub mod checkpoint;
#[cfg(feature = "cli")]
pub mod cli;
pub mod data;
pub mod device;
pub mod error;
pub mod graph;
pub(crate) mod json;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod nn;
pub mod optim;
#[cfg(feature = "cli")]
pub mod plot;
pub mod program;
#[cfg(feature = "cli")]
pub mod run_dir;
pub mod tensor;

pub use callbacks::{Callback, SharedCallback};
pub use checkpoint::Checkpoint;
pub use device::Device;
pub use error::{Error, Result};
pub use loss::Loss;
pub use metrics::Metric;
pub use model::{
    CallLayer, CompileOptions, FitOptions, History, ImplicitConv, Input, Model, OutputOptions, ProgramKind,
    Sequential, Shared, SymbolicTensor, Validation,
};
pub use nn::{
    Activation, AveragePooling2D, BatchNormalization, Bidirectional, Conv1D, Conv2D, Dense, Dropout,
    Embedding, Flatten, GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling1D, Gru, Layer, Lstm,
    Masking, MaxPooling2D, MergeMode, RandomFlip, Regularizer, Reshape, SimpleRnn,
};
pub use optim::{GradientClip, LearningRateSchedule, Optimizer};
pub use program::Padding;
pub use tensor::Tensor;

/// The README's examples run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
