//! CPU backend: interprets a [`Program`] step by step over host arenas. Generic over the float
//! type: `Arenas<f32>` for training, `Arenas<f64>` for gradient checks.
mod cells;
pub mod conv;
pub mod conv_gemm;
pub mod fastmath;
pub mod gemm;
mod gru;
pub mod kernels;
mod lstm;
pub mod metrics;
pub mod norm;
pub mod optim;
pub mod pointwise;
pub mod pool;
pub mod recurrent;
mod tables;
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

/// Bytes of memory the OS reports available (Linux `MemAvailable`), when it says.
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Fails with [`Error::OutOfMemory`] when `elements` f32 values for `what` exceed the memory
/// the machine has available (an allocation that large would abort, or be killed when touched).
pub fn check_memory(elements: u64, what: &str) -> Result<()> {
    let needed = elements.saturating_mul(4);
    match available_memory() {
        Some(available) if needed > available => {
            Err(Error::OutOfMemory { what: what.to_string(), needed, available: Some(available) })
        }
        _ => Ok(()),
    }
}

/// A zero-filled vector of `n` elements, or [`Error::OutOfMemory`] when it cannot be allocated.
fn try_zeroed<T: CpuFloat>(n: usize, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::OutOfMemory {
        what: what.to_string(),
        needed: (n as u64).saturating_mul(std::mem::size_of::<T>() as u64),
        available: None,
    })?;
    v.resize(n, T::zero());
    Ok(v)
}

impl<T: CpuFloat> Arenas<T> {
    /// [`Arenas::new`] without aborting: the memory is checked and allocated fallibly.
    pub fn try_new(layout: &ResidentLayout, work_len: usize) -> Result<Self> {
        let what = "the model's parameters, gradients and optimizer state";
        let per = layout.params_len as u64;
        check_memory(per * (2 + layout.slots as u64) + (layout.accum_len + work_len) as u64, what)?;
        Ok(Arenas {
            params: try_zeroed(layout.params_len, what)?,
            grads: try_zeroed(layout.params_len, what)?,
            slots: (0..layout.slots).map(|_| try_zeroed(layout.params_len, what)).collect::<Result<_>>()?,
            accum: try_zeroed(layout.accum_len, what)?,
            work: try_zeroed(work_len, what)?,
        })
    }

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

/// Indices of the args a kernel writes; every other arg is only read (the kernel table's
/// `writes`).
pub fn written_args(kernel: &Kernel, nargs: usize) -> Vec<usize> {
    kernel.signature().written(nargs)
}

/// Number of args each kernel takes (the kernel table's `args`).
pub fn arg_count(kernel: &Kernel) -> usize {
    kernel.signature().args
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
    let bug = |i: usize, s: &Step, m: String| Error::invalid("program", format!("{}: {m}", s.describe(i)));
    for (i, s) in program.steps.iter().enumerate() {
        if s.args.len() != arg_count(&s.kernel) {
            return Err(bug(i, s, format!("{} args, expected {}", s.args.len(), arg_count(&s.kernel))));
        }
        for b in &s.args {
            if b.offset + b.len > arena_len(b.arena) {
                let at = format!("{}[{}..{}]", b.arena.name(), b.offset, b.offset + b.len);
                return Err(bug(i, s, format!("{at} is outside its arena of {}", arena_len(b.arena))));
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

impl<T: CpuFloat> Views<T> {
    /// The args of `step` in `arenas`.
    fn of(step: &Step, arenas: &mut Arenas<T>) -> Views<T> {
        // Unused entries stay empty slices at a dangling (non-null, aligned) pointer.
        let mut ptrs = [(std::ptr::NonNull::dangling().as_ptr(), 0); 6];
        for (slot, b) in ptrs.iter_mut().zip(&step.args) {
            let arena = arenas.arena_mut(b.arena);
            *slot = (arena[b.range()].as_mut_ptr(), b.len);
        }
        Views { ptrs }
    }

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

/// Expands the kernel table (`program/table.rs`) into `execute_step`.
macro_rules! cpu_execute {
    ($($name:ident { $($field:tt)* } => {
        args: $args:expr,
        $(writes: $writes:expr,)?
        cpu($v:ident, $sc:ident): $cpu:expr,
        gpu($d:ident): $gpu:expr $(,)?
    })*) => {
        /// Run one validated step: the `cpu` column of the kernel table.
        #[allow(unused_variables, clippy::let_unit_value, clippy::unit_arg)]
        fn execute_step<T: CpuFloat>(step: &Step, arenas: &mut Arenas<T>, scalars: StepScalars) {
            use crate::backend::cpu;
            let views = Views::of(step, arenas);
            match step.kernel {
                $(Kernel::$name { $($field)* } => {
                    let ($v, $sc) = (&views, scalars);
                    let () = $cpu;
                })*
            }
        }
    };
}
crate::program::table::kernel_table!(cpu_execute);

/// The CPU backend: f32 arenas; one Work arena shared by every compiled program (as large as
/// the largest), which holds the results of the program run last.
pub struct CpuBackend {
    layout: ResidentLayout,
    resident: Arenas<f32>,
    programs: Vec<Program>,
    /// The program run last (whose results the Work arena holds).
    last_run: Option<ProgramId>,
    /// Outputs kept by `run_collect`.
    collected: Vec<f32>,
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
            last_run: None,
            collected: Vec::new(),
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
            format!("{}[{offset}..{}] is outside its {have} elements", arena.name(), offset + len),
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
        // The programs' shared Work arena stays.
        let work = std::mem::take(&mut self.resident.work);
        self.resident = Arenas::try_new(layout, 0)?;
        self.resident.work = work;
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
        if program.work_len > self.resident.work.len() {
            let grow = program.work_len - self.resident.work.len();
            let what = "the activations and gradients of one step (the Work arena)";
            check_memory(grow as u64, what)?;
            self.resident.work.try_reserve_exact(grow).map_err(|_| Error::OutOfMemory {
                what: what.into(),
                needed: 4 * program.work_len as u64,
                available: None,
            })?;
            self.resident.work.resize(program.work_len, 0.0);
            self.last_run = None;
        }
        self.programs.push(program.clone());
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
        for ((name, b), data) in program.inputs.iter().zip(inputs) {
            if data.len() != b.len {
                return Err(Error::shape(format!("input '{name}'"), &[b.len], &[data.len()]));
            }
        }
        for ((_, b), data) in program.inputs.iter().zip(inputs) {
            self.resident.work[b.range()].copy_from_slice(data);
        }
        execute(&program.steps, &mut self.resident, scalars);
        self.last_run = Some(id);
        Ok(())
    }

    fn read_work(&mut self, id: ProgramId, buf: BufRef) -> Result<Vec<f32>> {
        self.check_id(id)?;
        if buf.arena != Arena::Work {
            return self.read(buf.arena, buf.offset, buf.len);
        }
        if self.last_run != Some(id) {
            return Err(Error::NotReady(format!(
                "the Work arena holds another program's results; run program {} again before reading it",
                id.0
            )));
        }
        check_range(buf.arena, buf.offset, buf.len, self.programs[id.0].work_len)?;
        Ok(self.resident.work[buf.range()].to_vec())
    }

    fn run_collect(&mut self, id: ProgramId, inputs: &[&[f32]], out: BufRef) -> Result<()> {
        self.run(id, inputs, StepScalars::default())?;
        let values = self.read_work(id, out)?;
        self.collected.extend(values);
        Ok(())
    }

    fn take_collected(&mut self) -> Result<Vec<f32>> {
        Ok(std::mem::take(&mut self.collected))
    }
}
