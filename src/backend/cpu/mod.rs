//! CPU backend: interprets a [`Program`] step by step over host arenas. Generic over the float
//! type: `Arenas<f32>` for training, `Arenas<f64>` for gradient checks.
pub mod conv;
pub mod gemm;
pub mod kernels;
pub mod metrics;
pub mod norm;
pub mod optim;
pub mod pointwise;
pub mod pool;
pub mod weights;

use kernels::CpuFloat;

use crate::backend::{Backend, DeviceKind, ProgramId};
use crate::error::{Error, Result};
use crate::program::{Arena, BufRef, Kernel, Program, ResidentLayout, Step, StepScalars};

/// Host storage for every arena a program touches.
#[derive(Debug, Clone, Default)]
pub struct Arenas<T> {
    pub params: Vec<T>,
    pub grads: Vec<T>,
    pub slots: Vec<Vec<T>>,
    pub accum: Vec<T>,
    pub work: Vec<T>,
}

impl<T: CpuFloat> Arenas<T> {
    /// Zero-filled arenas for a resident layout and a work arena of `work_len` elements.
    pub fn new(layout: &ResidentLayout, work_len: usize) -> Self {
        let z = |n: usize| vec![T::zero(); n];
        Arenas {
            params: z(layout.params_len),
            grads: z(layout.params_len),
            slots: (0..layout.slots).map(|_| z(layout.params_len)).collect(),
            accum: z(layout.accum_len),
            work: z(work_len),
        }
    }

    /// The whole arena `a`.
    pub fn arena(&self, a: Arena) -> &[T] {
        match a {
            Arena::Params => &self.params,
            Arena::Grads => &self.grads,
            Arena::Slot(k) => self.slots.get(k as usize).map_or(&[], |s| s.as_slice()),
            Arena::Accum => &self.accum,
            Arena::Work => &self.work,
        }
    }

    fn arena_mut(&mut self, a: Arena) -> &mut Vec<T> {
        match a {
            Arena::Params => &mut self.params,
            Arena::Grads => &mut self.grads,
            Arena::Slot(k) => {
                let k = k as usize;
                if self.slots.len() <= k {
                    self.slots.resize(k + 1, Vec::new());
                }
                &mut self.slots[k]
            }
            Arena::Accum => &mut self.accum,
            Arena::Work => &mut self.work,
        }
    }

    /// Copy of a slice.
    pub fn get(&self, b: BufRef) -> Vec<T> {
        self.arena(b.arena)[b.range()].to_vec()
    }

    /// Overwrite a slice.
    pub fn set(&mut self, b: BufRef, data: &[T]) {
        self.arena_mut(b.arena)[b.range()].copy_from_slice(data);
    }
}

/// Indices of the args a kernel writes; every other arg is only read.
pub fn written_args(kernel: &Kernel, nargs: usize) -> Vec<usize> {
    match kernel {
        Kernel::SgdUpdate { .. } => vec![0, 2],
        Kernel::AdamUpdate { amsgrad: false, .. } => vec![0, 2, 3],
        Kernel::AdamUpdate { amsgrad: true, .. } => vec![0, 2, 3, 4],
        Kernel::AdagradUpdate { .. } => vec![0, 2],
        Kernel::RmspropUpdate { .. } => vec![0, 2, 3, 4],
        Kernel::BatchNormMoving { .. } => vec![1, 2],
        _ => vec![nargs.saturating_sub(1)],
    }
}

/// Number of args each kernel takes.
pub fn arg_count(kernel: &Kernel) -> usize {
    use Kernel::*;
    match kernel {
        Fill { .. } | ClipByValue { .. } => 1,
        Unary { .. }
        | Affine { .. }
        | Copy { .. }
        | FirstNonFinite
        | Softmax { .. }
        | LogSoftmax { .. }
        | SumRows { .. }
        | BroadcastRows { .. }
        | SumAll { .. }
        | BroadcastScalar { .. }
        | Accumulate { .. }
        | Im2Col { .. }
        | Col2Im { .. }
        | MaxPool { .. }
        | AvgPool { .. }
        | AvgPoolGrad { .. }
        | RandomFlip { .. }
        | Dropout { .. }
        | BatchMoments { .. }
        | SumSquares { .. }
        | ClipByNorm { .. }
        | WeightPenalty { .. } => 2,
        MatMul { .. }
        | BiasAdd { .. }
        | Add { .. }
        | UnaryGrad { .. }
        | SoftmaxGrad { .. }
        | LogSoftmaxGrad { .. }
        | SoftmaxCrossEntropy { weighted: false, .. }
        | MeanSquaredError { weighted: false, .. }
        | Pointwise { weighted: false, .. }
        | SigmoidBinaryCrossEntropy { weighted: false, .. }
        | CountCorrect { .. }
        | CountTopK { .. }
        | BinaryCounts { .. }
        | RocHistogram { .. }
        | ClassCounts { .. }
        | MaxPoolGrad { .. }
        | BatchNormMoving { .. }
        | SgdUpdate { .. }
        | AdagradUpdate { .. }
        | WeightPenaltyGrad { .. } => 3,
        MatMulBiasAct { .. }
        | SoftmaxCrossEntropyGrad { weighted: false, .. }
        | MeanSquaredErrorGrad { weighted: false, .. }
        | PointwiseGrad { weighted: false, .. }
        | SigmoidBinaryCrossEntropyGrad { weighted: false, .. }
        | SoftmaxCrossEntropy { weighted: true, .. }
        | MeanSquaredError { weighted: true, .. }
        | Pointwise { weighted: true, .. }
        | SigmoidBinaryCrossEntropy { weighted: true, .. }
        | BatchNormGradSums { .. }
        | AdamUpdate { amsgrad: false, .. } => 4,
        AdamUpdate { amsgrad: true, .. }
        | RmspropUpdate { .. }
        | BatchNormTrain { .. }
        | SoftmaxCrossEntropyGrad { weighted: true, .. }
        | MeanSquaredErrorGrad { weighted: true, .. }
        | PointwiseGrad { weighted: true, .. }
        | SigmoidBinaryCrossEntropyGrad { weighted: true, .. } => 5,
        BatchNormInference { .. } | BatchNormGrad { .. } => 6,
    }
}

/// Check that every step has the right number of args, that each slice lies inside its
/// arena, and that no written slice overlaps another arg of the same step.
pub fn validate(program: &Program, layout: &ResidentLayout) -> Result<()> {
    let arena_len = |a: Arena| match a {
        Arena::Params | Arena::Grads => layout.params_len,
        Arena::Slot(k) if (k as usize) < layout.slots => layout.params_len,
        Arena::Slot(_) => 0,
        Arena::Accum => layout.accum_len,
        Arena::Work => program.work_len,
    };
    let bug =
        |i: usize, s: &Step, m: String| Error::invalid("program", format!("step {i} ({:?}): {m}", s.kernel));
    for (i, s) in program.steps.iter().enumerate() {
        if s.args.len() != arg_count(&s.kernel) {
            return Err(bug(i, s, format!("{} args, expected {}", s.args.len(), arg_count(&s.kernel))));
        }
        for b in &s.args {
            if b.offset + b.len > arena_len(b.arena) {
                return Err(bug(i, s, format!("{b:?} outside its arena of {}", arena_len(b.arena))));
            }
        }
        for w in written_args(&s.kernel, s.args.len()) {
            let wb = s.args[w];
            for (j, b) in s.args.iter().enumerate() {
                let overlap = j != w
                    && b.arena == wb.arena
                    && b.offset < wb.offset + wb.len
                    && wb.offset < b.offset + b.len;
                if overlap {
                    return Err(bug(i, s, format!("written arg {w} overlaps arg {j}")));
                }
            }
        }
    }
    Ok(())
}

/// Run `steps` over `arenas`. The program must have passed [`validate`].
pub fn execute<T: CpuFloat>(steps: &[Step], arenas: &mut Arenas<T>, scalars: StepScalars) {
    for step in steps {
        execute_step(step, arenas, scalars);
    }
}

/// Raw views into the arenas for one step: validated slices never alias a written one, so
/// handing out `&[T]` for reads and `&mut [T]` for writes at the same time is sound.
struct Views<T> {
    /// (start, len) of each arg; kernels take at most six (no allocation per step).
    ptrs: [(*mut T, usize); 6],
}

impl<T> Views<T> {
    fn r(&self, i: usize) -> &[T] {
        let (p, n) = self.ptrs[i];
        // SAFETY: `validate` proved the slice in bounds and disjoint from every written arg.
        unsafe { std::slice::from_raw_parts(p, n) }
    }
    #[allow(clippy::mut_from_ref)]
    fn w(&self, i: usize) -> &mut [T] {
        let (p, n) = self.ptrs[i];
        // SAFETY: as above; each written arg is requested once per step.
        unsafe { std::slice::from_raw_parts_mut(p, n) }
    }
}

fn execute_step<T: CpuFloat>(step: &Step, arenas: &mut Arenas<T>, sc: StepScalars) {
    // Unused entries stay empty slices at a dangling (non-null, aligned) pointer.
    let mut ptrs = [(std::ptr::NonNull::dangling().as_ptr(), 0); 6];
    for (slot, b) in ptrs.iter_mut().zip(&step.args) {
        let arena = arenas.arena_mut(b.arena);
        *slot = (arena[b.range()].as_mut_ptr(), b.len);
    }
    let v = Views { ptrs };
    let c = T::c;
    use Kernel::*;
    match step.kernel {
        MatMul { m, k, n, trans_a, trans_b } => {
            kernels::matmul(m, k, n, trans_a, trans_b, v.r(0), v.r(1), v.w(2))
        }
        MatMulBiasAct { m, k, n, trans_a, trans_b, act } => {
            kernels::matmul_bias_act(m, k, n, trans_a, trans_b, act, v.r(0), v.r(1), v.r(2), v.w(3))
        }
        BiasAdd { cols, .. } => kernels::bias_add(cols, v.r(0), v.r(1), v.w(2)),
        Add { .. } => kernels::add(v.r(0), v.r(1), v.w(2)),
        Unary { op, .. } => kernels::unary(op, v.r(0), v.w(1)),
        Affine { scale, shift, .. } => {
            let (a, b) = (c(scale), c(shift));
            v.w(1).iter_mut().zip(v.r(0)).for_each(|(y, &x)| *y = x * a + b);
        }
        UnaryGrad { op, .. } => kernels::unary_grad(op, v.r(0), v.r(1), v.w(2)),
        Softmax { cols, .. } => kernels::softmax(cols, v.r(0), v.w(1)),
        LogSoftmax { cols, .. } => kernels::log_softmax(cols, v.r(0), v.w(1)),
        SoftmaxGrad { cols, .. } => kernels::softmax_grad(cols, v.r(0), v.r(1), v.w(2)),
        LogSoftmaxGrad { cols, .. } => kernels::log_softmax_grad(cols, v.r(0), v.r(1), v.w(2)),
        SumRows { cols, .. } => kernels::sum_rows(cols, v.r(0), v.w(1)),
        BroadcastRows { cols, .. } => kernels::broadcast_rows(cols, v.r(0), v.w(1)),
        SumAll { scale, .. } => v.w(1)[0] = kernels::sum_all(v.r(0)) * c(scale),
        BroadcastScalar { scale, .. } => {
            let x = v.r(0)[0] * c(scale);
            v.w(1).iter_mut().for_each(|o| *o = x);
        }
        Fill { value, .. } => v.w(0).iter_mut().for_each(|o| *o = c(value)),
        // The loss kernels: args (a, b, [w,] …) — with `weighted`, the per-sample weights are
        // arg 2 and every later arg moves up by one.
        SoftmaxCrossEntropy { rows, cols, sparse, weighted } => {
            let w = weighted.then(|| v.r(2));
            let loss = kernels::softmax_cross_entropy(rows, cols, sparse, v.r(0), v.r(1), w);
            v.w(2 + usize::from(weighted))[0] = loss
        }
        SoftmaxCrossEntropyGrad { rows, cols, sparse, weighted } => {
            let (w, k) = (weighted.then(|| v.r(2)), usize::from(weighted));
            kernels::softmax_cross_entropy_grad(
                rows,
                cols,
                sparse,
                v.r(0),
                v.r(1),
                w,
                v.r(2 + k)[0],
                v.w(3 + k),
            )
        }
        MeanSquaredError { rows, weighted, .. } => {
            let w = weights::RowWeights::new(weighted.then(|| v.r(2)), rows);
            v.w(2 + usize::from(weighted))[0] = kernels::mean_squared_error(v.r(0), v.r(1), w)
        }
        MeanSquaredErrorGrad { rows, weighted, .. } => {
            let (w, k) = (weights::RowWeights::new(weighted.then(|| v.r(2)), rows), usize::from(weighted));
            kernels::mean_squared_error_grad(v.r(0), v.r(1), w, v.r(2 + k)[0], v.w(3 + k))
        }
        Pointwise { loss, rows, weighted, .. } => {
            let w = weights::RowWeights::new(weighted.then(|| v.r(2)), rows);
            v.w(2 + usize::from(weighted))[0] = pointwise::loss(loss, v.r(0), v.r(1), w)
        }
        PointwiseGrad { loss, rows, weighted, .. } => {
            let (w, k) = (weights::RowWeights::new(weighted.then(|| v.r(2)), rows), usize::from(weighted));
            pointwise::grad(loss, v.r(0), v.r(1), w, v.r(2 + k)[0], v.w(3 + k))
        }
        SigmoidBinaryCrossEntropy { rows, weighted, .. } => {
            let w = weights::RowWeights::new(weighted.then(|| v.r(2)), rows);
            v.w(2 + usize::from(weighted))[0] = kernels::sigmoid_bce(v.r(0), v.r(1), w)
        }
        SigmoidBinaryCrossEntropyGrad { rows, weighted, .. } => {
            let (w, k) = (weights::RowWeights::new(weighted.then(|| v.r(2)), rows), usize::from(weighted));
            kernels::sigmoid_bce_grad(v.r(0), v.r(1), w, v.r(2 + k)[0], v.w(3 + k))
        }
        CountTopK { rows, cols, sparse, k } => {
            v.w(2)[0] = metrics::count_top_k(rows, cols, sparse, k, v.r(0), v.r(1))
        }
        BinaryCounts { threshold, .. } => metrics::binary_counts(threshold, v.r(0), v.r(1), v.w(2)),
        RocHistogram { cols, sparse, thresholds, .. } => {
            metrics::roc_histogram(cols, sparse, thresholds, v.r(0), v.r(1), v.w(2))
        }
        ClassCounts { rows, cols, sparse, threshold } => {
            metrics::class_counts(rows, cols, sparse, threshold, v.r(0), v.r(1), v.w(2))
        }
        CountCorrect { rows, cols, sparse, threshold } => {
            v.w(2)[0] = kernels::count_correct(rows, cols, sparse, threshold, v.r(0), v.r(1))
        }
        FirstNonFinite => {
            let flag = v.w(1);
            if flag[0] == T::zero() && !v.r(0)[0].is_finite() {
                flag[0] = T::from(sc.t).unwrap_or(T::one());
            }
        }
        Im2Col { win } => conv::im2col(&win, v.r(0), v.w(1)),
        Col2Im { win } => conv::col2im(&win, v.r(0), v.w(1)),
        MaxPool { win } => conv::max_pool(&win, v.r(0), v.w(1)),
        MaxPoolGrad { win, relu } => conv::max_pool_grad(&win, relu, v.r(0), v.r(1), v.w(2)),
        AvgPool { win } => conv::avg_pool(&win, v.r(0), v.w(1)),
        AvgPoolGrad { win } => conv::avg_pool_grad(&win, v.r(0), v.w(1)),
        RandomFlip { win, seed } => conv::random_flip(&win, seed, sc.t, v.r(0), v.w(1)),
        Dropout { seed, threshold, scale, .. } => {
            conv::dropout(seed, sc.t, threshold, c(scale), v.r(0), v.w(1))
        }
        BatchMoments { rows, cols } => norm::moments(rows, cols, v.r(0), v.w(1)),
        BatchNormTrain { cols, eps, .. } => {
            norm::batch_norm_train(cols, eps, v.r(0), v.r(1), v.r(2), v.r(3), v.w(4))
        }
        BatchNormGradSums { cols, eps, .. } => {
            norm::batch_norm_grad_sums(cols, eps, v.r(0), v.r(1), v.r(2), v.w(3))
        }
        BatchNormGrad { rows, cols, eps } => {
            let inputs = [v.r(0), v.r(1), v.r(2), v.r(3), v.r(4)];
            norm::batch_norm_grad(rows, cols, eps, inputs, v.w(5))
        }
        Copy { offset, len } => v.w(1).copy_from_slice(&v.r(0)[offset..offset + len]),
        BatchNormMoving { cols, momentum } => norm::batch_norm_moving(cols, momentum, v.r(0), v.w(1), v.w(2)),
        BatchNormInference { cols, eps, .. } => {
            norm::batch_norm_inference(cols, eps, v.r(0), v.r(1), v.r(2), v.r(3), v.r(4), v.w(5))
        }
        Accumulate { scale, .. } => v.w(1).iter_mut().zip(v.r(0)).for_each(|(a, &x)| *a = *a + x * c(scale)),
        SgdUpdate { momentum, nesterov, .. } => {
            optim::sgd_update(c(sc.lr), c(momentum), nesterov, v.w(0), v.r(1), v.w(2))
        }
        AdamUpdate { beta1, beta2, epsilon, weight_decay, amsgrad, .. } => optim::adam_update(
            c(sc.lr),
            sc.t,
            c(beta1),
            c(beta2),
            c(epsilon),
            c(weight_decay),
            v.w(0),
            v.r(1),
            v.w(2),
            v.w(3),
            amsgrad.then(|| v.w(4)),
        ),
        AdagradUpdate { epsilon, .. } => optim::adagrad_update(c(sc.lr), c(epsilon), v.w(0), v.r(1), v.w(2)),
        RmspropUpdate { rho, momentum, epsilon, centered, .. } => optim::rmsprop_update(
            c(sc.lr),
            c(rho),
            c(momentum),
            c(epsilon),
            v.w(0),
            v.r(1),
            v.w(2),
            (momentum != 0.0).then(|| v.w(3)),
            centered.then(|| v.w(4)),
        ),
        SumSquares { accumulate, .. } => {
            let sum = optim::sum_squares(v.r(0));
            let total = v.w(1);
            total[0] = if accumulate { total[0] + sum } else { sum };
        }
        ClipByNorm { clip_norm, .. } => optim::clip_by_norm(v.r(0)[0], c(clip_norm), v.w(1)),
        ClipByValue { clip_value, .. } => optim::clip_by_value(c(clip_value), v.w(0)),
        WeightPenalty { l1, l2, .. } => v.w(1)[0] = optim::weight_penalty(c(l1), c(l2), v.r(0)),
        WeightPenaltyGrad { l1, l2, .. } => {
            optim::weight_penalty_grad(c(l1), c(l2), v.r(0), v.r(1)[0], v.w(2))
        }
    }
}

/// The CPU backend: f32 arenas, one work arena per compiled program.
pub struct CpuBackend {
    layout: ResidentLayout,
    resident: Arenas<f32>,
    programs: Vec<Program>,
    /// Work arena of each program, parked here between runs.
    works: Vec<Vec<f32>>,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuBackend {
    /// A CPU backend with empty resident arenas.
    pub fn new() -> CpuBackend {
        CpuBackend {
            layout: ResidentLayout::default(),
            resident: Arenas::default(),
            programs: Vec::new(),
            works: Vec::new(),
        }
    }

    fn check_id(&self, id: ProgramId) -> Result<()> {
        if id.0 >= self.programs.len() {
            return Err(Error::invalid("program id", format!("{} was not compiled on this backend", id.0)));
        }
        Ok(())
    }
}

fn check_range(arena: Arena, offset: usize, len: usize, have: usize) -> Result<()> {
    if offset + len > have {
        return Err(Error::invalid(
            "arena access",
            format!("{arena:?}[{offset}..{}] is outside its {have} elements", offset + len),
        ));
    }
    Ok(())
}

impl Backend for CpuBackend {
    fn name(&self) -> String {
        format!("cpu ({} threads)", pool::global().threads())
    }

    fn kind(&self) -> DeviceKind {
        DeviceKind::Cpu
    }

    fn alloc_resident(&mut self, layout: &ResidentLayout) -> Result<()> {
        self.layout = *layout;
        self.resident = Arenas::new(layout, 0);
        Ok(())
    }

    fn write(&mut self, arena: Arena, offset: usize, data: &[f32]) -> Result<()> {
        let a = self.resident.arena_mut(arena);
        check_range(arena, offset, data.len(), a.len())?;
        a[offset..offset + data.len()].copy_from_slice(data);
        Ok(())
    }

    fn read(&mut self, arena: Arena, offset: usize, len: usize) -> Result<Vec<f32>> {
        let a = self.resident.arena(arena);
        check_range(arena, offset, len, a.len())?;
        Ok(a[offset..offset + len].to_vec())
    }

    fn compile(&mut self, program: &Program) -> Result<ProgramId> {
        validate(program, &self.layout)?;
        self.programs.push(program.clone());
        self.works.push(vec![0.0; program.work_len]);
        Ok(ProgramId(self.programs.len() - 1))
    }

    fn run(&mut self, id: ProgramId, inputs: &[&[f32]], scalars: StepScalars) -> Result<()> {
        self.check_id(id)?;
        let program = &self.programs[id.0];
        if inputs.len() != program.inputs.len() {
            return Err(Error::invalid(
                "program inputs",
                format!("{} given, {} expected", inputs.len(), program.inputs.len()),
            ));
        }
        let work = &mut self.works[id.0];
        for ((name, b), data) in program.inputs.iter().zip(inputs) {
            if data.len() != b.len {
                return Err(Error::shape(format!("input '{name}'"), &[b.len], &[data.len()]));
            }
            work[b.range()].copy_from_slice(data);
        }
        std::mem::swap(&mut self.resident.work, work);
        execute(&program.steps, &mut self.resident, scalars);
        std::mem::swap(&mut self.resident.work, &mut self.works[id.0]);
        Ok(())
    }

    fn read_work(&mut self, id: ProgramId, buf: BufRef) -> Result<Vec<f32>> {
        self.check_id(id)?;
        let work = &self.works[id.0];
        check_range(buf.arena, buf.offset, buf.len, work.len())?;
        Ok(work[buf.range()].to_vec())
    }
}
