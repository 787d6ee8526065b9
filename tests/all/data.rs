//! Data module: bundled data sets, dataset ops, scaling, CSV and IDX loaders and their errors.
use flate2::Compression;
use flate2::write::GzEncoder;
use kiln::data::csv::{CsvLayout, CsvOptions, load_csv};
use kiln::data::idx::{load_idx_images, load_idx_labels, load_mnist_dir};
use kiln::data::{Dataset, Scaler, Scaling, builtin};
use kiln::{Error, Tensor};
use std::io::Write;
use std::path::PathBuf;

/// A fresh, empty directory under the system temp dir, unique to this test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-data-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The error message of a result that must fail.
fn message<T: std::fmt::Debug>(r: kiln::Result<T>) -> (Error, String) {
    let e = r.unwrap_err();
    let m = e.to_string();
    (e, m)
}

// ---- bundled data sets -------------------------------------------------------------------

#[test]
fn digits_has_1797_samples_of_64_pixels_in_10_balanced_classes() {
    let d = builtin::digits().unwrap();
    assert_eq!(d.x.shape, vec![1797, 64]);
    assert_eq!(d.features(), 64);
    assert_eq!(d.classes, 10);
    assert_eq!(d.class_names, (0..10).map(|c| c.to_string()).collect::<Vec<_>>());
    let counts = d.class_counts();
    assert_eq!(counts.iter().sum::<usize>(), 1797);
    for (c, &n) in counts.iter().enumerate() {
        assert!((170..=190).contains(&n), "class {c} has {n} samples");
    }
    let max = d.x.data.iter().copied().fold(f32::MIN, f32::max);
    let min = d.x.data.iter().copied().fold(f32::MAX, f32::min);
    assert_eq!((min, max), (0.0, 16.0));
    d.validate_labels().unwrap();
}

#[test]
fn digits_reshape_to_8x8x1_images() {
    let d = builtin::digits().unwrap().with_sample_shape(&[8, 8, 1]).unwrap();
    assert_eq!(d.x.shape, vec![1797, 8, 8, 1]);
    assert_eq!(d.features(), 64);
    assert!(builtin::digits().unwrap().with_sample_shape(&[8, 7]).is_err());
}

#[test]
fn iris_has_150_samples_4_features_3_named_classes() {
    let d = builtin::iris().unwrap();
    assert_eq!(d.x.shape, vec![150, 4]);
    assert_eq!(d.classes, 3);
    assert_eq!(d.class_names, ["setosa", "versicolor", "virginica"]);
    assert_eq!(d.class_counts(), vec![50, 50, 50]);
    assert_eq!(d.x.row(0), &[5.1, 3.5, 1.4, 0.2]);
}

#[test]
fn breast_cancer_has_569_samples_30_features_binary() {
    let d = builtin::breast_cancer().unwrap();
    assert_eq!(d.x.shape, vec![569, 30]);
    assert_eq!(d.classes, 2);
    assert_eq!(d.class_names, ["malignant", "benign"]);
    assert_eq!(d.class_counts(), vec![212, 357]);
}

#[test]
fn by_name_finds_the_three_bundled_sets_and_nothing_else() {
    assert_eq!(builtin::by_name("digits").unwrap().unwrap().len(), 1797);
    assert_eq!(builtin::by_name("iris").unwrap().unwrap().len(), 150);
    assert_eq!(builtin::by_name("breast-cancer").unwrap().unwrap().len(), 569);
    assert!(builtin::by_name("mnist").is_none());
}

#[test]
fn bundled_csv_files_load_the_same_from_disk() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets");
    let opts = CsvOptions::default();
    assert_eq!(load_csv(root.join("iris.csv"), &opts).unwrap(), builtin::iris().unwrap());
    assert_eq!(load_csv(root.join("digits.csv.gz"), &opts).unwrap(), builtin::digits().unwrap());
    assert_eq!(load_csv(root.join("breast_cancer.csv"), &opts).unwrap(), builtin::breast_cancer().unwrap());
}

// ---- dataset operations ------------------------------------------------------------------

#[test]
fn stratified_split_keeps_class_proportions() {
    let d = builtin::digits().unwrap();
    let (train, test) = d.stratified_split(0.2, 0).unwrap();
    assert_eq!(train.len() + test.len(), d.len());
    assert!((355..=365).contains(&test.len()), "test has {}", test.len());
    for (c, (&all, &t)) in d.class_counts().iter().zip(&test.class_counts()).enumerate() {
        let want = (all as f64 * 0.2).round() as usize;
        assert_eq!(t, want, "class {c}: {t} test samples of {all}");
    }
    assert_eq!(train.classes, 10);
    assert_eq!(train.class_names, d.class_names);

    let b = builtin::breast_cancer().unwrap();
    let (_, test) = b.stratified_split(0.25, 3).unwrap();
    assert_eq!(test.class_counts(), vec![53, 89]);
}

#[test]
fn stratified_split_is_deterministic_for_a_seed_and_differs_for_another() {
    let d = builtin::iris().unwrap();
    let (train_a, test_a) = d.stratified_split(0.2, 7).unwrap();
    let (train_b, test_b) = d.stratified_split(0.2, 7).unwrap();
    let (_, test_c) = d.stratified_split(0.2, 8).unwrap();
    assert_eq!(train_a, train_b);
    assert_eq!(test_a, test_b);
    assert_ne!(test_a.x, test_c.x);
}

#[test]
fn stratified_split_rejects_fractions_outside_0_1() {
    let d = builtin::iris().unwrap();
    for f in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
        let (_, m) = message(d.stratified_split(f, 0));
        assert!(m.contains("test fraction"), "{m}");
    }
}

#[test]
fn subset_and_shuffle_keep_rows_and_labels_together() {
    let d = builtin::iris().unwrap();
    let s = d.subset(&[149, 0, 50]);
    assert_eq!(s.x.shape, vec![3, 4]);
    assert_eq!(s.y, vec![2.0, 0.0, 1.0]);
    assert_eq!(s.x.row(1), d.x.row(0));

    let sh = d.shuffled(1);
    assert_eq!(sh, d.shuffled(1));
    assert_ne!(sh.y, d.y);
    assert_eq!(sh.class_counts(), d.class_counts());
    // Every shuffled row still sits beside its own label.
    for i in 0..sh.len() {
        let j = (0..d.len()).find(|&j| d.x.row(j) == sh.x.row(i) && d.y[j] == sh.y[i]);
        assert!(j.is_some(), "row {i} lost its label");
    }
}

#[test]
fn one_hot_has_a_single_one_at_the_label() {
    let d = builtin::iris().unwrap().subset(&[0, 75, 149]);
    let t = d.one_hot();
    assert_eq!(t.shape, vec![3, 3]);
    assert_eq!(t.data, vec![1., 0., 0., 0., 1., 0., 0., 0., 1.]);
}

#[test]
fn validate_labels_names_the_bad_sample() {
    let x = Tensor::zeros(&[3, 2]);
    let d = Dataset::new(x, vec![0.0, 2.0, 1.5], 2, vec![]).unwrap();
    let (e, m) = message(d.validate_labels());
    assert!(matches!(e, Error::LabelOutOfRange { index: 1, classes: 2, .. }), "{e:?}");
    assert!(m.contains("sample 1"), "{m}");
    let d = Dataset { y: vec![0.0, 1.0, 1.5], ..d };
    assert!(matches!(d.validate_labels(), Err(Error::LabelOutOfRange { index: 2, .. })));
}

// ---- scaling -----------------------------------------------------------------------------

#[test]
fn standardize_gives_mean_0_std_1_on_the_training_set() {
    let (mut train, mut test) = builtin::breast_cancer().unwrap().stratified_split(0.2, 0).unwrap();
    let scaler = Scaler::fit(&train.x, Scaling::Standardize);
    scaler.apply(&mut train.x).unwrap();
    scaler.apply(&mut test.x).unwrap();
    let (n, f) = (train.len(), train.features());
    for j in 0..f {
        let col: Vec<f64> = (0..n).map(|i| train.x.data[i * f + j] as f64).collect();
        let mean = col.iter().sum::<f64>() / n as f64;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 1e-4, "feature {j}: mean {mean}");
        assert!((var.sqrt() - 1.0).abs() < 1e-3, "feature {j}: std {}", var.sqrt());
    }
    // The test set was scaled with the training statistics: close to, not exactly, 0 / 1.
    let test_mean = test.x.data.iter().map(|&v| v as f64).sum::<f64>() / test.x.len() as f64;
    assert!(test_mean.abs() < 0.3, "test mean {test_mean}");
}

#[test]
fn standardize_leaves_constant_features_finite() {
    let x = Tensor::new(&[3, 2], vec![5.0, 1.0, 5.0, 2.0, 5.0, 3.0]).unwrap();
    let s = Scaler::fit(&x, Scaling::Standardize);
    assert_eq!(s.std[0], 1.0);
    let mut y = x.clone();
    s.apply(&mut y).unwrap();
    assert_eq!(y.data[0], 0.0);
    assert!(y.data.iter().all(|v| v.is_finite()));
}

#[test]
fn unit_range_divides_pixels_by_their_maximum() {
    let mut d = builtin::digits().unwrap();
    let s = Scaler::fit(&d.x, Scaling::UnitRange);
    assert!(s.std.iter().all(|&v| v == 16.0));
    s.apply(&mut d.x).unwrap();
    let max = d.x.data.iter().copied().fold(0.0, f32::max);
    assert_eq!(max, 1.0);

    // Data with negative values: per-feature min-max into [0, 1].
    let mut x = Tensor::new(&[2, 2], vec![-1.0, 10.0, 3.0, 20.0]).unwrap();
    Scaler::fit(&x, Scaling::UnitRange).apply(&mut x).unwrap();
    assert_eq!(x.data, vec![0.0, 0.0, 1.0, 1.0]);
}

#[test]
fn scaler_rejects_a_tensor_of_another_width() {
    let s = Scaler::fit(&Tensor::zeros(&[2, 3]), Scaling::Standardize);
    let (_, m) = message(s.apply(&mut Tensor::zeros(&[2, 4])));
    assert!(m.contains("scaler"), "{m}");
    assert_eq!("standardize".parse::<Scaling>().unwrap(), Scaling::Standardize);
    assert!("sideways".parse::<Scaling>().is_err());
}

// ---- CSV ---------------------------------------------------------------------------------

#[test]
fn plain_csv_with_header_and_label_column() {
    let dir = temp_dir("plain-header");
    let p = write(&dir, "t.csv", b"label,a,b\n1,0.5,2\n0,1.5,3\n\n2,2.5,4\n");
    let opts = CsvOptions { label_column: Some(0), ..CsvOptions::default() };
    let d = load_csv(&p, &opts).unwrap();
    assert_eq!(d.x.shape, vec![3, 2]);
    assert_eq!(d.x.data, vec![0.5, 2.0, 1.5, 3.0, 2.5, 4.0]);
    assert_eq!(d.y, vec![1.0, 0.0, 2.0]);
    assert_eq!(d.classes, 3);

    // Gzip, no header, label last (default), non-integer labels: regression.
    let p = write(&dir, "r.csv.gz", &gzip(b"1,2,0.5\r\n3,4,1.25\r\n"));
    let d = load_csv(&p, &CsvOptions::default()).unwrap();
    assert_eq!(d.x.data, vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!((d.y.clone(), d.classes), (vec![0.5, 1.25], 0));
    // Gzip detected by content even without the .gz name.
    let p = write(&dir, "r-no-suffix.csv", &gzip(b"1,2,0\n3,4,1\n"));
    assert_eq!(load_csv(&p, &CsvOptions::default()).unwrap().classes, 2);
    // Forced regression keeps integer targets as numbers.
    let opts = CsvOptions { regression: true, ..CsvOptions::default() };
    assert_eq!(load_csv(&p, &opts).unwrap().classes, 0);
}

#[test]
fn csv_missing_file_is_an_io_error_naming_the_path() {
    let p = temp_dir("missing").join("nope.csv");
    let (e, m) = message(load_csv(&p, &CsvOptions::default()));
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(m.contains("nope.csv"), "{m}");
}

#[test]
fn csv_row_with_wrong_column_count_names_file_line_and_counts() {
    let dir = temp_dir("columns");
    let p = write(&dir, "bad.csv", b"1,2,0\n3,4,1\n5,6\n");
    let (e, m) = message(load_csv(&p, &CsvOptions::default()));
    assert!(matches!(e, Error::Parse { .. }), "{e:?}");
    assert!(m.contains("bad.csv") && m.contains("line 3"), "{m}");
    assert!(m.contains("expected 3 columns") && m.contains("found 2"), "{m}");

    // sklearn layout: the header fixes the count.
    let p = write(&dir, "sk.csv", b"2,2,a,b\n1,2,0\n1,2,3,1\n");
    let (_, m) = message(load_csv(&p, &CsvOptions::default()));
    assert!(m.contains("sk.csv:line 3") && m.contains("expected 3") && m.contains("found 4"), "{m}");
}

#[test]
fn csv_non_number_names_file_line_column_and_text() {
    let dir = temp_dir("nonnumber");
    let p = write(&dir, "nan.csv", b"1,2,0\n3,abc,1\n");
    let (e, m) = message(load_csv(&p, &CsvOptions::default()));
    assert!(matches!(e, Error::Parse { .. }), "{e:?}");
    assert!(m.contains("nan.csv:line 2") && m.contains("column 2") && m.contains("\"abc\""), "{m}");
    // An explicit no-header option makes a text first line an error too.
    let p = write(&dir, "hdr.csv", b"a,b,label\n1,2,0\n");
    let opts = CsvOptions { header: Some(false), ..CsvOptions::default() };
    let (_, m) = message(load_csv(&p, &opts));
    assert!(m.contains("line 1") && m.contains("column 1") && m.contains("\"a\""), "{m}");
}

#[test]
fn csv_truncated_gzip_names_the_file() {
    let dir = temp_dir("truncgz");
    let digits =
        std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/digits.csv.gz")).unwrap();
    let p = write(&dir, "cut.csv.gz", &digits[..digits.len() / 2]);
    let (e, m) = message(load_csv(&p, &CsvOptions::default()));
    assert!(matches!(e, Error::Parse { .. }), "{e:?}");
    assert!(m.contains("cut.csv.gz") && m.contains("gzip"), "{m}");
}

#[test]
fn csv_label_outside_the_class_range_is_rejected() {
    let dir = temp_dir("labels");
    let p = write(&dir, "sk.csv", b"3,2,a,b\n1,2,0\n1,2,1\n1,2,2\n");
    let (e, m) = message(load_csv(&p, &CsvOptions::default()));
    assert!(matches!(e, Error::LabelOutOfRange { label, index: 2, classes: 2, .. } if label == 2.0), "{e:?}");
    assert!(m.contains("sample 2 of") && m.contains("sk.csv") && m.contains("0..2"), "{m}");

    // The declared sample count must match.
    let p = write(&dir, "count.csv", b"3,2,a,b\n1,2,0\n1,2,1\n");
    let (_, m) = message(load_csv(&p, &CsvOptions::default()));
    assert!(m.contains("line 1") && m.contains("declares 3 samples") && m.contains("holds 2"), "{m}");

    // Forcing the sklearn layout on a plain file reports the header problem.
    let p = write(&dir, "plain.csv", b"1.5,2,0\n");
    let opts = CsvOptions { layout: CsvLayout::Sklearn, ..CsvOptions::default() };
    let (_, m) = message(load_csv(&p, &opts));
    assert!(m.contains("line 1") && m.contains("sample count"), "{m}");
}

#[test]
fn csv_label_column_out_of_range_and_empty_file_are_errors() {
    let dir = temp_dir("misc");
    let p = write(&dir, "t.csv", b"1,2,0\n");
    let opts = CsvOptions { label_column: Some(3), ..CsvOptions::default() };
    let (_, m) = message(load_csv(&p, &opts));
    assert!(m.contains("label column") && m.contains("3 columns"), "{m}");
    let p = write(&dir, "empty.csv", b"\n\n");
    let (_, m) = message(load_csv(&p, &CsvOptions::default()));
    assert!(m.contains("empty.csv") && m.contains("no data rows"), "{m}");
}

// ---- IDX ---------------------------------------------------------------------------------

fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0x0000_0803u32, count, rows, cols] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(pixels);
    b
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0x0000_0801u32, labels.len() as u32] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(labels);
    b
}

#[test]
fn idx_round_trip_raw_and_gzip() {
    let dir = temp_dir("idx-roundtrip");
    let pixels: Vec<u8> = (0..3 * 2 * 4).map(|i| (i * 11 % 256) as u8).collect();
    let images = idx_images(3, 2, 4, &pixels);
    let labels = idx_labels(&[7, 0, 9]);
    for (name, img, lab) in [("raw", images.clone(), labels.clone()), ("gz", gzip(&images), gzip(&labels))] {
        let x = load_idx_images(write(&dir, &format!("img-{name}"), &img)).unwrap();
        assert_eq!(x.shape, vec![3, 2, 4, 1], "{name}");
        assert_eq!(x.data, pixels.iter().map(|&p| p as f32).collect::<Vec<_>>(), "{name}");
        let y = load_idx_labels(write(&dir, &format!("lab-{name}"), &lab)).unwrap();
        assert_eq!(y, vec![7.0, 0.0, 9.0], "{name}");
    }
}

#[test]
fn mnist_dir_loads_train_and_test_gz_or_raw() {
    let dir = temp_dir("mnist");
    let px = |n: usize| -> Vec<u8> { (0..n * 9).map(|i| i as u8).collect() };
    write(&dir, "train-images-idx3-ubyte.gz", &gzip(&idx_images(4, 3, 3, &px(4))));
    write(&dir, "train-labels-idx1-ubyte.gz", &gzip(&idx_labels(&[1, 2, 3, 9])));
    write(&dir, "t10k-images-idx3-ubyte", &idx_images(2, 3, 3, &px(2)));
    write(&dir, "t10k-labels-idx1-ubyte", &idx_labels(&[0, 5]));
    let (train, test) = load_mnist_dir(&dir).unwrap();
    assert_eq!(train.x.shape, vec![4, 3, 3, 1]);
    assert_eq!(test.x.shape, vec![2, 3, 3, 1]);
    assert_eq!(train.y, vec![1.0, 2.0, 3.0, 9.0]);
    assert_eq!((train.classes, test.class_names.len()), (10, 10));

    // Label count differs from image count: names both files.
    write(&dir, "t10k-labels-idx1-ubyte", &idx_labels(&[0, 5, 6]));
    let (_, m) = message(load_mnist_dir(&dir));
    assert!(m.contains("t10k-labels") && m.contains("3 labels") && m.contains("2 images"), "{m}");
    // Label 10 is outside the 10 classes.
    write(&dir, "t10k-labels-idx1-ubyte", &idx_labels(&[0, 10]));
    let (e, m) = message(load_mnist_dir(&dir));
    assert!(matches!(e, Error::LabelOutOfRange { index: 1, classes: 10, .. }), "{e:?}");
    assert!(m.contains("sample 1 of") && m.contains("t10k-labels-idx1-ubyte"), "{m}");
    // A missing file is an Io error naming it.
    std::fs::remove_file(dir.join("t10k-labels-idx1-ubyte")).unwrap();
    let (e, m) = message(load_mnist_dir(&dir));
    assert!(matches!(e, Error::Io { .. }) && m.contains("t10k-labels-idx1-ubyte"), "{m}");
}

#[test]
fn idx_bad_magic_names_file_and_offset() {
    let dir = temp_dir("idx-magic");
    let p = write(&dir, "labels-as-images", &idx_labels(&[1, 2]));
    let (e, m) = message(load_idx_images(&p));
    assert!(matches!(e, Error::Parse { .. }), "{e:?}");
    assert!(m.contains("labels-as-images:offset 0") && m.contains("0x00000801"), "{m}");
    let p = write(&dir, "images-as-labels", &idx_images(1, 1, 1, &[0]));
    let (_, m) = message(load_idx_labels(&p));
    assert!(m.contains("offset 0") && m.contains("magic"), "{m}");
}

#[test]
fn idx_truncated_data_names_file_offset_and_sizes() {
    let dir = temp_dir("idx-trunc");
    let p = write(&dir, "short-images", &idx_images(2, 2, 2, &[0; 7]));
    let (_, m) = message(load_idx_images(&p));
    assert!(m.contains("short-images:offset 16") && m.contains("need 8") && m.contains("found 7"), "{m}");
    let p = write(&dir, "short-header", &idx_images(2, 2, 2, &[])[..10]);
    let (_, m) = message(load_idx_images(&p));
    assert!(m.contains("offset 8") && m.contains("truncated header"), "{m}");
    let mut lab = idx_labels(&[1, 2, 3]);
    lab.pop();
    let p = write(&dir, "short-labels", &lab);
    let (_, m) = message(load_idx_labels(&p));
    assert!(m.contains("offset 8") && m.contains("need 3") && m.contains("found 2"), "{m}");
    // Truncated gzip stream.
    let big = gzip(&idx_images(50, 28, 28, &vec![7; 50 * 28 * 28]));
    let p = write(&dir, "cut.gz", &big[..big.len() - 12]);
    let (_, m) = message(load_idx_images(&p));
    assert!(m.contains("cut.gz") && m.contains("gzip"), "{m}");
}

/// Real Fashion-MNIST (`apt-get install dataset-fashion-mnist`); skipped where not installed.
#[test]
fn fashion_mnist_loads_60000_train_10000_test_balanced() {
    let dir = std::path::Path::new("/usr/share/datasets/fashion-mnist");
    if !dir.is_dir() {
        eprintln!("skipped: {} not installed", dir.display());
        return;
    }
    let (train, test) = load_mnist_dir(dir).unwrap();
    assert_eq!(train.x.shape, vec![60000, 28, 28, 1]);
    assert_eq!(test.x.shape, vec![10000, 28, 28, 1]);
    assert_eq!(train.class_counts(), vec![6000; 10]);
    assert_eq!(test.class_counts(), vec![1000; 10]);
    let max = train.x.data.iter().copied().fold(0.0, f32::max);
    assert_eq!(max, 255.0);
}
