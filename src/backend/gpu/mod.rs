//! GPU backend (wgpu): to be written.
