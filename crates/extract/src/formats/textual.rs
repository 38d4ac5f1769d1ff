//! Text-like formats: plain text, Markdown, CSV and JSON.

use crate::document::{BlockKind, DocBuilder};
use crate::text::decode;
use crate::{ExtractError, Extracted, Format, Limits};

/// Plain text: paragraphs are separated by blank lines; nothing else is inferred.
pub(crate) fn plain(bytes: &[u8]) -> Result<Extracted, ExtractError> {
    let text = decode(bytes).replace("\r\n", "\n");
    let mut doc = DocBuilder::new();
    for para in text.split("\n\n") {
        doc.paragraph(para);
    }
    Ok(doc.finish(Format::Text))
}

/// Markdown is kept as written, split into blocks.
pub(crate) fn markdown(bytes: &[u8]) -> Result<Extracted, ExtractError> {
    let text = decode(bytes).replace("\r\n", "\n");
    let mut doc = DocBuilder::new();
    doc.markdown(strip_front_matter(&text));
    Ok(doc.finish(Format::Markdown))
}

fn strip_front_matter(text: &str) -> &str {
    if let Some(rest) = text.strip_prefix("---\n")
        && let Some(end) = rest.find("\n---\n")
    {
        return &rest[end + 5..];
    }
    text
}

/// CSV in any encoding becomes one Markdown table (first row as header), like markitdown.
pub(crate) fn csv(bytes: &[u8]) -> Result<Extracted, ExtractError> {
    let text = decode(bytes);
    let delimiter = sniff_delimiter(&text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| ExtractError::corrupt("CSV", e))?;
        rows.push(record.iter().map(str::to_string).collect::<Vec<_>>());
    }
    let mut doc = DocBuilder::new();
    doc.table(&rows);
    Ok(doc.finish(Format::Csv))
}

/// Picks `,`, `;` or tab, whichever the first line uses most.
fn sniff_delimiter(text: &str) -> u8 {
    let first = text.lines().next().unwrap_or("");
    [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| first.bytes().filter(|b| b == d).count())
        .filter(|d| first.as_bytes().contains(d))
        .unwrap_or(b',')
}

/// JSON is validated (with a depth limit), then kept pretty-printed in a code block so every
/// key and value stays searchable.
pub(crate) fn json(bytes: &[u8], limits: &Limits) -> Result<Extracted, ExtractError> {
    let text = decode(bytes);
    check_json_depth(&text, limits.max_depth)?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ExtractError::corrupt("JSON", e))?;
    let pretty =
        serde_json::to_string_pretty(&value).map_err(|e| ExtractError::corrupt("JSON", e))?;
    let mut doc = DocBuilder::new();
    doc.push(BlockKind::Code { language: Some("json".into()) }, pretty);
    Ok(doc.finish(Format::Json))
}

/// Rejects nesting deeper than `max` before any recursive parser sees the text.
pub(crate) fn check_json_depth(text: &str, max: usize) -> Result<(), ExtractError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(ExtractError::TooDeep(max));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}
