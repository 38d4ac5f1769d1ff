//! EPUB: book metadata as `**Title:**`/`**Authors:**` lines (markitdown's layout), then each
//! spine document converted from XHTML to Markdown, in reading order.

use std::collections::HashMap;

use crate::archive::{Archive, resolve_path};
use crate::document::{DocBuilder, collapse_ws};
use crate::xml::{self, Element};
use crate::{ExtractError, Extracted, Format, Limits};

const NAME: &str = "EPUB";

pub(crate) fn convert(bytes: &[u8], limits: &Limits) -> Result<Extracted, ExtractError> {
    let mut zip = Archive::open(bytes, limits, NAME)?;
    let container = zip
        .read_string("META-INF/container.xml")?
        .ok_or_else(|| ExtractError::corrupt(NAME, "no META-INF/container.xml"))?;
    let container = xml::parse(&container, limits, NAME)?;
    let opf_path = container
        .find("rootfile")
        .and_then(|r| r.attr("full-path"))
        .ok_or_else(|| ExtractError::corrupt(NAME, "no package document"))?
        .to_string();
    let opf = zip
        .read_string(&opf_path)?
        .ok_or_else(|| ExtractError::corrupt(NAME, "package document missing"))?;
    let opf = xml::parse(&opf, limits, NAME)?;
    let base = opf_path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");

    let mut doc = DocBuilder::new();
    if let Some(meta) = opf.find("metadata") {
        let all = |name: &str| -> Vec<String> {
            meta.elements()
                .filter(|e| e.name == name)
                .map(|e| collapse_ws(&e.text()))
                .filter(|t| !t.is_empty())
                .collect()
        };
        let mut lines = Vec::new();
        for (label, key) in [
            ("Title", "title"),
            ("Authors", "creator"),
            ("Language", "language"),
            ("Publisher", "publisher"),
            ("Date", "date"),
            ("Description", "description"),
            ("Identifier", "identifier"),
        ] {
            let values = all(key);
            if !values.is_empty() {
                lines.push(format!("**{label}:** {}", values.join(", ")));
            }
        }
        doc.title = all("title").into_iter().next();
        doc.paragraph(lines.join("\n"));
    }

    let manifest: HashMap<&str, &Element> = opf
        .find("manifest")
        .map(|m| m.elements().filter_map(|i| Some((i.attr("id")?, i))).collect())
        .unwrap_or_default();
    let spine: Vec<&str> = opf
        .find("spine")
        .map(|s| s.elements().filter_map(|i| i.attr("idref")).collect())
        .unwrap_or_default();
    for idref in spine {
        let Some(item) = manifest.get(idref) else { continue };
        // The navigation document repeats the chapter titles; it is not content.
        if item.attr("properties").is_some_and(|p| p.split_whitespace().any(|p| p == "nav")) {
            continue;
        }
        let Some(href) = item.attr("href") else { continue };
        let path = resolve_path(base, href.split('#').next().unwrap_or(href));
        let Some(bytes) = zip.read(&percent_decode(&path))?.or(zip.read(&path)?) else { continue };
        let html = crate::text::decode(&bytes);
        super::html::check_html_depth(&html, limits.max_depth)?;
        doc.markdown(&super::html::to_markdown(&html));
    }
    Ok(doc.finish(Format::Epub))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(hex) = std::str::from_utf8(&bytes[i + 1..i + 3])
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
