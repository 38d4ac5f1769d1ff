//! A small incremental Server-Sent Events parser (the WHATWG event-stream format).
//!
//! Bytes arrive in arbitrary network chunks: a `data:` line, or even one UTF-8 character, may be
//! split across two chunks, so the parser keeps the unfinished line until its end arrives.
//! Comments (`: keep-alive`) and unknown fields are skipped; `id`/`retry` do not matter here.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, when one was given (Anthropic names every event; OpenAI none).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental parser: feed it chunks, get back the events they completed.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// Whether the last byte seen was `\r` (so a following `\n` belongs to the same line end).
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes a chunk and appends the events it completed to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) {
        for &b in chunk {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.on_line(&line, out);
                }
                _ => {
                    self.after_cr = false;
                    self.line.push(b);
                }
            }
        }
    }

    /// Ends the stream: an event without its closing blank line is dropped, as the spec says.
    /// Returns whether unparsed bytes were pending (a sign the stream was cut).
    pub fn finish(&mut self) -> bool {
        let pending = !self.line.is_empty() || self.data.is_some();
        self.line.clear();
        self.data = None;
        self.event = None;
        pending
    }

    fn on_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(SseEvent { event: self.event.take(), data });
            }
            self.event = None;
            return;
        }
        if line[0] == b':' {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.find(':') {
            Some(i) => {
                let v = &text[i + 1..];
                (&text[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&text[..], ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "event" => self.event = Some(value.to_owned()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.push(c, &mut out);
        }
        out
    }

    #[test]
    fn data_lines_split_across_chunks_are_joined() {
        let ev = parse_chunks(&[b"da", b"ta: {\"a\":", b"1}\n", b"\n", b"data: [DONE]\n\n"]);
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].data, "{\"a\":1}");
        assert_eq!(ev[1].data, "[DONE]");
    }

    #[test]
    fn comments_and_crlf_and_event_names_are_handled() {
        let ev = parse_chunks(&[b": keep-alive\r\n\r\nevent: ping\r", b"\ndata: {}\r\n\r\n"]);
        assert_eq!(ev, vec![SseEvent { event: Some("ping".into()), data: "{}".into() }]);
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines_and_utf8_split_survives() {
        let snow = "☃".as_bytes();
        let ev = parse_chunks(&[b"data: a\ndata:", &snow[..1], &snow[1..], b"\n\n"]);
        assert_eq!(ev[0].data, "a\n☃");
    }

    #[test]
    fn an_unterminated_event_is_reported_as_pending() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.push(b"data: {\"partial\"", &mut out);
        assert!(out.is_empty());
        assert!(p.finish());
    }
}
