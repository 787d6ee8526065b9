//! A small fork-join pool for the CPU kernels whose workers spin-wait between jobs.
//!
//! Why not rayon: a training step alternates large parallel kernels (GEMMs, the optimizer
//! update) with runs of small sequential ones lasting 20–200 µs. Rayon's idle workers go to
//! sleep after a few microseconds, and waking a sleeping vCPU costs 50–100 µs on the VMs
//! measured here — a 128×784×128 GEMM took 146 µs back to back and 210–290 µs after a 50–200
//! µs gap. These workers spin for [`SPIN`] after each job (as OpenMP's blocktime does for
//! PyTorch) and only then park, so an idle process costs nothing.
//!
//! `run(n, f)` calls `f(i)` for every `i` in `0..n`, spread over the caller and the workers,
//! and returns when all calls are done. Which thread runs which index never changes a result:
//! every index writes its own disjoint output.
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle worker keeps spinning before it parks.
const SPIN: Duration = Duration::from_millis(2);

/// The job being run: a borrowed closure, valid until `run` returns (it waits for every
/// worker to finish with it first).
#[derive(Clone, Copy)]
struct Job {
    f: *const (dyn Fn(usize) + Sync),
    n: usize,
}
// SAFETY: the closure is Sync, and `run` keeps it alive until no worker can touch it.
unsafe impl Send for Job {}

struct Shared {
    /// Incremented once per job (and once at shutdown).
    epoch: AtomicUsize,
    /// The last epoch whose indices are all taken: a worker arriving later must not join.
    closed: AtomicUsize,
    job: Mutex<Option<Job>>,
    /// Next index to hand out.
    next: AtomicUsize,
    /// Workers currently inside a job; `run` waits for it to drop to zero before returning.
    in_flight: AtomicUsize,
    /// Workers parked on `wake`.
    parked: AtomicUsize,
    park_lock: Mutex<()>,
    wake: Condvar,
    shutdown: AtomicBool,
    /// The payload of a panic caught on a worker (an internal bug), re-raised on the caller.
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

/// The pool; see the module docs.
pub struct Pool {
    shared: Arc<Shared>,
    workers: usize,
    /// Serialises `run` calls from different threads (one job at a time).
    run_lock: Mutex<()>,
}

/// Threads the CPU backend uses: `KILN_NUM_THREADS`, else all available cores. A value that
/// is not a positive integer is reported on stderr (once: the pool starts once) and ignored.
pub fn configured_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let Ok(v) = std::env::var("KILN_NUM_THREADS") else { return cores };
    match v.trim().parse::<usize>() {
        Ok(n) if n > 0 => n,
        _ => {
            eprintln!("warning: KILN_NUM_THREADS={v:?} is not a positive integer; using {cores} threads");
            cores
        }
    }
}

/// The process-wide pool, started on first use.
pub fn global() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool::new(configured_threads()))
}

thread_local! {
    static OVERRIDE: std::cell::RefCell<Option<Arc<Pool>>> = const { std::cell::RefCell::new(None) };
}

/// Run `f` with the CPU kernels called from this thread using `pool` instead of the global
/// one (tests use it to train under different thread counts in one process).
pub fn with_pool<R>(pool: &Arc<Pool>, f: impl FnOnce() -> R) -> R {
    let previous = OVERRIDE.with(|o| o.borrow_mut().replace(Arc::clone(pool)));
    let result = f();
    OVERRIDE.with(|o| *o.borrow_mut() = previous);
    result
}

/// Call `f` with the pool the kernels on this thread use.
pub fn with_current<R>(f: impl FnOnce(&Pool) -> R) -> R {
    let local = OVERRIDE.with(|o| o.borrow().clone());
    match local {
        Some(p) => f(&p),
        None => f(global()),
    }
}

impl Pool {
    /// A pool running jobs on `threads` threads in all (the caller plus `threads − 1` workers).
    pub fn new(threads: usize) -> Pool {
        let shared = Arc::new(Shared {
            epoch: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            job: Mutex::new(None),
            next: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            parked: AtomicUsize::new(0),
            park_lock: Mutex::new(()),
            wake: Condvar::new(),
            shutdown: AtomicBool::new(false),
            panic: Mutex::new(None),
        });
        let mut workers = 0;
        for i in 1..threads.max(1) {
            let s = Arc::clone(&shared);
            let spawned = std::thread::Builder::new().name(format!("kiln-cpu-{i}")).spawn(move || worker(&s));
            // A pool with fewer workers is still correct, only slower.
            if spawned.is_ok() {
                workers += 1;
            }
        }
        Pool { shared, workers, run_lock: Mutex::new(()) }
    }

    /// Threads that take part in a job (the caller included).
    pub fn threads(&self) -> usize {
        self.workers + 1
    }

    /// Call `f(i)` for every `i` in `0..n` on the pool's threads; returns when all are done.
    /// The caller takes indices too, and never waits for a worker that has not started: a
    /// worker descheduled by a busy machine costs nothing.
    pub fn run(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        if n <= 1 || self.workers == 0 {
            (0..n).for_each(f);
            return;
        }
        let _one_job = self.run_lock.lock().unwrap_or_else(|e| e.into_inner());
        let s = &*self.shared;
        // SAFETY (lifetime erasure): workers use the pointer only between joining (in_flight
        // incremented before `closed` is set) and leaving; `run` waits for in_flight == 0.
        let f_static: *const (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(f) };
        // Reset the counter before publishing the job: a worker may pick the job up as soon as
        // it is visible, even before the epoch changes.
        s.next.store(0, Ordering::SeqCst);
        *s.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(Job { f: f_static, n });
        let epoch = s.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        wake_parked(s);
        // A panic here must not unwind past the workers still borrowing `f`: hold it until
        // they are done.
        let own = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_indices(s, f, n)));
        // All indices are taken: late workers must not join, then wait for those inside.
        s.closed.store(epoch, Ordering::SeqCst);
        while s.in_flight.load(Ordering::SeqCst) != 0 {
            std::hint::spin_loop();
        }
        *s.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let caught = s.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(payload) = own.err().or(caught) {
            // A kernel panicked (an internal bug, e.g. a failed bounds assert), here or on a
            // worker: re-raise that same panic, with its message, on the caller, as rayon does.
            std::panic::resume_unwind(payload);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        wake_parked(&self.shared);
    }
}

fn wake_parked(s: &Shared) {
    if s.parked.load(Ordering::SeqCst) > 0 {
        let _g = s.park_lock.lock().unwrap_or_else(|e| e.into_inner());
        s.wake.notify_all();
    }
}

/// Take indices until none are left.
fn run_indices(s: &Shared, f: &(dyn Fn(usize) + Sync), n: usize) {
    loop {
        let i = s.next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            return;
        }
        f(i);
    }
}

fn worker(s: &Shared) {
    let mut seen = 0;
    loop {
        // Spin for a while, then park until the next job.
        let start = Instant::now();
        let mut spins = 0u32;
        while s.epoch.load(Ordering::SeqCst) == seen {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(256) && start.elapsed() > SPIN {
                let mut guard = s.park_lock.lock().unwrap_or_else(|e| e.into_inner());
                s.parked.fetch_add(1, Ordering::SeqCst);
                while s.epoch.load(Ordering::SeqCst) == seen {
                    guard = s.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
                }
                s.parked.fetch_sub(1, Ordering::SeqCst);
            }
        }
        if s.shutdown.load(Ordering::SeqCst) {
            return;
        }
        seen = s.epoch.load(Ordering::SeqCst);
        // Join, then check the job is still open (see `run` for why this order is safe).
        s.in_flight.fetch_add(1, Ordering::SeqCst);
        if s.closed.load(Ordering::SeqCst) != seen {
            let job = *s.job.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(job) = job {
                // SAFETY: `run` keeps the closure alive until in_flight drops to zero.
                let f = unsafe { &*job.f };
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_indices(s, f, job.n)));
                if let Err(payload) = ran {
                    s.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(payload);
                }
            }
        }
        s.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Call `f(range)` for consecutive ranges of `chunk` elements covering `0..len`, in parallel
/// when there is more than one range.
pub fn ranges(len: usize, chunk: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    let chunk = chunk.max(1);
    with_current(|pool| pool.run(len.div_ceil(chunk), &|i| f(i * chunk..((i + 1) * chunk).min(len))));
}

/// A mutable slice that parallel tasks write through, each to its own disjoint range.
pub struct SharedMut<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: std::marker::PhantomData<&'a mut [T]>,
}
// SAFETY: tasks only obtain disjoint ranges (the contract of `range`).
unsafe impl<T: Send> Send for SharedMut<'_, T> {}
unsafe impl<T: Send> Sync for SharedMut<'_, T> {}

impl<'a, T> SharedMut<'a, T> {
    /// Wrap a slice for the duration of a parallel job.
    pub fn new(s: &'a mut [T]) -> Self {
        SharedMut { ptr: s.as_mut_ptr(), len: s.len(), _borrow: std::marker::PhantomData }
    }

    /// The elements in `r`.
    ///
    /// # Safety
    /// No two live results may overlap (each task takes its own range).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn range(&self, r: std::ops::Range<usize>) -> &mut [T] {
        assert!(r.start <= r.end && r.end <= self.len, "range out of bounds");
        // SAFETY: in bounds (asserted) and disjoint from other live ranges (caller's contract).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(r.start), r.end - r.start) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// A panic inside a job reaches the caller with its own message, and the pool keeps
    /// working afterwards.
    #[test]
    fn a_panic_on_a_worker_reaches_the_caller() {
        let pool = Pool::new(2);
        for _ in 0..20 {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pool.run(64, &|i| assert!(i != 40, "index {i} is bad"));
            }));
            let payload = r.expect_err("the panic propagates");
            let msg = payload.downcast_ref::<String>().cloned().unwrap_or_default();
            assert_eq!(msg, "index 40 is bad");
        }
        let hits = AtomicU64::new(0);
        pool.run(10, &|_| {
            hits.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(hits.load(Ordering::Relaxed), 10);
    }

    /// Every index runs exactly once per job, over many back-to-back jobs of varying sizes,
    /// with callers from two threads.
    #[test]
    fn every_index_runs_exactly_once() {
        let pool = Arc::new(Pool::new(3));
        let callers: Vec<_> = (0..2)
            .map(|c| {
                let pool = Arc::clone(&pool);
                std::thread::spawn(move || {
                    for job in 0..2000usize {
                        let n = 1 + (job * 7 + c) % 37;
                        let hits: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
                        pool.run(n, &|i| {
                            hits[i].fetch_add(1, Ordering::Relaxed);
                        });
                        assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1), "job {job}");
                        if job % 500 == 0 {
                            std::thread::sleep(SPIN * 2); // let the workers park, then wake them
                        }
                    }
                })
            })
            .collect();
        for c in callers {
            c.join().unwrap();
        }
    }
}
