//! One integration-test crate (one link of wgpu) with a module per area.
mod common;
mod data;
mod errors;
mod gradcheck;
mod optim;
mod planner;
mod training;
