//! The tail steps an optimizer adds to a training program: gradient clipping, then the fused
//! update, both over the trainable parameters only.
use std::ops::Range;

use super::{Adam, AdamW, GradientClip, Optimizer, UpdateRule};
use crate::program::{Arena, BufRef, Kernel, align};

/// Elements per clipping or update launch: 64 MiB of f32, a multiple of the 64-element
/// alignment, so no single binding exceeds what a device allows (128 MiB on lavapipe).
pub const UPDATE_CHUNK: usize = 1 << 24;

/// The element ranges covered by `params` (slices of the Params arena, in layout order), with
/// neighbours merged where nothing lies between them but alignment padding. Given the
/// trainable parameters, a frozen one in between (batch-norm moving statistics) splits a run,
/// so an update over the runs never touches it.
pub fn trainable_runs(params: &[BufRef]) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for p in params.iter().filter(|p| p.len > 0) {
        match runs.last_mut() {
            Some(last) if align(last.end) == p.offset => last.end = p.offset + p.len,
            _ => runs.push(p.offset..p.offset + p.len),
        }
    }
    runs
}

/// `ranges` cut into pieces of at most [`UPDATE_CHUNK`] elements: (offset, len).
fn chunks(ranges: &[Range<usize>]) -> Vec<(usize, usize)> {
    ranges
        .iter()
        .flat_map(|r| r.clone().step_by(UPDATE_CHUNK).map(move |o| (o, UPDATE_CHUNK.min(r.end - o))))
        .collect()
}

impl Optimizer {
    /// Every tail step of the optimizer for the trainable parameters `trainable` (their
    /// slices of the Params arena, in layout order): clipping (see [`Self::clip_steps`]),
    /// then the updates. `norm` is a one-element scratch slice (in the Accum arena) for the
    /// norms of norm clipping.
    pub fn steps(&self, trainable: &[BufRef], norm: BufRef) -> Vec<(Kernel, Vec<BufRef>)> {
        let mut steps = self.clip_steps(trainable, norm);
        steps.extend(self.update_steps(trainable));
        steps
    }

    /// Clipping of the gradients of the `trainable` parameters in the Grads arena, over
    /// their runs ([`trainable_runs`]). `clipvalue`: one `ClipByValue` per chunk.
    /// `global_clipnorm`: `SumSquares` over every chunk into `norm` (the first chunk
    /// overwrites, the others add, in order), then `ClipByNorm` per chunk. `clipnorm`: the
    /// same for each parameter on its own.
    pub fn clip_steps(&self, trainable: &[BufRef], norm: BufRef) -> Vec<(Kernel, Vec<BufRef>)> {
        let runs = trainable_runs(trainable);
        let grads = |(offset, len): (usize, usize)| BufRef { arena: Arena::Grads, offset, len };
        // One norm over `ranges`, then every chunk scaled by it.
        let by_norm = |ranges: &[Range<usize>], clip_norm: f32| {
            let pieces = chunks(ranges);
            let sums = pieces
                .iter()
                .enumerate()
                .map(|(i, &c)| (Kernel::SumSquares { len: c.1, accumulate: i > 0 }, vec![grads(c), norm]));
            let scales =
                pieces.iter().map(|&c| (Kernel::ClipByNorm { len: c.1, clip_norm }, vec![norm, grads(c)]));
            sums.collect::<Vec<_>>().into_iter().chain(scales).collect::<Vec<_>>()
        };
        match self.clip {
            GradientClip::None => vec![],
            GradientClip::Value(clip_value) => chunks(&runs)
                .into_iter()
                .map(|c| (Kernel::ClipByValue { len: c.1, clip_value }, vec![grads(c)]))
                .collect(),
            GradientClip::GlobalNorm(c) => by_norm(&runs, c),
            GradientClip::Norm(c) => {
                trainable.iter().filter(|p| p.len > 0).flat_map(|p| by_norm(&[p.range()], c)).collect()
            }
        }
    }

    /// The update steps of the `trainable` parameters (slices of the Params arena, in layout
    /// order): one fused launch per chunk of at most [`UPDATE_CHUNK`] elements of each of
    /// their runs ([`trainable_runs`]).
    pub fn update_steps(&self, trainable: &[BufRef]) -> Vec<(Kernel, Vec<BufRef>)> {
        chunks(&trainable_runs(trainable))
            .into_iter()
            .map(|(offset, len)| self.update_step(offset, len))
            .collect()
    }

    /// The update of elements `offset..offset + len` (args in `Kernel` order; state slots the
    /// rule does not use are empty slices, which the kernels never touch).
    fn update_step(&self, offset: usize, len: usize) -> (Kernel, Vec<BufRef>) {
        let buf = |arena| BufRef { arena, offset, len };
        let slot = |k: usize| buf(Arena::Slot(k as u8));
        let absent = BufRef { arena: Arena::Slot(0), offset: 0, len: 0 };
        let (params, grads) = (buf(Arena::Params), buf(Arena::Grads));
        let adam = |beta1, beta2, epsilon, weight_decay, amsgrad: bool| {
            let mut args = vec![params, grads, slot(0), slot(1)];
            if amsgrad {
                args.push(slot(2));
            }
            (Kernel::AdamUpdate { len, beta1, beta2, epsilon, weight_decay, amsgrad }, args)
        };
        match self.rule {
            UpdateRule::Sgd(s) => {
                let vel = if s.momentum != 0.0 { slot(0) } else { absent };
                (
                    Kernel::SgdUpdate { len, momentum: s.momentum, nesterov: s.nesterov },
                    vec![params, grads, vel],
                )
            }
            UpdateRule::Adam(Adam { beta1, beta2, epsilon, amsgrad }) => {
                adam(beta1, beta2, epsilon, 0.0, amsgrad)
            }
            UpdateRule::AdamW(AdamW { beta1, beta2, epsilon, weight_decay, amsgrad }) => {
                adam(beta1, beta2, epsilon, weight_decay, amsgrad)
            }
            UpdateRule::Adagrad(a) => {
                (Kernel::AdagradUpdate { len, epsilon: a.epsilon }, vec![params, grads, slot(0)])
            }
            UpdateRule::Rmsprop(r) => {
                let with_momentum = r.momentum != 0.0;
                let mom = if with_momentum { slot(1) } else { absent };
                let mean_grad = if r.centered { slot(1 + usize::from(with_momentum)) } else { absent };
                (
                    Kernel::RmspropUpdate {
                        len,
                        rho: r.rho,
                        momentum: r.momentum,
                        epsilon: r.epsilon,
                        centered: r.centered,
                    },
                    vec![params, grads, slot(0), mom, mean_grad],
                )
            }
        }
    }
}
