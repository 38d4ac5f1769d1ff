//! Resource limits applied to every extraction.

use std::time::Duration;

/// Caps that keep a hostile or pathological file from exhausting memory, CPU or the stack.
/// The defaults suit uploads of ordinary business documents.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest input accepted, in bytes.
    pub max_input_bytes: u64,
    /// Largest total of bytes inflated from an archive (DOCX, XLSX, EPUB…).
    pub max_uncompressed_bytes: u64,
    /// Largest expansion ratio allowed for one archive entry (uncompressed / compressed).
    pub max_compression_ratio: u64,
    /// Most entries an archive may have.
    pub max_archive_entries: usize,
    /// Deepest element/array nesting accepted in XML, HTML and JSON.
    pub max_depth: usize,
    /// Most XML elements parsed from one archive part.
    pub max_xml_nodes: usize,
    /// Most spreadsheet cells one workbook may span (sheets' used ranges, empty cells included:
    /// readers hold each sheet as a dense grid).
    pub max_sheet_cells: u64,
    /// Most PDF pages (or slides, or sheets × 1000 rows) extracted.
    pub max_pages: u32,
    /// Most objects a PDF may declare.
    pub max_pdf_objects: usize,
    /// Largest extracted text, in bytes; longer output is an error rather than silently cut.
    pub max_output_bytes: usize,
    /// Wall-clock limit; a parser still running after it is abandoned.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 100 * 1024 * 1024,
            max_uncompressed_bytes: 512 * 1024 * 1024,
            max_compression_ratio: 200,
            max_archive_entries: 10_000,
            max_depth: 256,
            max_xml_nodes: 5_000_000,
            max_sheet_cells: 2_000_000,
            max_pages: 5_000,
            max_pdf_objects: 2_000_000,
            max_output_bytes: 64 * 1024 * 1024,
            timeout: Duration::from_secs(60),
        }
    }
}
