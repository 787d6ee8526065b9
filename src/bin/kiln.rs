//! The `kiln` command line: devices, train, summary, eval, predict, bench.
use std::process::ExitCode;
use std::time::Instant;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use kiln::backend::gpu;
use kiln::bench::{self, BenchArgs};
use kiln::cli::{self, EvalArgs, PredictArgs, SummaryArgs, TrainArgs};

#[derive(Parser)]
#[command(name = "kiln", version, about = "Train neural networks on any GPU (wgpu) or the CPU")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// List every GPU adapter and the CPU.
    Devices,
    /// Train a model on a data set and report test loss and accuracy.
    Train(Box<TrainArgs>),
    /// Print a model's Keras-style summary (a preset, a model file, or a checkpoint).
    Summary(SummaryArgs),
    /// Loss, accuracy and confusion matrix of a checkpoint on a data set.
    Eval(EvalArgs),
    /// The top classes of image files or CSV rows, from a checkpoint.
    Predict(PredictArgs),
    /// Text sampled from a character-level language model's checkpoint.
    Generate(cli::GenerateArgs),
    /// Time matmul, conv2d and training on every device, each kernel checked against the CPU.
    Bench(BenchArgs),
}

fn main() -> ExitCode {
    quiet_driver_warnings();
    output_errors_end_quietly();
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Whether --epochs was typed: a resumed run then trains on to it (see TrainArgs::resume).
    let epochs_given = matches
        .subcommand_matches("train")
        .is_some_and(|m| m.value_source("epochs") == Some(ValueSource::CommandLine));
    // No subcommand: the help (as cargo and git do), not a 30-epoch run nobody asked for.
    let Some(command) = cli.command else {
        let _ = Cli::command().print_help();
        return ExitCode::from(2);
    };
    let result = match command {
        Command::Devices => {
            print!("{}", cli::devices_report(&gpu::adapters()));
            Ok(())
        }
        Command::Train(mut args) => {
            args.epochs_given = epochs_given;
            if let Some(m) = matches.subcommand_matches("train") {
                args.given = m
                    .ids()
                    .filter(|id| m.value_source(id.as_str()) == Some(ValueSource::CommandLine))
                    .map(|id| id.as_str().to_string())
                    .collect();
            }
            let t0 = Instant::now();
            cli::train(&args).map(|_| {
                if !args.json {
                    println!("total time: {:.1}s", t0.elapsed().as_secs_f64());
                }
            })
        }
        Command::Summary(args) => match &args.checkpoint {
            Some(path) => cli::summary_of_checkpoint(path).map(|s| print!("{s}")),
            None => cli::summary(&args.train_args()),
        },
        Command::Eval(args) => cli::eval(&args).map(|_| ()),
        Command::Predict(args) => cli::predict(&args).map(|_| ()),
        Command::Generate(args) => cli::generate(&args).map(|_| ()),
        Command::Bench(args) => run_bench(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // 128 + SIGINT, as shells report an interrupted command.
        Err(e @ kiln::Error::Interrupted { .. }) => {
            eprintln!("{e}");
            if let kiln::Error::Interrupted { saved: Some(path), .. } = &e {
                let dir = path.parent().unwrap_or(path);
                eprintln!("continue with: kiln train --resume {}", dir.display());
            } else {
                eprintln!(
                    "(with --out DIR a run saves its state when interrupted, and --resume DIR continues it)"
                );
            }
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `kiln bench`: the table (or JSON) on stdout; fails when a device or a check failed.
fn run_bench(args: &BenchArgs) -> kiln::Result<()> {
    let report = bench::run(args)?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.table());
    }
    let failures = report.failures();
    if failures.is_empty() {
        Ok(())
    } else {
        let message = format!("{} of them failed: {}", failures.len(), failures.join("; "));
        Err(kiln::Error::invalid("bench results", message))
    }
}

/// Mesa's EGL/Vulkan drivers print "error: XDG_RUNTIME_DIR is invalid or not set" while wgpu
/// probes adapters when the variable is missing (headless machines, CI). Point it at a private
/// temporary directory so kiln's own `error:` lines are the only ones.
fn quiet_driver_warnings() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return;
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
    let dir = std::env::temp_dir().join(format!("kiln-runtime-{user}"));
    if std::fs::create_dir_all(&dir).is_ok() {
        // SAFETY: called first thing in main, before any other thread exists.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
}

/// Output that cannot be written ends the program as Unix tools end: a closed pipe
/// (`kiln train | head -1`) by the default SIGPIPE action, silently; any other write error
/// (`> /dev/full`) with one `error:` line and exit status 1, not a panic's backtrace (Rust's
/// `println!` panics on write errors, and Rust ignores SIGPIPE by default).
fn output_errors_end_quietly() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any other thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if let Some(reason) = message.strip_prefix("failed printing to stdout: ") {
            eprintln!("error: cannot write to standard output: {reason}");
            std::process::exit(1);
        }
        default(info);
    }));
}
