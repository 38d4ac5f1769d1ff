//! RSS 2.0 / Atom / RSS 1.0 feeds: `# Feed title`, then per item `## Item title`, its date and
//! its HTML description converted to Markdown (markitdown's layout). No raw XML leaks through.

use crate::document::{DocBuilder, collapse_ws};
use crate::xml::{self, Element};
use crate::{ExtractError, Extracted, Format, Limits};

const NAME: &str = "RSS/Atom feed";

pub(crate) fn convert(bytes: &[u8], limits: &Limits) -> Result<Extracted, ExtractError> {
    let text = crate::text::decode(bytes);
    let root = xml::parse(&text, limits, NAME)?;
    let top =
        root.elements().next().ok_or_else(|| ExtractError::corrupt(NAME, "no root element"))?;
    let (channel, items): (&Element, Vec<&Element>) = match top.name.as_str() {
        "rss" => {
            let channel =
                top.child("channel").ok_or_else(|| ExtractError::corrupt(NAME, "no channel"))?;
            (channel, channel.elements().filter(|e| e.name == "item").collect())
        }
        "RDF" => {
            let channel = top.child("channel").unwrap_or(top);
            (channel, top.elements().filter(|e| e.name == "item").collect())
        }
        "feed" => (top, top.elements().filter(|e| e.name == "entry").collect()),
        other => {
            return Err(ExtractError::corrupt(
                NAME,
                format!("root element <{other}> is not a feed"),
            ));
        }
    };
    let field = |el: &Element, names: &[&str]| -> Option<String> {
        names.iter().find_map(|n| el.child(n)).map(|e| e.text()).filter(|t| !t.trim().is_empty())
    };
    let mut doc = DocBuilder::new();
    if let Some(title) = field(channel, &["title"]) {
        doc.title = Some(collapse_ws(&title));
        doc.heading(1, title);
    }
    if let Some(desc) = field(channel, &["description", "subtitle"]) {
        doc.markdown(&super::html::to_markdown(&desc));
    }
    for item in items {
        if let Some(title) = field(item, &["title"]) {
            doc.heading(2, title);
        }
        if let Some(date) = field(item, &["pubDate", "published", "updated", "date"]) {
            doc.paragraph(format!("Published on: {}", collapse_ws(&date)));
        }
        // Prefer the full content over the summary; both are HTML.
        if let Some(body) = field(item, &["encoded", "content", "description", "summary"]) {
            super::html::check_html_depth(&body, limits.max_depth)?;
            doc.markdown(&super::html::to_markdown(&body));
        }
    }
    Ok(doc.finish(Format::Feed))
}
