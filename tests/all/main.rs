//! One integration-test crate (one link of wgpu) with a module per area.
mod bench;
mod cnn;
mod common;
mod conv;
mod data;
mod errors;
mod gpu_parity;
mod gradcheck;
mod images;
mod model;
mod optim;
mod planner;
mod shaders;
mod spec;
mod step_parity;
mod training;
