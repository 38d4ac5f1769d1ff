//! A scripted fake LLM server speaking the OpenAI Chat Completions and Anthropic Messages
//! protocols over real HTTP with real SSE framing, for tests and benchmarks.
//!
//! ```no_run
//! # async fn demo() {
//! use fakellm::{FakeLlm, Reply};
//! let fake = FakeLlm::start().await;          // http://127.0.0.1:<port>
//! fake.push(Reply::text("Hello!").in_chunks(3));
//! fake.push(Reply::tool_call("search", r#"{"q":"refunds"}"#));
//! // point an OpenAI client at fake.base_url (…/v1), an Anthropic one at fake.root_url
//! let seen = fake.requests();                 // every request, for assertions
//! # }
//! ```
//!
//! Each chat request takes the next scripted [`Reply`]; with the queue empty, the server echoes
//! (see [`Mode::Echo`]). [`Mode::Instant`] answers a fixed reply without recording anything,
//! for load benchmarks. A fake in another process (the `fakellm` binary) is scripted over HTTP
//! through the control API described in [`ReplySpec`]'s module (`/_fakellm/replies`,
//! `/_fakellm/requests`, `/_fakellm/reset`).

mod answer;
mod control;
mod instant;
mod render;
mod script;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use control::ReplySpec;
pub use script::{Reply, ScriptedCall};

use crate::render::Protocol;

/// What the server does when the script is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Scripted replies first; then a deterministic echo: `Echo: <last user message>`, a call
    /// of any offered tool the last user message names (required arguments filled from the
    /// message), or `Tool result: <content>` right after a tool result. Records requests.
    #[default]
    Echo,
    /// Always the same short answer, precomputed, nothing recorded: for throughput benchmarks.
    Instant,
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Path and query, e.g. `/v1/chat/completions?api-version=1` or `/v1/messages`.
    pub path: String,
    /// Headers with lower-case names (auth headers included, so tests can check BYOK).
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: Value,
}

impl RecordedRequest {
    /// First value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
    /// The requested model.
    pub fn model(&self) -> &str {
        self.body.get("model").and_then(Value::as_str).unwrap_or("")
    }
    /// The `messages` array (empty when absent).
    pub fn messages(&self) -> &[Value] {
        self.body.get("messages").and_then(Value::as_array).map_or(&[], Vec::as_slice)
    }
    /// The `tools` array (empty when absent).
    pub fn tools(&self) -> &[Value] {
        self.body.get("tools").and_then(Value::as_array).map_or(&[], Vec::as_slice)
    }
    /// Whether streaming was asked for.
    pub fn is_stream(&self) -> bool {
        self.body.get("stream").and_then(Value::as_bool).unwrap_or(false)
    }
}

struct Shared {
    mode: Mode,
    /// Instant mode only: how long to wait before answering (0: at once).
    instant_delay: Duration,
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<RecordedRequest>>,
    seq: AtomicU64,
}

/// A running fake server; stops when dropped.
pub struct FakeLlm {
    /// OpenAI-style base URL, ending in `/v1` (append `/chat/completions`).
    pub base_url: String,
    /// The server root (`http://127.0.0.1:<port>`), e.g. an Anthropic base URL.
    pub root_url: String,
    /// Bound address.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FakeLlm {
    /// Starts an echo-mode server on `127.0.0.1:0`.
    pub async fn start() -> Self {
        Self::start_with(Mode::Echo).await
    }

    /// Starts a server in `mode` on `127.0.0.1:0`.
    pub async fn start_with(mode: Mode) -> Self {
        let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
        Self::bind(addr, mode).await.expect("bind 127.0.0.1:0 for the fake LLM")
    }

    /// Starts a server in `mode` on `addr`.
    pub async fn bind(addr: SocketAddr, mode: Mode) -> std::io::Result<Self> {
        Self::bind_with_delay(addr, mode, Duration::ZERO).await
    }

    /// Starts a server in `mode` on `addr`; in [`Mode::Instant`], every answer waits `delay`
    /// first (a model that takes its time: holds requests open for idle-stream benchmarks).
    pub async fn bind_with_delay(
        addr: SocketAddr,
        mode: Mode,
        delay: Duration,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            mode,
            instant_delay: delay,
            script: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
            seq: AtomicU64::new(0),
        });
        let app = router(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("fakellm: server stopped: {e}");
            }
        });
        let root_url = format!("http://{addr}");
        Ok(Self { base_url: format!("{root_url}/v1"), root_url, addr, shared, task })
    }

    /// Queues a reply for the next chat request.
    pub fn push(&self, reply: Reply) {
        lock(&self.shared.script).push_back(reply);
    }

    /// Queues several replies, in order.
    pub fn push_all(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.shared.script).extend(replies);
    }

    /// Scripted replies not yet served.
    pub fn pending(&self) -> usize {
        lock(&self.shared.script).len()
    }

    /// Every chat request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// How many chat requests were received.
    pub fn request_count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// Waits until the server finishes (for the binary).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking test thread must not hide the recorded requests from the others.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai_chat))
        .route("/chat/completions", post(openai_chat))
        .route("/v1/messages", post(anthropic_messages))
        .route("/v1/models", get(models))
        .route("/models", get(models))
        .route("/_fakellm/replies", post(control::push_replies))
        .route("/_fakellm/requests", get(control::recorded))
        .route("/_fakellm/reset", post(control::reset))
        .with_state(shared)
}

async fn models() -> Response {
    let body = json!({"object": "list", "data": [
        {"id": "fake-model", "object": "model", "created": 1_700_000_000u64, "owned_by": "fakellm"}]});
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn openai_chat(
    State(s): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    chat(s, Protocol::OpenAi, &uri, headers, body).await
}

async fn anthropic_messages(
    State(s): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    chat(s, Protocol::Anthropic, &uri, headers, body).await
}

async fn chat(
    s: Arc<Shared>,
    protocol: Protocol,
    uri: &Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if s.mode == Mode::Instant {
        if !s.instant_delay.is_zero() {
            tokio::time::sleep(s.instant_delay).await;
        }
        return instant::respond(protocol, &body);
    }
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        let err = json!({"error": {"message": "request body is not JSON", "type": "invalid_request_error"}});
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            err.to_string(),
        )
            .into_response();
    };
    let conv = match protocol {
        Protocol::OpenAi => answer::from_openai(&json),
        Protocol::Anthropic => answer::from_anthropic(&json),
    };
    let recorded = RecordedRequest {
        path: uri.path_and_query().map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned()),
        headers: headers
            .iter()
            .map(|(n, v)| {
                (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())
            })
            .collect(),
        body: json,
    };
    lock(&s.requests).push(recorded);
    let reply = lock(&s.script).pop_front();
    let seq = s.seq.fetch_add(1, Ordering::Relaxed);
    let (plan, delay) = answer::plan(&conv, reply);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let wire = render::render(protocol, plan, conv.stream, conv.include_usage, seq);
    into_response(wire)
}

fn into_response(wire: render::Wire) -> Response {
    let mut builder = Response::builder()
        .status(wire.status)
        .header(header::CONTENT_TYPE, wire.content_type)
        .header(header::CACHE_CONTROL, "no-cache");
    if let Some(secs) = wire.retry_after {
        builder = builder.header(header::RETRY_AFTER, secs.to_string());
    }
    let delay = wire.chunk_delay;
    let abort = wire.abort;
    let frames = futures::stream::iter(wire.frames.into_iter().enumerate()).then(
        move |(i, frame)| async move {
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok::<_, std::io::Error>(frame)
        },
    );
    let body = if abort {
        let cut = futures::stream::once(async {
            // Let the frames already written reach the client before the connection drops.
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err(std::io::Error::other("fakellm: scripted cut"))
        });
        Body::from_stream(frames.chain(cut))
    } else {
        Body::from_stream(frames)
    };
    builder.body(body).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
