//! Real training with every new optimizer, schedule and clipping through the CLI's train path
//! (digits MLP, stratified 80/20 split), and the CLI's optimizer flags and their errors.
use kiln::cli::{TrainArgs, train};

use crate::common;

fn run(args: TrainArgs) -> kiln::cli::TrainReport {
    let what = format!("{} {:?} {}", args.optimizer, args.lr, args.lr_schedule);
    let args = TrainArgs { data: Some("digits".into()), json: true, ..args };
    train(&args).unwrap_or_else(|e| panic!("train {what}: {e}"))
}

fn with(optimizer: &str) -> TrainArgs {
    TrainArgs { optimizer: optimizer.into(), device: "cpu".into(), epochs: 20, ..TrainArgs::default() }
}

#[test]
fn digits_mlp_trains_to_090_with_every_new_optimizer_on_cpu() {
    let cases = [
        with("adamw"),
        TrainArgs { amsgrad: true, ..with("adam") },
        // Keras's default Adagrad rate (0.001) is too slow for 20 epochs.
        TrainArgs { lr: Some(0.05), ..with("adagrad") },
        with("rmsprop"),
        TrainArgs { momentum: 0.9, centered: true, lr: Some(1e-4), ..with("rmsprop") },
        TrainArgs {
            global_clipnorm: Some(1.0),
            lr_schedule: "cosine:2".into(),
            lr: Some(3e-3),
            ..with("adamw")
        },
        TrainArgs { clipvalue: Some(0.1), lr_schedule: "step:5:0.5".into(), ..with("adam") },
        TrainArgs {
            clipnorm: Some(0.5),
            lr_schedule: "exponential:0.9".into(),
            lr: Some(0.1),
            momentum: 0.9,
            ..with("sgd")
        },
    ];
    for args in cases {
        let what = format!("{args:?}");
        let r = run(args);
        assert!(r.test_accuracy >= 0.9, "test accuracy {} with {what}", r.test_accuracy);
    }
}

#[test]
fn digits_mlp_trains_to_090_with_new_optimizers_on_gpu() {
    if common::gpu().is_none() {
        return;
    }
    for args in [
        TrainArgs {
            global_clipnorm: Some(1.0),
            lr_schedule: "cosine:2".into(),
            lr: Some(3e-3),
            ..with("adamw")
        },
        TrainArgs { lr: Some(0.05), ..with("adagrad") },
        with("rmsprop"),
    ] {
        let what = format!("{args:?}");
        let r = run(TrainArgs { device: "gpu".into(), ..args });
        assert_eq!(r.device, "gpu");
        assert!(r.test_accuracy >= 0.9, "test accuracy {} on {} with {what}", r.test_accuracy, r.adapter);
    }
}

#[test]
fn optimizer_flags_that_do_not_apply_or_conflict_are_errors() {
    let err = |args: TrainArgs| match train(&TrainArgs { json: true, epochs: 1, ..args }) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    };
    let e = err(TrainArgs { amsgrad: true, ..with("sgd") });
    assert!(e.contains("--amsgrad") && e.contains("sgd"), "{e}");
    let e = err(TrainArgs { weight_decay: Some(0.1), ..with("adam") });
    assert!(e.contains("--weight-decay") && e.contains("adamw"), "{e}");
    let e = err(TrainArgs { clipnorm: Some(1.0), clipvalue: Some(1.0), ..with("adam") });
    assert!(e.contains("only one"), "{e}");
    let e = err(TrainArgs { clipvalue: Some(-1.0), ..with("adam") });
    assert!(e.contains("clipvalue"), "{e}");
    let e = err(TrainArgs { lr_schedule: "linear".into(), ..with("adam") });
    assert!(e.contains("--lr-schedule") && e.contains("cosine"), "{e}");
    let e = err(TrainArgs { lr_schedule: "cosine:5".into(), epochs: 3, ..with("adam") });
    assert!(e.contains("warm-up"), "{e}");
    let e = err(TrainArgs { optimizer: "lbfgs".into(), ..TrainArgs::default() });
    assert!(e.contains("rmsprop") && e.contains("adagrad"), "{e}");
}

#[test]
fn the_cli_parses_the_optimizer_flags() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        train: TrainArgs,
    }
    let cli = Cli::try_parse_from([
        "kiln",
        "--optimizer",
        "adamw",
        "--weight-decay",
        "0.01",
        "--amsgrad",
        "--global-clipnorm",
        "1.5",
        "--lr-schedule",
        "cosine:1",
    ])
    .unwrap();
    let t = cli.train;
    assert_eq!((t.optimizer.as_str(), t.weight_decay, t.amsgrad), ("adamw", Some(0.01), true));
    assert_eq!((t.global_clipnorm, t.lr_schedule.as_str()), (Some(1.5), "cosine:1"));
}
