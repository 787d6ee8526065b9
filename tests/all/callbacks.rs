//! Callbacks behave as Keras's: EarlyStopping restores the best epoch's weights on a run that
//! overfits, ReduceLROnPlateau lowers the learning rate, CSVLogger writes a row per epoch,
//! TerminateOnNaN stops instead of failing, LearningRateScheduler sets the rate per epoch.
use std::sync::{Arc, Mutex};

use kiln::callbacks::{
    Callback, CsvLogger, EarlyStopping, LearningRateScheduler, Logs, Mode, ModelCheckpoint, Monitor,
    ReduceLROnPlateau, SharedCallback, TerminateOnNaN, shared,
};
use kiln::{
    Activation, Checkpoint, CompileOptions, Dense, Device, Error, FitOptions, Loss, Model, Optimizer,
    Sequential, Tensor, Validation,
};

use crate::common::{TempDir, digits};

fn rows(t: &Tensor, range: std::ops::Range<usize>) -> Tensor {
    let w = t.row_len();
    let mut shape = t.shape.clone();
    shape[0] = range.len();
    Tensor::new(&shape, t.data[range.start * w..range.end * w].to_vec()).unwrap()
}

fn mlp(hidden: usize, optimizer: Optimizer) -> Sequential {
    let mut m = Sequential::new(&[64])
        .with_seed(5)
        .add(Dense::new(hidden, Activation::Relu))
        .add(Dense::new(hidden, Activation::Relu))
        .add(Dense::new(10, Activation::Softmax));
    m.compile(CompileOptions::new(optimizer, Loss::SparseCategoricalCrossentropy, Device::Cpu)).unwrap();
    m
}

/// Records the weights at the end of every epoch.
#[derive(Default)]
struct WeightRecorder(Vec<Vec<(String, Tensor)>>);

impl Callback for WeightRecorder {
    fn on_epoch_end(&mut self, _epoch: usize, _logs: &Logs, model: &mut Model) -> kiln::Result<()> {
        self.0.push(model.get_weights()?);
        Ok(())
    }
}

#[test]
fn early_stopping_restores_the_best_epochs_weights_on_a_run_that_overfits() {
    // 40 training samples, a 256-256 network: the validation loss bottoms out, then rises.
    let (x, y) = digits();
    let (xt, yt, xv, yv) = (rows(&x, 0..40), rows(&y, 0..40), rows(&x, 1000..1400), rows(&y, 1000..1400));
    let mut m = mlp(256, Optimizer::adam(3e-3));
    let recorder = shared(WeightRecorder::default());
    let early = shared(EarlyStopping::new("val_loss").patience(4).restore_best_weights(true));
    let opts = FitOptions {
        epochs: 200,
        batch_size: 8,
        verbose: 0,
        validation: Validation::Data(xv.clone(), yv.clone()),
        callbacks: vec![recorder.clone(), early.clone()],
        ..FitOptions::default()
    };
    let h = m.fit(&xt, &yt, &opts).unwrap();
    let es = early.lock().unwrap();
    let (best, stopped) = (es.best_epoch.unwrap(), es.stopped_epoch.expect("stopped early"));
    let val = &h.history["val_loss"];
    assert_eq!(val.len(), stopped + 1, "stopped after epoch {stopped}");
    assert_eq!(stopped, best + 4, "patience 4 after the best epoch");
    assert!(
        val[stopped] > val[best] && h.history["loss"][stopped] < h.history["loss"][best],
        "it overfits: {val:?}"
    );
    let min = val.iter().copied().fold(f32::INFINITY, f32::min);
    assert_eq!(val[best], min, "the best epoch has the lowest val_loss");
    // The model now holds exactly the best epoch's weights, and evaluates to its val_loss.
    assert_eq!(m.get_weights().unwrap(), recorder.lock().unwrap().0[best]);
    assert_ne!(m.get_weights().unwrap(), *recorder.lock().unwrap().0.last().unwrap());
    let (loss, _) = m.evaluate(&xv, &yv, 32).unwrap();
    assert!((loss - val[best]).abs() < 1e-5, "{loss} vs {}", val[best]);
}

#[test]
fn reduce_lr_on_plateau_lowers_the_rate_after_patience_and_respects_min_lr() {
    let (x, y) = digits();
    let (x, y) = (rows(&x, 0..200), rows(&y, 0..200));
    let mut m = mlp(16, Optimizer::sgd(0.1));
    // min_delta 100: no epoch after the first counts as an improvement.
    let reduce = shared(ReduceLROnPlateau::new("loss").patience(2).min_delta(100.0).min_lr(2e-3));
    let opts = FitOptions { epochs: 9, verbose: 0, callbacks: vec![reduce.clone()], ..FitOptions::default() };
    m.fit(&x, &y, &opts).unwrap();
    let r = reduce.lock().unwrap();
    let epochs: Vec<usize> = r.reductions.iter().map(|(e, _)| *e).collect();
    // 0.1 -> 0.01 after epochs 1 and 2 without improvement, -> max(0.001, min_lr) two epochs
    // later; then the rate is at min_lr and stays there.
    assert_eq!(epochs, [2, 4]);
    let rates: Vec<f32> = r.reductions.iter().map(|(_, lr)| *lr).collect();
    assert!((rates[0] - 0.01).abs() < 1e-8 && rates[1] == 2e-3, "{rates:?}");
    assert_eq!(m.learning_rate().unwrap(), 2e-3, "clamped at min_lr");
}

#[test]
fn a_monitor_resolves_auto_mode_from_the_key_and_needs_more_than_min_delta() {
    for key in [
        "accuracy",
        "val_accuracy",
        "val_auc",
        "precision",
        "val_recall",
        "f1_score",
        "top_k_categorical_accuracy",
    ] {
        assert!(Monitor::new(key).maximizes(), "{key}: higher is better");
    }
    for key in ["loss", "val_loss", "mae", "val_mse"] {
        assert!(!Monitor::new(key).maximizes(), "{key}: lower is better");
    }
    assert!(!Monitor::new("accuracy").with_mode(Mode::Min).maximizes());
    assert!(Monitor::new("loss").with_mode(Mode::Max).maximizes());
    let mut loss = Monitor::new("val_loss").with_min_delta(-0.1);
    assert_eq!(loss.min_delta, 0.1, "the magnitude counts, as Keras");
    // Before any value: the first finite one improves, NaN and infinities do not.
    assert!(!loss.improved(f32::NAN) && !loss.improved(f32::INFINITY) && loss.improved(5.0));
    loss.best = Some(1.0);
    assert!(loss.improved(0.85) && !loss.improved(0.95) && !loss.improved(1.2) && !loss.improved(f32::NAN));
    let mut acc = Monitor::new("val_accuracy").with_min_delta(0.01);
    acc.best = Some(0.5);
    assert!(acc.improved(0.52) && !acc.improved(0.505) && !acc.improved(0.4));
    assert!(acc.better(0.52, 0.5) && !acc.better(0.5, 0.52));
}

/// Runs `callback`'s epoch hooks on `values` of `key` (no training), from a fresh start.
fn feed(callback: &mut dyn Callback, key: &str, values: &[f32]) -> Sequential {
    let mut m = mlp(4, Optimizer::sgd(0.1));
    callback.on_train_begin(&mut m).unwrap();
    for (epoch, &v) in values.iter().enumerate() {
        callback.on_epoch_end(epoch, &Logs::from([(key.to_string(), v)]), &mut m).unwrap();
    }
    m
}

#[test]
fn early_stopping_and_reduce_lr_on_an_accuracy_wait_for_an_increase_beyond_min_delta() {
    // Auto mode on val_accuracy: higher is better; +0.03 is within min_delta 0.05.
    let mut early = EarlyStopping::new("val_accuracy").patience(1).min_delta(0.05);
    feed(&mut early, "val_accuracy", &[0.5, 0.53]);
    assert_eq!((early.best(), early.best_epoch, early.stopped_epoch), (Some(0.5), Some(0), Some(1)));
    let mut early = EarlyStopping::new("val_accuracy").patience(1).min_delta(0.05);
    feed(&mut early, "val_accuracy", &[0.5, 0.6, 0.4]);
    assert_eq!((early.best(), early.best_epoch, early.stopped_epoch), (Some(0.6), Some(1), Some(2)));
    // Mode min on an accuracy: a fall is the improvement.
    let mut early = EarlyStopping::new("val_accuracy").patience(1).mode(Mode::Min);
    feed(&mut early, "val_accuracy", &[0.5, 0.4, 0.3]);
    assert_eq!((early.best(), early.stopped_epoch), (Some(0.3), None));
    // ReduceLROnPlateau on accuracy: rising values never reduce, a flat run does after patience.
    let mut reduce = ReduceLROnPlateau::new("accuracy").patience(2);
    let m = feed(&mut reduce, "accuracy", &[0.5, 0.6, 0.7, 0.8]);
    assert!(reduce.reductions.is_empty() && reduce.best() == Some(0.8));
    assert_eq!(m.learning_rate().unwrap(), 0.1);
    let mut reduce = ReduceLROnPlateau::new("accuracy").patience(2);
    let m = feed(&mut reduce, "accuracy", &[0.5, 0.50001, 0.5]);
    assert_eq!(reduce.reductions.len(), 1, "+1e-5 is within the default min_delta 1e-4");
    assert!((m.learning_rate().unwrap() - 0.01).abs() < 1e-8);
}

#[test]
fn the_learning_rate_a_callback_sets_is_the_one_training_uses() {
    let (x, y) = digits();
    let (x, y) = (rows(&x, 0..100), rows(&y, 0..100));
    let mut m = mlp(16, Optimizer::sgd(0.5));
    let before = m.get_weights().unwrap();
    let zero = shared(LearningRateScheduler::new(|_, _| 0.0));
    let opts = FitOptions { epochs: 2, verbose: 0, callbacks: vec![zero], ..FitOptions::default() };
    m.fit(&x, &y, &opts).unwrap();
    assert_eq!(m.get_weights().unwrap(), before, "plain SGD with lr 0 changes nothing");
    let halve = shared(LearningRateScheduler::new(|epoch, lr| if epoch == 0 { 0.4 } else { lr / 2.0 }));
    let opts = FitOptions { epochs: 3, verbose: 0, callbacks: vec![halve.clone()], ..FitOptions::default() };
    m.fit(&x, &y, &opts).unwrap();
    assert_eq!(halve.lock().unwrap().rates, [0.4, 0.2, 0.1]);
    assert_ne!(m.get_weights().unwrap(), before);
}

#[test]
fn csv_logger_writes_a_header_and_one_row_per_epoch_and_appends() {
    let dir = TempDir::new("csv-logger");
    let path = dir.join("log.csv");
    let (x, y) = digits();
    let (x, y) = (rows(&x, 0..300), rows(&y, 0..300));
    let mut m = mlp(16, Optimizer::adam(1e-3));
    let fit = |m: &mut Model, logger: CsvLogger, epochs: usize, initial_epoch: usize| {
        let opts = FitOptions {
            epochs,
            initial_epoch,
            verbose: 0,
            validation: Validation::Split(0.2),
            callbacks: vec![shared(logger) as SharedCallback],
            ..FitOptions::default()
        };
        m.fit(&x, &y, &opts).unwrap()
    };
    let h = fit(&mut m, CsvLogger::new(&path), 3, 0);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "epoch,accuracy,loss,val_accuracy,val_loss");
    assert_eq!(lines.len(), 4);
    for (epoch, line) in lines[1..].iter().enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields[0], epoch.to_string());
        assert_eq!(fields[2].parse::<f32>().unwrap(), h.history["loss"][epoch]);
        assert_eq!(fields[4].parse::<f32>().unwrap(), h.history["val_loss"][epoch]);
    }
    // Continuing with append: the header stays, epochs go on from initial_epoch.
    fit(&mut m, CsvLogger::new(&path).append(true), 5, 3);
    let text = std::fs::read_to_string(&path).unwrap();
    let epochs: Vec<&str> = text.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(epochs, ["0", "1", "2", "3", "4"]);
    assert_eq!(text.matches("epoch,").count(), 1);
}

/// A regression whose targets in the second batch (rows 32..64) are 1e20: the squared error
/// overflows to infinity at step 2 of the first epoch.
fn overflowing() -> (Sequential, Tensor, Tensor) {
    let (x, _) = digits();
    let x = rows(&x, 0..100);
    let y = (0..100).map(|i| if (32..64).contains(&i) { 1e20 } else { 0.0 }).collect();
    let mut m = Sequential::new(&[64]).add(Dense::new(1, Activation::Linear));
    let mut opts = CompileOptions::new(Optimizer::sgd(0.01), Loss::MeanSquaredError, Device::Cpu);
    opts.metrics.clear();
    m.compile(opts).unwrap();
    (m, x, Tensor::new(&[100, 1], y).unwrap())
}

#[test]
fn terminate_on_nan_stops_training_and_without_it_fit_fails_naming_the_step() {
    let dir = TempDir::new("nan");
    let (mut m, x, y) = overflowing();
    let opts = FitOptions { epochs: 3, verbose: 0, shuffle: false, ..FitOptions::default() };
    match m.fit(&x, &y, &opts) {
        Err(Error::NonFiniteLoss { epoch: 1, step: 2, .. }) => {}
        other => panic!("expected a non-finite loss at epoch 1, step 2: {other:?}"),
    }
    let terminate = shared(TerminateOnNaN::new());
    let checkpoint = shared(ModelCheckpoint::new(dir.join("m.safetensors")));
    let opts = FitOptions {
        callbacks: vec![checkpoint.clone(), terminate.clone() as Arc<Mutex<dyn Callback>>],
        ..opts
    };
    let (mut m, x, y) = overflowing();
    let h = m.fit(&x, &y, &opts).unwrap();
    assert_eq!(terminate.lock().unwrap().stopped_at, Some((0, 2)));
    assert_eq!(h.history["loss"].len(), 1);
    assert!(!h.history["loss"][0].is_finite());
    assert!(checkpoint.lock().unwrap().saved.is_empty(), "no checkpoint of the broken weights");
    assert!(!dir.join("m.safetensors").exists());
}

#[test]
fn model_checkpoint_with_save_best_only_saves_the_improving_epochs() {
    let dir = TempDir::new("model-checkpoint");
    let (x, y) = digits();
    let (xt, yt, xv, yv) = (rows(&x, 0..40), rows(&y, 0..40), rows(&x, 1000..1300), rows(&y, 1000..1300));
    let mut m = mlp(128, Optimizer::adam(3e-3));
    let best = shared(ModelCheckpoint::new(dir.join("best.safetensors")).save_best_only(true));
    let every = shared(ModelCheckpoint::new(dir.join("epoch-{epoch}.safetensors")));
    let opts = FitOptions {
        epochs: 25,
        batch_size: 8,
        verbose: 0,
        validation: Validation::Data(xv.clone(), yv.clone()),
        callbacks: vec![best.clone(), every.clone()],
        ..FitOptions::default()
    };
    let h = m.fit(&xt, &yt, &opts).unwrap();
    let val = &h.history["val_loss"];
    let mut running = f32::INFINITY;
    let improving: Vec<usize> = (0..val.len())
        .filter(|&e| {
            let better = val[e] < running;
            running = running.min(val[e]);
            better
        })
        .collect();
    assert_eq!(best.lock().unwrap().saved, improving);
    assert!(improving.len() < val.len(), "some epochs did not improve: {val:?}");
    assert_eq!(every.lock().unwrap().saved.len(), 25);
    assert!(dir.join("epoch-1.safetensors").exists() && dir.join("epoch-25.safetensors").exists());
    // The best file holds the best epoch: evaluating it gives the lowest val_loss.
    let last_best = *improving.last().unwrap();
    let mut restored =
        Checkpoint::load(dir.join("best.safetensors")).unwrap().into_model(Device::Cpu).unwrap();
    assert_eq!(restored.epochs_trained(), last_best + 1);
    let (loss, _) = restored.evaluate(&xv, &yv, 64).unwrap();
    assert!((loss - val[last_best]).abs() < 1e-5);
}

/// Records the batch hooks; with `stop_at`, stops training at that batch of epoch 0.
struct BatchRecorder {
    logs: bool,
    stop_at: Option<usize>,
    begun: Vec<usize>,
    ended: Vec<(usize, Option<f32>)>,
}

impl Callback for BatchRecorder {
    fn wants_batch_logs(&self) -> bool {
        self.logs
    }
    fn on_train_batch_begin(&mut self, batch: usize, _model: &mut Model) -> kiln::Result<()> {
        self.begun.push(batch);
        Ok(())
    }
    fn on_train_batch_end(&mut self, batch: usize, logs: &Logs, model: &mut Model) -> kiln::Result<()> {
        self.ended.push((batch, logs.get("loss").copied()));
        if self.stop_at == Some(batch) {
            model.stop_training();
        }
        Ok(())
    }
}

/// Batch hooks run around every training batch (numbered from 0 in each epoch, the last
/// partial batch too, not for validation); running logs only when asked for, ending at the
/// epoch's loss; a stop from a batch hook ends the epoch after that batch — on both backends.
#[test]
fn batch_hooks_run_per_training_batch_and_can_stop_mid_epoch() {
    let (x, y) = digits();
    let (x, y) = (rows(&x, 0..100), rows(&y, 0..100));
    for device in crate::common::devices() {
        let fit = |logs: bool, stop_at: Option<usize>, epochs: usize| {
            let mut m = Sequential::new(&[64]).with_seed(5).add(Dense::new(10, Activation::Softmax));
            m.compile(CompileOptions::new(
                Optimizer::adam(1e-3),
                Loss::SparseCategoricalCrossentropy,
                device,
            ))
            .unwrap();
            let rec = shared(BatchRecorder { logs, stop_at, begun: vec![], ended: vec![] });
            let opts = FitOptions {
                batch_size: 32,
                epochs,
                verbose: 0,
                validation: Validation::Split(0.2),
                callbacks: vec![rec.clone() as SharedCallback],
                ..FitOptions::default()
            };
            let h = m.fit(&x, &y, &opts).unwrap();
            let mut rec = rec.lock().unwrap();
            (h, (std::mem::take(&mut rec.begun), std::mem::take(&mut rec.ended)))
        };
        // 80 training rows: batches of 32, 32, 16 per epoch.
        let (h, (begun, ended)) = fit(false, None, 2);
        assert_eq!(begun, [0, 1, 2, 0, 1, 2], "{device:?}");
        assert_eq!(ended.iter().map(|(b, _)| *b).collect::<Vec<_>>(), begun);
        assert!(ended.iter().all(|(_, loss)| loss.is_none()), "no logs unless asked for");
        let (h2, (_, ended)) = fit(true, None, 2);
        assert_eq!(h.history, h2.history, "reading the running logs changes nothing");
        let running: Vec<f32> = ended.iter().map(|(_, l)| l.unwrap()).collect();
        assert_eq!(running[2], h2.history["loss"][0], "the running loss ends at the epoch's");
        assert_eq!(running[5], h2.history["loss"][1]);
        let (h, (begun, _)) = fit(false, Some(1), 3);
        assert_eq!(begun, [0, 1], "stopped after batch 1");
        assert_eq!(h.history["loss"].len(), 1, "one (short) epoch");
        assert_eq!(h.history["val_loss"].len(), 1, "validation still ran");
    }
}

/// Trains the digits MLP for 2 epochs with `KILN_FIT_VERBOSE` (a child of the test below);
/// with `KILN_FIT_OWN_LOGGER`, at verbose 0 with a `ProgbarLogger` of its own.
#[test]
fn fit_output_child() {
    let Ok(verbose) = std::env::var("KILN_FIT_VERBOSE") else { return };
    let verbose: u8 = verbose.parse().unwrap();
    let (x, y) = digits();
    let mut m = mlp(16, Optimizer::adam(0.01));
    let mut opts = FitOptions { batch_size: 64, epochs: 2, verbose, ..Default::default() };
    if std::env::var("KILN_FIT_OWN_LOGGER").is_ok() {
        let steps = x.rows().div_ceil(64);
        opts.callbacks.push(kiln::callbacks::shared(kiln::callbacks::ProgbarLogger::new(2, 2, steps)));
    }
    m.fit(&x, &y, &opts).unwrap();
}

/// fit's output is the ProgbarLogger callback: nothing at verbose 0, Keras's lines at 1 and 2
/// (stdout is not a terminal here, so no bar), and a user's own logger at verbose 0.
#[test]
fn fit_prints_through_a_default_progbar_logger_and_nothing_at_verbose_0() {
    let run = |verbose: &str, own: bool| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "callbacks::fit_output_child", "--nocapture", "--test-threads", "1"])
            .env("KILN_FIT_VERBOSE", verbose);
        if own {
            cmd.env("KILN_FIT_OWN_LOGGER", "1");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        // Only fit's lines (the first may follow the harness's "test … ... " on its line).
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| match l.find("Epoch ") {
                Some(i) => Some(l[i..].to_string()),
                None => l.contains("/step").then(|| l.to_string()),
            })
            .collect::<Vec<_>>()
    };
    assert!(run("0", false).is_empty(), "{:?}", run("0", false));
    let one = run("1", false);
    assert_eq!(one.len(), 4, "{one:?}");
    assert_eq!(one[0], "Epoch 1/2");
    assert!(
        one[1].starts_with("29/29 ━")
            && one[1].contains("/step - accuracy: ")
            && one[1].contains(" - loss: "),
        "{one:?}"
    );
    let two = run("2", false);
    assert_eq!(two.len(), 2, "{two:?}");
    assert!(two[0].starts_with("Epoch 1/2: ") && two[1].starts_with("Epoch 2/2: "), "{two:?}");
    let own = run("0", true);
    assert_eq!(own.len(), 2, "{own:?}");
    assert!(own[1].starts_with("Epoch 2/2: "));
}
