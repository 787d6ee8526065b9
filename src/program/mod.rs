//! The contract between the planner and the backends: a Program is an ordered list of
//! kernel launches over slices of a few flat arenas. Both backends execute exactly these
//! semantics; the CPU interpreter (`backend::cpu`) is the specification.
//!
//! Layout: every tensor is row-major f32. A `BufRef` names `len` elements starting at
//! `offset` (in elements) of one arena. The planner aligns every offset to
//! [`ALIGN_ELEMS`] elements (256 bytes) so a GPU backend can bind each slice directly.

pub mod binary;
pub mod recurrent;
pub(crate) mod table;
pub mod unary;

pub use binary::{BinaryOp, Operand};
pub use recurrent::{Recurrence, RecurrentCell, SequencePart};
pub use unary::{GradSource, UnaryOp};

/// Alignment of every buffer slice, in f32 elements (256 bytes: the largest
/// `min_storage_buffer_offset_alignment` WebGPU allows).
pub const ALIGN_ELEMS: usize = 64;

/// Round `n` up to a multiple of [`ALIGN_ELEMS`].
pub fn align(n: usize) -> usize {
    n.div_ceil(ALIGN_ELEMS) * ALIGN_ELEMS
}

/// The flat arenas a program reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arena {
    /// Resident: all trainable parameters, one after another (aligned).
    Params,
    /// Resident: gradients, same layout as `Params`.
    Grads,
    /// Resident: optimizer state `k` (momentum, Adam m/v, ...), same layout as `Params`.
    Slot(u8),
    /// Resident: metric accumulators (loss sum, correct count, ...), read back per epoch.
    Accum,
    /// Per program: batch inputs, activations and temporaries, reused by liveness.
    Work,
}

impl Arena {
    /// The arena's name in messages: "Params", "Grads", "Slot 0", "Accum", "Work".
    pub fn name(&self) -> String {
        match self {
            Arena::Params => "Params".into(),
            Arena::Grads => "Grads".into(),
            Arena::Slot(k) => format!("Slot {k}"),
            Arena::Accum => "Accum".into(),
            Arena::Work => "Work".into(),
        }
    }
}

/// `len` f32 elements at `offset` (elements) of `arena`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BufRef {
    pub arena: Arena,
    pub offset: usize,
    pub len: usize,
}

impl BufRef {
    /// Element range of this slice within its arena.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len
    }
}

/// How `same`/`valid` padding sizes a sliding window (Keras semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// No padding: only windows that fit inside the image.
    Valid,
    /// Output size ceil(in / stride); the padding is split with the extra row/column at the
    /// bottom/right, as TensorFlow does.
    Same,
}

/// A 2-D sliding window over NHWC images `[batch, height, width, channels]`: the patches of a
/// convolution (with dilation) or the windows of a pooling layer. `pad` is the (top, left)
/// padding; the bottom/right padding is whatever makes `out` fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window2d {
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub dilation: (usize, usize),
    pub pad: (usize, usize),
    pub out: (usize, usize),
}

impl Window2d {
    /// The window geometry for an input `[batch, height, width, channels]`; None when a
    /// size is zero or a `valid` window is larger than the (dilated) input.
    pub fn new(
        input: [usize; 4],
        kernel: (usize, usize),
        stride: (usize, usize),
        dilation: (usize, usize),
        padding: Padding,
    ) -> Option<Window2d> {
        let [batch, height, width, channels] = input;
        if [kernel.0, kernel.1, stride.0, stride.1, dilation.0, dilation.1].contains(&0) {
            return None;
        }
        // One axis: (output size, padding before).
        let axis = |len: usize, k: usize, s: usize, d: usize| -> Option<(usize, usize)> {
            let span = (k - 1) * d + 1;
            match padding {
                Padding::Valid => (len >= span).then(|| ((len - span) / s + 1, 0)),
                Padding::Same => {
                    let out = len.div_ceil(s);
                    let total = ((out.max(1) - 1) * s + span).saturating_sub(len);
                    (len > 0).then_some((out, total / 2))
                }
            }
        };
        let (oh, pt) = axis(height, kernel.0, stride.0, dilation.0)?;
        let (ow, pl) = axis(width, kernel.1, stride.1, dilation.1)?;
        Some(Window2d {
            batch,
            height,
            width,
            channels,
            kernel,
            stride,
            dilation,
            pad: (pt, pl),
            out: (oh, ow),
        })
    }

    /// Elements of one patch: kernel height · kernel width · channels.
    pub fn patch_len(&self) -> usize {
        self.kernel.0 * self.kernel.1 * self.channels
    }

    /// Number of output positions over the batch: batch · out height · out width.
    pub fn positions(&self) -> usize {
        self.batch * self.out.0 * self.out.1
    }

    /// Elements of the input images.
    pub fn input_len(&self) -> usize {
        self.batch * self.height * self.width * self.channels
    }

    /// Input row/column of kernel tap `k` for output position `o` on one axis (0 = rows), or
    /// None when it falls into the padding.
    pub fn tap(&self, axis: usize, o: usize, k: usize) -> Option<usize> {
        let (s, d, p, len) = if axis == 0 {
            (self.stride.0, self.dilation.0, self.pad.0, self.height)
        } else {
            (self.stride.1, self.dilation.1, self.pad.1, self.width)
        };
        (o * s + k * d).checked_sub(p).filter(|&i| i < len)
    }
}

/// Elements per partial histogram of [`Kernel::RocHistogram`] (one GPU workgroup each).
pub const ROC_CHUNK: usize = 4096;
/// Rows per partial count of [`Kernel::ClassCounts`] (one GPU workgroup row each).
pub const CLASS_COUNT_CHUNK: usize = 1024;

/// PCG-style integer hash (Jarzynski & Olano, "Hash Functions for GPU Rendering", 2020); the
/// WGSL `pcg_hash` in `shaders/elementwise.wgsl` computes the same bits.
pub fn pcg_hash(v: u32) -> u32 {
    let state = v.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277_803_737);
    (word >> 22) ^ word
}

/// The random word deciding whether dropout keeps element `i` at step `t` (see
/// [`Kernel::Dropout`]).
pub fn dropout_word(seed: u32, t: u32, i: u32) -> u32 {
    pcg_hash(i ^ pcg_hash(t ^ pcg_hash(seed)))
}

/// An elementwise loss, averaged over all elements of the prediction (p) and target (t).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PointwiseLoss {
    /// |p − t|; gradient sign(p − t) (0 at p = t).
    AbsoluteError,
    /// ½ d² for |d| ≤ delta, else delta·(|d| − ½ delta), d = p − t (Keras `Huber`).
    Huber { delta: f32 },
    /// Binary cross-entropy of probabilities clipped to [eps, 1 − eps]:
    /// −(t log p + (1 − t) log(1 − p)); gradient 0 where the clip is active (as Keras).
    BinaryCrossEntropy { eps: f32 },
}

impl PointwiseLoss {
    /// The shader's code for the loss and its scalar parameter.
    pub fn code(&self) -> (u32, f32) {
        match *self {
            PointwiseLoss::AbsoluteError => (0, 0.0),
            PointwiseLoss::Huber { delta } => (1, delta),
            PointwiseLoss::BinaryCrossEntropy { eps } => (2, eps),
        }
    }
}

/// One kernel launch with its fixed dimensions. `args` of the enclosing [`Step`] are listed
/// per variant: inputs first, then outputs. Outputs never alias inputs unless stated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kernel {
    /// args `[a, b, c]`: c[m,n] = op(a)[m,k] · op(b)[k,n]; `a` is stored [m,k] (or [k,m] when
    /// `trans_a`), `b` is stored [k,n] (or [n,k] when `trans_b`).
    MatMul { m: usize, k: usize, n: usize, trans_a: bool, trans_b: bool },
    /// args `[a, b, bias, c]`: c[m,n] = act(op(a)·op(b) + bias[j]) — a Dense layer's forward
    /// in one launch (the planner fuses MatMul → BiasAdd → activation into it). `act` None
    /// is the identity. Layouts as in `MatMul`; bias: [n].
    MatMulBiasAct { m: usize, k: usize, n: usize, trans_a: bool, trans_b: bool, act: Option<UnaryOp> },
    /// args `[x, b, y]`: y[i,j] = x[i,j] + b[j]; x, y: [rows, cols], b: [cols].
    BiasAdd { rows: usize, cols: usize },
    /// args `[a, b, y]`: y = a + b elementwise, all [len].
    Add { len: usize },
    /// args `[x, y]`: y = f(x) elementwise.
    Unary { op: UnaryOp, len: usize },
    /// args `[x, y]`: y[i] = x[offset + i], i < len (a row of a matrix).
    Copy { len: usize, offset: usize },
    /// args `[x, y]`: y = scale·x + shift elementwise (label smoothing on the device).
    Affine { len: usize, scale: f32, shift: f32 },
    /// args `[v, dy, dx]`: the gradient of `op` from v, its forward input or output as
    /// `op.grad_source()` says (relu: dx = dy·[y>0]; silu: from x).
    UnaryGrad { op: UnaryOp, len: usize },
    /// args `[a, b, y]`: y = f(a, b) elementwise, all [len].
    Binary { op: BinaryOp, len: usize },
    /// args `[a, b, dy, dx]`: dx = ∂f/∂(operand `wrt`) · dy elementwise, all [len].
    BinaryGrad { op: BinaryOp, wrt: Operand, len: usize },
    /// args `[x, y]`: row-wise softmax of x: [rows, cols] (max-subtracted).
    Softmax { rows: usize, cols: usize },
    /// args `[x, y]`: row-wise log-softmax, y = x − max − log Σ exp(x − max).
    LogSoftmax { rows: usize, cols: usize },
    /// args `[y, dy, dx]`: dx = y ⊙ (dy − Σ_j dy_j y_j) per row (y = softmax output).
    SoftmaxGrad { rows: usize, cols: usize },
    /// args `[y, dy, dx]`: dx = dy − exp(y) · Σ_j dy_j per row (y = log-softmax output).
    LogSoftmaxGrad { rows: usize, cols: usize },
    /// args `[z, u, b_r, mask, drop, s]`: the time loop of a recurrent layer (layouts in
    /// program/recurrent.rs): for each processing step t, s[t] = cell(z[:, τ(t)], s[t−1], u)
    /// (the GRU's with its recurrent bias b_r; a masked step keeps s[t−1]; the product reads
    /// h_{t−1}·drop with recurrent dropout). b_r, mask and drop are empty where unused. One
    /// dispatch per step on the GPU.
    RecurrentForward { rec: Recurrence },
    /// args `[table, ids, y]`: y[i, :] = table[ids[i], :]; table: [vocab, dim], ids: [ids]
    /// (integers as f32, checked on the host), y: [ids, dim].
    Embedding { ids: usize, vocab: usize, dim: usize },
    /// args `[ids, dy, dtable]`: dtable[v, :] = Σ_{i: ids[i] = v} dy[i, :], summed in i order.
    EmbeddingGrad { ids: usize, vocab: usize, dim: usize },
    /// args `[a, b, y]`: y[r, :] = [a[r, :], b[r, :]]; a: [rows, a_cols], b: [rows, b_cols].
    ConcatColumns { rows: usize, a_cols: usize, b_cols: usize },
    /// args `[x, y]`: y[r, c] = x[r, start + c], c < len; x: [rows, cols].
    SliceColumns { rows: usize, cols: usize, start: usize, len: usize },
    /// args `[x, mask]`: mask[r] = 1 if some x[r, f] ≠ value else 0; x: [rows, features].
    SequenceMask { rows: usize, features: usize, value: f32 },
    /// args `[s, dz, dq]`: the gradient of the recurrent pre-activations h_{t−1}·U (+ b_r)
    /// from dz: dz itself, but for the GRU's candidate block, times the reset gate r.
    RecurrentGateGrad { rec: Recurrence },
    /// args `[s, u, ds, mask, drop, dz]`: backpropagation through time from the states' gradient ds
    /// (nonzero in the output columns), last step first: dz, the gradient of the projection.
    RecurrentBackward { rec: Recurrence },
    /// args `[s, y]`: the part of the states a layer returns (or the recurrent gradient's
    /// operand, `Previous`).
    RecurrentGather { rec: Recurrence, part: SequencePart },
    /// args `[dy, ds]`: the gradient of `RecurrentGather`: dy written back into the output
    /// columns of ds, zeros elsewhere.
    RecurrentScatter { rec: Recurrence, part: SequencePart },
    /// args `[x, y]`: y[j] = Σ_i x[i,j]; x: [rows, cols], y: [cols].
    SumRows { rows: usize, cols: usize },
    /// args `[x, y]`: y[i,j] = x[j]; x: [cols], y: [rows, cols].
    BroadcastRows { rows: usize, cols: usize },
    /// args `[x, y]`: y[i,j] = x[j] for i = index, else 0; x: [cols], y: [rows, cols].
    PlaceRow { rows: usize, cols: usize, index: usize },
    /// args `[x, y]`: y[0] = scale · Σ_i x[i]; x: [len], y: [1]. (sum: scale 1, mean: 1/len)
    SumAll { len: usize, scale: f32 },
    /// args `[x, y]`: y[i] = scale · x[0]; x: [1], y: [len].
    BroadcastScalar { len: usize, scale: f32 },
    /// args `[y]`: y[i] = value.
    Fill { len: usize, value: f32 },
    /// args `[logits, labels, loss]`: loss[0] = mean over rows of −Σ_j t_ij log softmax(logits_i)_j.
    /// Sparse: labels [rows] hold class indices as f32 (t = one-hot); else labels [rows, cols].
    /// `weighted`: args `[logits, labels, w, loss]`, w [rows] per-sample weights, loss[0] =
    /// (1/rows) Σ_i w_i · l_i (Keras's "sum_over_batch_size" with `sample_weight`).
    SoftmaxCrossEntropy { rows: usize, cols: usize, sparse: bool, weighted: bool },
    /// args `[logits, labels, dloss, dlogits]`: dlogits = (softmax(logits) − t) · dloss[0] / rows.
    /// `weighted`: args `[logits, labels, w, dloss, dlogits]`, row i scaled by w_i.
    SoftmaxCrossEntropyGrad { rows: usize, cols: usize, sparse: bool, weighted: bool },
    /// args `[pred, target, loss]`: loss[0] = mean over all `len` elements of (pred − target)².
    /// `weighted`: args `[pred, target, w, loss]`, w [rows]; element e of row e / (len / rows)
    /// counts w_row times: (1/len) Σ_e w_row(e) · (pred − target)², i.e. (1/rows) Σ_i w_i ·
    /// (row i's mean). The same `rows`/`weighted` scheme holds for the elementwise losses below.
    MeanSquaredError { len: usize, rows: usize, weighted: bool },
    /// args `[pred, target, dloss, dpred]`: dpred = 2 (pred − target) · dloss[0] / len.
    /// `weighted`: args `[pred, target, w, dloss, dpred]`, each element scaled by its row's w.
    MeanSquaredErrorGrad { len: usize, rows: usize, weighted: bool },
    /// args `[pred, target, loss]`: loss[0] = mean over all `len` elements of `loss`(pred, target).
    /// `weighted`: as `MeanSquaredError`.
    Pointwise { loss: PointwiseLoss, len: usize, rows: usize, weighted: bool },
    /// args `[pred, target, dloss, dpred]`: dpred = ∂`loss`/∂pred · dloss[0] / len.
    /// `weighted`: as `MeanSquaredErrorGrad`.
    PointwiseGrad { loss: PointwiseLoss, len: usize, rows: usize, weighted: bool },
    /// args `[logits, target, loss]`: binary cross-entropy of sigmoid(logits) against targets in
    /// [0,1], mean over `len`: max(z,0) − z·t + log(1 + exp(−|z|)). `weighted`: as
    /// `MeanSquaredError`.
    SigmoidBinaryCrossEntropy { len: usize, rows: usize, weighted: bool },
    /// args `[logits, target, dloss, dlogits]`: dlogits = (sigmoid(z) − t) · dloss[0] / len.
    /// `weighted`: as `MeanSquaredErrorGrad`.
    SigmoidBinaryCrossEntropyGrad { len: usize, rows: usize, weighted: bool },
    /// args `[pred, labels, count]`: count[0] = rows whose label's prediction has fewer than
    /// `k` strictly larger predictions in the row (sparse: labels [rows] class indices; else
    /// the argmax of the one-hot row).
    CountTopK { rows: usize, cols: usize, sparse: bool, k: usize, weighted: bool },
    /// args `[pred, labels, counts]`: counts[0..3] = true positives, false positives, false
    /// negatives of `pred > threshold` against `label > 0.5`, over `len` elements.
    BinaryCounts { len: usize, threshold: f32 },
    /// args `[pred, labels, partial]`: the ROC AUC histograms of probabilities pred [rows,
    /// cols] over `thresholds` buckets (T, Keras's evenly spaced thresholds): element e goes to
    /// bucket b = min(ceil(p·(T − 1)), T) − 1, or 0 when p ≤ 0 or NaN — so p > threshold t
    /// exactly for the buckets b ≥ t. partial [chunks, 2T], chunk c = e / [`ROC_CHUNK`]:
    /// partial[c, b] += w, partial[c, T + b] += 1 − w, in element order, where w is the label
    /// (sparse: labels [rows] class indices, w = [column == label]).
    RocHistogram { rows: usize, cols: usize, sparse: bool, thresholds: usize },
    /// args `[pred, labels, partial]`: per-class true positives, false positives and false
    /// negatives, partial [chunks, 3·cols] (row chunk c = row / [`CLASS_COUNT_CHUNK`]):
    /// partial[c, k] TP, partial[c, cols + k] FP, partial[c, 2·cols + k] FN of class k.
    /// `threshold` None: one class per row, predicted = argmax of the row (first maximum),
    /// true = the sparse label or the argmax of the one-hot row. Some(t): every column is its
    /// own binary problem, pred > t against label > 0.5.
    ClassCounts { rows: usize, cols: usize, sparse: bool, threshold: Option<f32> },
    /// args `[pred, labels, count]`: count[0] = number of correct rows. cols > 1: argmax of the
    /// row (first maximum) equals the label (sparse: labels [rows] class indices; else argmax
    /// of the one-hot row). cols == 1: (pred > threshold) == (label > 0.5).
    CountCorrect { rows: usize, cols: usize, sparse: bool, threshold: f32, weighted: bool },
    /// args `[x, flag]`: if flag[0] == 0 and x[0] is NaN or ±inf, flag[0] = t (the run's step
    /// count, `StepScalars::t`), in place on `flag` — the first non-finite loss, recorded on
    /// the device and read back once per epoch.
    FirstNonFinite,
    /// args `[x, cols]`: the patches of a convolution, im2col. x: NHWC `[batch, height, width,
    /// channels]`; cols: `[positions, patch_len]`, row (n, oy, ox), column (ky, kx, c) =
    /// x[n, oy·sh − pt + ky·dh, ox·sw − pl + kx·dw, c], 0 in the padding. A convolution is then
    /// one matmul of cols with the HWIO filter viewed as `[patch_len, filters]`.
    Im2Col { win: Window2d },
    /// args `[x, w, bias, y]` (without `bias`: `[x, w, y]`): a convolution in one launch,
    /// reading its patches inside the product (implicit GEMM) instead of materialising them:
    /// y[pos, f] = act(Σ_q im2col(x)[pos, q] · w[q, f] + bias[f]), x NHWC, w the HWIO filter
    /// viewed as `[patch_len, filters]`, y `[positions, filters]`. The value of
    /// `Im2Col` → `MatMul(BiasAct)`, which the planner rewrites into it for GPUs.
    Conv2d { win: Window2d, filters: usize, bias: bool, act: Option<UnaryOp> },
    /// args `[x, dy, dw]`: a convolution's filter gradient without patches,
    /// dw[q, f] = Σ_pos im2col(x)[pos, q] · dy[pos, f]: `Im2Col` → `MatMul { trans_a }`.
    Conv2dFilterGrad { win: Window2d, filters: usize },
    /// args `[dy, w, dx]`: a convolution's input gradient without patches, dx =
    /// col2im(dy · wᵀ): `MatMul { trans_b }` → `Col2Im`.
    Conv2dInputGrad { win: Window2d, filters: usize },
    /// args `[cols, x]`: the adjoint of `Im2Col` (col2im): every input element is the sum of the
    /// patch entries that read it, gathered in (ky, kx) order — no atomics, so deterministic.
    Col2Im { win: Window2d },
    /// args `[x, y]`: y[n, oy, ox, c] = max over the window (padding ignored); y: `[batch,
    /// out.0, out.1, channels]`.
    MaxPool { win: Window2d },
    /// args `[x, dy, dx]`: each window's gradient goes to its first maximum (row-major order
    /// within the window), gathered per input element in window order. With `relu`, only
    /// windows whose maximum is > 0 pass their gradient: the backward of relu then max pooling
    /// in one pass (x is the relu's output; the planner fuses the two).
    MaxPoolGrad { win: Window2d, relu: bool },
    /// args `[x, y]`: y = mean over the window's positions inside the image (padding is not
    /// counted, as TensorFlow).
    AvgPool { win: Window2d },
    /// args `[dy, dx]`: the adjoint of `AvgPool`, gathered per input element.
    AvgPoolGrad { win: Window2d },
    /// args `[x, y]`: a horizontal flip of some images of an NHWC batch (`win`: the images'
    /// geometry; its kernel is 1×1): image n of step t is mirrored left to right when
    /// dropout_word(seed, t, n) is odd, else copied. Its own adjoint, so also its backward.
    RandomFlip { win: Window2d, seed: u32 },
    /// args `[x, y]`: inverted dropout, y[i] = x[i] · scale where the element is kept, else 0.
    /// Element i of step t is kept when hash(seed, t, i) ≥ threshold (a u32: rate · 2³²);
    /// scale = 1 / (1 − rate). With `period` ≠ 0 the hashed index is
    /// (i / period)·inner + i % inner: one mask per sequence of `[B, T, F]` (period T·F, inner F).
    /// The mask is a pure function of (seed, t, i), so the backward pass is the same kernel on
    /// dy, and CPU and GPU drop the same elements.
    Dropout { len: usize, seed: u32, threshold: u32, scale: f32, inner: usize, period: usize },
    /// args `[x, moments]`: per column j of x: [rows, cols] (channels last: rows = batch ·
    /// height · width), moments[j] = the batch mean μ_j, moments[cols + j] = the biased
    /// variance σ²_j (two passes, rows in order). Computed once per step and shared by the
    /// batch-norm kernels below.
    BatchMoments { rows: usize, cols: usize },
    /// args `[x, moments, gamma, beta, y]`: batch normalisation in training,
    /// y = (x − μ_j) · (1 / sqrt(σ²_j + eps)) · γ_j + β_j.
    BatchNormTrain { rows: usize, cols: usize, eps: f32 },
    /// args `[x, moments, dy, sums]`: per column, sums[j] = Σ_i dy_ij (= dβ_j) and
    /// sums[cols + j] = Σ_i dy_ij · x̂_ij (= dγ_j), x̂ = (x − μ)/sqrt(σ² + eps).
    BatchNormGradSums { rows: usize, cols: usize, eps: f32 },
    /// args `[x, moments, gamma, dy, sums, dx]`: dx = γ/(sqrt(σ² + eps)·rows) · (rows·dy − Σdy −
    /// x̂·Σ(dy·x̂)) elementwise, with the sums of `BatchNormGradSums`: the whole gradient,
    /// through the statistics too.
    BatchNormGrad { rows: usize, cols: usize, eps: f32 },
    /// args `[moments, mean, var]` (mean and var updated in place): Keras's moving
    /// statistics, m = m·momentum + μ·(1 − momentum), and the same for the biased variance.
    BatchNormMoving { cols: usize, momentum: f32 },
    /// args `[x, gamma, beta, mean, var, y]`: batch normalisation in inference, with the moving
    /// statistics: y = γ (x − mean) / sqrt(var + eps) + β.
    BatchNormInference { rows: usize, cols: usize, eps: f32 },
    /// args `[x, acc]`: acc[i] += scale · x[i] (in place on `acc`).
    Accumulate { len: usize, scale: f32 },
    /// args `[param, grad, velocity]` (param and velocity updated in place), Keras SGD:
    /// momentum 0: p −= lr·g. Else v = momentum·v − lr·g; p += v (nesterov: p += momentum·v − lr·g).
    SgdUpdate { len: usize, momentum: f32, nesterov: bool },
    /// args `[param, grad, m, v]`, plus `v_hat` with `amsgrad` (all but grad updated in
    /// place), Keras Adam and AdamW with t = step:
    /// weight_decay ≠ 0 (AdamW): p −= p·weight_decay·lr first;
    /// m += (g − m)(1 − β1); v += (g² − v)(1 − β2);
    /// amsgrad: v̂ = max(v̂, v), and v̂ takes v's place below;
    /// p −= lr·sqrt(1 − β2^t)/(1 − β1^t) · m / (sqrt(v) + ε).
    AdamUpdate { len: usize, beta1: f32, beta2: f32, epsilon: f32, weight_decay: f32, amsgrad: bool },
    /// args `[param, grad, accumulator]` (param and accumulator updated in place), Keras
    /// Adagrad: a += g²; p −= lr·g / sqrt(a + ε).
    AdagradUpdate { len: usize, epsilon: f32 },
    /// args `[param, grad, ms, mom, mg]` (all but grad updated in place; `mom` is empty
    /// unless momentum ≠ 0, `mg` unless centered), Keras RMSprop:
    /// ms = ρ·ms + (1 − ρ)·g²; centered: mg = ρ·mg + (1 − ρ)·g, d = ms − mg² + ε, else
    /// d = ms + ε; Δ = lr·g / sqrt(d); momentum ≠ 0: mom = momentum·mom + Δ, p −= mom;
    /// else p −= Δ.
    RmspropUpdate { len: usize, rho: f32, momentum: f32, epsilon: f32, centered: bool },
    /// args `[x, total]`: total[0] = Σ x² (accumulate: total[0] += Σ x²), in place on
    /// `total`; the squared norm for gradient clipping, summed in a fixed order.
    SumSquares { len: usize, accumulate: bool },
    /// args `[total, g]` (g in place): g *= c / max(sqrt(total[0]), c), c = clip_norm: a
    /// gradient whose norm (sqrt(total)) is above c is rescaled to norm c, else left as is.
    ClipByNorm { len: usize, clip_norm: f32 },
    /// args `[g]` (in place): g = min(max(g, −c), c), c = clip_value.
    ClipByValue { len: usize, clip_value: f32 },
    /// args `[w, y]`: y[0] = l1·Σ|w| + l2·Σ w² — Keras's L1/L2 weight penalty.
    WeightPenalty { len: usize, l1: f32, l2: f32 },
    /// args `[w, dy, dw]`: dw = dy[0]·(l1·sign(w) + 2·l2·w), sign(0) = 0.
    WeightPenaltyGrad { len: usize, l1: f32, l2: f32 },
}

/// Which args of a step a kernel writes (see [`Kernel::signature`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// Only the last arg (its output).
    Last,
    /// These args, updated in place (optimizer updates, moving statistics).
    Args(&'static [usize]),
}

/// A kernel's argument contract: how many args it takes and which it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    pub args: usize,
    pub writes: Writes,
}

impl Signature {
    /// The indices of the written args of a step with `nargs` args.
    pub fn written(&self, nargs: usize) -> Vec<usize> {
        match self.writes {
            Writes::Last => vec![nargs.saturating_sub(1)],
            Writes::Args(args) => args.to_vec(),
        }
    }
}

/// One kernel launch over arena slices.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub kernel: Kernel,
    pub args: Vec<BufRef>,
    /// The layer and value this step computes (for error messages); None for steps that
    /// belong to no layer (optimizer updates, metric accumulation).
    pub origin: Option<StepOrigin>,
}

impl Step {
    /// A step without an origin.
    pub fn new(kernel: Kernel, args: Vec<BufRef>) -> Step {
        Step { kernel, args, origin: None }
    }

    /// What the step computes, in words: "the patches of layer 'conv2d_1' (Im2Col, step 3)".
    pub fn describe(&self, index: usize) -> String {
        match &self.origin {
            Some(o) => {
                format!("the {} of layer '{}' ({}, step {index})", o.role, o.layer, self.kernel.name())
            }
            None => format!("step {index} ({})", self.kernel.name()),
        }
    }
}

/// Where a step comes from: its layer (as Keras names it) and the role of the value it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOrigin {
    pub layer: String,
    /// "activations", "patches", "gradient", "loss", ...
    pub role: &'static str,
}

/// Values that change every run of a program (uploaded with the batch, never baked in).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepScalars {
    /// Learning rate of this step.
    pub lr: f32,
    /// Optimizer step count t, starting at 1 for the first update.
    pub t: u32,
}

impl Default for StepScalars {
    fn default() -> Self {
        StepScalars { lr: 0.0, t: 1 }
    }
}

/// Sizes of the resident arenas shared by all programs of one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResidentLayout {
    /// Elements in `Params` (and `Grads`, and each `Slot`).
    pub params_len: usize,
    /// Number of optimizer state slots (see `Optimizer::slots`).
    pub slots: usize,
    /// Elements in `Accum`.
    pub accum_len: usize,
}

impl ResidentLayout {
    /// Bytes the resident arenas take (params, grads, slots, accumulators).
    pub fn bytes(&self) -> u64 {
        let p = align(self.params_len.max(1)) as u64;
        4 * (p * (2 + self.slots as u64) + align(self.accum_len.max(1)) as u64)
    }
}

/// A planned program: steps in order and the work arena they need.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Program {
    pub steps: Vec<Step>,
    /// Elements in the `Work` arena.
    pub work_len: usize,
    /// Elements the Work arena would need without slot reuse (each value its own slot).
    pub naive_work_len: usize,
    /// Host-fed tensors, by name, in the order `Backend::run` takes them.
    pub inputs: Vec<(String, BufRef)>,
    /// Readable results, by name (in the `Work` arena).
    pub outputs: Vec<(String, BufRef)>,
}

impl Program {
    /// Bytes of the work arena.
    pub fn work_bytes(&self) -> u64 {
        4 * self.work_len as u64
    }

    /// The output slice named `name`.
    pub fn output(&self, name: &str) -> Option<BufRef> {
        self.outputs.iter().find(|(n, _)| n == name).map(|(_, b)| *b)
    }
}
