//! IDX files (MNIST, Fashion-MNIST), raw or gzip (detected by content). Big-endian header:
//! images `0x00000803, count, rows, cols` then `count·rows·cols` u8 pixels; labels
//! `0x00000801, count` then `count` u8 labels.
use super::file::read_maybe_gzip;
use super::{Dataset, numbered_class_names};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::path::{Path, PathBuf};

/// Magic number of an IDX file of u8 images (type 0x08, 3 dimensions).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of u8 labels (type 0x08, 1 dimension).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Loads an IDX image file as `[N, rows, cols, 1]` with values 0..255.
pub fn load_idx_images(path: impl AsRef<Path>) -> Result<Tensor> {
    let path = path.as_ref();
    parse_idx_images(&read_maybe_gzip(path)?, path)
}

/// Loads an IDX label file as one f32 per sample.
pub fn load_idx_labels(path: impl AsRef<Path>) -> Result<Vec<f32>> {
    let path = path.as_ref();
    parse_idx_labels(&read_maybe_gzip(path)?, path)
}

/// Parses decompressed IDX image bytes: `[N, rows, cols, 1]`; `source` names them in errors.
pub fn parse_idx_images(bytes: &[u8], source: &Path) -> Result<Tensor> {
    let reader = IdxReader { bytes, source };
    reader.magic(IMAGES_MAGIC, "images")?;
    let count = reader.u32_at(4, "image count")? as usize;
    let rows = reader.u32_at(8, "row count")? as usize;
    let cols = reader.u32_at(12, "column count")? as usize;
    if count == 0 || rows == 0 || cols == 0 {
        return Err(reader.error(4, format!("{count} images of {rows}×{cols}: no pixels to learn from")));
    }
    let expected = count
        .checked_mul(rows)
        .and_then(|n| n.checked_mul(cols))
        .ok_or_else(|| reader.error(4, format!("{count} × {rows} × {cols} pixels overflow")))?;
    let pixels = reader.payload(16, expected, &format!("{count} images of {rows}×{cols}"))?;
    Tensor::new(&[count, rows, cols, 1], pixels.iter().map(|&p| p as f32).collect())
}

/// Parses decompressed IDX label bytes; `source` names them in errors.
pub fn parse_idx_labels(bytes: &[u8], source: &Path) -> Result<Vec<f32>> {
    let reader = IdxReader { bytes, source };
    reader.magic(LABELS_MAGIC, "labels")?;
    let count = reader.u32_at(4, "label count")? as usize;
    let labels = reader.payload(8, count, &format!("{count} labels"))?;
    Ok(labels.iter().map(|&l| l as f32).collect())
}

/// Loads a pair of IDX files (images, labels) as a data set with `classes` classes named
/// "0", "1", …; errors when the counts differ or a label is `>= classes`.
pub fn load_idx_pair(images: &Path, labels: &Path, classes: usize) -> Result<Dataset> {
    let x = load_idx_images(images)?;
    let y = load_idx_labels(labels)?;
    if x.rows() != y.len() {
        return Err(Error::Parse {
            path: labels.to_path_buf(),
            location: "offset 4".into(),
            message: format!("{} labels, but {} holds {} images", y.len(), images.display(), x.rows()),
        });
    }
    let data = Dataset::new(x, y, classes, numbered_class_names(classes))?;
    data.validate_labels().map_err(|e| e.in_label_file(labels))?;
    Ok(data)
}

/// Loads the standard MNIST layout of `dir` (`train-images-idx3-ubyte[.gz]`,
/// `train-labels-idx1-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`)
/// as `(train, test)` with 10 classes; Fashion-MNIST uses the same names.
pub fn load_mnist_dir(dir: impl AsRef<Path>) -> Result<(Dataset, Dataset)> {
    let dir = dir.as_ref();
    let train = load_idx_pair(
        &find_file(dir, "train-images-idx3-ubyte")?,
        &find_file(dir, "train-labels-idx1-ubyte")?,
        10,
    )?;
    let test = load_idx_pair(
        &find_file(dir, "t10k-images-idx3-ubyte")?,
        &find_file(dir, "t10k-labels-idx1-ubyte")?,
        10,
    )?;
    Ok((train, test))
}

/// True when `dir` holds the MNIST training images (`train-images-idx3-ubyte[.gz]`), i.e. it
/// is meant for [`load_mnist_dir`].
pub fn is_mnist_dir(dir: impl AsRef<Path>) -> bool {
    find_file(dir.as_ref(), "train-images-idx3-ubyte").is_ok()
}

/// `dir/name.gz` if it exists, else `dir/name`; an Io error naming both when neither does.
fn find_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let gz = dir.join(format!("{name}.gz"));
    let raw = dir.join(name);
    if gz.is_file() {
        Ok(gz)
    } else if raw.is_file() {
        Ok(raw)
    } else {
        Err(Error::Io {
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("neither {} nor {} exists", raw.display(), gz.display()),
            ),
            path: raw,
        })
    }
}

/// Bounds-checked big-endian reads from IDX bytes, with errors naming file and offset.
struct IdxReader<'a> {
    bytes: &'a [u8],
    source: &'a Path,
}

impl IdxReader<'_> {
    fn error(&self, offset: usize, message: String) -> Error {
        Error::Parse { path: self.source.to_path_buf(), location: format!("offset {offset}"), message }
    }

    fn u32_at(&self, offset: usize, what: &str) -> Result<u32> {
        match self.bytes.get(offset..offset + 4) {
            Some(&[a, b, c, d]) => Ok(u32::from_be_bytes([a, b, c, d])),
            _ => Err(self.error(
                offset,
                format!("truncated header: the {what} needs 4 bytes, the file holds {}", self.bytes.len()),
            )),
        }
    }

    fn magic(&self, expected: u32, kind: &str) -> Result<()> {
        let magic = self.u32_at(0, "magic number")?;
        if magic != expected {
            return Err(self.error(
                0,
                format!("bad magic 0x{magic:08x}: an IDX {kind} file starts with 0x{expected:08x}"),
            ));
        }
        Ok(())
    }

    /// The `len` bytes from `offset`, which must be the rest of the file.
    fn payload(&self, offset: usize, len: usize, what: &str) -> Result<&[u8]> {
        let have = self.bytes.len().saturating_sub(offset);
        if have != len {
            let problem = if have < len { "truncated" } else { "trailing bytes" };
            return Err(
                self.error(offset, format!("{problem}: {what} need {len} bytes of data, found {have}"))
            );
        }
        Ok(&self.bytes[offset..])
    }
}
