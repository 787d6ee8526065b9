//! kiln: a deep-learning training engine. Describe a network, train it on the CPU or on any
//! GPU that wgpu reaches, with the same numbers. Pipeline: layers → graph of primitive ops →
//! autodiff → planner → Program → backend (CPU interpreter or WGSL kernels through wgpu).
pub mod backend;
pub mod data;
pub mod error;
pub mod graph;
pub mod program;
pub mod tensor;

pub use error::{Error, Result};
pub use tensor::Tensor;
