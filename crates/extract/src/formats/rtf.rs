//! RTF: a small reader for the text of Rich Text Format files — paragraphs, outline-level
//! headings and tables (`\cell`/`\row`) — that skips font tables, pictures and other
//! non-text destinations. Group nesting is capped like every other tree format.

use encoding_rs::{Encoding, WINDOWS_1252};

use crate::document::DocBuilder;
use crate::{ExtractError, Extracted, Format, Limits};

/// Destinations whose content is not document text.
const SKIPPED: [&str; 24] = [
    "fonttbl",
    "colortbl",
    "stylesheet",
    "info",
    "pict",
    "object",
    "header",
    "headerl",
    "headerr",
    "headerf",
    "footer",
    "footerl",
    "footerr",
    "footerf",
    "generator",
    "listtable",
    "listoverridetable",
    "rsidtbl",
    "themedata",
    "colorschememapping",
    "datastore",
    "latentstyles",
    "xmlnstbl",
    "fldinst",
];

#[derive(Clone, Copy)]
struct Group {
    skip: bool,
    /// Characters to drop after a `\uN` (the `\ucN` fallback count).
    uc: usize,
}

struct State {
    doc: DocBuilder,
    para: String,
    heading: Option<u8>,
    in_table: bool,
    cells: Vec<String>,
    rows: Vec<Vec<String>>,
    pending: Vec<u8>,
    encoding: &'static Encoding,
}

impl State {
    fn flush_bytes(&mut self) {
        if !self.pending.is_empty() {
            let (text, _) = self.encoding.decode_without_bom_handling(&self.pending);
            self.para.push_str(&text);
            self.pending.clear();
        }
    }

    fn end_paragraph(&mut self) {
        self.flush_bytes();
        if self.in_table {
            self.para.push(' ');
            return;
        }
        self.flush_table();
        let text = std::mem::take(&mut self.para);
        match self.heading {
            Some(level) => self.doc.heading(level, text),
            None => self.doc.paragraph(text.trim().to_string()),
        }
    }

    fn flush_table(&mut self) {
        if !self.rows.is_empty() {
            let rows = std::mem::take(&mut self.rows);
            self.doc.table(&rows);
        }
    }
}

pub(crate) fn convert(bytes: &[u8], limits: &Limits) -> Result<Extracted, ExtractError> {
    if !bytes.starts_with(b"{\\rtf") {
        return Err(ExtractError::corrupt("RTF", "no {\\rtf header"));
    }
    let mut st = State {
        doc: DocBuilder::new(),
        para: String::new(),
        heading: None,
        in_table: false,
        cells: Vec::new(),
        rows: Vec::new(),
        pending: Vec::new(),
        encoding: WINDOWS_1252,
    };
    let mut stack = vec![Group { skip: false, uc: 1 }];
    let mut skip_chars = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let group = *stack.last().unwrap_or(&Group { skip: false, uc: 1 });
        match b {
            b'{' => {
                stack.push(group);
                if stack.len() > limits.max_depth {
                    return Err(ExtractError::TooDeep(limits.max_depth));
                }
                i += 1;
            }
            b'}' => {
                // An unbalanced `}` never closes the document group itself (found by fuzzing).
                if stack.len() > 1 {
                    stack.pop();
                }
                i += 1;
            }
            b'\\' => {
                let (word, param, next) = control(bytes, i + 1);
                i = next;
                if word == "'" {
                    if !group.skip && skip_chars == 0 {
                        st.pending.push(param.unwrap_or(0) as u8);
                    }
                    skip_chars = skip_chars.saturating_sub(1);
                    continue;
                }
                st.flush_bytes();
                let top = stack.last_mut().expect("at least the document group");
                match word.as_str() {
                    "*" => top.skip = true,
                    w if SKIPPED.contains(&w) => top.skip = true,
                    _ if group.skip => {}
                    "\\" | "{" | "}" => st.para.push_str(&word),
                    "par" | "sect" | "page" => st.end_paragraph(),
                    "line" => st.para.push('\n'),
                    "tab" => st.para.push(' '),
                    "cell" if !st.in_table => st.para.push(' '),
                    "cell" => {
                        let cell = std::mem::take(&mut st.para);
                        st.cells.push(cell.trim().to_string());
                    }
                    "row" => {
                        let row = std::mem::take(&mut st.cells);
                        st.rows.push(row);
                        st.para.clear();
                    }
                    "intbl" => st.in_table = true,
                    "pard" => {
                        st.heading = None;
                        st.in_table = false;
                    }
                    "outlinelevel" => st.heading = Some(param.unwrap_or(0).clamp(0, 5) as u8 + 1),
                    "ansicpg" => {
                        let label = match param {
                            Some(932) => "shift_jis".to_string(),
                            Some(936) => "gbk".to_string(),
                            Some(n) => format!("windows-{n}"),
                            None => String::new(),
                        };
                        st.encoding = Encoding::for_label(label.as_bytes()).unwrap_or(WINDOWS_1252);
                    }
                    "uc" => top.uc = param.unwrap_or(1).max(0) as usize,
                    "u" => {
                        let code = param.unwrap_or(0);
                        let code = if code < 0 { code + 65536 } else { code } as u32;
                        st.para.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                        skip_chars = group.uc;
                    }
                    "emdash" => st.para.push('—'),
                    "endash" => st.para.push('–'),
                    "bullet" => st.para.push('•'),
                    "lquote" => st.para.push('‘'),
                    "rquote" => st.para.push('’'),
                    "ldblquote" => st.para.push('“'),
                    "rdblquote" => st.para.push('”'),
                    "~" => st.para.push(' '),
                    _ => {}
                }
            }
            b'\r' | b'\n' => i += 1,
            _ => {
                if !group.skip {
                    if skip_chars > 0 {
                        skip_chars -= 1;
                    } else {
                        st.flush_bytes();
                        st.pending.push(b);
                    }
                }
                i += 1;
            }
        }
    }
    st.end_paragraph();
    st.in_table = false;
    st.flush_table();
    Ok(st.doc.finish(Format::Rtf))
}

/// Reads a control word or symbol after a backslash: (word, numeric parameter, next index).
fn control(bytes: &[u8], mut i: usize) -> (String, Option<i32>, usize) {
    let Some(&first) = bytes.get(i) else { return (String::new(), None, i) };
    if first == b'\'' {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        return ("'".into(), hex.map(i32::from), (i + 3).min(bytes.len()));
    }
    if !first.is_ascii_alphabetic() {
        return ((first as char).to_string(), None, i + 1);
    }
    let start = i;
    while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
        i += 1;
    }
    let word = String::from_utf8_lossy(&bytes[start..i]).into_owned();
    let num_start = i;
    if i < bytes.len() && bytes[i] == b'-' {
        i += 1;
    }
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let param = std::str::from_utf8(&bytes[num_start..i]).ok().and_then(|n| n.parse::<i32>().ok());
    if i < bytes.len() && bytes[i] == b' ' {
        i += 1;
    }
    (word, param, i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_and_code_page_escapes_decode_and_font_tables_are_skipped() {
        let rtf = br"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Times;}}caf\'e9 \u8364?5\par}";
        let doc = convert(rtf, &Limits::default()).unwrap();
        assert_eq!(doc.markdown, "caf\u{e9} \u{20ac}5");
        let deep = format!("{{\\rtf1{}x{}", "{".repeat(1000), "}".repeat(1000));
        assert!(matches!(
            convert(deep.as_bytes(), &Limits::default()),
            Err(ExtractError::TooDeep(_))
        ));
    }

    #[test]
    fn unbalanced_closing_braces_do_not_end_the_document() {
        // Found by fuzz/extract_rtf: text after a stray `}` then a control word panicked.
        let rtf = br"{\rtf1\ansi First.\par}} after\par more \b bold\b0}";
        let doc = convert(rtf, &Limits::default()).unwrap();
        assert!(doc.markdown.contains("First."), "{}", doc.markdown);
        assert!(doc.markdown.contains("bold"), "{}", doc.markdown);
    }
}
