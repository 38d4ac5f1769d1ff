//! The instant mode: fixed answers rendered once and served by reference count, so the fake
//! costs as little as possible per request when benchmarking the platform's own overhead.

use std::sync::LazyLock;

use axum::body::Body;
use axum::http::header;
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;

use crate::answer::{Answer, Plan};
use crate::render::{Protocol, render};

/// Only the field the instant mode needs; serde skips the rest without allocating.
#[derive(Deserialize)]
struct StreamFlag {
    #[serde(default)]
    stream: bool,
}

struct Canned {
    content_type: &'static str,
    body: Bytes,
}

const TEXT: &str = "OK.";

fn canned(protocol: Protocol, stream: bool) -> Canned {
    let answer = Answer {
        text: vec![TEXT.to_owned()],
        calls: Vec::new(),
        interleave: false,
        usage: (10, 2),
        model: "fake-model".to_owned(),
        cut_after: None,
        chunk_delay: std::time::Duration::ZERO,
    };
    let wire = render(protocol, Plan::Answer(answer), stream, true, 0);
    let body: Vec<u8> = wire.frames.iter().flat_map(|f| f.iter().copied()).collect();
    Canned { content_type: wire.content_type, body: body.into() }
}

static CANNED: LazyLock<[Canned; 4]> = LazyLock::new(|| {
    [
        canned(Protocol::OpenAi, false),
        canned(Protocol::OpenAi, true),
        canned(Protocol::Anthropic, false),
        canned(Protocol::Anthropic, true),
    ]
});

/// Answers instantly with the canned reply for the protocol and streaming flag.
pub(crate) fn respond(protocol: Protocol, body: &[u8]) -> Response {
    let stream = serde_json::from_slice::<StreamFlag>(body).is_ok_and(|f| f.stream);
    let i = match protocol {
        Protocol::OpenAi => 0,
        Protocol::Anthropic => 2,
    } + usize::from(stream);
    let canned = &CANNED[i];
    let mut resp = Response::new(Body::from(canned.body.clone()));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(canned.content_type));
    resp
}
