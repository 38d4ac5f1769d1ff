//! Reading ZIP-based formats (DOCX, PPTX, XLSX, EPUB, ODT) without trusting the archive:
//! declared sizes, actual inflated sizes and expansion ratios are all checked while inflating.

use std::io::{Cursor, Read};

use zip::ZipArchive;

use crate::error::human_bytes;
use crate::{ExtractError, Limits};

/// Below this many inflated bytes an entry's ratio is not judged: small XML compresses very well.
const RATIO_GRACE_BYTES: u64 = 4 * 1024 * 1024;

/// A ZIP archive read under [`Limits`].
pub(crate) struct Archive<'a> {
    zip: ZipArchive<Cursor<&'a [u8]>>,
    limits: &'a Limits,
    format: &'static str,
    inflated: u64,
}

impl<'a> Archive<'a> {
    pub fn open(
        bytes: &'a [u8],
        limits: &'a Limits,
        format: &'static str,
    ) -> Result<Self, ExtractError> {
        let zip =
            ZipArchive::new(Cursor::new(bytes)).map_err(|e| ExtractError::corrupt(format, e))?;
        if zip.len() > limits.max_archive_entries {
            return Err(ExtractError::TooLarge {
                what: "number of archive entries",
                limit: limits.max_archive_entries.to_string(),
            });
        }
        let declared = u64::try_from(zip.decompressed_size().unwrap_or(0)).unwrap_or(u64::MAX);
        if declared > limits.max_uncompressed_bytes {
            return Err(ExtractError::TooLarge {
                what: "uncompressed size",
                limit: human_bytes(limits.max_uncompressed_bytes),
            });
        }
        let mut zip = zip;
        for i in 0..zip.len() {
            let entry = zip.by_index_raw(i).map_err(|e| ExtractError::corrupt(format, e))?;
            check_ratio(
                entry.size(),
                entry.compressed_size().max(1),
                limits.max_compression_ratio,
            )?;
        }
        Ok(Self { zip, limits, format, inflated: 0 })
    }

    /// All entry names.
    pub fn names(&self) -> Vec<String> {
        self.zip.file_names().filter_map(Result::ok).map(|n| n.into_owned()).collect()
    }

    /// Inflates one entry, or `None` if the archive has no such entry.
    pub fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>, ExtractError> {
        let format = self.format;
        let mut entry = match self.zip.by_name(name) {
            Ok(entry) => entry,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(ExtractError::corrupt(format, e)),
        };
        let budget = self.limits.max_uncompressed_bytes.saturating_sub(self.inflated);
        let compressed = entry.compressed_size().max(1);
        let declared = entry.size();
        check_ratio(declared, compressed, self.limits.max_compression_ratio)?;
        if declared > budget {
            return Err(too_large(self.limits));
        }
        let mut out = Vec::with_capacity(declared.min(16 * 1024 * 1024) as usize);
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = entry.read(&mut chunk).map_err(|e| ExtractError::corrupt(format, e))?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
            // Checked on every chunk: the declared size may lie.
            let actual = out.len() as u64;
            if actual > budget {
                return Err(too_large(self.limits));
            }
            check_ratio(actual, compressed, self.limits.max_compression_ratio)?;
        }
        self.inflated += out.len() as u64;
        Ok(Some(out))
    }

    /// Like [`Archive::read`] but decodes the entry as UTF-8 (lossily).
    pub fn read_string(&mut self, name: &str) -> Result<Option<String>, ExtractError> {
        Ok(self.read(name)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Inflates every entry under the limits, hands it to `check` and discards it; used before
    /// handing the archive to a third-party reader that does not check sizes itself.
    pub fn verify_all(
        &mut self,
        mut check: impl FnMut(&str, &[u8]) -> Result<(), ExtractError>,
    ) -> Result<(), ExtractError> {
        for name in self.names() {
            if let Some(bytes) = self.read(&name)? {
                check(&name, &bytes)?;
            }
        }
        Ok(())
    }
}

fn check_ratio(size: u64, compressed: u64, max_ratio: u64) -> Result<(), ExtractError> {
    if size > RATIO_GRACE_BYTES && size / compressed > max_ratio {
        return Err(ExtractError::CompressionBomb(format!(
            "an entry expands more than {max_ratio}:1 ({} from {})",
            human_bytes(size),
            human_bytes(compressed)
        )));
    }
    Ok(())
}

fn too_large(limits: &Limits) -> ExtractError {
    ExtractError::TooLarge {
        what: "uncompressed size",
        limit: human_bytes(limits.max_uncompressed_bytes),
    }
}

/// Resolves a relationship target (`../media/x.png`) against the folder of the part that names it.
pub(crate) fn resolve_path(base_dir: &str, target: &str) -> String {
    if let Some(abs) = target.strip_prefix('/') {
        return abs.to_string();
    }
    let mut parts: Vec<&str> = base_dir.split('/').filter(|p| !p.is_empty()).collect();
    for seg in target.split('/') {
        match seg {
            ".." => {
                parts.pop();
            }
            "." | "" => {}
            s => parts.push(s),
        }
    }
    parts.join("/")
}
