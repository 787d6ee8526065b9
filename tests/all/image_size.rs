//! `--image-size` (Keras `image_size`): image folders train at the size asked for, or the
//! model file's input_shape, and eval resizes the same way from the checkpoint.
use image::GrayImage;
use kiln::Checkpoint;
use kiln::cli::{EvalArgs, TrainArgs, eval, train};

use crate::common::TempDir;

/// Two classes, dark and bright, of images with sizes that differ from image to image (the
/// first one 12×9), so nothing trains at a size the loader did not choose.
fn two_class_folder(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    for (class, base) in [("dark", 30u8), ("bright", 220u8)] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for i in 0..20u32 {
            let (w, h) = if i == 0 { (9, 12) } else { (7 + i % 5, 7 + i % 3) };
            let img =
                GrayImage::from_fn(w, h, |x, y| image::Luma([base.wrapping_add(((x + y + i) % 7) as u8)]));
            img.save(dir.join(class).join(format!("{i:02}.png"))).unwrap();
        }
    }
    dir
}

fn train_args(data: &TempDir, out: &TempDir) -> TrainArgs {
    TrainArgs {
        data: Some(data.to_string_lossy().into_owned()),
        model: "cnn".into(),
        device: "cpu".into(),
        epochs: 10,
        batch_size: 4,
        lr: Some(0.01),
        json: true,
        out: Some(out.to_path_buf()),
        validation_split: Some(0.0),
        ..TrainArgs::default()
    }
}

#[test]
fn image_size_sets_the_training_size_and_eval_resizes_the_same_way() {
    let (data, out) = (two_class_folder("size-data"), TempDir::new("size-run"));
    let report = train(&TrainArgs { image_size: Some("6x5".into()), ..train_args(&data, &out) }).unwrap();
    let ckpt = Checkpoint::load(out.join("model.safetensors")).unwrap();
    assert_eq!(ckpt.input.as_ref().unwrap().sample_shape, [6, 5, 1], "trained at 6×5, not 12×9");
    assert!(report.test_accuracy > 0.8, "dark against bright: {}", report.test_accuracy);
    // eval reads the folder again: at 6×5 from the checkpoint (12×9 would not fit the model).
    let args = EvalArgs {
        checkpoint: out.join("model.safetensors"),
        data: None,
        split: "test".into(),
        seed: None,
        device: "cpu".into(),
        batch_size: 8,
        json: true,
        metrics: None,
    };
    let r = eval(&args).unwrap();
    assert_eq!(r.accuracy, report.test_accuracy);
    // One number is a square size.
    let out2 = TempDir::new("size-run-square");
    train(&TrainArgs { image_size: Some("4".into()), epochs: 1, ..train_args(&data, &out2) }).unwrap();
    let ckpt = Checkpoint::load(out2.join("model.safetensors")).unwrap();
    assert_eq!(ckpt.input.as_ref().unwrap().sample_shape, [4, 4, 1]);
}

#[test]
fn a_model_files_input_shape_is_the_default_image_size() {
    let (data, out) = (two_class_folder("file-size-data"), TempDir::new("file-size-run"));
    let model = out.join("small.toml");
    std::fs::write(
        &model,
        "input_shape = [5, 5, 1]\n\n[[layers]]\ntype = \"Conv2D\"\nfilters = 4\nkernel_size = 3\n\
         activation = \"relu\"\n\n[[layers]]\ntype = \"Flatten\"\n\n[[layers]]\ntype = \"Dense\"\n\
         units = 1\nactivation = \"sigmoid\"\n",
    )
    .unwrap();
    let run = TempDir::new("file-size-out");
    let args =
        TrainArgs { model: model.to_string_lossy().into_owned(), epochs: 1, ..train_args(&data, &run) };
    train(&args).unwrap();
    let ckpt = Checkpoint::load(run.join("model.safetensors")).unwrap();
    assert_eq!(ckpt.input.as_ref().unwrap().sample_shape, [5, 5, 1]);
}

#[test]
fn bad_image_sizes_and_non_image_data_are_errors_naming_the_flag() {
    let (data, out) = (two_class_folder("bad-size-data"), TempDir::new("bad-size-run"));
    for bad in ["0x5", "6x", "abc", "2x3x4"] {
        let e = train(&TrainArgs { image_size: Some(bad.into()), ..train_args(&data, &out) }).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("--image-size") && msg.contains(bad), "{msg}");
    }
    let digits = TrainArgs {
        data: Some("digits".into()),
        model: "mlp".into(),
        image_size: Some("8x8".into()),
        out: None,
        ..train_args(&data, &out)
    };
    let msg = train(&digits).unwrap_err().to_string();
    assert!(msg.contains("--image-size") && msg.contains("image folders"), "{msg}");
}
