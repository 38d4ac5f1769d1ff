//! E-mail: RFC 822 (`.eml`, via mail-parser) and Outlook (`.msg`, via the compound-file
//! streams), both rendered markitdown-style: `# Email Message`, `**From:**`, `**To:**`,
//! `**Subject:**`, then `## Content`.

use std::io::{Cursor, Read};

use crate::document::DocBuilder;
use crate::{ExtractError, Extracted, Format, Limits};

pub(crate) fn eml(bytes: &[u8]) -> Result<Extracted, ExtractError> {
    let message = mail_parser::MessageParser::default()
        .parse(bytes)
        .ok_or_else(|| ExtractError::corrupt("e-mail (EML)", "no message headers found"))?;
    let address = |a: Option<&mail_parser::Address<'_>>| -> Option<String> {
        let list: Vec<String> = a?
            .iter()
            .map(|addr| match (addr.name(), addr.address()) {
                (Some(n), Some(e)) => format!("{n} <{e}>"),
                (None, Some(e)) => e.to_string(),
                (Some(n), None) => n.to_string(),
                (None, None) => String::new(),
            })
            .filter(|s| !s.is_empty())
            .collect();
        (!list.is_empty()).then(|| list.join(", "))
    };
    let headers = [
        ("From", address(message.from())),
        ("To", address(message.to())),
        ("Cc", address(message.cc())),
        ("Subject", message.subject().map(str::to_string)),
        ("Date", message.date().map(|d| d.to_rfc3339())),
    ];
    let body = match message.body_text(0) {
        Some(text) => text.into_owned(),
        None => message.body_html(0).map(|h| super::html::to_markdown(&h)).unwrap_or_default(),
    };
    Ok(render(&headers, &body, message.subject(), Format::Eml))
}

pub(crate) fn msg(bytes: &[u8], limits: &Limits) -> Result<Extracted, ExtractError> {
    const NAME: &str = "Outlook (MSG)";
    let mut file =
        cfb::CompoundFile::open(Cursor::new(bytes)).map_err(|e| ExtractError::corrupt(NAME, e))?;
    let mut prop = |id: &str| -> Option<String> {
        // 001F = UTF-16LE string, 001E = 8-bit string in the message's code page.
        for (suffix, wide) in [("001F", true), ("001E", false)] {
            let Ok(mut stream) = file.open_stream(format!("/__substg1.0_{id}{suffix}")) else {
                continue;
            };
            let mut data = Vec::new();
            if (&mut stream).take(limits.max_input_bytes).read_to_end(&mut data).is_err() {
                continue;
            }
            let text = if wide {
                let units: Vec<u16> =
                    data.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
                String::from_utf16_lossy(&units)
            } else {
                crate::text::decode(&data)
            };
            return Some(text.trim_end_matches('\0').to_string());
        }
        None
    };
    let subject = prop("0037");
    let headers = [
        ("From", prop("0C1F").or_else(|| prop("0065"))),
        ("To", prop("0E04")),
        ("Cc", prop("0E03")),
        ("Subject", subject.clone()),
    ];
    let body = match prop("1000") {
        Some(text) => text,
        None => prop("1013").map(|h| super::html::to_markdown(&h)).unwrap_or_default(),
    };
    if headers.iter().all(|(_, v)| v.is_none()) && body.is_empty() {
        return Err(ExtractError::corrupt(NAME, "no message properties found"));
    }
    Ok(render(&headers, &body, subject.as_deref(), Format::Msg))
}

fn render(
    headers: &[(&str, Option<String>)],
    body: &str,
    subject: Option<&str>,
    format: Format,
) -> Extracted {
    let mut doc = DocBuilder::new();
    doc.title = subject.map(str::to_string);
    doc.heading(1, "Email Message");
    let lines: Vec<String> = headers
        .iter()
        .filter_map(|(k, v)| {
            v.as_ref().filter(|v| !v.trim().is_empty()).map(|v| format!("**{k}:** {}", v.trim()))
        })
        .collect();
    doc.paragraph(lines.join("\n"));
    doc.heading(2, "Content");
    let body = body.replace("\r\n", "\n");
    for para in body.split("\n\n") {
        doc.paragraph(para);
    }
    doc.title = doc.title.take().or(Some("Email Message".into()));
    doc.finish(format)
}
