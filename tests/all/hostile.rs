//! Inputs a new user gets wrong (issue: hostile input): each gets an error that says what is
//! wrong and where, never a panic, an abort or a silent wrong answer. Some run the binary.
use std::process::Command;

use kiln::LearningRateSchedule;
use kiln::cli::{PredictArgs, TrainArgs, predict, train};

use crate::common::TempDir;

/// `kiln ARGS…`: (exit code, stdout, stderr).
fn kiln(args: &[&str]) -> (i32, String, String) {
    kiln_with(args, None)
}

/// `kiln ARGS…` with one environment variable set: (exit code, stdout, stderr).
fn kiln_with(args: &[&str], env: Option<(&str, &str)>) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kiln"));
    command.args(args);
    if let Some((key, value)) = env {
        command.env(key, value);
    }
    let out = command.output().expect("run kiln");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// Negative numbers after a space reach the range checks (clap's `allow_negative_numbers`)
/// instead of "unexpected argument '-0'".
#[test]
fn negative_numbers_are_values_that_the_checks_name() {
    let (code, _, err) = kiln(&["train", "--batch-size", "-5"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid value '-5' for '--batch-size"), "{err}");
    let (_, _, err) = kiln(&["train", "--epochs", "-1"]);
    assert!(err.contains("'--epochs"), "{err}");
    let (code, _, err) = kiln(&["train", "--lr", "-0.01", "--epochs", "1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("learning_rate must be at least 0, got -0.01"), "{err}");
    let (_, _, err) = kiln(&["train", "--validation-split", "-0.1", "--epochs", "1"]);
    assert!(err.contains("--validation-split") && err.contains("-0.1"), "{err}");
}

/// `kiln` alone prints the help (and runs nothing).
#[test]
fn no_subcommand_prints_the_help() {
    let (code, out, _) = kiln(&[]);
    assert_eq!(code, 2);
    assert!(out.contains("Usage: kiln") && out.contains("train"), "{out}");
    assert!(!out.contains("epoch"), "nothing trains: {out}");
}

/// Learning-rate schedules that would train nothing, or are not numbers, are named.
#[test]
fn learning_rate_schedules_name_the_bad_field() {
    let err = |spec: &str| LearningRateSchedule::from_epochs_spec(spec, 0.01, 10, 5).unwrap_err().to_string();
    assert!(err("exponential:-1").contains("the rate must be above 0, got -1"), "{}", err("exponential:-1"));
    assert!(err("step:0:0.5").contains("interval (epochs) must be above 0"), "{}", err("step:0:0.5"));
    assert!(err("step:2:0").contains("the factor must be above 0"), "{}", err("step:2:0"));
    assert!(err("exponential:x").contains("the rate 'x' is not a number"), "{}", err("exponential:x"));
    assert!(err("cosine:-2").contains("at least 0"), "{}", err("cosine:-2"));
    assert!(LearningRateSchedule::from_epochs_spec("step:2:0.5", 0.01, 10, 5).is_ok());
}

/// A CSV label of 10⁹ would build 10⁹ output units: an error naming the row, not an abort.
#[test]
fn a_huge_class_label_is_an_error_naming_its_row() {
    let dir = TempDir::new("hostile-classes");
    let file = dir.join("big.csv");
    std::fs::write(&file, "a,b,label\n1,2,0\n3,4,1000000000\n").unwrap();
    let e = kiln::data::csv::load_csv(&file, &Default::default()).unwrap_err().to_string();
    assert!(e.contains("data row 2") && e.contains("label 1000000000") && e.contains("65536"), "{e}");
}

/// An output layer with fewer units than the data has classes names the layer and the count
/// (not "label 5 outside 0..5", which blames the data).
#[test]
fn a_too_small_output_layer_names_itself_and_the_classes() {
    let dir = TempDir::new("hostile-output");
    let model = dir.join("small.toml");
    std::fs::write(&model, "[[layers]]\ntype = \"Dense\"\nunits = 5\nactivation = \"softmax\"\n").unwrap();
    let args = TrainArgs {
        data: Some("digits".into()),
        model: model.display().to_string(),
        epochs: 1,
        json: true,
        ..TrainArgs::default()
    };
    let e = train(&args).unwrap_err().to_string();
    assert!(e.contains("output layer 'dense'") && e.contains("5 units for the 10 classes"), "{e}");
}

/// `kiln train` arguments for a quiet 1-epoch iris run into the run directory `out`.
fn iris_run(out: &std::path::Path) -> TrainArgs {
    TrainArgs {
        data: Some("iris".into()),
        epochs: 1,
        json: true,
        out: Some(out.to_path_buf()),
        ..TrainArgs::default()
    }
}

/// NaN or infinite features in `kiln predict` input are refused, naming the row.
#[test]
fn predict_refuses_non_finite_features() {
    let dir = TempDir::new("hostile-predict");
    let out = dir.join("run");
    let args = iris_run(&out);
    train(&args).unwrap();
    let rows = dir.join("rows.csv");
    std::fs::write(&rows, "6,3,4,1\n5.1,inf,1.4,0.2\n").unwrap();
    let p = PredictArgs {
        checkpoint: out.join("model.safetensors"),
        inputs: vec![rows.clone()],
        top: 1,
        device: "cpu".into(),
        json: true,
        horizon: 1,
    };
    let e = predict(&p).unwrap_err().to_string();
    assert!(e.contains(&format!("{}:2", rows.display())) && e.contains("feature 1 is inf"), "{e}");
}

/// Models and benchmarks too large for the machine are a typed out-of-memory error on the CPU
/// (as on the GPU), not an abort: Dense with 10⁹ units, a 100000³ matmul.
#[test]
fn cpu_sizes_past_the_machine_are_out_of_memory_errors() {
    let mut m = kiln::Sequential::new(&[64])
        .add(kiln::Dense::new(1_000_000_000, kiln::Activation::Relu))
        .add(kiln::Dense::new(10, kiln::Activation::Softmax));
    let opts = kiln::CompileOptions::new(
        kiln::Optimizer::adam(1e-3),
        kiln::Loss::SparseCategoricalCrossentropy,
        kiln::Device::Cpu,
    );
    let e = m.compile(opts).unwrap_err();
    assert!(matches!(e, kiln::Error::OutOfMemory { .. }), "{e}");
    assert!(e.to_string().contains("parameters, gradients and optimizer state"), "{e}");
    let (code, _, err) =
        kiln(&["bench", "--matmul", "100000x100000x100000", "--device", "cpu", "--only", "matmul"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("out of memory") && err.contains("100000x100000x100000"), "{err}");
}

/// A checkpoint whose model description says 10⁹ units: `kiln eval` reports out of memory
/// (the CPU plan checked against the machine) instead of aborting in an allocation.
#[test]
fn a_checkpoint_describing_a_huge_model_is_an_error_in_eval() {
    let dir = TempDir::new("hostile-huge-checkpoint");
    let run = dir.join("run");
    let (code, _, err) =
        kiln(&["train", "--data", "digits", "--epochs", "1", "--out", run.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let mut c = kiln::Checkpoint::load(run.join("model.safetensors")).unwrap();
    let text = c.model.to_string().replace("\"units\":64", "\"units\":1000000000");
    assert_ne!(text, c.model.to_string(), "the mlp preset has a Dense(64)");
    c.model = serde_json::from_str(&text).unwrap();
    let huge = dir.join("huge.safetensors");
    c.save(&huge).unwrap();
    let (code, _, err) = kiln(&["eval", "--checkpoint", huge.to_str().unwrap(), "--device", "cpu"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("out of memory"), "{err}");
}

/// Output that cannot be written: a closed pipe ends kiln quietly (SIGPIPE, as Unix tools),
/// a full disk is one `error:` line and exit status 1; never a panic.
#[cfg(unix)]
#[test]
fn unwritable_output_ends_without_a_panic() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["train", "--epochs", "200", "--device", "cpu"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    // The reader is dropped here: the pipe is closed after one line, as `| head -1` does.
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(first.starts_with("device:"), "{first}");
    // SIGPIPE is 13 on Linux and the BSDs.
    assert_eq!(out.status.signal(), Some(13), "{:?} {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
    if let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") {
        let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(["train", "--epochs", "1", "--device", "cpu"])
            .stdout(full)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("error: cannot write to standard output") && !err.contains("panicked"), "{err}");
    }
}

/// Data that would train something meaningless: a NaN in the first row is data (reported),
/// not a header dropped in silence; one class only is refused; resuming a run past the asked
/// epoch count says so.
#[test]
fn silent_wrong_results_are_errors() {
    let dir = TempDir::new("hostile-silent");
    let nan = dir.join("nan.csv");
    std::fs::write(&nan, "1.0,NaN,0\n2,3,1\n4,5,0\n6,7,1\n8,9,0\n").unwrap();
    let e = kiln::data::csv::load_csv(&nan, &Default::default()).unwrap_err().to_string();
    assert!(e.contains("line 1") && e.contains("NaN"), "{e}");
    let header = dir.join("header.csv");
    std::fs::write(&header, "a,b,label\n1,2,0\n3,4,1\n").unwrap();
    assert_eq!(kiln::data::csv::load_csv(&header, &Default::default()).unwrap().len(), 2, "a real header");
    let one = dir.join("one.csv");
    let rows: String = (0..20).map(|i| format!("{i},{},0\n", 2 * i)).collect();
    std::fs::write(&one, rows).unwrap();
    let args = |data: &std::path::Path| TrainArgs {
        data: Some(data.display().to_string()),
        epochs: 1,
        json: true,
        ..TrainArgs::default()
    };
    let e = train(&args(&one)).unwrap_err().to_string();
    assert!(e.contains("a classifier needs at least 2 classes"), "{e}");
    let out = dir.join("run");
    train(&TrainArgs { data: Some("iris".into()), epochs: 3, out: Some(out.clone()), ..args(&one) }).unwrap();
    let (code, _, err) = kiln(&["train", "--resume", out.to_str().unwrap(), "--epochs", "2"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("has trained 3 epochs already, past --epochs 2"), "{err}");
}

/// A zero stride, dilation or pool stride is named (not blamed on the kernel size), and a bad
/// KILN_NUM_THREADS is reported instead of ignored.
#[test]
fn zero_window_sizes_and_bad_thread_counts_are_named() {
    for (layer, what) in [
        (
            kiln::model::spec::parse_model(&serde_json::json!({"layers": [
            {"type": "Conv2D", "filters": 2, "kernel_size": 3, "strides": 0}]})),
            "strides (0, 0)",
        ),
        (
            kiln::model::spec::parse_model(&serde_json::json!({"layers": [
            {"type": "Conv2D", "filters": 2, "kernel_size": 3, "dilation_rate": [1, 0]}]})),
            "dilation_rate (1, 0)",
        ),
        (
            kiln::model::spec::parse_model(&serde_json::json!({"layers": [
            {"type": "MaxPooling2D", "pool_size": 2, "strides": 0}]})),
            "strides (0, 0)",
        ),
    ] {
        let e = layer.unwrap().into_model(&[8, 8, 1], 0).output_shapes().unwrap_err().to_string();
        assert!(e.contains(what) && e.contains("must be at least 1"), "{e}");
    }
    let args = ["train", "--epochs", "1", "--device", "cpu", "--json"];
    let (code, _, err) = kiln_with(&args, Some(("KILN_NUM_THREADS", "abc")));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("KILN_NUM_THREADS=\"abc\" is not a positive integer"), "{err}");
}

/// PNG bytes of a `side`×`side` grey image header with no pixel data: what a decompression
/// bomb's first bytes say.
fn huge_png_header(side: u32) -> Vec<u8> {
    let mut png = Vec::new();
    png.extend_from_slice(&[0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n']);
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        png.extend_from_slice(&crc.sum().to_be_bytes());
    };
    let mut ihdr = side.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IEND", &[]);
    png
}

/// Image folders: images in subfolders of a class belong to it (as Keras reads them), a class
/// with none is named, and a 20000×20000 image is refused at its header instead of hanging.
#[test]
fn image_folders_recurse_refuse_empty_classes_and_bombs() {
    let dir = TempDir::new("hostile-images");
    let root = dir.join("images");
    for (class, sub) in [("a", Some("sub")), ("b", None)] {
        let folder = sub.map_or(root.join(class), |sub| root.join(class).join(sub));
        std::fs::create_dir_all(&folder).unwrap();
        for i in 0..2u8 {
            let img = image::GrayImage::from_pixel(4, 4, image::Luma([40 * i + 10]));
            img.save(folder.join(format!("{i}.png"))).unwrap();
        }
    }
    let d = kiln::data::load_image_folder(&root, &Default::default()).unwrap();
    assert_eq!((d.len(), d.class_names.clone()), (4, vec!["a".to_string(), "b".to_string()]));
    std::fs::create_dir_all(root.join("c")).unwrap();
    let e = kiln::data::load_image_folder(&root, &Default::default()).unwrap_err().to_string();
    assert!(e.contains("class 'c'") && e.contains("holds no"), "{e}");
    std::fs::remove_dir(root.join("c")).unwrap();
    std::fs::write(root.join("a").join("0_bomb.png"), huge_png_header(20_000)).unwrap();
    let started = std::time::Instant::now();
    let e = kiln::data::load_image_folder(&root, &Default::default()).unwrap_err().to_string();
    assert!(e.contains("0_bomb.png"), "{e}");
    assert!(started.elapsed().as_secs() < 10, "refused at the header, not decoded");
}

/// Without --image-size, an odd first image does not set the size of all: the most common
/// size does, and a large one is scaled to at most 256 per side. The progress callback counts
/// every image.
#[test]
fn the_default_image_size_is_the_common_one_not_the_first_files() {
    let dir = TempDir::new("hostile-image-size");
    let root = dir.join("images");
    for class in ["a", "b"] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..3u8 {
            image::GrayImage::from_pixel(6, 4, image::Luma([30 * i]))
                .save(root.join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    // First in file order, and larger than the rest.
    image::GrayImage::from_pixel(300, 300, image::Luma([1])).save(root.join("a").join("0000.png")).unwrap();
    let count = std::sync::atomic::AtomicUsize::new(0);
    let progress = |_: usize, total: usize| {
        assert_eq!(total, 7);
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    };
    let d = kiln::data::load_image_folder_with_progress(&root, &Default::default(), &progress).unwrap();
    assert_eq!(d.x.shape, vec![7, 4, 6, 1], "height 4, width 6 (the common size)");
    assert_eq!(count.into_inner(), 7);
    // Mostly large images: scaled down, aspect kept (600×300 → 256×128).
    let big = dir.join("big");
    for class in ["a", "b"] {
        std::fs::create_dir_all(big.join(class)).unwrap();
        image::GrayImage::from_pixel(300, 600, image::Luma([9])).save(big.join(class).join("x.png")).unwrap();
    }
    let d = kiln::data::load_image_folder(&big, &Default::default()).unwrap();
    assert_eq!(d.x.shape, vec![2, kiln::data::DEFAULT_MAX_SIDE, 128, 1]);
}

/// IDX image files with no images or no pixels (0×8) are errors naming the file, not a model
/// with 0 features or a test accuracy of an empty split.
#[test]
fn empty_idx_images_are_errors() {
    let idx = |count: u32, rows: u32, cols: u32| {
        let mut b = 0x0000_0803u32.to_be_bytes().to_vec();
        for v in [count, rows, cols] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend(std::iter::repeat_n(0u8, (count * rows * cols) as usize));
        b
    };
    for (count, rows, cols) in [(0, 28, 28), (5, 0, 8)] {
        let path = std::path::Path::new("t10k-images-idx3-ubyte");
        let e = kiln::data::idx::parse_idx_images(&idx(count, rows, cols), path).unwrap_err().to_string();
        assert!(e.contains("t10k-images-idx3-ubyte") && e.contains("no pixels"), "{e}");
    }
    assert!(kiln::data::idx::parse_idx_images(&idx(2, 3, 3), std::path::Path::new("ok")).is_ok());
    // Training and test images of different sizes: both sizes named, not "10 classes of …".
    let dir = TempDir::new("hostile-idx-split");
    let labels = |n: u8| {
        let mut b = 0x0000_0801u32.to_be_bytes().to_vec();
        b.extend_from_slice(&(n as u32).to_be_bytes());
        b.extend((0..n).map(|i| i % 2));
        b
    };
    std::fs::write(dir.join("train-images-idx3-ubyte"), idx(4, 3, 3)).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), labels(4)).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), idx(2, 2, 2)).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), labels(2)).unwrap();
    let (code, _, err) = kiln(&["train", "--data", dir.to_str().unwrap(), "--epochs", "1"]);
    assert_eq!(code, 1);
    assert!(err.contains("the test samples are 2×2×1 but the training samples 3×3×1"), "{err}");
}

/// A WGPU_BACKEND that names no backend (or is empty) says so, instead of only "no adapter".
#[test]
fn an_unknown_wgpu_backend_is_named() {
    for value in ["bogus", ""] {
        let (code, _, err) =
            kiln_with(&["train", "--epochs", "1", "--device", "gpu"], Some(("WGPU_BACKEND", value)));
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(&format!("WGPU_BACKEND names {value:?}, not a backend")), "{err}");
    }
}

/// Flags accepted but meaningless are refused: --verbose 9, --save-best-only without a run
/// directory, predict --top 0.
#[test]
fn meaningless_flags_are_refused() {
    let (code, _, err) = kiln(&["train", "--verbose", "9", "--epochs", "1"]);
    assert!(code == 1 && err.contains("--verbose") && err.contains("0 silent"), "{err}");
    let (code, _, err) = kiln(&["train", "--save-best-only", "--epochs", "1"]);
    assert!(code == 1 && err.contains("--save-best-only") && err.contains("--out"), "{err}");
    let (code, _, err) = kiln(&["predict", "--checkpoint", "none.safetensors", "--top", "0", "x.csv"]);
    assert!(code == 1 && err.contains("--top"), "{err}");
    // summary takes what shapes a model, not the training flags, and a checkpoint alone.
    let (code, help, _) = kiln(&["summary", "--help"]);
    assert!(code == 0 && help.contains("--checkpoint") && help.contains("--model"), "{help}");
    for training_flag in ["--epochs", "--batch-size", "--optimizer", "--lr ", "--out"] {
        assert!(!help.contains(training_flag), "summary --help lists {training_flag}");
    }
    let (code, _, err) = kiln(&["summary", "--checkpoint", "x.safetensors", "--model", "cnn"]);
    assert!(code == 2 && err.contains("'--checkpoint <CHECKPOINT>' cannot be used with '--model"), "{err}");
    let (code, out, _) = kiln(&["summary", "--model", "char-lstm", "--window", "40"]);
    assert!(code == 0 && out.contains("(None, 40, 32)"), "--window shapes the summary: {out}");
    // bench --steps is a minimum, and the progress says when it was raised.
    let (code, _, err) =
        kiln(&["bench", "--device", "cpu", "--only", "train", "--steps", "1", "--reps", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("runs each") && err.contains("--steps is a minimum"), "{err}");
}

/// `--out DIR` over an earlier run is refused unless `--overwrite` (or `--resume`), and a run
/// directory in use by a live process says which; a stale lock (its process gone) is taken
/// over.
#[test]
fn run_directories_are_not_overwritten_or_shared() {
    let dir = TempDir::new("hostile-out");
    let out = dir.join("run");
    let args = iris_run(&out);
    train(&args).unwrap();
    let e = train(&args).unwrap_err().to_string();
    assert!(e.contains("holds a run already") && e.contains("--resume") && e.contains("--overwrite"), "{e}");
    train(&TrainArgs { overwrite: true, ..args.clone() }).unwrap();
    assert!(!out.join(".lock").exists(), "the lock goes with the run");
    // A live process holds it: this one (its id in the lock, as a concurrent run writes it).
    std::fs::write(out.join(".lock"), std::process::id().to_string()).unwrap();
    let e = train(&TrainArgs { overwrite: true, ..args.clone() }).unwrap_err().to_string();
    assert!(e.contains(&format!("in use by process {}", std::process::id())), "{e}");
    // A killed run's lock: no such process.
    std::fs::write(out.join(".lock"), "4000000000").unwrap();
    train(&TrainArgs { overwrite: true, ..args }).unwrap();
}

/// `--resume R` with options that differ from the run's refuses them by name (they would be
/// ignored); the same values, --epochs and the output options are fine.
#[test]
fn resume_refuses_conflicting_options() {
    let dir = TempDir::new("hostile-resume");
    let out = dir.join("run");
    let r = out.to_str().unwrap();
    let (code, _, err) = kiln(&["train", "--data", "iris", "--epochs", "2", "--out", r, "--verbose", "0"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = kiln(&[
        "train",
        "--resume",
        r,
        "--batch-size",
        "64",
        "--optimizer",
        "sgd",
        "--lr",
        "0.5",
        "--epochs",
        "3",
    ]);
    assert_eq!(code, 1, "{err}");
    for named in [
        "--batch-size (the run has 32)",
        "--optimizer (the run has \"adam\")",
        "--lr (the run has the default)",
    ] {
        assert!(err.contains(named), "{named}: {err}");
    }
    let (code, _, err) =
        kiln(&["train", "--resume", r, "--data", "iris", "--batch-size", "32", "--epochs", "3", "--json"]);
    assert_eq!(code, 0, "the run's own values and --epochs: {err}");
}

/// Write failures say "cannot write" with the OS error: `--out` on a file or under one, and a
/// checkpoint that cannot be written whole (a file-size limit, as a full disk fails a write),
/// which leaves no temporary file behind.
#[test]
fn write_failures_say_cannot_write_and_leave_no_temporary_file() {
    let dir = TempDir::new("hostile-write");
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let (code, _, err) = kiln(&["train", "--data", "iris", "--epochs", "1", "--out", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("is a file, not a directory"), "{err}");
    let under = file.join("run");
    let (_, _, err) = kiln(&["train", "--data", "iris", "--epochs", "1", "--out", under.to_str().unwrap()]);
    assert!(err.contains(&format!("cannot write {}: Not a directory", under.display())), "{err}");
    // RLIMIT_FSIZE of 16 KiB with SIGXFSZ ignored: writes past it fail with EFBIG, as a full
    // disk fails them with ENOSPC. The digits MLP's checkpoint is about 60 KB.
    let run = dir.join("run");
    let script = format!(
        "ulimit -f 16; trap '' XFSZ; exec {} train --data digits --epochs 2 --verbose 0 --out {}",
        env!("CARGO_BIN_EXE_kiln"),
        run.display()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("cannot write {}", run.join("last.safetensors").display())), "{err}");
    let left: Vec<_> = std::fs::read_dir(&run).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "a failed write left {left:?}");
}

/// `write_atomic` over a directory fails at the rename: the error names the path, and the
/// temporary file is gone.
#[test]
fn a_failed_atomic_write_removes_its_temporary_file() {
    let dir = TempDir::new("hostile-atomic");
    let target = dir.join("model.safetensors");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("inside"), "keeps the directory non-empty").unwrap();
    let err = kiln::checkpoint::write_atomic(&target, b"bytes").unwrap_err();
    assert!(matches!(err, kiln::Error::Write { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&format!("cannot write {}", target.display())), "{err}");
    assert!(!kiln::checkpoint::temp_path(&target).exists());
}

/// A 200,000-character line of a model file is cut in the error, which still names the file
/// and the layer; a checkpoint not read from a file is not called "checkpoint checkpoint".
#[test]
fn long_lines_are_cut_and_checkpoints_are_named_once() {
    let dir = TempDir::new("hostile-long");
    let file = dir.join("model.toml");
    std::fs::write(&file, format!("[[layers]]\ntype = \"{}\"\n", "D".repeat(200_000))).unwrap();
    let (code, _, err) = kiln(&["summary", "--model", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.len() < 1_000, "{} characters", err.len());
    assert!(
        err.contains("model.toml")
            && err.contains("unknown layer type")
            && err.contains("characters left out")
    );
    let mut m = kiln::Sequential::new(&[4]).add(kiln::Dense::new(3, kiln::Activation::Softmax));
    let opts = kiln::CompileOptions::new(
        kiln::Optimizer::sgd(0.1),
        kiln::Loss::SparseCategoricalCrossentropy,
        kiln::Device::Cpu,
    );
    m.compile(opts).unwrap();
    let mut c = kiln::Checkpoint::capture(&mut m).unwrap();
    c.weights[0].1 = kiln::Tensor::zeros(&[5, 3]);
    let e = c.into_model(kiln::Device::Cpu).err().unwrap().to_string();
    assert!(
        e.starts_with("checkpoint does not fit the model: tensor 'dense.kernel' has shape [5, 3]"),
        "{e}"
    );
}

/// A data file that cannot be read and a run directory that cannot be written name the path
/// and the OS error. Root ignores file permissions, so as root this test says it is skipped
/// and checks nothing.
#[cfg(unix)]
#[test]
fn permission_errors_name_the_path_unless_running_as_root() {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        eprintln!("skipped: running as root, where file permissions do not apply");
        return;
    }
    let dir = TempDir::new("hostile-permissions");
    let csv = dir.join("locked.csv");
    std::fs::write(&csv, "1,2,0\n3,4,1\n").unwrap();
    std::fs::set_permissions(&csv, std::fs::Permissions::from_mode(0o000)).unwrap();
    let (code, _, err) = kiln(&["train", "--data", csv.to_str().unwrap(), "--epochs", "1"]);
    assert!(code == 1 && err.contains(&format!("cannot read {}", csv.display())), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    let locked = dir.join("locked-dir");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = locked.join("run");
    let (code, _, err) = kiln(&["train", "--data", "iris", "--epochs", "1", "--out", out.to_str().unwrap()]);
    assert!(code == 1 && err.contains(&format!("cannot write {}", out.display())), "{err}");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
}
