//! Interrupting training (`FitOptions::interrupt`, Ctrl-C / SIGTERM in `kiln train`): `fit`
//! stops after the running batch, the run directory saves the partial epoch, and a resumed
//! run ends with the same bits and History as one that never stopped.
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use kiln::callbacks::{Callback, SharedCallback};
use kiln::run_dir::{self, RunDirectory};
use kiln::{
    Activation, BatchNormalization, Checkpoint, CompileOptions, Dense, Device, Dropout, Error, FitOptions,
    History, Loss, Model, Optimizer, Sequential, Tensor,
};

use crate::common::{TempDir, digits};

/// Dense → BatchNormalization → Dropout → Dense with Adam: the moving statistics, both slots
/// and the step-dependent dropout masks have to continue exactly.
fn model(device: Device) -> Sequential {
    let mut m = Sequential::new(&[64])
        .with_seed(5)
        .add(Dense::new(32, Activation::Relu))
        .add(BatchNormalization::new())
        .add(Dropout::new(0.3))
        .add(Dense::new(10, Activation::Softmax));
    m.compile(CompileOptions::new(Optimizer::adam(1e-3), Loss::SparseCategoricalCrossentropy, device))
        .unwrap();
    m
}

/// Raises the interrupt flag after batch `batch` of epoch `epoch` (both from 0).
struct RaiseAt {
    epoch: usize,
    batch: usize,
    now: usize,
    flag: Arc<AtomicBool>,
}

impl Callback for RaiseAt {
    fn on_epoch_begin(&mut self, epoch: usize, _m: &mut Model) -> kiln::Result<()> {
        self.now = epoch;
        Ok(())
    }
    fn on_train_batch_end(
        &mut self,
        batch: usize,
        _l: &kiln::callbacks::Logs,
        _m: &mut Model,
    ) -> kiln::Result<()> {
        if (self.now, batch) == (self.epoch, self.batch) {
            self.flag.store(true, Ordering::SeqCst);
        }
        Ok(())
    }
}

const BATCH: usize = 50;

fn options(epochs: usize, initial_epoch: usize, callbacks: Vec<SharedCallback>) -> FitOptions {
    let interrupt = Some(Arc::new(AtomicBool::new(false)));
    FitOptions {
        epochs,
        initial_epoch,
        batch_size: BATCH,
        verbose: 0,
        callbacks,
        interrupt,
        ..FitOptions::default()
    }
}

/// Trains 3 epochs with an interrupt after `batch` of epoch 1 (saved by a run directory),
/// then a fresh model from `last.safetensors` finishes them: (the two Histories, weights).
fn interrupted_run(
    device: Device,
    x: &Tensor,
    y: &Tensor,
    batch: usize,
) -> (Error, History, Vec<(String, Tensor)>) {
    let dir = TempDir::new("interrupt-lib");
    let mut m = model(device);
    let mut opts = options(3, 0, Vec::new());
    let flag = opts.interrupt.clone().unwrap();
    let raise: SharedCallback = Arc::new(Mutex::new(RaiseAt { epoch: 1, batch, now: 0, flag }));
    let run: SharedCallback = Arc::new(Mutex::new(RunDirectory::new(&*dir, History::default())));
    opts.callbacks = vec![raise, run];
    let err = m.fit(x, y, &opts).unwrap_err();
    drop(m);
    let path = dir.join(run_dir::LAST);
    let checkpoint = Checkpoint::load(&path).unwrap();
    let mut resumed = checkpoint.into_model(device).unwrap();
    assert_eq!(resumed.epochs_trained(), 1);
    let history = resumed.fit(x, y, &options(3, resumed.epochs_trained(), Vec::new())).unwrap();
    (err, history, resumed.get_weights().unwrap())
}

fn same_bits(a: &[(String, Tensor)], b: &[(String, Tensor)]) {
    for ((name, p), (_, q)) in a.iter().zip(b) {
        assert!(p.data.iter().zip(&q.data).all(|(s, t)| s.to_bits() == t.to_bits()), "{name} differs");
    }
}

#[test]
fn an_epoch_interrupted_after_a_batch_resumes_to_the_same_bits_and_history() {
    let (x, y) = digits();
    let mut straight = model(Device::Cpu);
    let h = straight.fit(&x, &y, &options(3, 0, Vec::new())).unwrap();
    let weights = straight.get_weights().unwrap();
    let of = x.rows().div_ceil(BATCH);
    let (err, resumed, after) = interrupted_run(Device::Cpu, &x, &y, 6);
    match err {
        Error::Interrupted { epoch: 2, batches: 7, of: o, saved: Some(p) } if o == of => {
            assert!(p.ends_with(run_dir::LAST), "{}", p.display())
        }
        e => panic!("expected an interrupt in epoch 2 after batch 7 of {of}: {e}"),
    }
    same_bits(&weights, &after);
    // The interrupted epoch's loss counts its first 7 batches too.
    for key in ["loss", "accuracy"] {
        assert_eq!(resumed.history[key], h.history[key][1..], "{key}");
    }
}

/// The same on a GPU (lavapipe in CI): the partial epoch's accumulators come back from and go
/// to the device; the resumed run agrees with an uninterrupted one on the same adapter.
#[test]
fn an_interrupted_epoch_resumes_on_the_gpu() {
    if crate::common::gpu().is_none() {
        return;
    }
    let device = Device::Gpu(None);
    let (x, y) = digits();
    let mut straight = model(device);
    let h = straight.fit(&x, &y, &options(3, 0, Vec::new())).unwrap();
    let (err, resumed, after) = interrupted_run(device, &x, &y, 6);
    assert!(matches!(err, Error::Interrupted { epoch: 2, batches: 7, .. }), "{err}");
    for ((name, p), (_, q)) in straight.get_weights().unwrap().iter().zip(&after) {
        let worst = p.data.iter().zip(&q.data).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-4, "{name}: differs by {worst}");
    }
    for (a, b) in resumed.history["loss"].iter().zip(&h.history["loss"][1..]) {
        assert!((a - b).abs() <= 1e-4 * b.abs(), "loss {a} vs {b}");
    }
}

#[test]
fn an_interrupt_in_the_last_batch_ends_the_epoch_and_stops_between_epochs() {
    let (x, y) = digits();
    let of = x.rows().div_ceil(BATCH);
    let mut m = model(Device::Cpu);
    let mut opts = options(3, 0, Vec::new());
    let flag = opts.interrupt.clone().unwrap();
    opts.callbacks = vec![Arc::new(Mutex::new(RaiseAt { epoch: 0, batch: of - 1, now: 0, flag }))];
    let err = m.fit(&x, &y, &opts).unwrap_err();
    assert!(
        matches!(err, Error::Interrupted { epoch: 1, batches, of: o, saved: None } if batches == of && o == of)
    );
    assert_eq!(err.to_string(), "interrupted after epoch 1; nothing was saved");
    assert_eq!((m.epochs_trained(), m.partial_epoch()), (1, None));
}

/// The first line of `kiln`'s stdout that starts with `prefix` (None at the end).
fn wait_for_line(out: &mut impl BufRead, prefix: &str) -> Option<String> {
    out.lines().map_while(Result::ok).find(|l| l.starts_with(prefix))
}

/// The real signal: SIGINT to `kiln train` mid-run exits 130 naming the checkpoint and the
/// resume command; `--resume` then ends where an uninterrupted run ends.
#[test]
fn sigint_saves_the_state_and_resume_finishes_the_run_bit_identically() {
    let dir = TempDir::new("interrupt-cli");
    let (cut, whole) = (dir.join("cut"), dir.join("whole"));
    let args = |out: &std::path::Path| {
        let mut a: Vec<String> =
            ["train", "--data", "digits", "--model", "mlp", "--epochs", "100", "--batch-size", "1"]
                .map(String::from)
                .to_vec();
        a.extend(["--device", "cpu", "--verbose", "2", "--out"].map(String::from));
        a.push(out.display().to_string());
        a
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args(&cut))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    assert!(wait_for_line(&mut stdout, "Epoch 1/100").is_some(), "no first epoch");
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let rest: Vec<String> = stdout.lines().map_while(Result::ok).collect();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}\n{}", rest.join("\n"));
    assert!(err.contains("interrupted") && err.contains("last.safetensors"), "{err}");
    assert!(err.contains(&format!("continue with: kiln train --resume {}", cut.display())), "{err}");
    assert!(!rest.iter().any(|l| l.starts_with("test loss")), "an interrupted run reports no test score");
    let resumed = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["train", "--resume", &cut.display().to_string(), "--verbose", "0"])
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("resuming"));
    let straight = Command::new(env!("CARGO_BIN_EXE_kiln")).args(args(&whole)).output().unwrap();
    assert!(straight.status.success());
    let load = |d: &std::path::Path| Checkpoint::load(d.join(run_dir::MODEL)).unwrap();
    let (a, b) = (load(&cut), load(&whole));
    same_bits(&a.weights, &b.weights);
    let history =
        |c: &Checkpoint| run_dir::history_from_json(&serde_json::from_str(&c.extra["history"]).unwrap());
    assert_eq!(history(&a).history, history(&b).history);
}
