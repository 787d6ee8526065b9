//! Launches of the optimizer updates (`shaders/optimizer.wgsl`), gradient clipping
//! (`shaders/clip.wgsl`) and weight penalties (`shaders/penalty.wgsl`): one thread per element,
//! except the one-workgroup reductions `sum_squares` and `weight_penalty`. Part of the kernel
//! table in `kernels.rs`, which delegates these kernels here.
use super::kernels::{Launch, Shader, StepParams, grid, to_u32};
use crate::error::{Error, Result};
use crate::program::Kernel;

/// The launch of an optimizer, clipping or penalty `kernel` on a device allowing `max_groups`
/// workgroups per dimension.
pub(crate) fn launch(kernel: &Kernel, max_groups: u32) -> Result<Launch> {
    use Kernel::*;
    // Params { len, flag, f0..f3 } (each shader names the fields its own way).
    let params = |len: usize, flag: bool, f: [f32; 4]| -> Result<StepParams> {
        Ok(StepParams { u: [to_u32(len)?, u32::from(flag), 0, 0], f, g: [0; 12] })
    };
    let elementwise = |shader, entry, len: usize, flag: bool, f: [f32; 4]| -> Result<Launch> {
        Ok(Launch {
            shader,
            entry,
            constants: vec![],
            params: params(len, flag, f)?,
            groups: grid(len, 256, max_groups)?,
        })
    };
    let one_workgroup = |shader, entry, len: usize, flag: bool, f: [f32; 4]| -> Result<Launch> {
        Ok(Launch {
            shader,
            entry,
            constants: vec![],
            params: params(len, flag, f)?,
            groups: Some([1, 1, 1]),
        })
    };
    let optimizer = Shader::Optimizer;
    match *kernel {
        SgdUpdate { len, momentum, nesterov } => {
            elementwise(optimizer, "sgd_update", len, nesterov, [momentum, 0.0, 0.0, 0.0])
        }
        AdamUpdate { len, beta1, beta2, epsilon, weight_decay, amsgrad } => {
            elementwise(optimizer, "adam_update", len, amsgrad, [weight_decay, beta1, beta2, epsilon])
        }
        AdagradUpdate { len, epsilon } => {
            elementwise(optimizer, "adagrad_update", len, false, [0.0, 0.0, 0.0, epsilon])
        }
        RmspropUpdate { len, rho, momentum, epsilon, centered } => {
            elementwise(optimizer, "rmsprop_update", len, centered, [momentum, rho, 0.0, epsilon])
        }
        SumSquares { len, accumulate } => {
            one_workgroup(Shader::Clip, "sum_squares", len, accumulate, [0.0; 4])
        }
        ClipByNorm { len, clip_norm } => {
            elementwise(Shader::Clip, "clip_by_norm", len, false, [clip_norm, 0.0, 0.0, 0.0])
        }
        ClipByValue { len, clip_value } => {
            elementwise(Shader::Clip, "clip_by_value", len, false, [clip_value, 0.0, 0.0, 0.0])
        }
        WeightPenalty { len, l1, l2 } => {
            one_workgroup(Shader::Penalty, "weight_penalty", len, false, [l1, l2, 0.0, 0.0])
        }
        WeightPenaltyGrad { len, l1, l2 } => {
            elementwise(Shader::Penalty, "weight_penalty_grad", len, false, [l1, l2, 0.0, 0.0])
        }
        other => Err(Error::invalid("kernel table", format!("{other:?} is not an optimizer kernel"))),
    }
}
