//! CSV loading. Two layouts, plain or gzip (detected by content):
//! - sklearn: first line `count,features,classname...`, then rows of features + integer label;
//! - plain: numeric rows with a label column (the last unless told), optional header row.
use super::file::{gunzip_if_needed, read_maybe_gzip};
use super::{Dataset, is_class_index, numbered_class_names};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::path::Path;

/// Which layout a CSV file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CsvLayout {
    /// sklearn when the first line is `count,features,name,...`, otherwise plain.
    #[default]
    Auto,
    /// First line `count,features,classname...`; the label is the last column.
    Sklearn,
    /// Numeric rows, a label column, maybe a header row.
    Plain,
}

/// Options for [`load_csv`] and [`parse_csv`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CsvOptions {
    /// The file's layout (default: detect).
    pub layout: CsvLayout,
    /// Plain layout: the label column, counted from 0 (default: the last column).
    pub label_column: Option<usize>,
    /// Plain layout: whether the first line is a header (default: detect, a header has a
    /// field that is not a number).
    pub header: Option<bool>,
    /// Plain layout: treat the label as a regression target (`classes = 0`) even when every
    /// label is a non-negative integer.
    pub regression: bool,
}

/// Loads a CSV file (plain or gzip) into a [`Dataset`]; errors name the file and line.
pub fn load_csv(path: impl AsRef<Path>, opts: &CsvOptions) -> Result<Dataset> {
    let path = path.as_ref();
    let bytes = read_maybe_gzip(path)?;
    parse_csv_bytes(&bytes, path, opts)
}

/// Parses CSV bytes (plain or gzip); `source` names them in errors.
pub fn parse_csv_bytes(bytes: &[u8], source: &Path, opts: &CsvOptions) -> Result<Dataset> {
    let bytes = gunzip_if_needed(bytes, source)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| Error::Parse {
        path: source.to_path_buf(),
        location: format!("offset {}", e.valid_up_to()),
        message: "not valid UTF-8 text".into(),
    })?;
    parse_csv(text, source, opts)
}

/// Parses CSV text; `source` names it in errors.
pub fn parse_csv(text: &str, source: &Path, opts: &CsvOptions) -> Result<Dataset> {
    let mut lines =
        text.lines().enumerate().map(|(i, line)| (i + 1, line.trim())).filter(|(_, line)| !line.is_empty());
    let parser = Parser { source };
    let Some((first_no, first)) = lines.next() else {
        return Err(parser.error(1, "the file holds no data rows".into()));
    };
    let first_fields = split(first);
    let sklearn = match opts.layout {
        CsvLayout::Sklearn => true,
        CsvLayout::Plain => false,
        CsvLayout::Auto => looks_like_sklearn_header(&first_fields),
    };
    if sklearn {
        let header = parser.sklearn_header(first_no, &first_fields)?;
        return parser.sklearn_rows(header, lines);
    }
    // A header names its columns: a field that is not a number at all (a NaN or an infinity is
    // a number, here a bad one: the row is data, and the reader reports it).
    let has_header =
        opts.header.unwrap_or_else(|| first_fields.iter().any(|f| f.trim().parse::<f64>().is_err()));
    let rows: Box<dyn Iterator<Item = (usize, &str)>> =
        if has_header { Box::new(lines) } else { Box::new(std::iter::once((first_no, first)).chain(lines)) };
    parser.plain_rows(rows, opts)
}

/// The first line of the sklearn layout: sample count, feature count, class names.
struct SklearnHeader {
    line: usize,
    samples: usize,
    features: usize,
    class_names: Vec<String>,
}

/// Rows read: features row-major and labels.
struct Table {
    data: Vec<f32>,
    labels: Vec<f64>,
}

/// Parsing state shared by both layouts: the source name for errors.
struct Parser<'a> {
    source: &'a Path,
}

impl Parser<'_> {
    fn error(&self, line: usize, message: String) -> Error {
        Error::Parse { path: self.source.to_path_buf(), location: format!("line {line}"), message }
    }

    fn sklearn_header(&self, line: usize, fields: &[&str]) -> Result<SklearnHeader> {
        let count = |i: usize, what: &str| -> Result<usize> {
            let text = fields.get(i).copied().unwrap_or("");
            text.parse::<usize>().map_err(|_| {
                self.error(
                    line,
                    format!(
                        "column {}: expected the {what} of the header `count,features,classname...`, found {text:?}",
                        i + 1
                    ),
                )
            })
        };
        let samples = count(0, "sample count")?;
        let features = count(1, "feature count")?;
        let class_names: Vec<String> = fields.iter().skip(2).map(|s| s.to_string()).collect();
        if class_names.is_empty() {
            return Err(self.error(line, "the header names no classes".into()));
        }
        Ok(SklearnHeader { line, samples, features, class_names })
    }

    fn sklearn_rows<'t>(
        &self,
        header: SklearnHeader,
        lines: impl Iterator<Item = (usize, &'t str)>,
    ) -> Result<Dataset> {
        let table = self.read_table(
            lines,
            header.features + 1,
            header.features,
            &format!("{} features + label, per the header on line {}", header.features, header.line),
        )?;
        let n = table.labels.len();
        if n != header.samples {
            return Err(self.error(
                header.line,
                format!("the header declares {} samples, the file holds {n}", header.samples),
            ));
        }
        let classes = header.class_names.len();
        check_labels(&table.labels, classes).map_err(|e| e.in_label_file(self.source))?;
        let x = Tensor::new(&[n, header.features], table.data)?;
        let y = table.labels.iter().map(|&l| l as f32).collect();
        Dataset::new(x, y, classes, header.class_names)
    }

    fn plain_rows<'t>(
        &self,
        mut lines: impl Iterator<Item = (usize, &'t str)>,
        opts: &CsvOptions,
    ) -> Result<Dataset> {
        let Some((line, first)) = lines.next() else {
            return Err(self.error(1, "the file holds no data rows".into()));
        };
        let columns = split(first).len();
        if columns < 2 {
            return Err(self.error(line, format!("{columns} column: need at least one feature and a label")));
        }
        let label_column = opts.label_column.unwrap_or(columns - 1);
        if label_column >= columns {
            return Err(Error::invalid(
                "label column",
                format!(
                    "{label_column} (counted from 0) but {} has {columns} columns",
                    self.source.display()
                ),
            ));
        }
        let rows = std::iter::once((line, first)).chain(lines);
        let table = self.read_table(rows, columns, label_column, &format!("as on line {line}"))?;
        let n = table.labels.len();
        let features = columns - 1;
        let classify = !opts.regression && table.labels.iter().all(|&l| is_class_index(l, usize::MAX));
        // A class per output unit: a huge integer label would make a huge model.
        if let Some(i) = table.labels.iter().position(|&l| classify && l >= super::MAX_CLASSES as f64) {
            return Err(Error::Parse {
                path: self.source.to_path_buf(),
                location: format!("data row {}", i + 1),
                message: format!(
                    "label {} would make {} classes; class labels must be below {}",
                    table.labels[i],
                    table.labels[i] + 1.0,
                    super::MAX_CLASSES
                ),
            });
        }
        let classes =
            if classify { table.labels.iter().fold(0.0f64, |m, &l| m.max(l)) as usize + 1 } else { 0 };
        let class_names = if classify { numbered_class_names(classes) } else { Vec::new() };
        let x = Tensor::new(&[n, features], table.data)?;
        let y = table.labels.iter().map(|&l| l as f32).collect();
        Dataset::new(x, y, classes, class_names)
    }

    /// Reads rows of `columns` numbers each; `label_column` goes to the labels.
    fn read_table<'t>(
        &self,
        lines: impl Iterator<Item = (usize, &'t str)>,
        columns: usize,
        label_column: usize,
        why: &str,
    ) -> Result<Table> {
        let mut table = Table { data: Vec::new(), labels: Vec::new() };
        let mut first_line = None;
        for (line, text) in lines {
            let fields = split(text);
            first_line.get_or_insert(line);
            if fields.len() != columns {
                return Err(
                    self.error(line, format!("expected {columns} columns ({why}), found {}", fields.len()))
                );
            }
            for (col, field) in fields.iter().enumerate() {
                let value = parse_number(field).ok_or_else(|| {
                    self.error(line, format!("column {}: {field:?} is not a finite number", col + 1))
                })?;
                if col == label_column {
                    table.labels.push(value);
                } else {
                    table.data.push(value as f32);
                }
            }
        }
        if table.labels.is_empty() {
            let line = first_line.unwrap_or(1);
            return Err(self.error(line, "the file holds no data rows".into()));
        }
        Ok(table)
    }
}

/// Errors with [`Error::LabelOutOfRange`] for the first label not an integer in `0..classes`.
fn check_labels(labels: &[f64], classes: usize) -> Result<()> {
    match labels.iter().position(|&l| !is_class_index(l, classes)) {
        Some(index) => Err(Error::LabelOutOfRange { label: labels[index], index, classes, file: None }),
        None => Ok(()),
    }
}

/// Fields of one CSV line, trimmed (no quoting: numeric data only).
fn split(line: &str) -> Vec<&str> {
    line.split(',').map(str::trim).collect()
}

/// A finite number, or `None`.
fn parse_number(field: &str) -> Option<f64> {
    field.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// True for `count,features,name[,name...]`: two unsigned integers then at least one
/// non-numeric name.
fn looks_like_sklearn_header(fields: &[&str]) -> bool {
    fields.len() >= 3
        && fields[0].parse::<usize>().is_ok()
        && fields[1].parse::<usize>().is_ok()
        && fields[2..].iter().all(|f| !f.is_empty() && parse_number(f).is_none())
}
