//! OpenDocument text (ODT): `text:h` outline headings, paragraphs, lists and tables from
//! `content.xml`; the title from `meta.xml`.

use crate::archive::Archive;
use crate::document::{BlockKind, DocBuilder, collapse_ws};
use crate::xml::{self, Element, Node};
use crate::{ExtractError, Extracted, Format, Limits};

const NAME: &str = "OpenDocument (ODT)";

pub(crate) fn convert(bytes: &[u8], limits: &Limits) -> Result<Extracted, ExtractError> {
    let mut zip = Archive::open(bytes, limits, NAME)?;
    let content = zip
        .read_string("content.xml")?
        .ok_or_else(|| ExtractError::corrupt(NAME, "no content.xml"))?;
    let root = xml::parse(&content, limits, NAME)?;
    let body = root
        .find("body")
        .and_then(|b| b.child("text"))
        .ok_or_else(|| ExtractError::corrupt(NAME, "no text body"))?;
    let mut doc = DocBuilder::new();
    if let Some(meta) = zip.read_string("meta.xml")? {
        doc.title = xml::parse(&meta, limits, NAME)?.find("title").map(Element::text);
    }
    blocks(body, &mut doc);
    Ok(doc.finish(Format::Odt))
}

fn blocks(container: &Element, doc: &mut DocBuilder) {
    for el in container.elements() {
        match el.name.as_str() {
            "h" => {
                let level =
                    el.attr("outline-level").and_then(|l| l.parse::<u8>().ok()).unwrap_or(1);
                doc.heading(level, inline(el));
            }
            "p" => doc.paragraph(inline(el)),
            "list" => {
                let mut items = Vec::new();
                list(el, 0, &mut items);
                doc.push(BlockKind::List, items.join("\n"));
            }
            "table" => {
                let mut rows = Vec::new();
                el.find_all("table-row", &mut rows);
                let rows: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        r.elements()
                            .filter(|c| c.name == "table-cell")
                            .map(|c| collapse_ws(&inline(c)))
                            .collect()
                    })
                    .collect();
                doc.table(&rows);
            }
            "section" | "div" => blocks(el, doc),
            _ => {}
        }
    }
}

fn list(el: &Element, depth: usize, out: &mut Vec<String>) {
    for item in el.elements().filter(|e| e.name == "list-item") {
        for child in item.elements() {
            match child.name.as_str() {
                "list" => list(child, depth + 1, out),
                _ => out.push(format!("{}* {}", "  ".repeat(depth), collapse_ws(&inline(child)))),
            }
        }
    }
}

/// Text of a paragraph-like element; `text:s`, `text:tab` and `text:line-break` become spaces.
fn inline(el: &Element) -> String {
    let mut out = String::new();
    for node in &el.children {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Element(e) => match e.name.as_str() {
                "s" | "tab" => out.push(' '),
                "line-break" => out.push('\n'),
                "note" | "annotation" => {}
                _ => out.push_str(&inline(e)),
            },
        }
    }
    out
}
