//! A small XML tree for the Office/OpenDocument/EPUB/feed readers, built with quick-xml under
//! depth and node-count limits. Names are kept without their namespace prefix.

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::{ExtractError, Limits};

/// An XML element.
#[derive(Debug, Default, Clone)]
pub(crate) struct Element {
    /// Local name (`p` for `<w:p>`).
    pub name: String,
    /// Attributes by local name, values unescaped.
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    /// An attribute by local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child element with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    /// The first descendant (depth-first, self excluded) with this local name.
    pub fn find(&self, name: &str) -> Option<&Element> {
        for e in self.elements() {
            if e.name == name {
                return Some(e);
            }
            if let Some(found) = e.find(name) {
                return Some(found);
            }
        }
        None
    }

    /// All descendants with this local name, in document order, not descending into matches.
    pub fn find_all<'a>(&'a self, name: &str, out: &mut Vec<&'a Element>) {
        for e in self.elements() {
            if e.name == name {
                out.push(e);
            } else {
                e.find_all(name, out);
            }
        }
    }

    /// All text below this element, concatenated.
    pub fn text(&self) -> String {
        let mut s = String::new();
        self.collect_text(&mut s);
        s
    }

    fn collect_text(&self, out: &mut String) {
        for n in &self.children {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Element(e) => e.collect_text(out),
            }
        }
    }
}

/// Parses `xml` into a tree whose root is a synthetic element holding the document element.
pub(crate) fn parse(
    xml: &str,
    limits: &Limits,
    format: &'static str,
) -> Result<Element, ExtractError> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = false;
    let mut stack: Vec<Element> = vec![Element::default()];
    let mut nodes = 0usize;
    loop {
        let event = reader.read_event().map_err(|e| ExtractError::corrupt(format, e))?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                nodes += 1;
                if nodes > limits.max_xml_nodes {
                    return Err(ExtractError::TooLarge {
                        what: "number of XML elements",
                        limit: limits.max_xml_nodes.to_string(),
                    });
                }
                let el = Element {
                    name: local(start.name().as_ref()),
                    attrs: attrs(start),
                    children: Vec::new(),
                };
                if matches!(event, Event::Empty(_)) {
                    push_child(&mut stack, Node::Element(el));
                } else {
                    stack.push(el);
                    if stack.len() > limits.max_depth {
                        return Err(ExtractError::TooDeep(limits.max_depth));
                    }
                }
            }
            Event::End(_) if stack.len() > 1 => {
                let el = stack.pop().unwrap_or_default();
                push_child(&mut stack, Node::Element(el));
            }
            Event::Text(t) => {
                let text = t.decode().map_err(|e| ExtractError::corrupt(format, e))?;
                push_text(&mut stack, &text);
            }
            Event::CData(t) => {
                let text = t.decode().map_err(|e| ExtractError::corrupt(format, e))?;
                push_text(&mut stack, &text);
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => {
                        let name = r.decode().map_err(|e| ExtractError::corrupt(format, e))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .unwrap_or("")
                            .to_string()
                    }
                };
                push_text(&mut stack, &resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    // Unclosed elements (truncated files) are folded in rather than lost.
    while stack.len() > 1 {
        let el = stack.pop().unwrap_or_default();
        push_child(&mut stack, Node::Element(el));
    }
    Ok(stack.pop().unwrap_or_default())
}

fn push_child(stack: &mut [Element], node: Node) {
    if let Some(top) = stack.last_mut() {
        top.children.push(node);
    }
}

fn push_text(stack: &mut [Element], text: &str) {
    if let Some(top) = stack.last_mut() {
        if let Some(Node::Text(prev)) = top.children.last_mut() {
            prev.push_str(text);
        } else {
            top.children.push(Node::Text(text.to_string()));
        }
    }
}

fn local(qname: &[u8]) -> String {
    let name = String::from_utf8_lossy(qname);
    match name.rsplit_once(':') {
        Some((_, l)) => l.to_string(),
        None => name.into_owned(),
    }
}

fn attrs(start: &quick_xml::events::BytesStart<'_>) -> Vec<(String, String)> {
    start
        .attributes()
        .with_checks(false)
        .filter_map(Result::ok)
        .map(|a| {
            let value = a
                .unescape_value()
                .map(|v| v.into_owned())
                .unwrap_or_else(|_| String::from_utf8_lossy(&a.value).into_owned());
            (local(a.key.as_ref()), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_and_prefixes_are_resolved_and_depth_is_capped() {
        let root = parse(
            "<w:d><w:p a:x='1 &amp; 2'>A &amp; B &#65;</w:p></w:d>",
            &Limits::default(),
            "XML",
        )
        .unwrap();
        let p = root.find("p").unwrap();
        assert_eq!(p.text(), "A & B A");
        assert_eq!(p.attr("x"), Some("1 & 2"));
        let deep = "<a>".repeat(1000);
        assert!(matches!(parse(&deep, &Limits::default(), "XML"), Err(ExtractError::TooDeep(_))));
    }
}
