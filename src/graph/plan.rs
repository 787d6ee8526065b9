//! The planner: turns a graph plus a description of what to keep into a [`Program`]. It
//! orders the steps (node ids are already topological), keeps only nodes the results need,
//! places parameters and their gradients in the resident arenas, and packs everything else
//! into one Work arena, reusing a slot as soon as its last reader has run (first fit).
use std::collections::{HashMap, HashSet};

use super::Node;
use super::{Graph, NodeId, Op};
use crate::error::{Error, Result};
use crate::program::{Arena, BufRef, Kernel, Program, Step, StepOrigin, UnaryOp, align};

/// An argument of a tail step: a node's value or a fixed slice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ArgRef {
    Node(NodeId),
    Buf(BufRef),
}

/// What a program must compute and where its values live.
#[derive(Debug, Clone, Default)]
pub struct PlanSpec {
    /// Input nodes, in the order the host feeds them.
    pub inputs: Vec<NodeId>,
    /// Named nodes whose values stay readable after the run.
    pub outputs: Vec<(String, NodeId)>,
    /// Nodes that live in a resident arena (parameters, parameter gradients).
    pub fixed: HashMap<NodeId, BufRef>,
    /// Steps run after the graph (optimizer updates, metric accumulation).
    pub tail: Vec<(Kernel, Vec<ArgRef>)>,
    /// Emit one launch per node (no MatMul → BiasAdd → activation fusion).
    pub no_fusion: bool,
    /// Plan convolutions whose patch matrix is larger than this many bytes as implicit GEMMs
    /// (`Kernel::Conv2d`, `Conv2dFilterGrad`, `Conv2dInputGrad`) instead of im2col / matmul /
    /// col2im: no patch matrix in the Work arena. None: never (the CPU, whose im2col is cheap).
    pub implicit_conv_above: Option<u64>,
}

/// One kernel launch of the planned graph: the node whose value it writes, and the nodes it
/// reads (for a fused launch, the inputs of the whole chain).
#[derive(Debug, Clone, PartialEq)]
struct Launch {
    output: NodeId,
    kernel: Kernel,
    inputs: Vec<NodeId>,
}

/// One launch per node that has a kernel.
fn unfused(g: &Graph, order: &[NodeId]) -> Vec<Launch> {
    order
        .iter()
        .filter_map(|&n| {
            g.kernel(n).map(|kernel| Launch { output: n, kernel, inputs: g.node(n).inputs.clone() })
        })
        .collect()
}

/// Launches with every Dense chain MatMul → BiasAdd (→ relu/sigmoid/tanh) fused into one
/// `MatMulBiasAct`, where the intermediate values have no other reader. Backward rules never
/// read those intermediates (BiasAdd's needs only the incoming gradient, MatMul's only its
/// inputs, an activation's its own output), so training graphs fuse every forward Dense.
fn fuse(g: &Graph, order: &[NodeId], spec: &PlanSpec, kept: &HashSet<NodeId>) -> Vec<Launch> {
    let mut readers: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for &n in order {
        for &i in &g.node(n).inputs {
            readers.entry(i).or_default().push(n);
        }
    }
    // A value that is read by `reader` alone and is not needed outside the graph.
    let private_to = |n: NodeId, reader: NodeId| {
        readers.get(&n).is_some_and(|r| r.iter().all(|&x| x == reader))
            && !kept.contains(&n)
            && !spec.fixed.contains_key(&n)
    };
    let mut absorbed = HashSet::new();
    let mut fused: HashMap<NodeId, Launch> = HashMap::new();
    for &bias_add in order {
        let node = g.node(bias_add);
        if node.op != Op::BiasAdd {
            continue;
        }
        let (mm, bias) = (node.inputs[0], node.inputs[1]);
        let Op::MatMul { trans_a, trans_b } = g.node(mm).op else { continue };
        if !private_to(mm, bias_add) {
            continue;
        }
        let Some(Kernel::MatMul { m, k, n, .. }) = g.kernel(mm) else { continue };
        let users = readers.get(&bias_add).cloned().unwrap_or_default();
        let (output, act) = match users.as_slice() {
            [u] if private_to(bias_add, *u) => match g.node(*u).op {
                Op::Unary(op) => (*u, Some(op)),
                _ => (bias_add, None),
            },
            _ => (bias_add, None),
        };
        absorbed.insert(mm);
        if output != bias_add {
            absorbed.insert(bias_add);
        }
        let mm_inputs = &g.node(mm).inputs;
        fused.insert(
            output,
            Launch {
                output,
                kernel: Kernel::MatMulBiasAct { m, k, n, trans_a, trans_b, act },
                inputs: vec![mm_inputs[0], mm_inputs[1], bias],
            },
        );
    }
    fuse_relu_max_pool_grad(g, order, &readers, &private_to, &mut absorbed, &mut fused);
    if let Some(above) = spec.implicit_conv_above {
        fuse_implicit_conv(g, order, &readers, kept, &private_to, above, &mut absorbed, &mut fused);
    }
    unfused(g, order)
        .into_iter()
        .filter(|l| !absorbed.contains(&l.output))
        .map(|l| fused.remove(&l.output).unwrap_or(l))
        .collect()
}

/// Convolutions as implicit GEMMs (those with patch matrices above `above` bytes): an `Im2Col`
/// whose every reader is a matmul of its patches —
/// the forward product (plain, or already fused with bias and activation) or the filter
/// gradient (`trans_a`) — disappears, and those matmuls read the images themselves
/// (`Conv2d`, `Conv2dFilterGrad`); a `Col2Im` of a private `MatMul { trans_b }` (the patch
/// gradient dy · wᵀ) becomes one `Conv2dInputGrad`.
#[allow(clippy::too_many_arguments)]
fn fuse_implicit_conv(
    g: &Graph,
    order: &[NodeId],
    readers: &HashMap<NodeId, Vec<NodeId>>,
    kept: &HashSet<NodeId>,
    private_to: &dyn Fn(NodeId, NodeId) -> bool,
    above: u64,
    absorbed: &mut HashSet<NodeId>,
    fused: &mut HashMap<NodeId, Launch>,
) {
    let large = |win: &crate::program::Window2d| 4 * (win.positions() * win.patch_len()) as u64 > above;
    for &ic in order {
        let Op::Im2Col { win } = g.node(ic).op else { continue };
        if !large(&win) {
            continue;
        }
        let x = g.node(ic).inputs[0];
        let users = readers.get(&ic).cloned().unwrap_or_default();
        let reads_patches = |r: NodeId, trans_a: bool| {
            g.node(r).op == Op::MatMul { trans_a, trans_b: false } && g.node(r).inputs[0] == ic
        };
        // Every reader is rewritten, so the patches must be needed by nothing else.
        if users.is_empty()
            || kept.contains(&ic)
            || !users.iter().all(|&r| reads_patches(r, false) || reads_patches(r, true))
        {
            continue;
        }
        for &r in &users {
            let filters = g.shape(r)[1];
            if reads_patches(r, true) {
                let dy = g.node(r).inputs[1];
                let kernel = Kernel::Conv2dFilterGrad { win, filters };
                fused.insert(r, Launch { output: r, kernel, inputs: vec![x, dy] });
                continue;
            }
            let w = g.node(r).inputs[1];
            // Already fused with its bias and activation (keyed by its last node)?
            let with_bias = fused.values_mut().find(|l| {
                matches!(l.kernel, Kernel::MatMulBiasAct { trans_a: false, trans_b: false, .. })
                    && l.inputs[0] == ic
            });
            match with_bias {
                Some(l) => {
                    let Kernel::MatMulBiasAct { act, .. } = l.kernel else { continue };
                    l.kernel = Kernel::Conv2d { win, filters, bias: true, act };
                    l.inputs = vec![x, w, l.inputs[2]];
                }
                None => {
                    let kernel = Kernel::Conv2d { win, filters, bias: false, act: None };
                    fused.insert(r, Launch { output: r, kernel, inputs: vec![x, w] });
                }
            }
        }
        absorbed.insert(ic);
    }
    for &c2 in order {
        let Op::Col2Im { win } = g.node(c2).op else { continue };
        if !large(&win) {
            continue;
        }
        let mm = g.node(c2).inputs[0];
        if g.node(mm).op != (Op::MatMul { trans_a: false, trans_b: true }) || !private_to(mm, c2) {
            continue;
        }
        let (dy, w) = (g.node(mm).inputs[0], g.node(mm).inputs[1]);
        let kernel = Kernel::Conv2dInputGrad { win, filters: g.shape(dy)[1] };
        fused.insert(c2, Launch { output: c2, kernel, inputs: vec![dy, w] });
        absorbed.insert(mm);
    }
}

/// The backward of relu → max pooling (conv blocks): `UnaryGrad(relu)(y, MaxPoolGrad(y, dy))`,
/// through reshape views, becomes one `MaxPoolGrad { relu: true }` launch writing the relu
/// gradient's node. The pooling gradient is non-zero only at window maxima, where relu's mask
/// is "maximum > 0", so the pass over the whole activation disappears.
fn fuse_relu_max_pool_grad(
    g: &Graph,
    order: &[NodeId],
    readers: &HashMap<NodeId, Vec<NodeId>>,
    private_to: &dyn Fn(NodeId, NodeId) -> bool,
    absorbed: &mut HashSet<NodeId>,
    fused: &mut HashMap<NodeId, Launch>,
) {
    // `n` is read by `reader` alone, directly or through views only it reads.
    fn only_read_by(
        g: &Graph,
        readers: &HashMap<NodeId, Vec<NodeId>>,
        private_to: &dyn Fn(NodeId, NodeId) -> bool,
        n: NodeId,
        reader: NodeId,
    ) -> bool {
        let Some(rs) = readers.get(&n) else { return false };
        rs.iter().all(|&r| {
            r == reader
                || (matches!(g.node(r).op, Op::Reshape { .. })
                    && only_read_by(g, readers, private_to, r, reader))
        }) && rs.iter().all(|&r| private_to(n, r))
    }
    for &u in order {
        let node = g.node(u);
        if node.op != Op::UnaryGrad(UnaryOp::Relu) {
            continue;
        }
        let grad = storage_root(g, node.inputs[1]);
        let Op::MaxPoolGrad { win } = g.node(grad).op else { continue };
        let pool_input = g.node(grad).inputs[0];
        if storage_root(g, pool_input) != storage_root(g, node.inputs[0])
            || !only_read_by(g, readers, private_to, grad, u)
            || fused.contains_key(&u)
        {
            continue;
        }
        absorbed.insert(grad);
        let inputs = vec![pool_input, g.node(grad).inputs[1]];
        fused.insert(u, Launch { output: u, kernel: Kernel::MaxPoolGrad { win, relu: true }, inputs });
    }
}

/// First-fit allocator over the Work arena, in aligned element offsets.
#[derive(Debug, Default)]
struct SlotAllocator {
    /// Free (offset, len) holes, sorted by offset, never adjacent.
    free: Vec<(usize, usize)>,
    top: usize,
}

impl SlotAllocator {
    fn alloc(&mut self, len: usize) -> usize {
        let len = align(len.max(1));
        if let Some(i) = self.free.iter().position(|&(_, l)| l >= len) {
            let (off, l) = self.free[i];
            if l == len {
                self.free.remove(i);
            } else {
                self.free[i] = (off + len, l - len);
            }
            return off;
        }
        // Grow: a hole at the very top can be extended instead of wasted.
        if let Some(&(off, l)) = self.free.last()
            && off + l == self.top
        {
            self.free.pop();
            self.top = off + len;
            return off;
        }
        let off = self.top;
        self.top += len;
        off
    }

    fn release(&mut self, offset: usize, len: usize) {
        let len = align(len.max(1));
        let i = self.free.partition_point(|&(o, _)| o < offset);
        self.free.insert(i, (offset, len));
        // Merge with the next hole, then with the previous one.
        if i + 1 < self.free.len() && self.free[i].0 + self.free[i].1 == self.free[i + 1].0 {
            self.free[i].1 += self.free[i + 1].1;
            self.free.remove(i + 1);
        }
        if i > 0 && self.free[i - 1].0 + self.free[i - 1].1 == self.free[i].0 {
            self.free[i - 1].1 += self.free[i].1;
            self.free.remove(i);
        }
    }
}

/// Work-arena elements a plan without reuse would need (every value in its own slot).
pub fn naive_work_len(g: &Graph, program_nodes: &[NodeId], spec: &PlanSpec) -> usize {
    program_nodes
        .iter()
        .filter(|n| {
            !spec.fixed.contains_key(n) && !matches!(g.node(**n).op, Op::Param { .. } | Op::Reshape { .. })
        })
        .map(|&n| align(g.node(n).len().max(1)))
        .sum()
}

/// Nodes the spec needs, in execution (id) order.
pub fn needed_nodes(g: &Graph, spec: &PlanSpec) -> Vec<NodeId> {
    let mut roots: Vec<NodeId> = spec.outputs.iter().map(|(_, n)| *n).collect();
    roots.extend(spec.inputs.iter().copied());
    roots.extend(spec.fixed.keys().copied().filter(|&n| !matches!(g.node(n).op, Op::Param { .. })));
    for (_, args) in &spec.tail {
        roots.extend(args.iter().filter_map(|a| match a {
            ArgRef::Node(n) => Some(*n),
            ArgRef::Buf(_) => None,
        }));
    }
    let mut seen = HashSet::new();
    while let Some(n) = roots.pop() {
        if seen.insert(n) {
            roots.extend(g.node(n).inputs.iter().copied());
        }
    }
    let mut order: Vec<NodeId> = seen.into_iter().collect();
    order.sort_unstable();
    order
}

/// The node whose buffer holds `n`'s value: a `Reshape` is a view of its input's buffer.
pub fn storage_root(g: &Graph, mut n: NodeId) -> NodeId {
    while let Op::Reshape { .. } = g.node(n).op {
        n = g.node(n).inputs[0];
    }
    n
}

/// `spec` with every node replaced by its storage root, so that views (reshapes) share their
/// source's slot; fixing a view to a resident slice fixes its source there.
fn resolve_views(g: &Graph, spec: &PlanSpec) -> Result<PlanSpec> {
    let root = |n: NodeId| storage_root(g, n);
    let mut fixed = HashMap::new();
    for (&n, &b) in &spec.fixed {
        if let Some(prev) = fixed.insert(root(n), b)
            && prev != b
        {
            let ctx = &g.node(n).context;
            return Err(Error::invalid("plan", format!("'{ctx}' is fixed to two different slices")));
        }
    }
    let arg = |a: &ArgRef| match a {
        ArgRef::Node(n) => ArgRef::Node(root(*n)),
        ArgRef::Buf(b) => ArgRef::Buf(*b),
    };
    Ok(PlanSpec {
        inputs: spec.inputs.clone(),
        outputs: spec.outputs.iter().map(|(name, n)| (name.clone(), root(*n))).collect(),
        fixed,
        tail: spec.tail.iter().map(|(k, args)| (*k, args.iter().map(arg).collect())).collect(),
        no_fusion: spec.no_fusion,
        implicit_conv_above: spec.implicit_conv_above,
    })
}

/// Plan `g` according to `spec`.
pub fn plan(g: &Graph, spec: &PlanSpec) -> Result<Program> {
    let spec = &resolve_views(g, spec)?;
    let order = needed_nodes(g, spec);
    let bug = |m: String| Error::invalid("plan", m);
    for &n in &order {
        let node = g.node(n);
        match node.op {
            Op::Input { .. } if !spec.inputs.contains(&n) => {
                return Err(bug(format!("input '{}' is needed but not fed", node.context)));
            }
            Op::Param { .. } if !spec.fixed.contains_key(&n) => {
                return Err(bug(format!("parameter '{}' has no resident slot", node.context)));
            }
            _ => {}
        }
    }
    let mut kept: HashSet<NodeId> = spec.outputs.iter().map(|(_, n)| *n).collect();
    for (_, args) in &spec.tail {
        kept.extend(args.iter().filter_map(|a| if let ArgRef::Node(n) = a { Some(*n) } else { None }));
    }
    let mut launches = if spec.no_fusion { unfused(g, &order) } else { fuse(g, &order, spec, &kept) };
    for l in &mut launches {
        l.inputs.iter_mut().for_each(|i| *i = storage_root(g, *i));
    }
    // Position of each value's last reader; kept values (outputs, tail args) never die.
    let mut last_use: HashMap<NodeId, usize> = HashMap::new();
    for (pos, l) in launches.iter().enumerate() {
        for &i in &l.inputs {
            last_use.insert(i, pos);
        }
    }

    let mut alloc = SlotAllocator::default();
    let mut slot: HashMap<NodeId, BufRef> = spec.fixed.clone();
    let work = |offset, len| BufRef { arena: Arena::Work, offset, len };
    let mut inputs = Vec::new();
    for &n in &spec.inputs {
        let node = g.node(n);
        let b = work(alloc.alloc(node.len()), node.len());
        slot.insert(n, b);
        inputs.push((node.context.clone(), b));
    }
    let mut steps = Vec::new();
    let mut dying: HashMap<usize, Vec<NodeId>> = HashMap::new();
    for (&n, &pos) in &last_use {
        let transient = !kept.contains(&n) && !spec.fixed.contains_key(&n) && !spec.inputs.contains(&n);
        if transient {
            dying.entry(pos).or_default().push(n);
        }
    }
    for (pos, launch) in launches.iter().enumerate() {
        let n = launch.output;
        let len = g.node(n).len();
        let out = match slot.get(&n) {
            Some(&b) => b,
            None => {
                let b = work(alloc.alloc(len), len);
                slot.insert(n, b);
                b
            }
        };
        let mut args: Vec<BufRef> = launch.inputs.iter().map(|i| slot[i]).collect();
        args.push(out);
        steps.push(Step { kernel: launch.kernel, args, origin: Some(origin(g.node(n))) });
        // Free after the output is placed, so an output never aliases its own inputs.
        let mut dead = dying.remove(&pos).unwrap_or_default();
        dead.sort_unstable();
        for d in dead {
            let b = slot[&d];
            alloc.release(b.offset, b.len);
        }
        // A value nobody reads (and nobody keeps) dies right away.
        if !last_use.contains_key(&n) && !kept.contains(&n) && !spec.fixed.contains_key(&n) {
            alloc.release(out.offset, out.len);
        }
    }
    for (kernel, args) in &spec.tail {
        let args = args
            .iter()
            .map(|a| match a {
                ArgRef::Node(n) => slot
                    .get(n)
                    .copied()
                    .ok_or_else(|| bug(format!("tail step reads node {n}, which was not planned"))),
                ArgRef::Buf(b) => Ok(*b),
            })
            .collect::<Result<Vec<_>>>()?;
        steps.push(Step::new(*kernel, args));
    }
    let outputs = spec.outputs.iter().map(|(name, n)| (name.clone(), slot[n])).collect();
    let naive_work_len = naive_work_len(g, &order, spec);
    Ok(Program { steps, work_len: alloc.top, naive_work_len, inputs, outputs })
}

/// The layer of a node (its context before any " (backward)"-style suffix) and the role of its
/// value, for messages that name what a step computes.
fn origin(node: &Node) -> StepOrigin {
    let (layer, suffix) = match node.context.split_once(" (") {
        Some((layer, rest)) => (layer, rest),
        None => (node.context.as_str(), ""),
    };
    let role = match node.op {
        Op::Im2Col { .. } => "patches",
        Op::Col2Im { .. } => "input gradient",
        Op::SoftmaxCrossEntropy { .. }
        | Op::MeanSquaredError { .. }
        | Op::Pointwise { .. }
        | Op::SigmoidBinaryCrossEntropy { .. } => "loss",
        Op::CountCorrect { .. }
        | Op::CountTopK { .. }
        | Op::BinaryCounts { .. }
        | Op::RocHistogram { .. }
        | Op::ClassCounts { .. } => "metric counts",
        _ if suffix.starts_with("backward") || suffix.starts_with("gradient") => "gradient",
        _ => "activations",
    };
    StepOrigin { layer: layer.to_string(), role }
}
