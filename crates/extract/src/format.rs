//! The formats we read, and how an upload's format is recognised.

use serde::{Deserialize, Serialize};

/// A document format the extractor understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Portable Document Format.
    Pdf,
    /// Word 2007+ (`.docx`).
    Docx,
    /// PowerPoint 2007+ (`.pptx`).
    Pptx,
    /// Excel 2007+ (`.xlsx`, `.xlsm`).
    Xlsx,
    /// Excel 97–2003 (`.xls`).
    Xls,
    /// OpenDocument text (`.odt`).
    Odt,
    /// HTML page; only the main content is kept.
    Html,
    /// Markdown.
    Markdown,
    /// Plain text in any common encoding.
    Text,
    /// Comma-separated values in any common encoding.
    Csv,
    /// JSON.
    Json,
    /// EPUB e-book.
    Epub,
    /// reStructuredText.
    Rst,
    /// Rich Text Format.
    Rtf,
    /// RFC 822 e-mail (`.eml`).
    Eml,
    /// Outlook message (`.msg`).
    Msg,
    /// Jupyter notebook.
    Ipynb,
    /// RSS or Atom feed.
    Feed,
}

impl Format {
    /// Every supported format.
    pub const ALL: [Format; 18] = [
        Format::Pdf,
        Format::Docx,
        Format::Pptx,
        Format::Xlsx,
        Format::Xls,
        Format::Odt,
        Format::Html,
        Format::Markdown,
        Format::Text,
        Format::Csv,
        Format::Json,
        Format::Epub,
        Format::Rst,
        Format::Rtf,
        Format::Eml,
        Format::Msg,
        Format::Ipynb,
        Format::Feed,
    ];

    /// Short human name used in messages ("PDF", "Word").
    pub fn name(self) -> &'static str {
        match self {
            Format::Pdf => "PDF",
            Format::Docx => "Word (DOCX)",
            Format::Pptx => "PowerPoint (PPTX)",
            Format::Xlsx => "Excel (XLSX)",
            Format::Xls => "Excel (XLS)",
            Format::Odt => "OpenDocument (ODT)",
            Format::Html => "HTML",
            Format::Markdown => "Markdown",
            Format::Text => "text",
            Format::Csv => "CSV",
            Format::Json => "JSON",
            Format::Epub => "EPUB",
            Format::Rst => "reStructuredText",
            Format::Rtf => "RTF",
            Format::Eml => "e-mail (EML)",
            Format::Msg => "Outlook (MSG)",
            Format::Ipynb => "Jupyter notebook",
            Format::Feed => "RSS/Atom feed",
        }
    }

    /// The format for a file extension (without the dot, any case).
    pub fn from_extension(ext: &str) -> Option<Format> {
        Some(match ext.to_ascii_lowercase().as_str() {
            "pdf" => Format::Pdf,
            "docx" | "docm" => Format::Docx,
            "pptx" | "pptm" => Format::Pptx,
            "xlsx" | "xlsm" => Format::Xlsx,
            "xls" => Format::Xls,
            "odt" => Format::Odt,
            "html" | "htm" | "xhtml" => Format::Html,
            "md" | "markdown" | "mdown" | "mkd" => Format::Markdown,
            "txt" | "text" | "log" | "org" => Format::Text,
            "csv" => Format::Csv,
            "json" => Format::Json,
            "epub" => Format::Epub,
            "rst" | "rest" => Format::Rst,
            "rtf" => Format::Rtf,
            "eml" => Format::Eml,
            "msg" => Format::Msg,
            "ipynb" => Format::Ipynb,
            "rss" | "atom" => Format::Feed,
            _ => return None,
        })
    }

    /// The format for a MIME type (parameters such as `; charset=` are ignored).
    pub fn from_content_type(content_type: &str) -> Option<Format> {
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        Some(match essence.as_str() {
            "application/pdf" => Format::Pdf,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
                Format::Docx
            }
            "application/vnd.openxmlformats-officedocument.presentationml.presentation" => {
                Format::Pptx
            }
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => Format::Xlsx,
            "application/vnd.ms-excel" => Format::Xls,
            "application/vnd.oasis.opendocument.text" => Format::Odt,
            "text/html" | "application/xhtml+xml" => Format::Html,
            "text/markdown" | "text/x-markdown" => Format::Markdown,
            "text/plain" => Format::Text,
            "text/csv" => Format::Csv,
            "application/json" => Format::Json,
            "application/epub+zip" => Format::Epub,
            "text/x-rst" | "text/prs.fallenstein.rst" => Format::Rst,
            "application/rtf" | "text/rtf" => Format::Rtf,
            "message/rfc822" => Format::Eml,
            "application/vnd.ms-outlook" => Format::Msg,
            "application/x-ipynb+json" => Format::Ipynb,
            "application/rss+xml" | "application/atom+xml" => Format::Feed,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Recognises an upload's format from its file name, its declared content type and its first
/// bytes (pass at least 512 when you have them). The extension wins, then a specific content
/// type, then the content itself. `None` means we cannot read it.
pub fn detect(filename: &str, content_type: Option<&str>, head: &[u8]) -> Option<Format> {
    let ext = filename.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    if ext.eq_ignore_ascii_case("xml") {
        return Some(if looks_like_feed(head) { Format::Feed } else { Format::Text });
    }
    if let Some(f) = Format::from_extension(ext) {
        return Some(f);
    }
    match content_type.and_then(Format::from_content_type) {
        // `text/plain` and friends are often a server's default: let the bytes decide first.
        Some(Format::Text) | None => {}
        Some(f) => return Some(f),
    }
    sniff(head).or(content_type.and_then(Format::from_content_type))
}

/// Guesses a format from the first bytes alone.
fn sniff(head: &[u8]) -> Option<Format> {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    if head.starts_with(b"{\\rtf") {
        return Some(Format::Rtf);
    }
    if head.starts_with(b"%PDF-") {
        return Some(Format::Pdf);
    }
    if head.starts_with(b"PK\x03\x04") {
        let has = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
        return if has(b"word/") {
            Some(Format::Docx)
        } else if has(b"ppt/") {
            Some(Format::Pptx)
        } else if has(b"xl/") {
            Some(Format::Xlsx)
        } else if has(b"application/epub+zip") {
            Some(Format::Epub)
        } else if has(b"application/vnd.oasis.opendocument.text") {
            Some(Format::Odt)
        } else {
            None
        };
    }
    // An OLE compound file (.doc, .xls, .msg) cannot be told apart by its first bytes.
    if head.is_empty() || head.contains(&0) || head.starts_with(b"\xD0\xCF\x11\xE0") {
        return None;
    }
    let text = String::from_utf8_lossy(&head[..head.len().min(1024)]).to_ascii_lowercase();
    let trimmed = text.trim_start();
    if trimmed.starts_with("<!doctype html") || trimmed.starts_with("<html") {
        return Some(Format::Html);
    }
    if trimmed.starts_with("<?xml") || trimmed.starts_with("<rss") || trimmed.starts_with("<feed") {
        return Some(if looks_like_feed(head) { Format::Feed } else { Format::Text });
    }
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return Some(Format::Json);
    }
    Some(Format::Text)
}

fn looks_like_feed(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&head[..head.len().min(2048)]).to_ascii_lowercase();
    text.contains("<rss") || text.contains("<feed") || text.contains("<rdf:rdf")
}
