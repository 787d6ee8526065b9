//! Reading data files whole, gunzipping them when they start with the gzip magic.
use crate::error::{Error, Result};
use flate2::read::MultiGzDecoder;
use std::borrow::Cow;
use std::io::Read;
use std::path::Path;

/// The two bytes every gzip stream starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// True when `bytes` start with the gzip magic.
pub(crate) fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// The content of `path`, decompressed when it is gzip (detected by content, not by name).
pub(crate) fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    Ok(gunzip_if_needed(&bytes, path)?.into_owned())
}

/// `bytes` decompressed when they are gzip, else unchanged; `source` names them in errors.
pub(crate) fn gunzip_if_needed<'a>(bytes: &'a [u8], source: &Path) -> Result<Cow<'a, [u8]>> {
    if !is_gzip(bytes) {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut out = Vec::with_capacity(bytes.len() * 4);
    MultiGzDecoder::new(bytes).read_to_end(&mut out).map_err(|e| Error::Parse {
        path: source.to_path_buf(),
        location: "gzip stream".into(),
        message: format!(
            "truncated or corrupt gzip data ({} compressed bytes, {} decompressed before the error): {e}",
            bytes.len(),
            out.len()
        ),
    })?;
    Ok(Cow::Owned(out))
}
