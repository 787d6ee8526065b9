//! Steps whose tensors are larger than one storage binding (lavapipe binds at most 128 MiB; a
//! 224×224 CNN's first activations at batch 32 are 202 MB) run in batch chunks: the step is
//! dispatched once per chunk of images (or rows, or elements), each dispatch binding its
//! chunk's slice of every per-image arg and the whole of the others. A chunk computes exactly
//! what the whole step computes for its images, so the results are the same bits. A step
//! whose output sums over the batch (a filter or bias gradient) writes one partial result per
//! chunk into the program's chunk-output buffer; `sum_slices` (shaders/reduce.wgsl) then adds
//! them in chunk order into the real output.
use crate::program::{BufRef, Kernel, Step, Window2d, align};

/// How a kernel splits over its batch.
struct BatchSplit {
    /// Images (rows, elements) in the whole step.
    batch: usize,
    /// Elements per image of each arg; 0: the arg is bound whole in every chunk.
    per_image: Vec<usize>,
    /// The output (the last arg) is a sum over the batch.
    sums: bool,
}

/// The batch split of `kernel`, for the kernels that can run in chunks; None for the others
/// (they fail with out-of-device-memory when an arg is too large).
fn batch_split(kernel: &Kernel) -> Option<BatchSplit> {
    use Kernel::*;
    let image = |w: &Window2d| w.height * w.width * w.channels;
    let out = |w: &Window2d, c: usize| w.out.0 * w.out.1 * c;
    let split = |batch, per_image: Vec<usize>, sums| BatchSplit { batch, per_image, sums };
    Some(match *kernel {
        Conv2d { win, filters, bias, .. } => {
            let mut per = vec![image(&win), 0];
            if bias {
                per.push(0);
            }
            per.push(out(&win, filters));
            split(win.batch, per, false)
        }
        Conv2dInputGrad { win, filters } => split(win.batch, vec![out(&win, filters), 0, image(&win)], false),
        Conv2dFilterGrad { win, filters } => split(win.batch, vec![image(&win), out(&win, filters), 0], true),
        MaxPool { win } | AvgPool { win } => {
            split(win.batch, vec![image(&win), out(&win, win.channels)], false)
        }
        MaxPoolGrad { win, .. } => {
            split(win.batch, vec![image(&win), out(&win, win.channels), image(&win)], false)
        }
        AvgPoolGrad { win } => split(win.batch, vec![out(&win, win.channels), image(&win)], false),
        SumRows { rows, cols } => split(rows, vec![cols, 0], true),
        BiasAdd { rows, cols } => split(rows, vec![cols, 0, cols], false),
        Unary { len, .. } => split(len, vec![1, 1], false),
        UnaryGrad { len, .. } | Add { len } | Binary { len, .. } => split(len, vec![1, 1, 1], false),
        BinaryGrad { len, .. } => split(len, vec![1, 1, 1, 1], false),
        _ => return None,
    })
}

/// `kernel` over `n` of its images.
fn sub_kernel(kernel: &Kernel, n: usize) -> Kernel {
    use Kernel::*;
    let w = |win: Window2d| Window2d { batch: n, ..win };
    match *kernel {
        Conv2d { win, filters, bias, act } => Conv2d { win: w(win), filters, bias, act },
        Conv2dInputGrad { win, filters } => Conv2dInputGrad { win: w(win), filters },
        Conv2dFilterGrad { win, filters } => Conv2dFilterGrad { win: w(win), filters },
        MaxPool { win } => MaxPool { win: w(win) },
        AvgPool { win } => AvgPool { win: w(win) },
        MaxPoolGrad { win, relu } => MaxPoolGrad { win: w(win), relu },
        AvgPoolGrad { win } => AvgPoolGrad { win: w(win) },
        SumRows { cols, .. } => SumRows { rows: n, cols },
        BiasAdd { cols, .. } => BiasAdd { rows: n, cols },
        Unary { op, .. } => Unary { op, len: n },
        UnaryGrad { op, .. } => UnaryGrad { op, len: n },
        Add { .. } => Add { len: n },
        Binary { op, .. } => Binary { op, len: n },
        BinaryGrad { op, wrt, .. } => BinaryGrad { op, wrt, len: n },
        other => other,
    }
}

/// One dispatch of a chunked step.
pub(crate) struct Chunk {
    /// The step over this chunk's images (args: slices of the whole step's).
    pub step: Step,
    /// For a summing step: the slot of the chunk-output buffer its output goes to.
    pub out_slot: Option<usize>,
}

/// A step split into chunks.
pub(crate) struct ChunkPlan {
    pub chunks: Vec<Chunk>,
    /// Elements per chunk-output slot (aligned); 0 when the step does not sum.
    pub slot_len: usize,
    /// The whole step's output (where a summing step's partials are added).
    pub out: BufRef,
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The chunks of `step` such that every arg fits in `max_binding` bytes and every slice starts
/// at a multiple of `align_elems` elements; None when the kernel cannot run in chunks or no
/// chunk size fits.
pub(crate) fn plan(step: &Step, max_binding: u64, align_elems: usize) -> Option<ChunkPlan> {
    let split = batch_split(&step.kernel)?;
    if split.per_image.len() != step.args.len() || split.batch == 0 {
        return None;
    }
    let align_elems = align_elems.max(1);
    // Images per chunk: a multiple of `unit`, so that each chunk's slices start aligned.
    let per_image = split.per_image.iter().copied().filter(|&e| e > 0);
    let unit = per_image.clone().fold(1, |u, e| {
        let need = align_elems / gcd(e, align_elems);
        u / gcd(u, need) * need
    });
    let max_elems = (max_binding / 4) as usize;
    let fit = per_image.map(|e| max_elems / e).min()?;
    let images = fit / unit * unit;
    if images == 0 || images >= split.batch {
        return None;
    }
    let whole_fits =
        step.args.iter().zip(&split.per_image).all(|(a, &e)| e > 0 || 4 * a.len as u64 <= max_binding);
    if !whole_fits {
        return None;
    }
    let out = *step.args.last()?;
    let slot_len = if split.sums { align(out.len) } else { 0 };
    let chunks = (0..split.batch.div_ceil(images))
        .map(|j| {
            let n = images.min(split.batch - j * images);
            let args =
                step.args
                    .iter()
                    .zip(&split.per_image)
                    .map(|(a, &e)| {
                        if e > 0 {
                            BufRef { offset: a.offset + j * images * e, len: n * e, ..*a }
                        } else {
                            *a
                        }
                    })
                    .collect();
            let step = Step { kernel: sub_kernel(&step.kernel, n), args, origin: step.origin.clone() };
            Chunk { step, out_slot: split.sums.then_some(j) }
        })
        .collect();
    Some(ChunkPlan { chunks, slot_len, out })
}
