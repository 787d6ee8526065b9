//! One integration-test crate (one link of wgpu) with a module per area.
mod gradcheck;
