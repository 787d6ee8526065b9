//! The kernel table: for every [`Kernel`](super::Kernel), in one entry, its argument count and
//! written arguments, its CPU function and its GPU launch (WGSL entry point, typed parameters,
//! grid and loop bound). `kernel_table!(callback)` hands the whole table to `callback!`, which
//! expands it into one exhaustive match: `Kernel::signature` (program/mod.rs), the CPU
//! interpreter's `execute_step` (backend/cpu/mod.rs) and the GPU's `launch`
//! (backend/gpu/kernels.rs). A variant without an entry, an entry without a GPU launch, or a
//! launch without a loop bound (`Launch::new` takes one) does not compile.
//!
//! An entry: `Variant { fields } => { args: N, [writes: &[i, ...],] cpu(v, sc): …, gpu(d): … }`.
//! - `args`: how many arena slices the step takes (an expression of the fields);
//! - `writes`: the args the kernel writes (default: the last one); every other arg is read only;
//! - `cpu(v, sc)`: the CPU kernel, reading `v.r(i)` and writing `v.w(i)` (slices of type
//!   `[T]`, T = f32 or f64) with the run's `StepScalars` `sc`; it must evaluate to `()`;
//! - `gpu(d)`: a `Result<Launch>` for the device `d: &Target` (module `gpu` is
//!   `backend/gpu/launch.rs`, with the typed parameter structs of `backend/gpu/params.rs`).

/// Calls `$callback! { entries }` with every kernel's entry (see the module docs).
macro_rules! kernel_table {
    ($callback:ident) => {
        $callback! {
            MatMul { m, k, n, trans_a, trans_b } => {
                args: 3,
                cpu(v, sc): cpu::kernels::matmul(m, k, n, trans_a, trans_b, v.r(0), v.r(1), v.w(2)),
                gpu(d): gpu::matmul(d, m, k, n, trans_a, trans_b, None),
            }
            MatMulBiasAct { m, k, n, trans_a, trans_b, act } => {
                args: 4,
                cpu(v, sc): cpu::kernels::matmul_bias_act(
                    m, k, n, trans_a, trans_b, act, v.r(0), v.r(1), v.r(2), v.w(3),
                ),
                gpu(d): gpu::matmul(d, m, k, n, trans_a, trans_b, Some(act)),
            }
            BiasAdd { rows, cols } => {
                args: 3,
                cpu(v, sc): cpu::kernels::bias_add(cols, v.r(0), v.r(1), v.w(2)),
                gpu(d): gpu::elementwise(d, "bias_add", gpu::ew(rows * cols, cols, 0, 0.0)?),
            }
            Add { len } => {
                args: 3,
                cpu(v, sc): cpu::kernels::add(v.r(0), v.r(1), v.w(2)),
                gpu(d): gpu::elementwise(d, "add", gpu::ew(len, 0, 0, 0.0)?),
            }
            Unary { op, len } => {
                args: 2,
                cpu(v, sc): cpu::kernels::unary(op, v.r(0), v.w(1)),
                gpu(d): gpu::elementwise(d, "unary", gpu::ew(len, 0, gpu::activation_code(Some(op)), 0.0)?),
            }
            Copy { len, offset } => {
                args: 2,
                cpu(v, sc): v.w(1).copy_from_slice(&v.r(0)[offset..offset + len]),
                gpu(d): gpu::elementwise(d, "copy_range", gpu::ew(len, offset, 0, 0.0)?),
            }
            Affine { len, scale, shift } => {
                args: 2,
                cpu(v, sc): cpu::kernels::affine(scale, shift, v.r(0), v.w(1)),
                gpu(d): gpu::elementwise(
                    d, "affine", gpu::ElementwiseParams { shift, ..gpu::ew(len, 0, 0, scale)? },
                ),
            }
            UnaryGrad { op, len } => {
                args: 3,
                cpu(v, sc): cpu::kernels::unary_grad(op, v.r(0), v.r(1), v.w(2)),
                gpu(d): gpu::elementwise(
                    d, "unary_grad", gpu::ew(len, 0, gpu::activation_code(Some(op)), 0.0)?,
                ),
            }
            Binary { op, len } => {
                args: 3,
                cpu(v, sc): cpu::kernels::binary(op, v.r(0), v.r(1), v.w(2)),
                gpu(d): gpu::elementwise(d, "binary", gpu::ew(len, 0, op.code(), 0.0)?),
            }
            BinaryGrad { op, wrt, len } => {
                args: 4,
                cpu(v, sc): cpu::kernels::binary_grad(op, wrt, v.r(0), v.r(1), v.r(2), v.w(3)),
                gpu(d): gpu::elementwise(
                    d,
                    match wrt { crate::program::Operand::A => "binary_grad_a", crate::program::Operand::B => "binary_grad_b" },
                    gpu::ew(len, 0, op.code(), 0.0)?,
                ),
            }
            Softmax { rows, cols } => {
                args: 2,
                cpu(v, sc): cpu::kernels::softmax(cols, v.r(0), v.w(1)),
                gpu(d): gpu::per_row(d, "softmax", rows, cols),
            }
            LogSoftmax { rows, cols } => {
                args: 2,
                cpu(v, sc): cpu::kernels::log_softmax(cols, v.r(0), v.w(1)),
                gpu(d): gpu::per_row(d, "log_softmax", rows, cols),
            }
            SoftmaxGrad { rows, cols } => {
                args: 3,
                cpu(v, sc): cpu::kernels::softmax_grad(cols, v.r(0), v.r(1), v.w(2)),
                gpu(d): gpu::per_row(d, "softmax_grad", rows, cols),
            }
            LogSoftmaxGrad { rows, cols } => {
                args: 3,
                cpu(v, sc): cpu::kernels::log_softmax_grad(cols, v.r(0), v.r(1), v.w(2)),
                gpu(d): gpu::per_row(d, "log_softmax_grad", rows, cols),
            }
            SumRows { rows, cols } => {
                args: 2,
                cpu(v, sc): cpu::kernels::sum_rows(cols, v.r(0), v.w(1)),
                gpu(d): gpu::sum_rows(d, rows, cols),
            }
            BroadcastRows { rows, cols } => {
                args: 2,
                cpu(v, sc): cpu::kernels::broadcast_rows(cols, v.r(0), v.w(1)),
                gpu(d): gpu::elementwise(d, "broadcast_rows", gpu::ew(rows * cols, cols, 0, 0.0)?),
            }
            PlaceRow { rows, cols, index } => {
                args: 2,
                cpu(v, sc): cpu::kernels::place_row(cols, index, v.r(0), v.w(1)),
                gpu(d): gpu::elementwise(d, "place_row", gpu::ew(rows * cols, cols, gpu::u(index)?, 0.0)?),
            }
            SumAll { len, scale } => {
                args: 2,
                cpu(v, sc): cpu::kernels::scaled_sum(scale, v.r(0), v.w(1)),
                gpu(d): gpu::sum_all(len, scale),
            }
            BroadcastScalar { len, scale } => {
                args: 2,
                cpu(v, sc): cpu::kernels::broadcast_scalar(scale, v.r(0), v.w(1)),
                gpu(d): gpu::elementwise(d, "broadcast_scalar", gpu::ew(len, 0, 0, scale)?),
            }
            Fill { len, value } => {
                args: 1,
                cpu(v, sc): cpu::kernels::fill(value, v.w(0)),
                gpu(d): gpu::elementwise(d, "fill", gpu::ew(len, 0, 0, value)?),
            }
            // The losses: with `weighted`, the per-sample weights are arg 2 and every later
            // arg moves up by one.
            SoftmaxCrossEntropy { rows, cols, sparse, weighted } => {
                args: 3 + usize::from(weighted),
                cpu(v, sc): {
                    let w = weighted.then(|| v.r(2));
                    let loss = cpu::kernels::softmax_cross_entropy(rows, cols, sparse, v.r(0), v.r(1), w);
                    v.w(2 + usize::from(weighted))[0] = loss;
                },
                gpu(d): gpu::softmax_cross_entropy(rows, cols, sparse, weighted),
            }
            SoftmaxCrossEntropyGrad { rows, cols, sparse, weighted } => {
                args: 4 + usize::from(weighted),
                cpu(v, sc): {
                    let (w, k) = (weighted.then(|| v.r(2)), usize::from(weighted));
                    cpu::kernels::softmax_cross_entropy_grad(
                        rows, cols, sparse, v.r(0), v.r(1), w, v.r(2 + k)[0], v.w(3 + k),
                    )
                },
                gpu(d): gpu::softmax_cross_entropy_grad(d, rows, cols, sparse, weighted),
            }
            MeanSquaredError { len, rows, weighted } => {
                args: 3 + usize::from(weighted),
                cpu(v, sc): {
                    let w = cpu::weights::RowWeights::new(weighted.then(|| v.r(2)), rows);
                    v.w(2 + usize::from(weighted))[0] = cpu::kernels::mean_squared_error(v.r(0), v.r(1), w);
                },
                gpu(d): Ok(gpu::loss_total(
                    "mean_squared_error", gpu::loss_params(rows, 0, false, len, 0.0, weighted)?, len),
                ),
            }
            MeanSquaredErrorGrad { len, rows, weighted } => {
                args: 4 + usize::from(weighted),
                cpu(v, sc): {
                    let w = cpu::weights::RowWeights::new(weighted.then(|| v.r(2)), rows);
                    let k = usize::from(weighted);
                    cpu::kernels::mean_squared_error_grad(v.r(0), v.r(1), w, v.r(2 + k)[0], v.w(3 + k))
                },
                gpu(d): gpu::per_element(
                    d,
                    gpu::Shader::Loss,
                    "mean_squared_error_grad",
                    gpu::loss_params(rows, 0, false, len, 0.0, weighted)?,
                    len,
                ),
            }
            Pointwise { loss, len, rows, weighted } => {
                args: 3 + usize::from(weighted),
                cpu(v, sc): {
                    let w = cpu::weights::RowWeights::new(weighted.then(|| v.r(2)), rows);
                    v.w(2 + usize::from(weighted))[0] = cpu::pointwise::loss(loss, v.r(0), v.r(1), w);
                },
                gpu(d): Ok(gpu::loss_total(
                    "pointwise", gpu::pointwise_params(loss, len, rows, weighted)?, len),
                ),
            }
            PointwiseGrad { loss, len, rows, weighted } => {
                args: 4 + usize::from(weighted),
                cpu(v, sc): {
                    let w = cpu::weights::RowWeights::new(weighted.then(|| v.r(2)), rows);
                    let k = usize::from(weighted);
                    cpu::pointwise::grad(loss, v.r(0), v.r(1), w, v.r(2 + k)[0], v.w(3 + k))
                },
                gpu(d): gpu::per_element(
                    d,
                    gpu::Shader::Loss,
                    "pointwise_grad",
                    gpu::pointwise_params(loss, len, rows, weighted)?,
                    len,
                ),
            }
            SigmoidBinaryCrossEntropy { len, rows, weighted } => {
                args: 3 + usize::from(weighted),
                cpu(v, sc): {
                    let w = cpu::weights::RowWeights::new(weighted.then(|| v.r(2)), rows);
                    v.w(2 + usize::from(weighted))[0] = cpu::kernels::sigmoid_bce(v.r(0), v.r(1), w);
                },
                gpu(d): Ok(gpu::loss_total(
                    "sigmoid_bce", gpu::loss_params(rows, 0, false, len, 0.0, weighted)?, len),
                ),
            }
            SigmoidBinaryCrossEntropyGrad { len, rows, weighted } => {
                args: 4 + usize::from(weighted),
                cpu(v, sc): {
                    let w = cpu::weights::RowWeights::new(weighted.then(|| v.r(2)), rows);
                    let k = usize::from(weighted);
                    cpu::kernels::sigmoid_bce_grad(v.r(0), v.r(1), w, v.r(2 + k)[0], v.w(3 + k))
                },
                gpu(d): gpu::per_element(
                    d,
                    gpu::Shader::Loss,
                    "sigmoid_bce_grad",
                    gpu::loss_params(rows, 0, false, len, 0.0, weighted)?,
                    len,
                ),
            }
            // The metric counters (`shaders/loss.wgsl`).
            CountTopK { rows, cols, sparse, k, weighted } => {
                args: 3 + usize::from(weighted),
                cpu(v, sc): {
                    let w = weighted.then(|| v.r(2));
                    let count = cpu::metrics::count_top_k(rows, cols, sparse, k, v.r(0), v.r(1), w);
                    v.w(2 + usize::from(weighted))[0] = count;
                },
                gpu(d): Ok(gpu::row_counter(
                    "count_top_k", gpu::loss_params(rows, cols, sparse, k, 0.0, weighted)?),
                ),
            }
            BinaryCounts { len, threshold } => {
                args: 3,
                cpu(v, sc): cpu::metrics::binary_counts(threshold, v.r(0), v.r(1), v.w(2)),
                gpu(d): Ok(gpu::one_workgroup(
                    gpu::Shader::Loss, "binary_counts", gpu::loss_params(0, 0, false, len, threshold, false)?,
                    gpu::per_lane(len, 256) + 24,
                )),
            }
            RocHistogram { rows, cols, sparse, thresholds } => {
                args: 3,
                cpu(v, sc): cpu::metrics::roc_histogram(cols, sparse, thresholds, v.r(0), v.r(1), v.w(2)),
                gpu(d): gpu::roc_histogram(d, rows, cols, sparse, thresholds),
            }
            ClassCounts { rows, cols, sparse, threshold } => {
                args: 3,
                cpu(v, sc): cpu::metrics::class_counts(rows, cols, sparse, threshold, v.r(0), v.r(1), v.w(2)),
                gpu(d): gpu::class_counts(d, rows, cols, sparse, threshold),
            }
            CountCorrect { rows, cols, sparse, threshold, weighted } => {
                args: 3 + usize::from(weighted),
                cpu(v, sc): {
                    let w = weighted.then(|| v.r(2));
                    let count = cpu::kernels::count_correct(rows, cols, sparse, threshold, v.r(0), v.r(1), w);
                    v.w(2 + usize::from(weighted))[0] = count;
                },
                gpu(d): Ok(gpu::row_counter(
                    "count_correct", gpu::loss_params(rows, cols, sparse, 0, threshold, weighted)?),
                ),
            }
            FirstNonFinite {} => {
                args: 2,
                cpu(v, sc): cpu::kernels::first_non_finite(sc.t, v.r(0), v.w(1)),
                gpu(d): Ok(gpu::one_workgroup(
                    gpu::Shader::Elementwise, "first_non_finite", gpu::ew(1, 0, 0, 0.0)?, 1),
                ),
            }
            // Image kernels (`shaders/conv.wgsl`): one thread per output element.
            Im2Col { win } => {
                args: 2,
                cpu(v, sc): cpu::conv::im2col(&win, v.r(0), v.w(1)),
                gpu(d): gpu::window(d, "im2col", win.positions() * win.patch_len(), &win, 0, 1),
            }
            Col2Im { win } => {
                args: 2,
                cpu(v, sc): cpu::conv::col2im(&win, v.r(0), v.w(1)),
                gpu(d): gpu::window(d, "col2im", win.input_len(), &win, 0, gpu::tap_loops(&win)),
            }
            // Implicit-GEMM convolutions (`shaders/conv_gemm.wgsl`): the planner's GPU fusions
            // of im2col with the matmuls that read it, and of col2im with the one it reads.
            Conv2d { win, filters, bias, act } => {
                args: 3 + usize::from(bias),
                cpu(v, sc): cpu::conv_gemm::conv2d(
                    &win, filters, act, v.r(0), v.r(1), bias.then(|| v.r(2)), v.w(2 + usize::from(bias)),
                ),
                gpu(d): gpu::conv2d(d, &win, filters, bias, act),
            }
            Conv2dFilterGrad { win, filters } => {
                args: 3,
                cpu(v, sc): cpu::conv_gemm::conv2d_filter_grad(&win, filters, v.r(0), v.r(1), v.w(2)),
                gpu(d): gpu::conv2d_filter_grad(d, &win, filters),
            }
            Conv2dInputGrad { win, filters } => {
                args: 3,
                cpu(v, sc): cpu::conv_gemm::conv2d_input_grad(&win, filters, v.r(0), v.r(1), v.w(2)),
                gpu(d): gpu::conv2d_input_grad(d, &win, filters),
            }
            RecurrentForward { rec } => {
                args: 6,
                cpu(v, sc): cpu::recurrent::forward(&rec, v.r(0), v.r(1), v.r(2), v.r(3), v.r(4), v.w(5)),
                gpu(d): gpu::recurrent(d, "forward_step", &rec, None, rec.steps),
            }
            Embedding { ids, vocab, dim } => {
                args: 3,
                cpu(v, sc): cpu::kernels::embedding(dim, vocab, v.r(0), v.r(1), v.w(2)),
                gpu(d): gpu::embedding(d, "embedding", ids, vocab, dim),
            }
            EmbeddingGrad { ids, vocab, dim } => {
                args: 3,
                cpu(v, sc): cpu::kernels::embedding_grad(dim, vocab, v.r(0), v.r(1), v.w(2)),
                gpu(d): gpu::embedding(d, "embedding_grad", ids, vocab, dim),
            }
            ConcatColumns { rows, a_cols, b_cols } => {
                args: 3,
                cpu(v, sc): cpu::kernels::concat_columns(a_cols, b_cols, v.r(0), v.r(1), v.w(2)),
                gpu(d): gpu::columns(d, "concat_columns", rows, [a_cols, b_cols, 0, a_cols + b_cols]),
            }
            SliceColumns { rows, cols, start, len } => {
                args: 2,
                cpu(v, sc): cpu::kernels::slice_columns(cols, start, len, v.r(0), v.w(1)),
                gpu(d): gpu::columns(d, "slice_columns", rows, [cols, 0, start, len]),
            }
            SequenceMask { rows, features, value } => {
                args: 2,
                cpu(v, sc): cpu::recurrent::sequence_mask(features, T::c(value), v.r(0), v.w(1)),
                gpu(d): gpu::sequence_mask(d, rows, features, value),
            }
            RecurrentGateGrad { rec } => {
                args: 3,
                cpu(v, sc): cpu::recurrent::gate_grad(&rec, v.r(0), v.r(1), v.w(2)),
                gpu(d): gpu::recurrent(d, "gate_grad", &rec, None, 1),
            }
            RecurrentBackward { rec } => {
                args: 6,
                cpu(v, sc): cpu::recurrent::backward(&rec, v.r(0), v.r(1), v.r(2), v.r(3), v.r(4), v.w(5)),
                gpu(d): gpu::recurrent(d, "backward_step", &rec, None, rec.steps),
            }
            RecurrentGather { rec, part } => {
                args: 2,
                cpu(v, sc): cpu::recurrent::gather(&rec, part, v.r(0), v.w(1)),
                gpu(d): gpu::recurrent(d, "gather", &rec, Some(part), 1),
            }
            RecurrentScatter { rec, part } => {
                args: 2,
                cpu(v, sc): cpu::recurrent::scatter(&rec, part, v.r(0), v.w(1)),
                gpu(d): gpu::recurrent(d, "scatter", &rec, Some(part), 1),
            }
            MaxPool { win } => {
                args: 2,
                cpu(v, sc): cpu::conv::max_pool(&win, v.r(0), v.w(1)),
                gpu(d): gpu::window(
                    d, "max_pool", win.positions() * win.channels, &win, 0, gpu::tap_loops(&win),
                ),
            }
            MaxPoolGrad { win, relu } => {
                args: 3,
                cpu(v, sc): cpu::conv::max_pool_grad(&win, relu, v.r(0), v.r(1), v.w(2)),
                // Each window containing the element finds its maximum.
                gpu(d): {
                    let taps = (win.kernel.0 * win.kernel.1) as u64;
                    let loops = taps * (taps + win.kernel.0 as u64 + 1) + 4;
                    gpu::window(d, "max_pool_grad", win.input_len(), &win, u32::from(relu), loops)
                },
            }
            AvgPool { win } => {
                args: 2,
                cpu(v, sc): cpu::conv::avg_pool(&win, v.r(0), v.w(1)),
                gpu(d): gpu::window(
                    d, "avg_pool", win.positions() * win.channels, &win, 0, gpu::tap_loops(&win),
                ),
            }
            AvgPoolGrad { win } => {
                args: 2,
                cpu(v, sc): cpu::conv::avg_pool_grad(&win, v.r(0), v.w(1)),
                gpu(d): gpu::window(d, "avg_pool_grad", win.input_len(), &win, 0, gpu::tap_loops(&win)),
            }
            RandomFlip { win, seed } => {
                args: 2,
                cpu(v, sc): cpu::conv::random_flip(&win, seed, sc.t, v.r(0), v.w(1)),
                gpu(d): gpu::window(d, "random_flip", win.input_len(), &win, seed, 1),
            }
            Dropout { len, seed, threshold, scale, inner, period } => {
                args: 2,
                cpu(v, sc): cpu::conv::dropout(
                    seed, sc.t, threshold, T::c(scale), (inner, period), v.r(0), v.w(1),
                ),
                gpu(d): gpu::elementwise(
                    d,
                    "dropout",
                    gpu::ElementwiseParams {
                        seed,
                        threshold,
                        period: gpu::u(period)?,
                        ..gpu::ew(len, inner, 0, scale)?
                    },
                ),
            }
            // Batch normalisation (`shaders/norm.wgsl`).
            BatchMoments { rows, cols } => {
                args: 2,
                cpu(v, sc): cpu::norm::moments(rows, cols, v.r(0), v.w(1)),
                // Two passes over the rows (16 lanes per column), then the trees.
                gpu(d): gpu::norm_columns(
                    d, "bn_moments", gpu::norm_params(rows, cols, 0.0, 0.0)?, 2 * gpu::per_lane(rows, 16) + 8,
                ),
            }
            BatchNormTrain { rows, cols, eps } => {
                args: 5,
                cpu(v, sc): cpu::norm::batch_norm_train(cols, eps, v.r(0), v.r(1), v.r(2), v.r(3), v.w(4)),
                gpu(d): gpu::per_element(
                    d, gpu::Shader::Norm, "bn_train", gpu::norm_params(rows, cols, eps, 0.0)?, rows * cols,
                ),
            }
            BatchNormGradSums { rows, cols, eps } => {
                args: 4,
                cpu(v, sc): cpu::norm::batch_norm_grad_sums(cols, eps, v.r(0), v.r(1), v.r(2), v.w(3)),
                gpu(d): gpu::norm_columns(
                    d, "bn_grad_sums", gpu::norm_params(rows, cols, eps, 0.0)?, gpu::per_lane(rows, 16) + 8,
                ),
            }
            BatchNormGrad { rows, cols, eps } => {
                args: 6,
                cpu(v, sc): cpu::norm::batch_norm_grad(
                    rows, cols, eps, [v.r(0), v.r(1), v.r(2), v.r(3), v.r(4)], v.w(5),
                ),
                gpu(d): gpu::per_element(
                    d, gpu::Shader::Norm, "bn_grad", gpu::norm_params(rows, cols, eps, 0.0)?, rows * cols,
                ),
            }
            BatchNormMoving { cols, momentum } => {
                args: 3,
                writes: &[1, 2],
                cpu(v, sc): cpu::norm::batch_norm_moving(cols, momentum, v.r(0), v.w(1), v.w(2)),
                gpu(d): gpu::per_element(
                    d, gpu::Shader::Norm, "bn_moving", gpu::norm_params(1, cols, 0.0, momentum)?, cols,
                ),
            }
            BatchNormInference { rows, cols, eps } => {
                args: 6,
                cpu(v, sc): cpu::norm::batch_norm_inference(
                    cols, eps, v.r(0), v.r(1), v.r(2), v.r(3), v.r(4), v.w(5),
                ),
                gpu(d): gpu::per_element(
                    d,
                    gpu::Shader::Norm,
                    "bn_inference",
                    gpu::norm_params(rows, cols, eps, 0.0)?,
                    rows * cols,
                ),
            }
            Accumulate { len, scale } => {
                args: 2,
                cpu(v, sc): cpu::kernels::accumulate(scale, v.r(0), v.w(1)),
                gpu(d): gpu::elementwise(d, "accumulate", gpu::ew(len, 0, 0, scale)?),
            }
            // Optimizer updates (`shaders/optimizer.wgsl`), in place on the parameters and state.
            SgdUpdate { len, momentum, nesterov } => {
                args: 3,
                writes: &[0, 2],
                cpu(v, sc): cpu::optim::sgd_update(
                    T::c(sc.lr), T::c(momentum), nesterov, v.w(0), v.r(1), v.w(2),
                ),
                gpu(d): gpu::optimizer(
                    d, "sgd_update", gpu::optimizer_params(len, nesterov, [momentum, 0.0, 0.0, 0.0])?,
                ),
            }
            AdamUpdate { len, beta1, beta2, epsilon, weight_decay, amsgrad } => {
                args: 4 + usize::from(amsgrad),
                writes: if amsgrad { &[0, 2, 3, 4] } else { &[0, 2, 3] },
                cpu(v, sc): cpu::optim::adam_update(
                    T::c(sc.lr), sc.t, T::c(beta1), T::c(beta2), T::c(epsilon), T::c(weight_decay),
                    v.w(0), v.r(1), v.w(2), v.w(3), amsgrad.then(|| v.w(4)),
                ),
                gpu(d): gpu::optimizer(
                    d,
                    "adam_update",
                    gpu::optimizer_params(len, amsgrad, [weight_decay, beta1, beta2, epsilon])?,
                ),
            }
            AdagradUpdate { len, epsilon } => {
                args: 3,
                writes: &[0, 2],
                cpu(v, sc): cpu::optim::adagrad_update(T::c(sc.lr), T::c(epsilon), v.w(0), v.r(1), v.w(2)),
                gpu(d): gpu::optimizer(
                    d, "adagrad_update", gpu::optimizer_params(len, false, [0.0, 0.0, 0.0, epsilon])?,
                ),
            }
            RmspropUpdate { len, rho, momentum, epsilon, centered } => {
                args: 5,
                writes: &[0, 2, 3, 4],
                cpu(v, sc): cpu::optim::rmsprop_update(
                    T::c(sc.lr), T::c(rho), T::c(momentum), T::c(epsilon), v.w(0), v.r(1), v.w(2),
                    (momentum != 0.0).then(|| v.w(3)), centered.then(|| v.w(4)),
                ),
                gpu(d): gpu::optimizer(
                    d, "rmsprop_update", gpu::optimizer_params(len, centered, [momentum, rho, 0.0, epsilon])?,
                ),
            }
            // Gradient clipping (`shaders/clip.wgsl`) and weight penalties (`shaders/penalty.wgsl`).
            SumSquares { len, accumulate } => {
                args: 2,
                cpu(v, sc): {
                    let sum = cpu::optim::sum_squares(v.r(0));
                    let total = v.w(1);
                    total[0] = if accumulate { total[0] + sum } else { sum };
                },
                // Four elements per iteration, at most three left over, then the 256-lane tree.
                gpu(d): Ok(gpu::one_workgroup(
                    gpu::Shader::Clip,
                    "sum_squares",
                    gpu::clip_params(len, accumulate, 0.0)?,
                    gpu::per_lane(len, 1024) + 3 + 8,
                )),
            }
            ClipByNorm { len, clip_norm } => {
                args: 2,
                cpu(v, sc): cpu::optim::clip_by_norm(v.r(0)[0], T::c(clip_norm), v.w(1)),
                gpu(d): gpu::per_element(
                    d, gpu::Shader::Clip, "clip_by_norm", gpu::clip_params(len, false, clip_norm)?, len,
                ),
            }
            ClipByValue { len, clip_value } => {
                args: 1,
                cpu(v, sc): cpu::optim::clip_by_value(T::c(clip_value), v.w(0)),
                gpu(d): gpu::per_element(
                    d, gpu::Shader::Clip, "clip_by_value", gpu::clip_params(len, false, clip_value)?, len,
                ),
            }
            WeightPenalty { len, l1, l2 } => {
                args: 2,
                cpu(v, sc): v.w(1)[0] = cpu::optim::weight_penalty(T::c(l1), T::c(l2), v.r(0)),
                gpu(d): Ok(gpu::one_workgroup(
                    gpu::Shader::Penalty,
                    "weight_penalty",
                    gpu::penalty_params(len, l1, l2)?,
                    gpu::per_lane(len, 1024) + 3 + 8,
                )),
            }
            WeightPenaltyGrad { len, l1, l2 } => {
                args: 3,
                cpu(v, sc): cpu::optim::weight_penalty_grad(T::c(l1), T::c(l2), v.r(0), v.r(1)[0], v.w(2)),
                gpu(d): gpu::per_element(
                    d, gpu::Shader::Penalty, "weight_penalty_grad", gpu::penalty_params(len, l1, l2)?, len,
                ),
            }
        }
    };
}
pub(crate) use kernel_table;

/// Expands the table into `Kernel::signature` and `Kernel::name` (see program/mod.rs).
macro_rules! signature_match {
    ($($name:ident { $($field:tt)* } => {
        args: $args:expr,
        $(writes: $writes:expr,)?
        cpu($v:ident, $sc:ident): $cpu:expr,
        gpu($d:ident): $gpu:expr $(,)?
    })*) => {
        impl super::Kernel {
            /// The number of args the kernel takes and which of them it writes (the table's
            /// `args` and `writes`).
            #[allow(unused_variables)]
            pub fn signature(&self) -> super::Signature {
                match *self {
                    $(super::Kernel::$name { $($field)* } => super::Signature {
                        args: $args,
                        writes: $crate::program::table::writes_or_last!($($writes)?),
                    },)*
                }
            }

            /// The kernel's name (its variant), for messages.
            pub fn name(&self) -> &'static str {
                match self {
                    $(super::Kernel::$name { .. } => stringify!($name),)*
                }
            }
        }
    };
}

/// `Writes::Last` without a `writes:` list, else `Writes::Args(list)`.
macro_rules! writes_or_last {
    () => {
        $crate::program::Writes::Last
    };
    ($writes:expr) => {
        $crate::program::Writes::Args($writes)
    };
}
pub(crate) use writes_or_last;

kernel_table!(signature_match);
