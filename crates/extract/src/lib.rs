//! Document extraction: turns an uploaded file into clean Markdown that keeps its structure
//! (title, headings, page numbers, tables) plus a list of typed [`Block`]s a chunker can label
//! with page numbers and heading paths.
//!
//! Output follows Microsoft markitdown's conventions (`## Sheet` + table for spreadsheets,
//! `# Email Message` for mail, `<!-- Slide number: N -->` becomes the block's page, images as
//! `![alt](name)` and never inline data).
//!
//! Every extraction is guarded: size caps on the input, on archive inflation (zip bombs) and on
//! the output; nesting-depth caps for XML/JSON/HTML; page and object caps for PDFs; and
//! third-party parsers run on their own thread behind `catch_unwind` with a wall-clock timeout,
//! so a hostile file yields an [`ExtractError`], never a crash or a hang of the caller.
//!
//! ```no_run
//! let bytes = std::fs::read("report.pdf").unwrap();
//! let format = extract::detect("report.pdf", None, &bytes).unwrap();
//! let doc = extract::extract(&bytes, format, &extract::Limits::default()).unwrap();
//! println!("{}", doc.markdown);
//! ```

mod archive;
mod document;
mod error;
mod format;
mod formats;
mod isolation;
mod limits;
mod text;
mod xml;

use std::sync::Arc;

pub use document::{Block, BlockKind, Extracted};
pub use error::ExtractError;
pub use format::{Format, detect};
pub use limits::Limits;

/// Extracts `bytes` as `format`. Runs the parser on a separate thread and gives up after
/// `limits.timeout`; blocks the calling thread meanwhile (use [`extract_async`] from async code).
pub fn extract(bytes: &[u8], format: Format, limits: &Limits) -> Result<Extracted, ExtractError> {
    precheck(bytes, limits)?;
    let bytes: Arc<[u8]> = Arc::from(bytes);
    let job_limits = limits.clone();
    let result = isolation::run_blocking(
        format,
        limits.timeout,
        Box::new(move || formats::convert(&bytes, format, &job_limits)),
    );
    postcheck(result?, limits)
}

/// Async form of [`extract`]: the parsing happens on a dedicated thread, the caller's task only
/// awaits it (with the same timeout), so the async runtime is never blocked.
pub async fn extract_async(
    bytes: impl Into<Arc<[u8]>>,
    format: Format,
    limits: Limits,
) -> Result<Extracted, ExtractError> {
    let bytes: Arc<[u8]> = bytes.into();
    precheck(&bytes, &limits)?;
    let job_limits = limits.clone();
    let result = isolation::run_async(
        format,
        limits.timeout,
        Box::new(move || formats::convert(&bytes, format, &job_limits)),
    )
    .await;
    postcheck(result?, &limits)
}

fn precheck(bytes: &[u8], limits: &Limits) -> Result<(), ExtractError> {
    if bytes.is_empty() {
        return Err(ExtractError::Empty);
    }
    if bytes.len() as u64 > limits.max_input_bytes {
        return Err(ExtractError::TooLarge {
            what: "file size",
            limit: error::human_bytes(limits.max_input_bytes),
        });
    }
    Ok(())
}

fn postcheck(doc: Extracted, limits: &Limits) -> Result<Extracted, ExtractError> {
    if doc.markdown.len() > limits.max_output_bytes {
        return Err(ExtractError::TooLarge {
            what: "extracted text",
            limit: error::human_bytes(limits.max_output_bytes as u64),
        });
    }
    if doc.markdown.trim().is_empty() {
        return Err(ExtractError::NoText(doc.format.name()));
    }
    Ok(doc)
}
