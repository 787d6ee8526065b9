//! Image folders, as Keras' `image_dataset_from_directory` reads them: `dir/class_name/*.png`
//! (or `.jpg`, `.jpeg`), one subdirectory per class, classes in alphabetical order. Images
//! are decoded, converted to grey or RGB, centre-cropped to the target aspect ratio and
//! resized (bilinear) to one size, and returned as `[N, H, W, C]` pixels 0..255.
use super::Dataset;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageBuffer, ImageReader, Pixel};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// File extensions read as images (compared case-insensitively); other files are skipped.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// The largest side of the size [`ImageOptions::size`] picks by default (Keras's
/// `image_dataset_from_directory` resizes to 256×256 by default).
pub const DEFAULT_MAX_SIDE: usize = 256;

/// How [`load_image_folder`] turns files into samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImageOptions {
    /// Target `(height, width)`; `None`: the most common size among the images (read from
    /// their headers; of equally common ones the smallest), scaled down to at most
    /// [`DEFAULT_MAX_SIDE`] per side with its aspect ratio.
    pub size: Option<(usize, usize)>,
    /// 1 (grey) or 3 (RGB); 0: as the first image, 1 when it is grey, else 3.
    pub channels: usize,
}

/// The files of an image folder: class names and `(path, class index)` in load order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFolder {
    /// Subdirectory names, sorted; the label of a class is its index here.
    pub class_names: Vec<String>,
    /// Every image file with its class index: classes in order, files sorted by name.
    pub files: Vec<(PathBuf, usize)>,
}

/// Lists `dir/class_name/*.{png,jpg,jpeg}` without decoding anything. Errors when `dir`
/// cannot be read, has no class subdirectories, or holds no image in any of them.
/// Subdirectories whose names start with `.` are skipped, as are files of other types.
pub fn list_image_folder(dir: &Path) -> Result<ImageFolder> {
    let mut class_names = Vec::new();
    for (path, name) in sorted_entries(dir)? {
        if path.is_dir() && !name.starts_with('.') {
            class_names.push(name);
        }
    }
    if class_names.is_empty() {
        return Err(Error::invalid(
            "image folder",
            format!(
                "{} has no class subdirectories (expected {}/<class name>/*.png|jpg|jpeg)",
                dir.display(),
                dir.display()
            ),
        ));
    }
    let mut files = Vec::new();
    for (label, class) in class_names.iter().enumerate() {
        // Images in subfolders of a class folder belong to it, as Keras reads them.
        let before = files.len();
        collect_images(&dir.join(class), label, &mut files)?;
        if files.len() == before {
            return Err(Error::invalid(
                "image folder",
                format!("class '{class}' ({}) holds no .png, .jpg or .jpeg files", dir.join(class).display()),
            ));
        }
    }
    if files.is_empty() {
        return Err(Error::invalid(
            "image folder",
            format!(
                "no .png, .jpg or .jpeg files in the class subdirectories of {} ({})",
                dir.display(),
                class_names.join(", ")
            ),
        ));
    }
    Ok(ImageFolder { class_names, files })
}

/// Loads an image folder (see the module docs) as `x: [N, H, W, C]` with pixel values 0..255,
/// labels = class indices, class names = subdirectory names. Errors name the file that
/// cannot be read or decoded.
pub fn load_image_folder(dir: &Path, opts: &ImageOptions) -> Result<Dataset> {
    load_image_folder_with_progress(dir, opts, &|_, _| {})
}

/// [`load_image_folder`], calling `progress(done, total)` as images are decoded (from the
/// decoding threads, in any order).
pub fn load_image_folder_with_progress(
    dir: &Path,
    opts: &ImageOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Dataset> {
    if !matches!(opts.channels, 0 | 1 | 3) {
        return Err(Error::invalid(
            "image channels",
            format!("{} (expected 1 for grey, 3 for RGB, or 0 for as the first image)", opts.channels),
        ));
    }
    if let Some((h, w)) = opts.size
        && (h == 0 || w == 0 || h > u32::MAX as usize || w > u32::MAX as usize)
    {
        return Err(Error::invalid("image size", format!("{h}×{w} (height × width must be 1 or more)")));
    }
    let folder = list_image_folder(dir)?;
    let Some((first_path, _)) = folder.files.first() else {
        return Err(Error::invalid("image folder", format!("no images in {}", dir.display())));
    };
    let first = decode_image(first_path)?;
    let channels = match opts.channels {
        0 if first.color().has_color() => 3,
        0 => 1,
        c => c,
    };
    let (height, width) = match opts.size {
        Some(size) => size,
        None => default_size(&folder.files)?,
    };
    let target = (height as u32, width as u32);
    let first_pixels = image_pixels(&first, channels, target);
    drop(first);
    let total = folder.files.len();
    let done = std::sync::atomic::AtomicUsize::new(1);
    progress(1, total);
    // Decode in parallel; collecting in order keeps samples (and the first error) deterministic.
    let rest: Vec<Result<Vec<u8>>> = folder.files[1..]
        .par_iter()
        .map(|(path, _)| {
            let pixels = image_pixels(&decode_image(path)?, channels, target);
            progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1, total);
            Ok(pixels)
        })
        .collect();
    let per_image = height * width * channels;
    let mut data = Vec::with_capacity(folder.files.len() * per_image);
    data.extend(first_pixels.iter().map(|&p| p as f32));
    for pixels in rest {
        data.extend(pixels?.iter().map(|&p| p as f32));
    }
    let x = Tensor::new(&[folder.files.len(), height, width, channels], data)?;
    let y = folder.files.iter().map(|&(_, label)| label as f32).collect();
    let classes = folder.class_names.len();
    Dataset::new(x, y, classes, folder.class_names)
}

/// One image file as `height × width × channels` (1 grey, 3 RGB) pixels 0..255, row-major
/// HWC, centre-cropped and resized as [`load_image_folder`] does; errors name the file.
pub fn load_image(path: &Path, (height, width): (usize, usize), channels: usize) -> Result<Vec<f32>> {
    if !matches!(channels, 1 | 3) || height == 0 || width == 0 {
        return Err(Error::invalid(
            "image shape",
            format!("{height}×{width}×{channels} (expected a size of 1 or more and 1 or 3 channels)"),
        ));
    }
    let img = decode_image(path)?;
    Ok(image_pixels(&img, channels, (height as u32, width as u32)).iter().map(|&p| p as f32).collect())
}

/// True when `path` has an image file extension (png, jpg, jpeg; any case).
pub fn is_image_file(path: &Path) -> bool {
    has_image_extension(path)
}

/// [`ImageOptions::size`]'s default for `files`: the most common `(height, width)` of their
/// headers (ties: the smallest), scaled to at most [`DEFAULT_MAX_SIDE`] per side. One odd
/// file (a huge first image) does not set the size of all.
fn default_size(files: &[(PathBuf, usize)]) -> Result<(usize, usize)> {
    let sizes: Vec<(usize, usize)> = files.par_iter().map(|(p, _)| image_size(p)).collect::<Result<_>>()?;
    let mut counts = std::collections::BTreeMap::<(usize, usize), usize>::new();
    for s in sizes {
        *counts.entry(s).or_default() += 1;
    }
    // BTreeMap order: the first of the most common is the smallest.
    let most = counts.values().copied().max().unwrap_or(0);
    let (h, w) = counts.into_iter().find(|&(_, n)| n == most).map_or((1, 1), |(s, _)| s);
    let side = h.max(w);
    if side <= DEFAULT_MAX_SIDE {
        return Ok((h, w));
    }
    let scale = |d: usize| ((d * DEFAULT_MAX_SIDE + side / 2) / side).max(1);
    Ok((scale(h), scale(w)))
}

/// `(height, width)` of an image file from its header alone.
fn image_size(path: &Path) -> Result<(usize, usize)> {
    let io_error = |source| Error::Io { path: path.to_path_buf(), source };
    let reader = ImageReader::open(path).map_err(io_error)?.with_guessed_format().map_err(io_error)?;
    let (w, h) = reader.into_dimensions().map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        location: "image header".into(),
        message: e.to_string(),
    })?;
    Ok((h as usize, w as usize))
}

/// The largest image side decoded (pixels); the `image` crate's default allocation limit
/// (512 MiB) applies as well.
pub const MAX_IMAGE_SIDE: u32 = 16_384;

/// Decodes one image file (format detected from its content, else its extension); errors
/// name the file.
fn decode_image(path: &Path) -> Result<DynamicImage> {
    let io_error = |source| Error::Io { path: path.to_path_buf(), source };
    let mut reader = ImageReader::open(path).map_err(io_error)?.with_guessed_format().map_err(io_error)?;
    // A decompression bomb (a tiny file of a huge image) is an error, not a hang.
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    reader.limits(limits);
    let format = reader.format().map_or("unknown".to_string(), |f| format!("{f:?}"));
    reader.decode().map_err(|e| match e {
        image::ImageError::IoError(source) => Error::Io { path: path.to_path_buf(), source },
        other => Error::Parse {
            path: path.to_path_buf(),
            location: "image".into(),
            message: format!("cannot decode as {format}: {other}"),
        },
    })
}

/// `img` as `channels` (1 or 3) u8 channels of `(height, width)`, row-major HWC: centre-cropped
/// to the target aspect ratio, then resized.
fn image_pixels(img: &DynamicImage, channels: usize, (height, width): (u32, u32)) -> Vec<u8> {
    if channels == 1 {
        fit(&img.to_luma8(), height, width).into_raw()
    } else {
        fit(&img.to_rgb8(), height, width).into_raw()
    }
}

/// Crops the largest centred region of `height : width` aspect ratio out of `img` and
/// resizes it (bilinear, `FilterType::Triangle`) to `height × width`. The same as resizing so
/// that the image covers the target and cropping the centre, without the rounding of an
/// intermediate size.
fn fit<P: Pixel<Subpixel = u8> + 'static>(
    img: &ImageBuffer<P, Vec<u8>>,
    height: u32,
    width: u32,
) -> ImageBuffer<P, Vec<u8>> {
    let (w, h) = img.dimensions();
    let (crop_w, crop_h) = centre_crop_size((w, h), (width, height));
    let cropped = imageops::crop_imm(img, (w - crop_w) / 2, (h - crop_h) / 2, crop_w, crop_h).to_image();
    if (crop_w, crop_h) == (width, height) {
        cropped
    } else {
        imageops::resize(&cropped, width, height, FilterType::Triangle)
    }
}

/// The largest `(w, h)` within `(src_w, src_h)` with the aspect ratio of `(dst_w, dst_h)`.
fn centre_crop_size((src_w, src_h): (u32, u32), (dst_w, dst_h): (u32, u32)) -> (u32, u32) {
    let (sw, sh, dw, dh) = (src_w as u64, src_h as u64, dst_w as u64, dst_h as u64);
    if sw * dh > sh * dw {
        // Wider than the target: keep the full height.
        let w = ((sh * dw + dh / 2) / dh).clamp(1, sw);
        (w as u32, src_h)
    } else {
        let h = ((sw * dh + dw / 2) / dw).clamp(1, sh);
        (src_w, h as u32)
    }
}

/// The entries of `dir` as `(path, file name)`, sorted by name; an Io error naming `dir`.
/// The image files under `dir`, its subfolders included (depth first, in name order), with
/// `label`; hidden entries are skipped.
fn collect_images(dir: &Path, label: usize, files: &mut Vec<(PathBuf, usize)>) -> Result<()> {
    for (path, name) in sorted_entries(dir)? {
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect_images(&path, label, files)?;
        } else if path.is_file() && has_image_extension(&path) {
            files.push((path, label));
        }
    }
    Ok(())
}

fn sorted_entries(dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    let io_error = |source| Error::Io { path: dir.to_path_buf(), source };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        entries.push((entry.path(), entry.file_name().to_string_lossy().into_owned()));
    }
    entries.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(entries)
}

/// True when the extension of `path` is one of [`IMAGE_EXTENSIONS`] (any case).
fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|known| e.eq_ignore_ascii_case(known)))
}
