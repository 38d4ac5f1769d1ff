//! PowerPoint (PPTX): slides in presentation order, each block carrying its slide number as
//! `page`. Title placeholders become `#` headings, text frames paragraphs, pictures
//! `![alt](ShapeName.jpg)` (markitdown's naming), tables and charts Markdown tables, speaker
//! notes a `### Notes:` section.

use std::collections::HashMap;

use crate::archive::Archive;
use crate::document::{BlockKind, DocBuilder, collapse_ws};
use crate::xml::{self, Element};
use crate::{ExtractError, Extracted, Format, Limits};

const NAME: &str = "PowerPoint (PPTX)";

type Rels = HashMap<String, (String, String)>;

pub(crate) fn convert(bytes: &[u8], limits: &Limits) -> Result<Extracted, ExtractError> {
    let mut zip = Archive::open(bytes, limits, NAME)?;
    let part = super::ooxml::main_part(&mut zip, limits, NAME, "ppt/presentation.xml")?;
    let pres = zip
        .read_string(&part)?
        .ok_or_else(|| ExtractError::corrupt(NAME, "no presentation part"))?;
    let pres = xml::parse(&pres, limits, NAME)?;
    let rels = super::ooxml::relationships(&mut zip, &part, limits, NAME)?;
    let mut ids = Vec::new();
    pres.find_all("sldId", &mut ids);
    let slides: Vec<String> = ids
        .iter()
        .filter_map(|s| rel_id(s))
        .filter_map(|id| rels.get(&id).map(|(_, p)| p.clone()))
        .collect();
    if slides.len() > limits.max_pages as usize {
        return Err(ExtractError::TooLarge {
            what: "number of slides",
            limit: limits.max_pages.to_string(),
        });
    }
    let mut doc = DocBuilder::new();
    doc.page_count = Some(slides.len() as u32);
    for (i, path) in slides.iter().enumerate() {
        doc.page = Some(i as u32 + 1);
        let Some(text) = zip.read_string(path)? else { continue };
        let slide = xml::parse(&text, limits, NAME)?;
        let slide_rels = super::ooxml::relationships(&mut zip, path, limits, NAME)?;
        if let Some(tree) = slide.find("spTree") {
            shapes(tree, &slide_rels, &mut zip, limits, &mut doc)?;
        }
        if let Some((_, notes_path)) = slide_rels.values().find(|(kind, _)| kind == "notesSlide")
            && let Some(notes) = zip.read_string(notes_path)?
        {
            let notes = xml::parse(&notes, limits, NAME)?;
            let text: Vec<String> = body_shapes(&notes)
                .filter(|sp| placeholder(sp) == Some("body"))
                .map(text_frame)
                .collect();
            let text = text.join("\n").trim().to_string();
            if !text.is_empty() {
                doc.heading(3, "Notes:");
                doc.paragraph(text);
            }
        }
    }
    Ok(doc.finish(Format::Pptx))
}

/// `r:id` of a `<p:sldId>`; the XML layer keeps only local names, so both `id`s are present
/// and the relationship one is the one that is not a number.
fn rel_id(sld: &Element) -> Option<String> {
    sld.attrs.iter().find(|(k, v)| k == "id" && v.parse::<u64>().is_err()).map(|(_, v)| v.clone())
}

fn body_shapes(root: &Element) -> impl Iterator<Item = &Element> {
    let mut out = Vec::new();
    root.find_all("sp", &mut out);
    out.into_iter()
}

fn placeholder(sp: &Element) -> Option<&str> {
    let ph = sp.child("nvSpPr")?.child("nvPr")?.child("ph")?;
    Some(ph.attr("type").unwrap_or("body"))
}

fn shapes(
    tree: &Element,
    rels: &Rels,
    zip: &mut Archive<'_>,
    limits: &Limits,
    doc: &mut DocBuilder,
) -> Result<(), ExtractError> {
    for el in tree.elements() {
        match el.name.as_str() {
            "sp" => {
                let text = text_frame(el);
                match placeholder(el) {
                    Some("title" | "ctrTitle") => {
                        let title = collapse_ws(&text);
                        if doc.title.is_none() && doc.page == Some(1) {
                            doc.title = Some(title.clone());
                        }
                        doc.heading(1, title);
                    }
                    _ => doc.paragraph(text),
                }
            }
            "pic" => {
                let pr = el.find("cNvPr");
                let name = pr.and_then(|p| p.attr("name")).unwrap_or("image");
                let alt = pr
                    .and_then(|p| p.attr("descr"))
                    .filter(|d| !d.trim().is_empty())
                    .unwrap_or(name);
                let file: String =
                    name.chars().filter(|c| c.is_alphanumeric() || *c == '_').collect();
                doc.push(BlockKind::Image, format!("![{}]({file}.jpg)", collapse_ws(alt)));
            }
            "graphicFrame" => {
                if let Some(tbl) = el.find("tbl") {
                    let rows: Vec<Vec<String>> = tbl
                        .elements()
                        .filter(|e| e.name == "tr")
                        .map(|tr| {
                            tr.elements().filter(|e| e.name == "tc").map(text_frame).collect()
                        })
                        .collect();
                    doc.table(&rows);
                } else if let Some(chart_ref) = el.find("chart").and_then(|c| c.attr("id"))
                    && let Some((_, path)) = rels.get(chart_ref)
                    && let Some(chart) = zip.read_string(path)?
                {
                    chart_table(&xml::parse(&chart, limits, NAME)?, doc);
                }
            }
            "grpSp" => shapes(el, rels, zip, limits, doc)?,
            _ => {}
        }
    }
    Ok(())
}

/// The paragraphs of a shape's text body, one per line.
fn text_frame(el: &Element) -> String {
    let mut paras = Vec::new();
    el.find_all("p", &mut paras);
    paras
        .into_iter()
        .map(|p| {
            let mut line = String::new();
            for part in p.elements() {
                match part.name.as_str() {
                    "r" | "fld" => {
                        line.push_str(&part.child("t").map(Element::text).unwrap_or_default())
                    }
                    "br" => line.push('\n'),
                    _ => {}
                }
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A chart as `### Chart: title` and a table of categories × series (markitdown's layout).
fn chart_table(chart: &Element, doc: &mut DocBuilder) {
    let title = chart.find("title").map(|t| collapse_ws(&t.text())).filter(|t| !t.is_empty());
    doc.heading(
        3,
        match title {
            Some(t) => format!("Chart: {t}"),
            None => "Chart".into(),
        },
    );
    let mut series = Vec::new();
    chart.find_all("ser", &mut series);
    let points = |el: Option<&Element>| -> Vec<String> {
        let mut pts = Vec::new();
        if let Some(el) = el {
            el.find_all("pt", &mut pts);
        }
        pts.iter().map(|p| p.child("v").map(Element::text).unwrap_or_default()).collect()
    };
    let categories = points(series.first().and_then(|s| s.child("cat")));
    let mut header = vec!["Category".to_string()];
    header.extend(series.iter().map(|s| {
        s.child("tx").and_then(|t| t.find("v")).map(|v| collapse_ws(&v.text())).unwrap_or_default()
    }));
    let values: Vec<Vec<String>> = series.iter().map(|s| points(s.child("val"))).collect();
    let mut rows = vec![header];
    for (i, cat) in categories.iter().enumerate() {
        let mut row = vec![cat.clone()];
        row.extend(values.iter().map(|v| v.get(i).cloned().unwrap_or_default()));
        rows.push(row);
    }
    doc.table(&rows);
}
