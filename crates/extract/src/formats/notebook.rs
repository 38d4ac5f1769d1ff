//! Jupyter notebooks: Markdown cells as written, code cells fenced in the kernel's language;
//! outputs and metadata are left out, like markitdown.

use crate::document::{BlockKind, DocBuilder};
use crate::formats::textual::check_json_depth;
use crate::text::decode;
use crate::{ExtractError, Extracted, Format, Limits};

pub(crate) fn convert(bytes: &[u8], limits: &Limits) -> Result<Extracted, ExtractError> {
    let text = decode(bytes);
    check_json_depth(&text, limits.max_depth)?;
    let nb: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ExtractError::corrupt("notebook", e))?;
    let cells = nb
        .get("cells")
        .and_then(|c| c.as_array())
        .ok_or_else(|| ExtractError::corrupt("notebook", "no cells"))?;
    let language = nb
        .pointer("/metadata/kernelspec/language")
        .or_else(|| nb.pointer("/metadata/language_info/name"))
        .and_then(|v| v.as_str())
        .unwrap_or("python")
        .to_string();
    let mut doc = DocBuilder::new();
    doc.title = nb.pointer("/metadata/title").and_then(|v| v.as_str()).map(str::to_string);
    for cell in cells {
        let source = match cell.get("source") {
            Some(serde_json::Value::Array(parts)) => {
                parts.iter().filter_map(|p| p.as_str()).collect::<String>()
            }
            Some(serde_json::Value::String(s)) => s.clone(),
            _ => continue,
        };
        match cell.get("cell_type").and_then(|t| t.as_str()) {
            Some("markdown") => doc.markdown(&source),
            Some("code") => doc.push(BlockKind::Code { language: Some(language.clone()) }, source),
            Some("raw") => doc.push(BlockKind::Code { language: None }, source),
            _ => {}
        }
    }
    Ok(doc.finish(Format::Ipynb))
}
