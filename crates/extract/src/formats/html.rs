//! HTML: the main content is found with dom_smoothie (a Readability port) and converted to
//! Markdown with htmd; page chrome (navigation, headers, footers, scripts) is dropped.

use crate::document::DocBuilder;
use crate::text::decode;
use crate::{ExtractError, Extracted, Format, Limits};

/// Tags that never carry document content.
const CHROME: [&str; 12] = [
    "script", "style", "noscript", "nav", "header", "footer", "aside", "form", "iframe", "svg",
    "template", "head",
];

pub(crate) fn convert(bytes: &[u8], limits: &Limits) -> Result<Extracted, ExtractError> {
    let html = decode(bytes);
    check_html_depth(&html, limits.max_depth)?;
    let (title, md) = main_content(&html);
    let mut doc = DocBuilder::new();
    doc.title = title;
    doc.markdown(&md);
    Ok(doc.finish(Format::Html))
}

/// The page's title and its main content as Markdown; falls back to the whole body without
/// chrome when Readability finds no article (short pages, listings).
pub(crate) fn main_content(html: &str) -> (Option<String>, String) {
    let article =
        dom_smoothie::Readability::new(html, None, None).ok().and_then(|mut r| r.parse().ok());
    match article {
        Some(article) if article.length > 0 => {
            let title = Some(article.title.clone()).filter(|t| !t.trim().is_empty());
            let md = to_markdown(&article.content);
            if md.trim().is_empty() { (title, to_markdown(html)) } else { (title, md) }
        }
        _ => (None, to_markdown(html)),
    }
}

/// Converts an HTML fragment or page to Markdown, skipping chrome; images keep only their
/// name (no inline `data:` payloads).
pub(crate) fn to_markdown(html: &str) -> String {
    let options =
        htmd::options::Options { ul_bullet_spacing: 1, ol_number_spacing: 1, ..Default::default() };
    let converter =
        htmd::HtmlToMarkdown::builder().options(options).skip_tags(CHROME.to_vec()).build();
    let md = converter.convert(html).unwrap_or_default();
    strip_data_uris(&md)
}

/// Replaces `data:<mime>;base64,<payload>` with `data:<mime>;base64...` (markitdown's form).
pub(crate) fn strip_data_uris(md: &str) -> String {
    let mut out = String::with_capacity(md.len());
    let mut rest = md;
    while let Some(pos) = rest.find("data:") {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        match tail.find(";base64,") {
            Some(b) if b < 64 && !tail[..b].contains([' ', ')']) => {
                out.push_str(&tail[..b]);
                out.push_str(";base64...");
                let payload = &tail[b + 8..];
                let end = payload.find([')', '"', ' ', '\n']).unwrap_or(payload.len());
                rest = &payload[end..];
            }
            _ => {
                out.push_str("data:");
                rest = &tail[5..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Rejects markup nested deeper than `max` levels before a recursive tree walker sees it.
/// Elements that are usually left unclosed (`p`, `li`, void tags…) are not counted.
pub(crate) fn check_html_depth(html: &str, max: usize) -> Result<(), ExtractError> {
    const UNCOUNTED: [&str; 24] = [
        "p", "li", "td", "th", "tr", "dt", "dd", "option", "br", "hr", "img", "input", "meta",
        "link", "area", "base", "col", "embed", "param", "source", "track", "wbr", "html", "body",
    ];
    let bytes = html.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(off) = bytes[i..].iter().position(|b| *b == b'<') {
        i += off + 1;
        let closing = bytes.get(i) == Some(&b'/');
        let start = if closing { i + 1 } else { i };
        let len = bytes[start..].iter().take_while(|b| b.is_ascii_alphanumeric()).count();
        if len == 0 {
            continue;
        }
        let name = html[start..start + len].to_ascii_lowercase();
        if UNCOUNTED.contains(&name.as_str()) {
            continue;
        }
        let tag_end = bytes[start..].iter().position(|b| *b == b'>').map(|p| start + p);
        let self_closing = tag_end.is_some_and(|e| e > 0 && bytes[e - 1] == b'/');
        if closing {
            depth = depth.saturating_sub(1);
        } else if !self_closing {
            depth += 1;
            if depth > max {
                return Err(ExtractError::TooDeep(max));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_uris_are_truncated_and_deep_markup_is_refused() {
        assert_eq!(
            strip_data_uris("![a](data:image/png;base64,iVBORw0KG)"),
            "![a](data:image/png;base64...)"
        );
        assert!(check_html_depth(&"<div>".repeat(300), 256).is_err());
        assert!(check_html_depth(&"<div></div>".repeat(3000), 256).is_ok());
    }
}
