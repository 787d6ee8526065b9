//! The geometry of a recurrent layer's time loop, shared by its kernels (see
//! docs/architecture.md, "Recurrent layers").
//!
//! Layouts, all row-major:
//! - `z` `[batch, steps, gates·units]`: the input projection x·W + b of every step, computed
//!   before the loop by one GEMM (row b·steps + τ is sample b at input time τ);
//! - `u` `[units, gates·units]`: the recurrent kernel;
//! - `s` `[steps, batch, width]`: the state after each *processing* step t, time-major so that
//!   one step's states are contiguous; a row holds the output h (`units` values) and what the
//!   backward pass needs (SimpleRNN: [h, a], a the pre-activation; LSTM: [h, c, i, f, g, o],
//!   the gates after their activations, Keras's order i, f, c (here g), o; GRU: [h, z, r, ĥ,
//!   q_h], q_h = h_{t−1}·U_h + b_rh);
//! - processing step t reads input time τ(t) = t, or steps − 1 − t with `go_backwards`;
//! - `mask` `[batch, steps]` (when `masked`): 1 where input time τ is data, 0 where it is
//!   padding. A masked step keeps the state (s[t] = s[t−1], zeros before the first step), so a
//!   returned sequence repeats the previous output there and the last output is the last valid
//!   step's (Keras semantics); its gradient passes straight through to the step before.
//!
//! - `drop` `[batch, steps, units]` (with `recurrent_dropout`): the scaled recurrent dropout
//!   mask, the same at every step; the kernels read its step-0 slice.
//!
//! The loop's inputs are always `[z, u, b_r, mask, drop]`; b_r (the GRU's recurrent bias),
//! mask and drop are empty (zero elements) where the cell has none or the layer is not masked
//! or has no recurrent dropout.
use super::UnaryOp;

/// The cell a recurrent layer runs at each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecurrentCell {
    /// Keras `SimpleRNN`: h_t = f(x_t·W + b + h_{t−1}·U); `None` is the identity (`linear`).
    Simple { activation: Option<UnaryOp> },
    /// Keras `LSTM` (activation tanh, recurrent activation sigmoid): gates i, f, g, o =
    /// σ, σ, tanh, σ of z + h_{t−1}·U; c_t = f·c_{t−1} + i·g; h_t = o·tanh(c_t).
    Lstm,
    /// Keras `GRU` with `reset_after=True` (its default): gates z, r, h; with the recurrent
    /// part q = h_{t−1}·U + b_r: z = σ(z_x + q_z), r = σ(r_x + q_r), ĥ = tanh(h_x + r·q_h),
    /// h_t = z·h_{t−1} + (1 − z)·ĥ. The loop takes the recurrent bias b_r as a third input.
    Gru,
}

/// One recurrent layer's loop over a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Recurrence {
    pub cell: RecurrentCell,
    pub batch: usize,
    pub steps: usize,
    pub units: usize,
    /// Process the sequence from its last step to its first (Keras `go_backwards`).
    pub go_backwards: bool,
    /// A `[batch, steps]` mask says which steps are data.
    pub masked: bool,
    /// Keras `recurrent_dropout`: h_{t−1} is multiplied by a `[batch, steps, units]` mask
    /// (0 or 1/(1 − rate), the same at every step: one per sequence) before the recurrent
    /// product; the state itself is not dropped.
    pub recurrent_dropout: bool,
}

/// What a gather reads from the states (and its scatter writes back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SequencePart {
    /// Every step's output, `[batch, steps, units]`, in processing order (Keras returns a
    /// `go_backwards` sequence reversed).
    Sequence,
    /// The last processing step's output, `[batch, units]`.
    Last,
    /// The output *before* the step that read input time τ (zeros for the first step),
    /// `[batch, steps, units]` aligned with the rows of `z`: the left operand of the recurrent
    /// kernel's gradient, Σ_t h_{t−1}ᵀ·dz_t, as one GEMM.
    Previous,
    /// Every step's output in input-time order, `[batch, steps, units]` (a `go_backwards`
    /// sequence flipped back, as `Bidirectional` returns its backward half).
    InputOrder,
    /// The LSTM's cell state c after the last processing step, `[batch, units]` (with `Last`,
    /// the h, the state Keras's `return_state` returns).
    LastCell,
}

impl Recurrence {
    /// Columns of `z` and of the recurrent kernel per unit.
    pub fn gates(&self) -> usize {
        match self.cell {
            RecurrentCell::Simple { .. } => 1,
            RecurrentCell::Lstm => 4,
            RecurrentCell::Gru => 3,
        }
    }

    /// Values per state row.
    pub fn width(&self) -> usize {
        match self.cell {
            RecurrentCell::Simple { .. } => 2 * self.units,
            RecurrentCell::Lstm => 6 * self.units,
            RecurrentCell::Gru => 5 * self.units,
        }
    }

    /// The input time processing step `t` reads.
    pub fn input_time(&self, t: usize) -> usize {
        if self.go_backwards { self.steps - 1 - t } else { t }
    }

    /// Elements of `z` (and of its gradient).
    pub fn z_len(&self) -> usize {
        self.batch * self.steps * self.gates() * self.units
    }

    /// Elements of the states `s`.
    pub fn state_len(&self) -> usize {
        self.steps * self.batch * self.width()
    }

    /// Elements of the recurrent kernel.
    pub fn kernel_len(&self) -> usize {
        self.units * self.gates() * self.units
    }

    /// Elements a gather of `part` produces.
    pub fn part_len(&self, part: SequencePart) -> usize {
        match part {
            SequencePart::Sequence | SequencePart::Previous | SequencePart::InputOrder => {
                self.batch * self.steps * self.units
            }
            SequencePart::Last | SequencePart::LastCell => self.batch * self.units,
        }
    }

    /// A SimpleRNN's output activation (None: the identity, or another cell).
    pub fn activation(&self) -> Option<UnaryOp> {
        match self.cell {
            RecurrentCell::Simple { activation } => activation,
            RecurrentCell::Lstm | RecurrentCell::Gru => None,
        }
    }

    /// The cell's code in shaders/recurrent.wgsl.
    pub fn cell_code(&self) -> u32 {
        match self.cell {
            RecurrentCell::Simple { .. } => 0,
            RecurrentCell::Lstm => 1,
            RecurrentCell::Gru => 2,
        }
    }

    /// Whether the loop's third input is a recurrent bias (`[gates·units]`, the GRU's).
    pub fn has_recurrent_bias(&self) -> bool {
        self.cell == RecurrentCell::Gru
    }

    /// Shapes of the loop's inputs `[z, u, b_r, mask, drop]` (empty ones: `[0]`).
    pub fn input_shapes(&self) -> [Vec<usize>; 5] {
        let g = self.gates() * self.units;
        [
            vec![self.batch, self.steps, g],
            vec![self.units, g],
            if self.has_recurrent_bias() { vec![g] } else { vec![0] },
            if self.masked { vec![self.batch, self.steps] } else { vec![0] },
            if self.recurrent_dropout { vec![self.batch, self.steps, self.units] } else { vec![0] },
        ]
    }
}
