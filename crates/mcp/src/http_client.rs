//! `rmcp`'s streamable-HTTP client transport over our reqwest, through the SSRF guard: names
//! resolve through [`fetch::guarded_resolver`], IP literals are checked before each request,
//! redirects are not followed, and bodies are read with a cap.
//!
//! Connections start with the `initialize` handshake (rmcp's default lifecycle), which every
//! MCP server of 2024-11-05 and later answers, so `server/discover` fallbacks are not needed.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::common::http_header::{
    EVENT_STREAM_MIME_TYPE, HEADER_LAST_EVENT_ID, HEADER_SESSION_ID, JSON_MIME_TYPE,
};
use rmcp::transport::streamable_http_client::{
    HttpStatusError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
};
use sse_stream::{Error as SseError, Sse, SseStream};

/// The most of a JSON response we read (a tool result larger than this is refused).
const MAX_JSON_BYTES: usize = 8 * 1024 * 1024;
/// The most of an error body we keep for the message.
const MAX_ERROR_BYTES: usize = 2048;

type HttpError = StreamableHttpError<reqwest::Error>;

/// The guard's resolver as a sized type for reqwest.
struct Guarded(Arc<dyn reqwest::dns::Resolve>);

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        self.0.resolve(name)
    }
}

/// A reqwest client that only reaches addresses the policy permits.
#[derive(Clone)]
pub struct GuardedHttp {
    http: reqwest::Client,
    policy: Arc<fetch::AddressPolicy>,
}

impl GuardedHttp {
    pub fn new(policy: fetch::AddressPolicy, connect_timeout: Duration) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(Guarded(fetch::guarded_resolver(policy.clone()))))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(connect_timeout)
            .user_agent(concat!("EchoForge/", env!("CARGO_PKG_VERSION"), " (MCP client)"))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { http, policy: Arc::new(policy) })
    }

    fn request(
        &self,
        method: reqwest::Method,
        uri: &str,
        session_id: Option<&str>,
        auth: Option<String>,
        headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<reqwest::RequestBuilder, HttpError> {
        let url = fetch::Url::parse(uri)
            .map_err(|e| HttpError::UnexpectedServerResponse(format!("bad URL: {e}").into()))?;
        fetch::check_url_address(&url, &self.policy)
            .map_err(|e| HttpError::UnexpectedServerResponse(e.to_string().into()))?;
        let mut request = self.http.request(method, url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some(token) = auth {
            request = request.bearer_auth(token);
        }
        if let Some(session) = session_id {
            request = request.header(HEADER_SESSION_ID, session);
        }
        Ok(request)
    }
}

fn is_type(response: &reqwest::Response, mime: &str) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(mime))
}

/// Reads at most `max` bytes of a body; `None` when it is longer.
async fn read_capped(
    response: reqwest::Response,
    max: usize,
) -> Result<Option<Vec<u8>>, HttpError> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(HttpError::Client)?;
        if body.len() + chunk.len() > max {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

async fn status_error(response: reqwest::Response) -> HttpError {
    let status = response.status();
    let text = match read_capped(response, MAX_ERROR_BYTES).await {
        Ok(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
        _ => String::new(),
    };
    HttpError::UnexpectedServerResponse(Cow::Owned(format!("HTTP {status}: {}", text.trim())))
}

fn sse(response: reqwest::Response) -> BoxStream<'static, Result<Sse, SseError>> {
    SseStream::from_bytes_stream(response.bytes_stream()).boxed()
}

impl StreamableHttpClient for GuardedHttp {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        let session_attached = session_id.is_some();
        let body = serde_json::to_vec(&message)?;
        let response = self
            .request(
                reqwest::Method::POST,
                &uri,
                session_id.as_deref(),
                auth_header,
                custom_headers,
            )?
            .header(reqwest::header::ACCEPT, format!("{EVENT_STREAM_MIME_TYPE}, {JSON_MIME_TYPE}"))
            .header(reqwest::header::CONTENT_TYPE, JSON_MIME_TYPE)
            .body(body)
            .send()
            .await
            .map_err(HttpError::Client)?;
        let status = response.status();
        if matches!(status, reqwest::StatusCode::ACCEPTED | reqwest::StatusCode::NO_CONTENT) {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        if status == reqwest::StatusCode::NOT_FOUND && session_attached {
            return Err(HttpError::SessionExpired);
        }
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            return Err(HttpStatusError::new(status.as_u16(), retry_after).into());
        }
        let session = response
            .headers()
            .get(HEADER_SESSION_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let awaits_nothing = !matches!(message, ClientJsonRpcMessage::Request(_));
        if status.is_success() && awaits_nothing && response.content_length() == Some(0) {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        if status.is_success() && is_type(&response, EVENT_STREAM_MIME_TYPE) {
            return Ok(StreamableHttpPostResponse::Sse(sse(response), session));
        }
        if is_type(&response, JSON_MIME_TYPE) {
            let Some(body) = read_capped(response, MAX_JSON_BYTES).await? else {
                return Err(HttpError::ResponseBodyTooLarge { max_size: MAX_JSON_BYTES });
            };
            return match serde_json::from_slice::<ServerJsonRpcMessage>(&body) {
                Ok(message) => Ok(StreamableHttpPostResponse::Json(message, session)),
                Err(e) if status.is_success() => Err(HttpError::Deserialize(e)),
                Err(_) => Err(HttpError::UnexpectedServerResponse(Cow::Owned(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BYTES)]).trim()
                )))),
            };
        }
        if !status.is_success() {
            return Err(status_error(response).await);
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Err(HttpError::UnexpectedContentType(content_type))
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), HttpError> {
        let response = self
            .request(reqwest::Method::DELETE, &uri, Some(&session_id), auth_header, custom_headers)?
            .send()
            .await
            .map_err(HttpError::Client)?;
        let status = response.status();
        if status.is_success()
            || status == reqwest::StatusCode::METHOD_NOT_ALLOWED
            || status == reqwest::StatusCode::NOT_FOUND
        {
            return Ok(());
        }
        Err(status_error(response).await)
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, HttpError> {
        let mut request = self
            .request(
                reqwest::Method::GET,
                &uri,
                session_id.as_deref(),
                auth_header,
                custom_headers,
            )?
            .header(reqwest::header::ACCEPT, EVENT_STREAM_MIME_TYPE);
        if let Some(id) = last_event_id {
            request = request.header(HEADER_LAST_EVENT_ID, id);
        }
        let response = request.send().await.map_err(HttpError::Client)?;
        let status = response.status();
        if status == reqwest::StatusCode::METHOD_NOT_ALLOWED {
            return Err(HttpError::ServerDoesNotSupportSse);
        }
        if status == reqwest::StatusCode::NOT_FOUND && session_id.is_some() {
            return Err(HttpError::SessionExpired);
        }
        if !status.is_success() {
            return Err(status_error(response).await);
        }
        if !is_type(&response, EVENT_STREAM_MIME_TYPE) {
            return Err(HttpError::ServerDoesNotSupportSse);
        }
        Ok(sse(response))
    }
}
