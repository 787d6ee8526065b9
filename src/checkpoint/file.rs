//! The bytes of a checkpoint: safetensors with a CRC32 of the tensor data in the metadata,
//! structural checks that name what is wrong, and atomic writes (temporary file in the same
//! directory, fsync, rename, fsync of the directory).
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::NamedTensors;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Metadata key of the CRC32 (8 hex digits) of everything after the header.
pub const CRC_KEY: &str = "data_crc32";
/// Placeholder the CRC replaces in the serialized header (same length, so offsets hold).
const CRC_PLACEHOLDER: &str = "00000000";

fn corrupt(path: &Path, message: impl Into<String>) -> Error {
    Error::CorruptCheckpoint { path: path.to_path_buf(), message: message.into() }
}

/// Serialize `tensors` (F32, little-endian) and `metadata` as safetensors, with the data's
/// CRC32 under [`CRC_KEY`].
pub fn encode(tensors: &[(String, Tensor)], mut metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let bytes: Vec<Vec<u8>> =
        tensors.iter().map(|(_, t)| t.data.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, t), b)| Ok((name.as_str(), TensorView::new(Dtype::F32, t.shape.clone(), b)?)))
        .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| Error::invalid("checkpoint tensors", e.to_string()))?;
    metadata.insert(CRC_KEY.into(), CRC_PLACEHOLDER.into());
    let mut buf = safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::invalid("checkpoint", format!("cannot serialize: {e}")))?;
    let header_len = header_len(&buf).unwrap_or(0);
    let data_start = 8 + header_len;
    let crc = format!("{:08x}", crc32fast::hash(&buf[data_start.min(buf.len())..]));
    let needle = format!("\"{CRC_KEY}\":\"{CRC_PLACEHOLDER}\"");
    let header = &mut buf[8..data_start];
    let at = header
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .ok_or_else(|| Error::invalid("checkpoint", "the CRC placeholder is missing from the header"))?;
    let value_at = at + needle.len() - 1 - CRC_PLACEHOLDER.len();
    header[value_at..value_at + CRC_PLACEHOLDER.len()].copy_from_slice(crc.as_bytes());
    Ok(buf)
}

/// The header length a safetensors buffer declares (its first 8 bytes, little-endian).
fn header_len(buf: &[u8]) -> Option<usize> {
    let n: [u8; 8] = buf.get(..8)?.try_into().ok()?;
    usize::try_from(u64::from_le_bytes(n)).ok()
}

/// Tensors (by name, in file order) and metadata of a checkpoint's bytes. Errors name what is
/// wrong: too short, truncated (where the data should end), a header that is not JSON, a CRC
/// mismatch, a tensor that is not F32.
pub fn decode(buf: &[u8], path: &Path) -> Result<(NamedTensors, HashMap<String, String>)> {
    let Some(n) = header_len(buf) else {
        return Err(corrupt(
            path,
            format!("{} bytes: too short for a safetensors file (8-byte header length)", buf.len()),
        ));
    };
    if n > buf.len().saturating_sub(8) {
        return Err(corrupt(
            path,
            format!("truncated: the header declares {n} bytes, but only {} follow", buf.len() - 8),
        ));
    }
    let (_, meta) = SafeTensors::read_metadata(buf).map_err(|e| match e {
        safetensors::SafeTensorError::MetadataIncompleteBuffer => {
            let declared = serde_json::from_slice::<serde_json::Value>(&buf[8..8 + n])
                .ok()
                .and_then(|h| data_end(&h))
                .map_or(String::new(), |end| format!(" ends at byte {}", 8 + n + end));
            corrupt(
                path,
                format!("truncated or padded: the tensor data{declared}, the file has {} bytes", buf.len()),
            )
        }
        other => corrupt(path, format!("invalid safetensors header: {other}")),
    })?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let data = &buf[8 + n..];
    if let Some(want) = metadata.get(CRC_KEY) {
        let got = format!("{:08x}", crc32fast::hash(data));
        if &got != want {
            return Err(corrupt(
                path,
                format!("corrupted: the CRC32 of the tensor data is {got}, the header records {want}"),
            ));
        }
    }
    let st = SafeTensors::deserialize(buf).map_err(|e| corrupt(path, format!("invalid safetensors: {e}")))?;
    let mut tensors = Vec::new();
    for name in meta.offset_keys() {
        let view = st.tensor(&name).map_err(|e| corrupt(path, format!("tensor '{name}': {e}")))?;
        if view.dtype() != Dtype::F32 {
            return Err(corrupt(
                path,
                format!("tensor '{name}' is {:?}; kiln checkpoints hold F32", view.dtype()),
            ));
        }
        let values =
            view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        tensors.push((name.clone(), Tensor::new(view.shape(), values)?));
    }
    Ok((tensors, metadata))
}

/// The largest end offset of the tensors a parsed header declares.
fn data_end(header: &serde_json::Value) -> Option<usize> {
    header
        .as_object()?
        .values()
        .filter_map(|t| t.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .and_then(|e| usize::try_from(e).ok())
}

/// Number of writes to each file name so far in this process (for the fault hook).
static WRITES: AtomicUsize = AtomicUsize::new(0);

/// Test hook: `KILN_FAULT_WRITE=<file name>:<n>:<pause|abort>` makes the `n`-th atomic write
/// (from 1) of a file with that name stop after half of its temporary file is on disk, and
/// then sleep until killed (`pause`) or abort the process (`abort`) — a crash in mid-write.
fn injected_fault(path: &Path) -> Option<String> {
    let spec = std::env::var("KILN_FAULT_WRITE").ok()?;
    let mut parts = spec.splitn(3, ':');
    let (name, n, action) = (parts.next()?, parts.next()?.parse::<usize>().ok()?, parts.next()?);
    if path.file_name()?.to_str()? != name {
        return None;
    }
    let count = WRITES.fetch_add(1, Ordering::SeqCst) + 1;
    (count == n).then(|| action.to_string())
}

/// The temporary file an atomic write of `path` goes through (same directory).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map_or("checkpoint".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp"))
}

/// Write `bytes` to `path` atomically: a reader sees the old file or the new one, never a
/// mix, even if the process dies or the machine loses power mid-write.
/// A failed write removes its temporary file and leaves `path` as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let written = write_then_rename(path, &tmp, bytes);
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn write_then_rename(path: &Path, tmp: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Write { path: path.to_path_buf(), source };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut file = std::fs::File::create(tmp).map_err(io)?;
    if let Some(action) = injected_fault(path) {
        file.write_all(&bytes[..bytes.len() / 2]).and_then(|_| file.sync_all()).map_err(io)?;
        if action == "abort" {
            std::process::abort();
        }
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
    file.write_all(bytes).and_then(|_| file.sync_all()).map_err(io)?;
    drop(file);
    std::fs::rename(tmp, path).map_err(io)?;
    // The rename is durable once the directory entry is.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
