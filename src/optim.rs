//! Optimizers (Keras defaults). Each becomes one fused update step over the whole flat
//! parameter arena, run after the backward pass.
use crate::program::{Arena, BufRef, Kernel};

/// An optimizer and its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// Keras SGD: lr 0.01, momentum 0, nesterov false.
    Sgd { lr: f32, momentum: f32, nesterov: bool },
    /// Keras Adam: lr 0.001, β1 0.9, β2 0.999, ε 1e-7.
    Adam { lr: f32, beta1: f32, beta2: f32, epsilon: f32 },
}

impl Optimizer {
    /// SGD with Keras defaults and learning rate `lr`.
    pub fn sgd(lr: f32) -> Optimizer {
        Optimizer::Sgd { lr, momentum: 0.0, nesterov: false }
    }

    /// SGD with momentum (optionally Nesterov).
    pub fn momentum(lr: f32, momentum: f32, nesterov: bool) -> Optimizer {
        Optimizer::Sgd { lr, momentum, nesterov }
    }

    /// Adam with Keras defaults and learning rate `lr`.
    pub fn adam(lr: f32) -> Optimizer {
        Optimizer::Adam { lr, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 }
    }

    /// The learning rate.
    pub fn learning_rate(&self) -> f32 {
        match self {
            Optimizer::Sgd { lr, .. } | Optimizer::Adam { lr, .. } => *lr,
        }
    }

    /// Keras name.
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd { .. } => "sgd",
            Optimizer::Adam { .. } => "adam",
        }
    }

    /// Number of state slots (each the size of the parameters).
    pub fn slots(&self) -> usize {
        match self {
            Optimizer::Sgd { momentum, .. } if *momentum == 0.0 => 0,
            Optimizer::Sgd { .. } => 1,
            Optimizer::Adam { .. } => 2,
        }
    }

    /// The update steps over a Params arena of `params_len` elements: one fused launch per
    /// chunk of at most [`UPDATE_CHUNK`] elements (one for every model but the largest), so no
    /// single binding exceeds what a device allows (128 MiB on lavapipe).
    pub fn update_steps(&self, params_len: usize) -> Vec<(Kernel, Vec<BufRef>)> {
        (0..params_len)
            .step_by(UPDATE_CHUNK)
            .map(|offset| self.update_step(offset, UPDATE_CHUNK.min(params_len - offset)))
            .collect()
    }

    /// The update of elements `offset..offset + len` (args in `Kernel` order).
    fn update_step(&self, offset: usize, len: usize) -> (Kernel, Vec<BufRef>) {
        let buf = |arena| BufRef { arena, offset, len };
        match *self {
            Optimizer::Sgd { momentum, nesterov, .. } => {
                // Plain SGD has no velocity slot: the kernel never touches its (empty) arg.
                let vel = if self.slots() == 1 {
                    buf(Arena::Slot(0))
                } else {
                    BufRef { arena: Arena::Slot(0), offset: 0, len: 0 }
                };
                (
                    Kernel::SgdUpdate { len, momentum, nesterov },
                    vec![buf(Arena::Params), buf(Arena::Grads), vel],
                )
            }
            Optimizer::Adam { beta1, beta2, epsilon, .. } => (
                Kernel::AdamUpdate { len, beta1, beta2, epsilon },
                vec![buf(Arena::Params), buf(Arena::Grads), buf(Arena::Slot(0)), buf(Arena::Slot(1))],
            ),
        }
    }
}

/// Parameters per optimizer launch: 64 MiB of f32, a multiple of the 64-element alignment.
pub const UPDATE_CHUNK: usize = 1 << 24;
