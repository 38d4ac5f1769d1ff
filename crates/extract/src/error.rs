//! The one error type of the crate: every message tells a person what went wrong and what to do.

use std::time::Duration;

/// Why a document could not be extracted. `Display` is written for the person who uploaded it.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The file type is not one we can read.
    #[error(
        "unsupported file type: {0}; upload PDF, Word, PowerPoint, Excel, ODT, RTF, HTML, Markdown, text, CSV, JSON, EPUB, RST, e-mail, feed or notebook files"
    )]
    Unsupported(String),
    /// Zero bytes (or nothing but whitespace/BOM).
    #[error("the file is empty")]
    Empty,
    /// The file is damaged or is not really of the type its name says.
    #[error("the {format} file is damaged or not a valid {format} file: {detail}")]
    Corrupt {
        /// Human name of the format that was expected.
        format: &'static str,
        /// What the parser reported.
        detail: String,
    },
    /// The file, or what it expands to, is larger than the configured limit.
    #[error("the file is too large: {what} exceeds the limit of {limit}")]
    TooLarge {
        /// Which quantity went over (e.g. "file size", "uncompressed size", "pages").
        what: &'static str,
        /// The limit, formatted for people.
        limit: String,
    },
    /// A compressed part expands far more than real documents do (a "zip bomb").
    #[error("the file looks like a compression bomb: {0}")]
    CompressionBomb(String),
    /// Nesting deeper than any real document needs.
    #[error("the file is nested too deeply (more than {0} levels)")]
    TooDeep(usize),
    /// Extraction ran longer than the configured wall-clock limit and was abandoned.
    #[error("extraction timed out after {0:?}; the file may be too complex, try splitting it")]
    TimedOut(Duration),
    /// The file is password-protected.
    #[error("the file is encrypted; remove the password and upload it again")]
    Encrypted,
    /// The file was read but holds no text (e.g. a scanned PDF: OCR is not supported).
    #[error("no text could be found in this {0} file; if it is a scan, convert it to text first")]
    NoText(&'static str),
    /// A third-party parser crashed on this file; the crash was contained.
    #[error("the {0} parser failed on this file; it is probably damaged")]
    ParserCrashed(&'static str),
}

impl ExtractError {
    /// Shorthand for [`ExtractError::Corrupt`].
    pub(crate) fn corrupt(format: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Corrupt { format, detail: detail.to_string() }
    }

    /// A stable machine-readable code (for APIs and metrics).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unsupported(_) => "unsupported_type",
            Self::Empty => "empty_file",
            Self::Corrupt { .. } => "corrupt_file",
            Self::TooLarge { .. } => "too_large",
            Self::CompressionBomb(_) => "compression_bomb",
            Self::TooDeep(_) => "too_deeply_nested",
            Self::TimedOut(_) => "timed_out",
            Self::Encrypted => "encrypted",
            Self::NoText(_) => "no_text",
            Self::ParserCrashed(_) => "parser_crashed",
        }
    }
}

/// Formats a byte count for error messages ("50 MB").
pub(crate) fn human_bytes(n: u64) -> String {
    const MB: u64 = 1024 * 1024;
    if n >= MB {
        format!("{} MB", n / MB)
    } else if n >= 1024 {
        format!("{} KB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}
