mod common;
mod gpu_parity;
mod shaders;
