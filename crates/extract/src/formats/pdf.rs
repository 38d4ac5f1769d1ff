//! PDF text by page, via pdf-extract over lopdf, with caps on objects and pages. Each page's
//! text becomes paragraph blocks carrying that page number.

use crate::document::DocBuilder;
use crate::{ExtractError, Extracted, Format, Limits};

pub(crate) fn convert(bytes: &[u8], limits: &Limits) -> Result<Extracted, ExtractError> {
    if !bytes.starts_with(b"%PDF")
        && !bytes[..bytes.len().min(1024)].windows(5).any(|w| w == b"%PDF-")
    {
        return Err(ExtractError::corrupt("PDF", "no %PDF header"));
    }
    let mut pdf =
        pdf_extract::Document::load_mem(bytes).map_err(|e| ExtractError::corrupt("PDF", e))?;
    if pdf.objects.len() > limits.max_pdf_objects {
        return Err(ExtractError::TooLarge {
            what: "number of PDF objects",
            limit: limits.max_pdf_objects.to_string(),
        });
    }
    if pdf.is_encrypted() && pdf.decrypt("").is_err() {
        return Err(ExtractError::Encrypted);
    }
    let pages = pdf.get_pages();
    if pages.len() > limits.max_pages as usize {
        return Err(ExtractError::TooLarge {
            what: "number of pages",
            limit: limits.max_pages.to_string(),
        });
    }
    check_parent_chains(&pdf, pages.values().copied(), limits)?;
    let mut doc = DocBuilder::new();
    doc.title = info_title(&pdf);
    doc.page_count = Some(pages.len() as u32);
    let mut failures = 0;
    for &number in pages.keys() {
        let mut text = String::new();
        let result = {
            let mut out = pdf_extract::PlainTextOutput::new(&mut text);
            pdf_extract::output_doc_page(&pdf, &mut out, number)
        };
        if let Err(e) = result {
            // One unreadable page should not cost the rest of the document.
            tracing::debug!(page = number, error = %e, "PDF page skipped");
            failures += 1;
            continue;
        }
        doc.page = Some(number);
        for para in paragraphs(&text) {
            doc.paragraph(para);
        }
    }
    if failures > 0 && failures == pages.len() {
        return Err(ExtractError::corrupt("PDF", "no page could be read"));
    }
    Ok(doc.finish(Format::Pdf))
}

/// pdf-extract looks a page's inherited attributes up its `/Parent` chain with no guard, so a
/// page that is (through its parents) its own parent spins forever. Every chain is walked here
/// first, the way pdf-extract walks it, and a loop or an absurd depth is refused.
fn check_parent_chains(
    pdf: &pdf_extract::Document,
    pages: impl Iterator<Item = pdf_extract::ObjectId>,
    limits: &Limits,
) -> Result<(), ExtractError> {
    let mut chain = Vec::new();
    for page in pages {
        chain.clear();
        let mut node = page;
        loop {
            if chain.contains(&node) {
                return Err(ExtractError::corrupt("PDF", "the page tree loops back on itself"));
            }
            if chain.len() >= limits.max_depth {
                return Err(ExtractError::TooDeep(limits.max_depth));
            }
            chain.push(node);
            let parent = pdf
                .get_dictionary(node)
                .and_then(|d| d.get(b"Parent"))
                .and_then(pdf_extract::Object::as_reference);
            match parent {
                Ok(parent) => node = parent,
                Err(_) => break,
            }
        }
    }
    Ok(())
}

/// Splits page text at blank lines and joins the wrapped lines of each paragraph.
fn paragraphs(text: &str) -> Vec<String> {
    text.split("\n\n")
        .map(|p| p.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n"))
        .filter(|p| !p.is_empty())
        .collect()
}

fn info_title(pdf: &pdf_extract::Document) -> Option<String> {
    let info = pdf.trailer.get(b"Info").ok()?;
    let info = match info {
        pdf_extract::Object::Reference(id) => pdf.get_dictionary(*id).ok()?,
        pdf_extract::Object::Dictionary(d) => d,
        _ => return None,
    };
    let title = info.get(b"Title").ok()?.as_str().ok()?;
    let title = pdf_string(title);
    (!title.trim().is_empty()).then_some(title)
}

/// PDF text strings are UTF-16BE with a BOM or PDFDocEncoding (≈ Latin-1).
fn pdf_string(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        let units: Vec<u16> =
            rest.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
        return String::from_utf16_lossy(&units);
    }
    bytes.iter().map(|&b| char::from(b)).collect()
}
