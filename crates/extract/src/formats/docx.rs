//! Word (DOCX): paragraphs with heading styles become `#` headings, lists `*`/`1.` items,
//! tables Markdown tables, images `![alt](data:image/png;base64...)` (markitdown's form,
//! never the payload), runs keep **bold** and *italic*.

use std::collections::HashMap;

use crate::archive::Archive;
use crate::document::{BlockKind, DocBuilder, collapse_ws};
use crate::xml::{self, Element};
use crate::{ExtractError, Extracted, Format, Limits};

const NAME: &str = "Word (DOCX)";

/// What a paragraph style means to us.
#[derive(Clone, Copy)]
enum StyleRole {
    Title,
    Heading(u8),
}

struct Ctx {
    styles: HashMap<String, StyleRole>,
    rels: HashMap<String, (String, String)>,
    /// numId → whether level 0 is a bullet list.
    bullets: HashMap<String, bool>,
}

pub(crate) fn convert(bytes: &[u8], limits: &Limits) -> Result<Extracted, ExtractError> {
    let mut zip = Archive::open(bytes, limits, NAME)?;
    let part = super::ooxml::main_part(&mut zip, limits, NAME, "word/document.xml")?;
    let body_xml =
        zip.read_string(&part)?.ok_or_else(|| ExtractError::corrupt(NAME, "no document part"))?;
    let ctx = Ctx {
        styles: match zip.read_string("word/styles.xml")? {
            Some(s) => styles(&xml::parse(&s, limits, NAME)?),
            None => HashMap::new(),
        },
        rels: super::ooxml::relationships(&mut zip, &part, limits, NAME)?,
        bullets: match zip.read_string("word/numbering.xml")? {
            Some(s) => numbering(&xml::parse(&s, limits, NAME)?),
            None => HashMap::new(),
        },
    };
    let root = xml::parse(&body_xml, limits, NAME)?;
    let body = root.find("body").ok_or_else(|| ExtractError::corrupt(NAME, "no document body"))?;
    let mut doc = DocBuilder::new();
    if let Some(core) = zip.read_string("docProps/core.xml")? {
        doc.title = xml::parse(&core, limits, NAME)?.find("title").map(Element::text);
    }
    blocks(body, &ctx, &mut doc);
    Ok(doc.finish(Format::Docx))
}

fn blocks(container: &Element, ctx: &Ctx, doc: &mut DocBuilder) {
    for el in container.elements() {
        match el.name.as_str() {
            "p" => paragraph(el, ctx, doc),
            "tbl" => table(el, ctx, doc),
            "sdt" | "sdtContent" | "customXml" | "ins" | "smartTag" => blocks(el, ctx, doc),
            _ => {}
        }
    }
}

fn paragraph(p: &Element, ctx: &Ctx, doc: &mut DocBuilder) {
    let mut text = String::new();
    inline(p, ctx, &mut text);
    let props = p.child("pPr");
    let role = props
        .and_then(|pr| pr.child("pStyle"))
        .and_then(|s| s.attr("val"))
        .and_then(|id| ctx.styles.get(id).copied())
        .or_else(|| {
            props
                .and_then(|pr| pr.child("outlineLvl"))
                .and_then(|o| o.attr("val"))
                .and_then(|v| v.parse::<u8>().ok())
                .map(|l| StyleRole::Heading(l + 1))
        });
    match role {
        Some(StyleRole::Title) => {
            let title = collapse_ws(&strip_emphasis(&text));
            if doc.title.is_none() {
                doc.title = Some(title.clone());
            }
            doc.heading(1, title);
        }
        Some(StyleRole::Heading(level)) => doc.heading(level, strip_emphasis(&text)),
        None => {
            if let Some(num) = props.and_then(|pr| pr.child("numPr")) {
                let level = num
                    .child("ilvl")
                    .and_then(|l| l.attr("val"))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                let id = num.child("numId").and_then(|n| n.attr("val")).unwrap_or("");
                let marker = if ctx.bullets.get(id).copied().unwrap_or(true) { "*" } else { "1." };
                let item = format!("{}{marker} {}", "  ".repeat(level.min(8)), text.trim());
                append_list_item(doc, item);
            } else {
                let kind = if text.trim_start().starts_with("![") && text.trim_end().ends_with(')')
                {
                    BlockKind::Image
                } else {
                    BlockKind::Paragraph
                };
                doc.push(kind, text);
            }
        }
    }
}

/// Consecutive list paragraphs form one list block.
fn append_list_item(doc: &mut DocBuilder, item: String) {
    if let Some(last) = doc.blocks.last_mut()
        && last.kind == BlockKind::List
        && last.page == doc.page
    {
        last.text.push('\n');
        last.text.push_str(&item);
        return;
    }
    doc.push(BlockKind::List, item);
}

/// Collects the text of runs, hyperlinks, fields and math below `el`.
fn inline(el: &Element, ctx: &Ctx, out: &mut String) {
    for child in el.elements() {
        match child.name.as_str() {
            "r" => run(child, ctx, out),
            "pPr" | "rPr" | "del" | "commentRangeStart" | "commentRangeEnd" | "proofErr"
            | "bookmarkStart" | "bookmarkEnd" => {}
            "t" => out.push_str(&child.text()),
            "drawing" | "pict" => image(child, ctx, out),
            _ => inline(child, ctx, out),
        }
    }
}

fn run(r: &Element, ctx: &Ctx, out: &mut String) {
    let props = r.child("rPr");
    let on = |name: &str| {
        props
            .and_then(|p| p.child(name))
            .is_some_and(|e| !matches!(e.attr("val"), Some("0" | "false" | "none")))
    };
    let mut text = String::new();
    for child in r.elements() {
        match child.name.as_str() {
            "t" => text.push_str(&child.text()),
            "tab" => text.push('\t'),
            "br" | "cr" => text.push('\n'),
            "drawing" | "pict" | "object" => image(child, ctx, &mut text),
            "rPr" => {}
            _ => inline(child, ctx, &mut text),
        }
    }
    let marker = match (on("b"), on("i")) {
        (true, true) => "***",
        (true, false) => "**",
        (false, true) => "*",
        _ => "",
    };
    let core = text.trim();
    if marker.is_empty() || core.is_empty() || core.starts_with("![") {
        out.push_str(&text);
        return;
    }
    // Markers hug the words: "** bold **" would not render as bold.
    let lead = &text[..text.len() - text.trim_start().len()];
    let trail = &text[text.trim_end().len()..];
    out.push_str(&format!("{lead}{marker}{core}{marker}{trail}"));
}

fn image(el: &Element, ctx: &Ctx, out: &mut String) {
    let alt = el.find("docPr").and_then(|d| d.attr("descr").or(d.attr("title"))).unwrap_or("");
    let target = el
        .find("blip")
        .and_then(|b| b.attr("embed"))
        .or_else(|| el.find("imagedata").and_then(|i| i.attr("id")))
        .and_then(|id| ctx.rels.get(id))
        .map(|(_, path)| path.as_str());
    if let Some(path) = target {
        out.push_str(&format!(
            "![{}](data:{};base64...)",
            collapse_ws(alt),
            super::ooxml::image_mime(path)
        ));
    }
}

fn table(tbl: &Element, ctx: &Ctx, doc: &mut DocBuilder) {
    let rows: Vec<Vec<String>> = tbl
        .elements()
        .filter(|e| e.name == "tr")
        .map(|tr| {
            tr.elements()
                .filter(|e| e.name == "tc")
                .map(|tc| {
                    let mut cell = String::new();
                    for p in tc.elements().filter(|e| e.name == "p") {
                        if !cell.is_empty() {
                            cell.push(' ');
                        }
                        inline(p, ctx, &mut cell);
                    }
                    cell
                })
                .collect()
        })
        .collect();
    doc.table(&rows);
}

fn strip_emphasis(s: &str) -> String {
    s.replace("**", "").replace('*', "")
}

/// styleId → role, from style names ("heading 1", "Title") or outline levels.
fn styles(root: &Element) -> HashMap<String, StyleRole> {
    let mut all = Vec::new();
    root.find_all("style", &mut all);
    all.into_iter()
        .filter_map(|s| {
            let id = s.attr("styleId")?;
            let name =
                s.child("name").and_then(|n| n.attr("val")).unwrap_or(id).to_ascii_lowercase();
            let role = if name == "title" {
                StyleRole::Title
            } else if let Some(n) =
                name.strip_prefix("heading ").and_then(|n| n.trim().parse::<u8>().ok())
            {
                StyleRole::Heading(n)
            } else {
                let lvl = s.child("pPr")?.child("outlineLvl")?.attr("val")?.parse::<u8>().ok()?;
                StyleRole::Heading(lvl + 1)
            };
            Some((id.to_string(), role))
        })
        .collect()
}

/// numId → "level 0 is a bullet".
fn numbering(root: &Element) -> HashMap<String, bool> {
    let mut abstracts = HashMap::new();
    for a in root
        .elements()
        .flat_map(|r| r.elements())
        .chain(root.elements())
        .filter(|e| e.name == "abstractNum")
    {
        let bullet = a
            .elements()
            .find(|l| l.name == "lvl" && l.attr("ilvl") == Some("0"))
            .and_then(|l| l.child("numFmt"))
            .and_then(|f| f.attr("val"))
            .is_none_or(|v| v == "bullet");
        if let Some(id) = a.attr("abstractNumId") {
            abstracts.insert(id.to_string(), bullet);
        }
    }
    let mut nums = Vec::new();
    root.find_all("num", &mut nums);
    nums.into_iter()
        .filter_map(|n| {
            let abs = n.child("abstractNumId")?.attr("val")?;
            Some((n.attr("numId")?.to_string(), abstracts.get(abs).copied().unwrap_or(true)))
        })
        .collect()
}
