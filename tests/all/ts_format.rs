//! The sktime/UEA `.ts` reader: equal and unequal lengths, multivariate, class labels and
//! regression targets, trailing missing values, errors naming the line, and the bundled
//! JapaneseVowels files (checked against the counts the UCI page and sktime give).
use kiln::data::builtin::japanese_vowels;
use kiln::data::ts::{SequenceSet, parse_ts};
use std::path::Path;

fn parse(text: &str) -> kiln::Result<SequenceSet> {
    parse_ts(text, Path::new("test.ts"))
}

fn error(text: &str) -> String {
    parse(text).err().map(|e| e.to_string()).unwrap_or_default()
}

const UNEQUAL: &str = "# a comment
@problemName Toy
@timeStamps false
@univariate false
@dimensions 2
@equalLength false
@classLabel true a b c
@data
1,2,3:10,20,30:b

4,5:40,50:a
# trailing missing values shorten a series
6,?,?:60,?,?:c
";

#[test]
fn an_unequal_length_multivariate_file_reads_time_major() {
    let s = parse(UNEQUAL).unwrap();
    assert_eq!((s.len(), s.dims, s.classes), (3, 2, 3));
    assert_eq!(s.class_names, ["a", "b", "c"]);
    assert_eq!(s.y, [1.0, 0.0, 2.0], "labels index @classLabel in its order");
    assert_eq!(s.lengths(), [3, 2, 1]);
    // Step t holds every dimension's value: [x0(t), x1(t)].
    assert_eq!(s.series[0], [1.0, 10.0, 2.0, 20.0, 3.0, 30.0]);
    assert_eq!(s.series[2], [6.0, 60.0]);
    let (x, lengths) = s.padded(None).unwrap();
    assert_eq!(x.shape, [3, 3, 2]);
    assert_eq!(&x.data[6..12], [4.0, 40.0, 5.0, 50.0, 0.0, 0.0], "zero-padded at the end");
    assert_eq!(lengths, [3, 2, 1]);
    assert!(s.padded(Some(2)).unwrap_err().to_string().contains("series 0 has 3 steps"));
}

#[test]
fn equal_length_univariate_regression_files_read() {
    let text = "@problemName R\n@univariate true\n@equalLength true\n@seriesLength 3\n@targetLabel true\n\
                @data\n1,2,3:0.5\n4,5,6:-1.25\n";
    let s = parse(text).unwrap();
    assert_eq!((s.len(), s.dims, s.classes), (2, 1, 0));
    assert_eq!(s.y, [0.5, -1.25]);
    assert_eq!(s.series[1], [4.0, 5.0, 6.0]);
    // Unlabelled: no label field.
    let s = parse("@classLabel false\n@data\n1,2:3,4\n").unwrap();
    assert_eq!((s.dims, s.y.len()), (2, 0));
}

#[test]
fn standardisation_uses_the_given_statistics() {
    let mut train = parse(UNEQUAL).unwrap();
    let (mean, std) = train.dimension_moments();
    // Dimension 0 over all 6 steps: 1..6.
    assert!((mean[0] - 3.5).abs() < 1e-6 && (std[0] - (35.0f32 / 12.0).sqrt()).abs() < 1e-5);
    assert!((mean[1] - 35.0).abs() < 1e-5);
    let mut test = train.clone();
    train.standardize(&mean, &std).unwrap();
    let (m2, s2) = train.dimension_moments();
    assert!(m2.iter().all(|m| m.abs() < 1e-5) && s2.iter().all(|s| (s - 1.0).abs() < 1e-5));
    test.series[0][0] = 100.0;
    test.standardize(&mean, &std).unwrap();
    assert!((test.series[0][0] - (100.0 - 3.5) / std[0]).abs() < 1e-4, "the training statistics");
    assert!(test.standardize(&mean[..1], &std[..1]).is_err());
}

#[test]
fn malformed_files_name_the_line_and_the_problem() {
    let e = error("@classLabel true a b\n@data\n1,2:c\n");
    assert!(e.contains("test.ts:line 3") && e.contains("label 'c'"), "{e}");
    let e = error("@dimensions 2\n@classLabel true a\n@data\n1,2:a\n");
    assert!(e.contains("line 4") && e.contains("1 dimensions, but the file has 2"), "{e}");
    let e = error("@classLabel true a\n@data\n1,?,3:a\n");
    assert!(e.contains("line 3") && e.contains("missing value at step 2"), "{e}");
    let e = error("@data\n1,x,3\n");
    assert!(e.contains("line 2") && e.contains("'x' is not a number"), "{e}");
    let e = error("@data\n1,2,3:4,5\n");
    assert!(e.contains("dimension 2 has 2 steps"), "{e}");
    let e = error("@equalLength true\n@data\n1,2,3\n4,5\n");
    assert!(e.contains("series 2") && e.contains("2 steps"), "{e}");
    let e = error("@timeStamps true\n@data\n(0,1),(1,2)\n");
    assert!(e.contains("not supported"), "{e}");
    assert!(error("1,2,3\n").contains("expected a '@' header"));
    assert!(error("@problemName X\n").contains("no @data"));
    assert!(error("@data\n").contains("no series"));
    assert!(error("@classLabel true\n@data\n").contains("must list the class labels"));
}

#[test]
fn the_bundled_japanese_vowels_files_read_whole() {
    let (train, test) = japanese_vowels().unwrap();
    assert_eq!((train.len(), test.len()), (270, 370));
    for s in [&train, &test] {
        assert_eq!((s.dims, s.classes), (12, 9));
        assert!(s.lengths().iter().all(|&l| (7..=29).contains(&l)));
        assert!(s.series.iter().flatten().all(|v| v.is_finite()));
    }
    // 30 utterances per speaker in training; the test split is uneven (24 to 88).
    let count = |s: &SequenceSet, c: usize| s.y.iter().filter(|&&y| y as usize == c).count();
    assert!((0..9).all(|c| count(&train, c) == 30));
    let test_counts: Vec<usize> = (0..9).map(|c| count(&test, c)).collect();
    assert_eq!(test_counts.iter().sum::<usize>(), 370);
    assert_eq!((test_counts.iter().min(), test_counts.iter().max()), (Some(&24), Some(&88)));
    // Series of 7 to 29 frames (UCI), over both splits.
    let all: Vec<usize> = train.lengths().into_iter().chain(test.lengths()).collect();
    assert_eq!((all.iter().min(), all.iter().max()), (Some(&7), Some(&29)));
}
