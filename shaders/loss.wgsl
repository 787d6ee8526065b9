// loss.wgsl — losses, their gradients and the metric counters.
//   softmax_cross_entropy       [z, labels, loss]         loss[0] = mean_i −Σ_j t_ij log softmax(z_i)_j
//   softmax_cross_entropy_grad  [z, labels, dloss, dz]    dz = (softmax(z) − t) · dloss[0] / rows
//   mean_squared_error          [p, t, loss]              loss[0] = mean (p − t)²
//   mean_squared_error_grad     [p, t, dloss, dp]         dp = 2 (p − t) · dloss[0] / len
//   sigmoid_bce                 [z, t, loss]              loss[0] = mean max(z,0) − z·t + log(1 + exp(−|z|))
//   sigmoid_bce_grad            [z, t, dloss, dz]         dz = (σ(z) − t) · dloss[0] / len
//   pointwise                   [p, t, loss]              loss[0] = mean of the loss `cols` selects:
//                                                           0 |p−t|, 1 Huber(delta = param),
//                                                           2 BCE of p clipped to [param, 1−param]
//   pointwise_grad              [p, t, dloss, dp]         dp = ∂loss/∂p · dloss[0] / len
//   count_top_k                 [pred, labels, count]     count[0] = rows whose label is in the top len
//                                                           (weighted: [pred, labels, w, count])
//   binary_counts               [pred, labels, counts]    counts[0..3] = TP, FP, FN of pred > threshold
//   count_correct               [pred, labels, count]     count[0] = rows whose prediction is right
//                                                           (weighted: [pred, labels, w, count],
//                                                           the sum of their w)
//   roc_histogram               [prob, labels, partial]   ROC AUC histograms per chunk (len buckets)
//   class_counts                [pred, labels, partial]   per-class TP, FP, FN per row chunk
// z, pred: [rows, cols]; labels: [rows] class indices as f32 when `sparse`, else [rows, cols].
// Per-sample weights (Keras `sample_weight`, p.weighted = 1): the losses and their gradients
// take w [rows] as arg 2 and every later arg moves up by one ([z, labels, w, loss],
// [z, labels, w, dloss, dz]); row i's loss (for the elementwise losses: every element of row
// i = e / (len / rows)) counts w_i times, still divided by rows (len): (1/rows) Σ_i w_i · l_i.
//
// Bindings (group 0): 0..3 = the step's args in the order above, 6 = arg 4 (the weighted
//   gradients' output); 4: uniform Params { rows, cols, sparse, len, threshold, param, weighted }.
// Scalar results (loss, count) come from ONE workgroup of 256 threads: thread t handles rows
// (or elements) t, t+256, … in order, then a fixed shared-memory tree combines the partial sums —
// deterministic, no atomics. Gradients: one thread per row (workgroup 64) for the softmax
// family, one thread per element (workgroup 256) otherwise; 2-D grids (x ≤ 65535).

struct Params {
    rows: u32,
    cols: u32,
    sparse: u32,
    len: u32,
    threshold: f32,
    param: f32,
    weighted: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read_write> arg0: array<f32>;
@group(0) @binding(1) var<storage, read_write> arg1: array<f32>;
@group(0) @binding(2) var<storage, read_write> arg2: array<f32>;
@group(0) @binding(3) var<storage, read_write> arg3: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(6) var<storage, read_write> arg4: array<f32>;

// v times row i's sample weight (v itself when unweighted: the same bits as without weights).
fn weigh_row(i: u32, v: f32) -> f32 {
    if (p.weighted != 0u) {
        return v * arg2[i];
    }
    return v;
}

// v times the weight of element e's row, rows of len / rows elements (elementwise losses).
fn weigh_element(e: u32, v: f32) -> f32 {
    if (p.weighted != 0u) {
        return v * arg2[e / max(p.len / max(p.rows, 1u), 1u)];
    }
    return v;
}

// The scalar loss result: arg 2, or arg 3 after the weights.
fn store_loss(v: f32) {
    if (p.weighted != 0u) {
        arg3[0] = v;
    } else {
        arg2[0] = v;
    }
}

// A gradient's incoming dloss[0]: arg 2, or arg 3 after the weights.
fn dloss() -> f32 {
    if (p.weighted != 0u) {
        return arg3[0];
    }
    return arg2[0];
}

// Element e of a gradient's output: arg 3, or arg 4 after the weights.
fn store_grad(e: u32, v: f32) {
    if (p.weighted != 0u) {
        arg4[e] = v;
    } else {
        arg3[e] = v;
    }
}

// Element e of a gradient's output (as `store_grad`), read back.
fn load_grad(e: u32) -> f32 {
    if (p.weighted != 0u) {
        return arg4[e];
    }
    return arg3[e];
}

// Class index of a sparse label, or 0xffffffff when it is not a valid index (as the CPU's
// `to_usize`: truncation toward zero, values ≤ −1 and NaN invalid).
fn class_index(label: f32) -> u32 {
    if (label > -1.0 && label < 4294967296.0) {
        return u32(max(label, 0.0));
    }
    return 0xffffffffu;
}

// t_ij: one-hot of a class index (sparse) or labels[i, j].
fn target_prob(i: u32, j: u32) -> f32 {
    if (p.sparse != 0u) {
        return select(0.0, 1.0, class_index(arg1[i]) == j);
    }
    return arg1[i * p.cols + j];
}

// log(1 + x), accurate for small x (Goldberg's trick).
fn log1p(x: f32) -> f32 {
    let u = 1.0 + x;
    if (u == 1.0) {
        return x;
    }
    return log(u) * x / (u - 1.0);
}

@compute @workgroup_size(256)
fn softmax_cross_entropy(@builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    var total = 0.0;
    for (var i = t; i < p.rows; i += 256u) {
        let base = i * p.cols;
        var mx = arg0[base];
        for (var j = 1u; j < p.cols; j++) {
            mx = max(mx, arg0[base + j]);
        }
        var s = 0.0;
        for (var j = 0u; j < p.cols; j++) {
            s += exp(arg0[base + j] - mx);
        }
        let lse = log(s) + mx;
        var l = 0.0;
        for (var j = 0u; j < p.cols; j++) {
            let tij = target_prob(i, j);
            if (tij != 0.0) {
                l -= tij * (arg0[base + j] - lse);
            }
        }
        total += weigh_row(i, l);
    }
    let sum = tree_sum(t, total);
    if (t == 0u) {
        store_loss(sum / f32(p.rows));
    }
}

@compute @workgroup_size(64)
fn softmax_cross_entropy_grad(@builtin(workgroup_id) wid: vec3<u32>,
                              @builtin(num_workgroups) nwg: vec3<u32>,
                              @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = grid_index(wid, nwg, lid, 64u);
    if (i >= p.rows || p.cols == 0u) {
        return;
    }
    let scale = weigh_row(i, dloss() / f32(p.rows));
    let base = i * p.cols;
    var mx = arg0[base];
    for (var j = 1u; j < p.cols; j++) {
        mx = max(mx, arg0[base + j]);
    }
    var s = 0.0;
    for (var j = 0u; j < p.cols; j++) {
        let e = exp(arg0[base + j] - mx);
        store_grad(base + j, e);
        s += e;
    }
    for (var j = 0u; j < p.cols; j++) {
        store_grad(base + j, (load_grad(base + j) / s - target_prob(i, j)) * scale);
    }
}

@compute @workgroup_size(256)
fn mean_squared_error(@builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    var s = 0.0;
    for (var i = t; i < p.len; i += 256u) {
        let d = arg0[i] - arg1[i];
        s += weigh_element(i, d * d);
    }
    let sum = tree_sum(t, s);
    if (t == 0u) {
        store_loss(sum / f32(p.len));
    }
}

@compute @workgroup_size(256)
fn mean_squared_error_grad(@builtin(workgroup_id) wid: vec3<u32>,
                           @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i < p.len) {
        let s = weigh_element(i, 2.0 * dloss() / f32(p.len));
        store_grad(i, (arg0[i] - arg1[i]) * s);
    }
}

@compute @workgroup_size(256)
fn sigmoid_bce(@builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    var s = 0.0;
    for (var i = t; i < p.len; i += 256u) {
        let z = arg0[i];
        s += weigh_element(i, max(z, 0.0) - z * arg1[i] + log1p(exp(-abs(z))));
    }
    let sum = tree_sum(t, s);
    if (t == 0u) {
        store_loss(sum / f32(p.len));
    }
}

@compute @workgroup_size(256)
fn sigmoid_bce_grad(@builtin(workgroup_id) wid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i < p.len) {
        let s = weigh_element(i, dloss() / f32(p.len));
        store_grad(i, (sigmoid(arg0[i]) - arg1[i]) * s);
    }
}

// Index of the first maximum of arg[base .. base + cols] (arg0 or arg1 by `which`).
fn argmax(which: u32, base: u32) -> u32 {
    var best = 0u;
    var best_v = select(arg0[base], arg1[base], which == 1u);
    for (var j = 1u; j < p.cols; j++) {
        let v = select(arg0[base + j], arg1[base + j], which == 1u);
        if (v > best_v) {
            best = j;
            best_v = v;
        }
    }
    return best;
}

@compute @workgroup_size(256)
fn count_correct(@builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    var n = 0.0;
    for (var i = t; i < p.rows; i += 256u) {
        var ok = false;
        if (p.cols == 1u) {
            ok = (arg0[i] > p.threshold) == (arg1[i] > 0.5);
        } else {
            var label = 0u;
            if (p.sparse != 0u) {
                label = class_index(arg1[i]);
            } else {
                label = argmax(1u, i * p.cols);
            }
            ok = argmax(0u, i * p.cols) == label;
        }
        var w = 1.0;
        if (p.weighted != 0u) {
            w = arg2[i];
        }
        n += select(0.0, w, ok);
    }
    let sum = tree_sum(t, n);
    if (t == 0u) {
        if (p.weighted != 0u) {
            arg3[0] = sum;
        } else {
            arg2[0] = sum;
        }
    }
}

// The loss of one element of `pointwise` (p.cols selects it, p.param its parameter).
fn pointwise_value(x: f32, y: f32) -> f32 {
    let d = x - y;
    if (p.cols == 0u) {
        return abs(d);
    }
    if (p.cols == 1u) {
        let a = abs(d);
        if (a <= p.param) {
            return 0.5 * d * d;
        }
        return p.param * a - 0.5 * p.param * p.param;
    }
    let q = clamp(x, p.param, 1.0 - p.param);
    return -(y * log(q) + (1.0 - y) * log(1.0 - q));
}

// ∂loss/∂x of one element of `pointwise`.
fn pointwise_derivative(x: f32, y: f32) -> f32 {
    let d = x - y;
    if (p.cols == 0u) {
        return sign(d);
    }
    if (p.cols == 1u) {
        if (abs(d) <= p.param) {
            return d;
        }
        return p.param * sign(d);
    }
    if (x < p.param || x > 1.0 - p.param) {
        return 0.0;
    }
    return d / (x * (1.0 - x));
}

@compute @workgroup_size(256)
fn pointwise(@builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    var s = 0.0;
    for (var i = t; i < p.len; i += 256u) {
        s += weigh_element(i, pointwise_value(arg0[i], arg1[i]));
    }
    let sum = tree_sum(t, s);
    if (t == 0u) {
        store_loss(sum / f32(p.len));
    }
}

@compute @workgroup_size(256)
fn pointwise_grad(@builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i < p.len) {
        store_grad(i, weigh_element(i, pointwise_derivative(arg0[i], arg1[i]) * dloss()) / f32(p.len));
    }
}

// count_top_k: rows whose label's prediction has fewer than k (p.len) strictly larger
// predictions in its row (TensorFlow's in_top_k: ties at the boundary are in the top k).
@compute @workgroup_size(256)
fn count_top_k(@builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    var n = 0.0;
    for (var i = t; i < p.rows; i += 256u) {
        var label = 0u;
        if (p.sparse != 0u) {
            label = class_index(arg1[i]);
        } else {
            label = argmax(1u, i * p.cols);
        }
        if (label < p.cols) {
            let mine = arg0[i * p.cols + label];
            var above = 0u;
            for (var j = 0u; j < p.cols; j++) {
                above += select(0u, 1u, arg0[i * p.cols + j] > mine);
            }
            var w = 1.0;
            if (p.weighted != 0u) {
                w = arg2[i];
            }
            n += select(0.0, w, above < p.len);
        }
    }
    let sum = tree_sum(t, n);
    if (t == 0u) {
        if (p.weighted != 0u) {
            arg3[0] = sum;
        } else {
            arg2[0] = sum;
        }
    }
}

// binary_counts: [true positives, false positives, false negatives] of pred > threshold
// against label > 0.5, over p.len elements.
@compute @workgroup_size(256)
fn binary_counts(@builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    var tp = 0.0;
    var fp = 0.0;
    var fneg = 0.0;
    for (var i = t; i < p.len; i += 256u) {
        let pos = arg0[i] > p.threshold;
        let real = arg1[i] > 0.5;
        tp += select(0.0, 1.0, pos && real);
        fp += select(0.0, 1.0, pos && !real);
        fneg += select(0.0, 1.0, !pos && real);
    }
    let a = tree_sum(t, tp);
    let b = tree_sum(t, fp);
    let c = tree_sum(t, fneg);
    if (t == 0u) {
        arg2[0] = a;
        arg2[1] = b;
        arg2[2] = c;
    }
}

// roc_histogram: the partial ROC AUC histograms of chunk wid.x (ROC_CHUNK elements of
// arg0 = probabilities [rows, cols]) over p.len buckets (Keras's evenly spaced thresholds):
// arg2[chunk, b] = Σ w, arg2[chunk, len + b] = Σ (1 − w) over the chunk's elements in bucket
// b, w the label. Thread t owns buckets t, t + 256, … (p.len ≤ 1024); tiles of 256 elements
// are staged in shared memory and every thread adds its buckets' entries in element order
// (deterministic; the CPU adds in the same order).
const ROC_CHUNK: u32 = 4096u;
var<workgroup> tile_a: array<u32, 256>;
var<workgroup> tile_b: array<u32, 256>;
var<workgroup> tile_w: array<f32, 256>;

// min(ceil(x·(T − 1)), T) − 1, and 0 for x ≤ 0 or NaN: x > threshold t exactly for the
// buckets b ≥ t.
fn roc_bucket(x: f32) -> u32 {
    if (!(x > 0.0)) {
        return 0u;
    }
    return u32(min(ceil(x * f32(p.len - 1u)), f32(p.len))) - 1u;
}

@compute @workgroup_size(256)
fn roc_histogram(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    let total = p.rows * p.cols;
    let start = wid.x * ROC_CHUNK;
    let end = min(start + ROC_CHUNK, total);
    var pos: array<f32, 4>;
    var neg: array<f32, 4>;
    for (var base = start; base < end; base += 256u) {
        let e = base + t;
        if (e < end) {
            var w = 0.0;
            if (p.sparse != 0u) {
                w = select(0.0, 1.0, class_index(arg1[e / p.cols]) == e % p.cols);
            } else {
                w = arg1[e];
            }
            tile_a[t] = roc_bucket(arg0[e]);
            tile_w[t] = w;
        }
        workgroupBarrier();
        let n = min(256u, end - base);
        for (var k = 0u; k < n; k++) {
            let b = tile_a[k];
            if (b % 256u == t) {
                pos[b / 256u] += tile_w[k];
                neg[b / 256u] += 1.0 - tile_w[k];
            }
        }
        workgroupBarrier();
    }
    let row = wid.x * 2u * p.len;
    for (var g = 0u; g < 4u; g++) {
        let b = t + 256u * g;
        if (b < p.len) {
            arg2[row + b] = pos[g];
            arg2[row + p.len + b] = neg[g];
        }
    }
}

// class_counts: per-class TP, FP, FN over the rows of chunk wid.y (CLASS_COUNT_CHUNK rows)
// for the class (column) k = wid.x·256 + t: arg2[chunk, k], arg2[chunk, cols + k],
// arg2[chunk, 2·cols + k]. p.len = 1: column k alone, pred > threshold against label > 0.5.
// Else one class per row: each thread stages its row's predicted (argmax) and true class in
// shared memory, then every thread counts its class over the tile.
const CLASS_COUNT_CHUNK: u32 = 1024u;

@compute @workgroup_size(256)
fn class_counts(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    let k = wid.x * 256u + t;
    let start = wid.y * CLASS_COUNT_CHUNK;
    let end = min(start + CLASS_COUNT_CHUNK, p.rows);
    var tp = 0.0;
    var fp = 0.0;
    var fneg = 0.0;
    if (p.len == 1u) {
        if (k < p.cols) {
            for (var i = start; i < end; i++) {
                let pos = arg0[i * p.cols + k] > p.threshold;
                let real = arg1[i * p.cols + k] > 0.5;
                tp += select(0.0, 1.0, pos && real);
                fp += select(0.0, 1.0, pos && !real);
                fneg += select(0.0, 1.0, !pos && real);
            }
        }
    } else {
        for (var base = start; base < end; base += 256u) {
            let i = base + t;
            if (i < end) {
                tile_a[t] = argmax(0u, i * p.cols);
                if (p.sparse != 0u) {
                    tile_b[t] = class_index(arg1[i]);
                } else {
                    tile_b[t] = argmax(1u, i * p.cols);
                }
            }
            workgroupBarrier();
            let n = min(256u, end - base);
            for (var j = 0u; j < n; j++) {
                let predicted = tile_a[j] == k;
                let real = tile_b[j] == k;
                tp += select(0.0, 1.0, predicted && real);
                fp += select(0.0, 1.0, predicted && !real);
                fneg += select(0.0, 1.0, !predicted && real);
            }
            workgroupBarrier();
        }
    }
    if (k < p.cols) {
        let row = wid.y * 3u * p.cols;
        arg2[row + k] = tp;
        arg2[row + p.cols + k] = fp;
        arg2[row + 2u * p.cols + k] = fneg;
    }
}
