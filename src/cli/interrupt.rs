//! Ctrl-C and SIGTERM (and SIGHUP) during `kiln train`: the first signal asks `fit` to stop
//! after the batch it is running, so the run directory saves the state and `kiln` exits 130
//! saying how to resume; a second signal, or one outside training, exits 130 at once.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// The flag `fit` polls after each batch, and whether a `fit` is polling it now.
struct Interrupt {
    requested: Arc<AtomicBool>,
    training: AtomicBool,
}

static INTERRUPT: OnceLock<Option<Interrupt>> = OnceLock::new();

fn installed() -> Option<&'static Interrupt> {
    INTERRUPT
        .get_or_init(|| {
            let ours =
                Interrupt { requested: Arc::new(AtomicBool::new(false)), training: AtomicBool::new(false) };
            ctrlc::set_handler(on_signal).ok().map(|()| ours)
        })
        .as_ref()
}

fn on_signal() {
    let Some(i) = INTERRUPT.get().and_then(Option::as_ref) else { std::process::exit(130) };
    if !i.training.load(Ordering::SeqCst) || i.requested.swap(true, Ordering::SeqCst) {
        std::process::exit(130);
    }
    eprintln!("\ninterrupted: stopping after this batch (interrupt again to quit at once)");
}

/// A guard for one `fit`: its flag for [`crate::FitOptions::interrupt`] (None when no handler
/// could be installed: the signals then keep their default action). Dropping it ends the
/// training phase, so a later signal exits at once.
pub struct TrainingPhase {
    pub flag: Option<Arc<AtomicBool>>,
}

impl TrainingPhase {
    pub fn begin() -> TrainingPhase {
        let flag = installed().map(|i| {
            i.requested.store(false, Ordering::SeqCst);
            i.training.store(true, Ordering::SeqCst);
            i.requested.clone()
        });
        TrainingPhase { flag }
    }
}

impl Drop for TrainingPhase {
    fn drop(&mut self) {
        if let Some(i) = INTERRUPT.get().and_then(Option::as_ref) {
            i.training.store(false, Ordering::SeqCst);
        }
    }
}
