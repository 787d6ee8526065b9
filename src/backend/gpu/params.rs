//! Typed per-step parameters: one `#[repr(C)]` struct per shader family, bound at binding 4 as
//! the WGSL `struct Params` of that family's files. Each struct is declared with
//! [`shader_params!`], which records its fields (name, byte offset, size); a test reflects every
//! WGSL file with naga and compares its `Params` member by member, so a field that differs in
//! name, order, offset or size fails the test instead of reading garbage on the GPU.
use super::kernels::Shader;

/// Bytes of the parameter block every step binds (the largest family's struct fits).
pub(crate) const PARAMS_BYTES: usize = 64;

/// One field of a parameter struct: its name (as in WGSL), byte offset and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldLayout {
    pub name: &'static str,
    pub offset: usize,
    pub size: usize,
}

/// A shader family's parameter struct.
pub(crate) trait ShaderParams: bytemuck::Pod {
    /// The WGSL files whose `struct Params` this is.
    const SHADERS: &'static [Shader];
    /// The struct's name in Rust (for test messages).
    const NAME: &'static str;
    /// Its fields in declaration order.
    fn fields() -> Vec<FieldLayout>;
}

/// The raw parameter block of one step: a [`ShaderParams`] struct's bytes, zero-padded.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct StepParams([u32; PARAMS_BYTES / 4]);

impl StepParams {
    /// The same block with its first word (a repeated launch's `step` field) set to `step`.
    pub(crate) fn with_step(mut self, step: u32) -> StepParams {
        self.0[0] = step;
        self
    }

    /// The block holding `params`.
    pub(crate) fn of<P: ShaderParams>(params: &P) -> StepParams {
        const { assert!(std::mem::size_of::<P>() <= PARAMS_BYTES) };
        let mut block = StepParams([0; PARAMS_BYTES / 4]);
        let bytes = bytemuck::bytes_of(params);
        bytemuck::bytes_of_mut(&mut block)[..bytes.len()].copy_from_slice(bytes);
        block
    }
}

/// Declare a shader family's parameter struct: `Name for [Shader, …] { field: type, … }`.
macro_rules! shader_params {
    ($(#[$meta:meta])* $name:ident for [$($shader:ident),+] { $($(#[$fmeta:meta])* $field:ident: $ty:ty),+ $(,)? }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub(crate) struct $name {
            $($(#[$fmeta])* pub $field: $ty),+
        }

        impl ShaderParams for $name {
            const SHADERS: &'static [Shader] = &[$(Shader::$shader),+];
            const NAME: &'static str = stringify!($name);
            fn fields() -> Vec<FieldLayout> {
                vec![$(FieldLayout {
                    name: stringify!($field),
                    offset: std::mem::offset_of!($name, $field),
                    size: std::mem::size_of::<$ty>(),
                }),+]
            }
        }
    };
}

shader_params! {
    /// `shaders/matmul.wgsl`, `shaders/matmul_vec4.wgsl`: C[m,n] = op(A)[m,k] · op(B)[k,n].
    MatmulParams for [Matmul, MatmulVec4] { m: u32, k: u32, n: u32, _pad: u32 }
}

shader_params! {
    /// `shaders/splitk.wgsl`: a matmul split into `splits` chunks of `chunk` k each.
    SplitKParams for [SplitK] {
        m: u32, k: u32, n: u32, splits: u32, trans_a: u32, trans_b: u32, chunk: u32, _pad: u32,
    }
}

shader_params! {
    /// `shaders/elementwise.wgsl`: `len` elements; `cols` is the row length (bias, broadcast)
    /// or the copy offset; `op` the activation or binary op code, or `place_row`'s row; dropout keeps an element when its hash of
    /// `seed` is ≥ `threshold`, element i hashing (i / period)·cols + i % cols when `period` is
    /// not 0 (one mask per sequence).
    ElementwiseParams for [Elementwise] {
        len: u32, cols: u32, op: u32, seed: u32, scale: f32, shift: f32, threshold: u32, period: u32,
    }
}

shader_params! {
    /// `shaders/recurrent.wgsl`: a recurrent layer's loop; `step` (first: a repeated launch
    /// sets it per dispatch) is the dispatch's index in the loop.
    RecurrentParams for [Recurrent] {
        step: u32, batch: u32, steps: u32, units: u32, width: u32, backwards: u32, act: u32,
        from_input: u32, part: u32, len: u32, cell: u32, masked: u32, value: f32, dropped: u32, _pad1: u32,
    }
}

shader_params! {
    /// `shaders/columns.wgsl`: concatenating or slicing the last axis; embedding lookups.
    ColumnsParams for [Columns] {
        len: u32, in_cols: u32, b_cols: u32, start: u32, out_cols: u32, ids: u32, vocab: u32, _pad0: u32,
    }
}

shader_params! {
    /// `shaders/softmax.wgsl`: one row per thread.
    SoftmaxParams for [Softmax] { rows: u32, cols: u32, _u2: u32, _u3: u32 }
}

shader_params! {
    /// `shaders/reduce.wgsl`: column sums over `rows` (split: `len` = chunks), or the total of
    /// `len` elements times `scale`.
    ReduceParams for [Reduce] { rows: u32, cols: u32, len: u32, _u3: u32, scale: f32, _f1: f32, _f2: f32, _f3: f32 }
}

shader_params! {
    /// `shaders/loss.wgsl` (losses and metric counters): `len` is the element count, top-k's k
    /// or the AUC thresholds; `cols` selects the pointwise loss; `param` its parameter;
    /// `weighted` says whether arg 2 holds per-sample weights.
    LossParams for [Loss] {
        rows: u32, cols: u32, sparse: u32, len: u32, threshold: f32, param: f32, weighted: u32, _pad: u32,
    }
}

shader_params! {
    /// `shaders/conv.wgsl`: `len` output elements (threads) over an NHWC window geometry;
    /// `flag` is max-pool-grad's fused relu or random-flip's seed.
    ConvParams for [Conv] {
        len: u32, oh: u32, ow: u32, flag: u32,
        batch: u32, height: u32, width: u32, channels: u32,
        kh: u32, kw: u32, sh: u32, sw: u32, dh: u32, dw: u32, pt: u32, pl: u32,
    }
}

shader_params! {
    /// `shaders/conv_gemm.wgsl`: the implicit-GEMM convolution over an NHWC window geometry
    /// with `filters` outputs; `chunk` positions per split of the filter gradient.
    ConvGemmParams for [ConvGemm] {
        batch: u32, height: u32, width: u32, channels: u32,
        kh: u32, kw: u32, sh: u32, sw: u32, dh: u32, dw: u32, pt: u32, pl: u32,
        oh: u32, ow: u32, filters: u32, chunk: u32,
    }
}

shader_params! {
    /// `shaders/norm.wgsl`: batch normalisation over `rows` × `cols` (`len` = rows · cols;
    /// `chunks` of a split reduction).
    NormParams for [Norm] { rows: u32, cols: u32, len: u32, chunks: u32, eps: f32, momentum: f32, _f2: f32, _f3: f32 }
}

shader_params! {
    /// `shaders/optimizer.wgsl`: `len` elements; `flag` (nesterov, amsgrad, centered) and the
    /// hyperparameters `f0..f3`, whose meaning each update documents in the shader.
    OptimizerParams for [Optimizer] { len: u32, flag: u32, _u2: u32, _u3: u32, f0: f32, f1: f32, f2: f32, f3: f32 }
}

shader_params! {
    /// `shaders/clip.wgsl`: squared norms (`accumulate`, split into `chunks`) and clipping.
    ClipParams for [Clip] { len: u32, accumulate: u32, chunks: u32, _u3: u32, clip: f32, _f1: f32, _f2: f32, _f3: f32 }
}

shader_params! {
    /// `shaders/penalty.wgsl`: the L1/L2 penalty of `len` weights (split into `chunks`).
    PenaltyParams for [Penalty] { len: u32, _u1: u32, chunks: u32, _u3: u32, l1: f32, l2: f32, _f2: f32, _f3: f32 }
}

/// Every family's struct: (WGSL file, Rust struct name, fields) for each file it binds.
pub fn params_layouts() -> Vec<(&'static str, &'static str, Vec<FieldLayout>)> {
    fn entries<P: ShaderParams>() -> Vec<(&'static str, &'static str, Vec<FieldLayout>)> {
        P::SHADERS.iter().map(|s| (s.file(), P::NAME, P::fields())).collect()
    }
    [
        entries::<MatmulParams>(),
        entries::<SplitKParams>(),
        entries::<ElementwiseParams>(),
        entries::<SoftmaxParams>(),
        entries::<ReduceParams>(),
        entries::<LossParams>(),
        entries::<ConvParams>(),
        entries::<ConvGemmParams>(),
        entries::<NormParams>(),
        entries::<OptimizerParams>(),
        entries::<ClipParams>(),
        entries::<PenaltyParams>(),
        entries::<RecurrentParams>(),
        entries::<ColumnsParams>(),
    ]
    .concat()
}

/// The WGSL source kiln compiles for `file` (shaders/common.wgsl, then the file), or None.
pub fn shader_source(file: &str) -> Option<&'static str> {
    Shader::ALL.iter().find(|s| s.file() == file).map(|s| s.source())
}
