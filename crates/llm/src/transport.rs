//! HTTP shared by the providers: one POST with timeouts, retries with backoff and jitter, HTTP
//! status to [`LlmError`] mapping (scrubbed of the key), and the SSE stream driver.
//!
//! Retries happen only before any answer byte reached the caller: for a stream, the first body
//! chunk is read inside the retry loop, so a connection that dies before saying anything is
//! retried, while one that dies mid-answer becomes a `StreamInterrupted` event.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{RetryPolicy, Timeouts};
use crate::sse::{SseEvent, SseParser};
use crate::{ChatStream, LlmError, StreamEvent};

/// A request ready to send (and to resend on retry).
pub(crate) struct Prepared {
    pub url: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub timeout: Duration,
    /// The model asked for, for `ModelNotFound`.
    pub model: String,
    /// The key in use, only to scrub it out of provider messages.
    pub key: Option<SecretString>,
}

/// Provider-specific decoding of SSE events into stream events.
pub(crate) trait StreamDecoder: Send + 'static {
    /// Handles one event; returns `true` when it was the stream's end marker.
    fn event(
        &mut self,
        event: SseEvent,
        out: &mut VecDeque<Result<StreamEvent, LlmError>>,
    ) -> Result<bool, LlmError>;
    /// The body ended without an end marker: finish if the answer is complete, else fail.
    fn eof(&mut self, out: &mut VecDeque<Result<StreamEvent, LlmError>>) -> Result<(), LlmError>;
}

/// A failed attempt and whether another may succeed.
struct Failure {
    error: LlmError,
    retryable: bool,
    retry_after: Option<Duration>,
}

/// The HTTP client of one provider.
pub(crate) struct Transport {
    client: reqwest::Client,
    pub timeouts: Timeouts,
    retry: RetryPolicy,
}

impl Transport {
    pub fn new(
        timeouts: Timeouts,
        retry: RetryPolicy,
        resolver: Option<crate::config::GuardedResolver>,
    ) -> Result<Self, LlmError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .user_agent(concat!("echoforge-llm/", env!("CARGO_PKG_VERSION")));
        if let Some(r) = resolver {
            // A redirect or a proxy would reach an address the resolver never saw.
            builder = builder
                .dns_resolver(std::sync::Arc::new(r))
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy();
        }
        let client = builder
            .build()
            .map_err(|e| LlmError::Config { message: format!("HTTP client: {e}") })?;
        Ok(Self { client, timeouts, retry })
    }

    /// POSTs and returns the whole 2xx body.
    pub async fn post(&self, req: &Prepared) -> Result<Bytes, LlmError> {
        self.with_retries(|| async {
            let attempt = async {
                let resp = self.send(req).await?;
                resp.bytes().await.map_err(|e| transient(body_error_detail(&e)))
            };
            tokio::time::timeout(req.timeout, attempt).await.unwrap_or_else(|_| Err(timeout()))
        })
        .await
    }

    /// POSTs and returns the decoded event stream once its first chunk arrived.
    pub async fn post_stream<D: StreamDecoder>(
        &self,
        req: &Prepared,
        decoder: D,
    ) -> Result<ChatStream, LlmError> {
        let (body, first) = self
            .with_retries(|| async {
                let attempt = async {
                    let resp = self.send(req).await?;
                    let mut body = resp.bytes_stream().boxed();
                    match body.next().await {
                        Some(Ok(first)) => Ok((body, Some(first))),
                        Some(Err(e)) => Err(transient(body_error_detail(&e))),
                        None => Ok((body, None)),
                    }
                };
                tokio::time::timeout(req.timeout, attempt).await.unwrap_or_else(|_| Err(timeout()))
            })
            .await?;
        Ok(drive(body, first, decoder, self.timeouts.idle))
    }

    async fn with_retries<T, F, Fut>(&self, mut attempt: F) -> Result<T, LlmError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut tries = 0u32;
        loop {
            let failure = match attempt().await {
                Ok(v) => return Ok(v),
                Err(f) => f,
            };
            if !failure.retryable || tries >= self.retry.max_retries {
                return Err(failure.error);
            }
            let wait = match failure.retry_after {
                Some(d) if d > self.retry.max_backoff => return Err(failure.error),
                Some(d) => d,
                None => backoff(&self.retry, tries),
            };
            tracing::debug!(error = %failure.error, attempt = tries + 1, ?wait, "retrying model call");
            tokio::time::sleep(wait).await;
            tries += 1;
        }
    }

    /// Sends once; a non-2xx status becomes a `Failure` built from its body.
    async fn send(&self, req: &Prepared) -> Result<Response, Failure> {
        let resp = self
            .client
            .post(&req.url)
            .headers(req.headers.clone())
            .body(req.body.clone())
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    timeout()
                } else {
                    transient(if e.is_connect() {
                        "could not connect"
                    } else {
                        "connection failed"
                    })
                }
            })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let retry_after = retry_after(resp.headers());
        let body = resp.bytes().await.unwrap_or_default();
        Err(status_failure(status, retry_after, &body, req))
    }
}

fn timeout() -> Failure {
    Failure { error: LlmError::Timeout, retryable: false, retry_after: None }
}

fn transient(detail: &str) -> Failure {
    Failure {
        error: LlmError::Unavailable { detail: detail.to_owned() },
        retryable: true,
        retry_after: None,
    }
}

fn body_error_detail(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out reading the answer"
    } else {
        "connection lost reading the answer"
    }
}

/// Exponential backoff with equal jitter: half the step fixed, half random.
fn backoff(policy: &RetryPolicy, tries: u32) -> Duration {
    let step = policy.initial_backoff.saturating_mul(1u32 << tries.min(16)).min(policy.max_backoff);
    let half = step / 2;
    let jitter_ms = rand::rng().random_range(0..=half.as_millis() as u64);
    half + Duration::from_millis(jitter_ms)
}

/// `retry-after-ms` (OpenAI) or `Retry-After` in seconds; HTTP dates are not honoured.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let num = |v: &HeaderValue| v.to_str().ok()?.trim().parse::<f64>().ok().filter(|n| *n >= 0.0);
    if let Some(ms) = headers.get("retry-after-ms").and_then(num) {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    headers.get(RETRY_AFTER).and_then(num).map(Duration::from_secs_f64)
}

fn status_failure(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
    req: &Prepared,
) -> Failure {
    let (message, code) = provider_message(body);
    let message = scrub(&message, req.key.as_ref());
    let lower = format!("{message} {code}").to_ascii_lowercase();
    let too_long = [
        "context_length",
        "context length",
        "maximum context",
        "prompt is too long",
        "too many tokens",
    ]
    .iter()
    .any(|p| lower.contains(p));
    let fail = |error, retryable| Failure { error, retryable, retry_after };
    match status.as_u16() {
        401 | 403 => fail(LlmError::Unauthorized, false),
        429 => fail(LlmError::RateLimited { retry_after }, true),
        413 => fail(LlmError::ContextTooLong, false),
        _ if too_long => fail(LlmError::ContextTooLong, false),
        404 if lower.contains("model") || lower.trim().is_empty() => {
            fail(LlmError::ModelNotFound { model: req.model.clone() }, false)
        }
        404 => {
            fail(LlmError::BadRequest { message: format!("endpoint not found: {message}") }, false)
        }
        408 | 500 | 502 | 503 | 504 | 520..=529 => {
            fail(LlmError::Unavailable { detail: format!("HTTP {}", status.as_u16()) }, true)
        }
        500..=599 => {
            fail(LlmError::Unavailable { detail: format!("HTTP {}", status.as_u16()) }, false)
        }
        _ => {
            let message =
                if message.is_empty() { format!("HTTP {}", status.as_u16()) } else { message };
            fail(LlmError::BadRequest { message }, false)
        }
    }
}

/// The human message and machine code from an OpenAI- or Anthropic-style error body.
pub(crate) fn provider_message(body: &[u8]) -> (String, String) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (String::new(), String::new());
    };
    let err = v.get("error").unwrap_or(&v);
    let text = |k: &str| err.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    let message = err
        .as_str()
        .map(str::to_owned)
        .or_else(|| text("message"))
        .or_else(|| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
        .unwrap_or_default();
    let code = text("code").or_else(|| text("type")).unwrap_or_default();
    (message, code)
}

/// Removes the key from a provider message and caps its length.
pub(crate) fn scrub(message: &str, key: Option<&SecretString>) -> String {
    let mut out = message.to_owned();
    if let Some(key) = key.map(|k| k.expose_secret()).filter(|k| k.len() >= 4) {
        out = out.replace(key, "[redacted]");
    }
    if out.chars().count() > 300 {
        out = out.chars().take(300).collect::<String>() + "…";
    }
    out
}

struct Driver<D> {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    first: Option<Bytes>,
    parser: SseParser,
    decoder: D,
    queue: VecDeque<Result<StreamEvent, LlmError>>,
    done: bool,
    idle: Duration,
}

/// Turns a response body into the event stream: SSE parsing, decoding, idle timeout, and a
/// single error item (then the end) when anything goes wrong.
fn drive<D: StreamDecoder>(
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    first: Option<Bytes>,
    decoder: D,
    idle: Duration,
) -> ChatStream {
    let driver = Driver {
        body,
        first,
        parser: SseParser::new(),
        decoder,
        queue: VecDeque::new(),
        done: false,
        idle,
    };
    futures::stream::unfold(driver, |mut d| async move {
        loop {
            if let Some(item) = d.queue.pop_front() {
                return Some((item, d));
            }
            if d.done {
                return None;
            }
            let chunk = match d.first.take() {
                Some(c) => Some(Ok(c)),
                None => match tokio::time::timeout(d.idle, d.body.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        d.done = true;
                        return Some((Err(LlmError::Timeout), d));
                    }
                },
            };
            match chunk {
                Some(Ok(bytes)) => d.feed(&bytes),
                Some(Err(_)) => {
                    d.done = true;
                    d.queue.push_back(Err(LlmError::StreamInterrupted {
                        detail: "the connection closed mid-answer".into(),
                    }));
                }
                None => {
                    d.done = true;
                    d.parser.finish();
                    if let Err(e) = d.decoder.eof(&mut d.queue) {
                        d.queue.push_back(Err(e));
                    }
                }
            }
        }
    })
    .boxed()
}

impl<D: StreamDecoder> Driver<D> {
    fn feed(&mut self, bytes: &[u8]) {
        let mut events = Vec::new();
        self.parser.push(bytes, &mut events);
        for event in events {
            match self.decoder.event(event, &mut self.queue) {
                Ok(false) => {}
                Ok(true) => {
                    self.done = true;
                    return;
                }
                Err(e) => {
                    self.queue.push_back(Err(e));
                    self.done = true;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_within_the_cap() {
        let p = RetryPolicy {
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
        };
        for tries in 0..8 {
            let step = (100u64 << tries).min(1000);
            let b = backoff(&p, tries).as_millis() as u64;
            assert!(b >= step / 2 && b <= step, "try {tries}: {b} not in [{}, {step}]", step / 2);
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_openai_milliseconds() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
    }

    #[test]
    fn scrub_removes_the_key_and_caps_length() {
        let key = SecretString::from("sk-secret-123");
        let s = scrub("Incorrect API key provided: sk-secret-123.", Some(&key));
        assert_eq!(s, "Incorrect API key provided: [redacted].");
        assert_eq!(scrub(&"x".repeat(1000), None).chars().count(), 301);
    }

    #[test]
    fn provider_messages_are_found_in_both_vendor_shapes() {
        let (m, c) =
            provider_message(br#"{"error":{"message":"bad","code":"context_length_exceeded"}}"#);
        assert_eq!((m.as_str(), c.as_str()), ("bad", "context_length_exceeded"));
        let (m, c) = provider_message(
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"nope"}}"#,
        );
        assert_eq!((m.as_str(), c.as_str()), ("nope", "invalid_request_error"));
    }
}
