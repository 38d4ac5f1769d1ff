//! `GuardedClient`: the only HTTP client for requests made on a user's behalf. Addresses are
//! checked where the connection is made (a custom DNS resolver for names, a URL check for IP
//! literals on the first request and on every redirect), so DNS rebinding and redirects to
//! internal addresses are refused, not just suspicious-looking URLs.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

use crate::FetchError;
use crate::policy::AddressPolicy;
use crate::robots::RobotsCache;

/// The User-Agent every request carries, and the agent name looked up in robots.txt.
pub const USER_AGENT: &str = "EchoForgeBot/0.1";
/// The robots.txt product token.
pub const ROBOTS_AGENT: &str = "EchoForgeBot";

/// Settings of a [`GuardedClient`].
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Which non-public addresses the operator allows (none by default).
    pub policy: AddressPolicy,
    /// Redirects followed before giving up.
    pub max_redirects: usize,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed for the whole request, body included.
    pub timeout: Duration,
    /// Largest response body accepted, enforced while streaming.
    pub max_response_bytes: u64,
    /// Whether [`GuardedClient::get`] consults robots.txt.
    pub respect_robots: bool,
    /// User-Agent header.
    pub user_agent: String,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            policy: AddressPolicy::default(),
            max_redirects: 5,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_response_bytes: 10 * 1024 * 1024,
            respect_robots: true,
            user_agent: USER_AGENT.to_string(),
        }
    }
}

/// A fetched response.
#[derive(Debug, Clone)]
pub struct FetchedPage {
    /// The URL after redirects.
    pub final_url: Url,
    /// HTTP status (2xx, or 304 for a conditional request that found no change).
    pub status: u16,
    /// `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// `ETag` header, for conditional re-fetches.
    pub etag: Option<String>,
    /// `Last-Modified` header, for conditional re-fetches.
    pub last_modified: Option<String>,
    /// The body (empty for 304).
    pub bytes: Bytes,
}

impl FetchedPage {
    /// The extract format for this response: HTML when the server says so (a path like
    /// `/docs/` says nothing), otherwise from the path's extension, content type and bytes.
    pub fn format(&self) -> Option<extract::Format> {
        if self.content_type.as_deref().is_some_and(|ct| ct.to_ascii_lowercase().contains("html")) {
            return Some(extract::Format::Html);
        }
        let name = self.final_url.path().rsplit('/').next().unwrap_or("");
        extract::detect(
            name,
            self.content_type.as_deref(),
            &self.bytes[..self.bytes.len().min(1024)],
        )
    }

    /// Extracts the page's main content (for HTML: without navigation and other chrome) off
    /// the async runtime; what the agent's web tool and the crawler hand to the knowledge base.
    pub async fn extract(
        &self,
        limits: extract::Limits,
    ) -> Result<extract::Extracted, extract::ExtractError> {
        let Some(format) = self.format() else {
            let ct = self.content_type.as_deref().unwrap_or("unknown");
            return Err(extract::ExtractError::Unsupported(format!("content type {ct}")));
        };
        extract::extract_async(self.bytes.to_vec(), format, limits).await
    }
}

/// A request for [`GuardedClient::call`].
#[derive(Debug, Clone)]
pub struct ApiRequest<'a> {
    pub method: reqwest::Method,
    pub url: &'a str,
    /// Header names and values (names must be valid header names, lower case).
    pub headers: Vec<(&'static str, String)>,
    /// Content type and body.
    pub body: Option<(&'static str, Vec<u8>)>,
}

impl<'a> ApiRequest<'a> {
    pub fn new(method: reqwest::Method, url: &'a str) -> Self {
        Self { method, url, headers: Vec::new(), body: None }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    pub fn json(mut self, value: &impl serde::Serialize) -> Self {
        self.body = Some(("application/json", serde_json::to_vec(value).unwrap_or_default()));
        self
    }

    /// An `application/x-www-form-urlencoded` body.
    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        let body =
            url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        self.body = Some(("application/x-www-form-urlencoded", body.into_bytes()));
        self
    }
}

/// What an API answered, whatever the status.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub content_type: Option<String>,
    /// `Retry-After` in seconds, when the server sent one as a number.
    pub retry_after_secs: Option<u64>,
    pub bytes: Bytes,
}

impl ApiResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.bytes).unwrap_or(serde_json::Value::Null)
    }
}

/// Validators from an earlier fetch; a matching server answers 304 with no body.
#[derive(Debug, Clone, Default)]
pub struct Conditional {
    /// Sent as `If-None-Match`.
    pub etag: Option<String>,
    /// Sent as `If-Modified-Since`.
    pub last_modified: Option<String>,
}

/// HTTP client with the SSRF guard, caps and robots.txt handling built in. Cheap to clone.
#[derive(Clone)]
pub struct GuardedClient {
    http: reqwest::Client,
    config: Arc<FetchConfig>,
    robots: RobotsCache,
}

impl std::fmt::Debug for GuardedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedClient").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Marker error the resolver and redirect policy return, found again in reqwest's error chain.
#[derive(Debug)]
struct Blocked {
    host: String,
    ip: IpAddr,
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "blocked address {} for {}", self.ip, self.host)
    }
}

impl std::error::Error for Blocked {}

#[derive(Debug)]
struct RedirectLimit(usize);

impl std::fmt::Display for RedirectLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} redirects", self.0)
    }
}

impl std::error::Error for RedirectLimit {}

/// Resolves names with the system resolver and drops every address the policy refuses.
struct GuardedResolver {
    policy: Arc<FetchConfig>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let config = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                addrs.iter().copied().filter(|a| config.policy.permits(&host, a.ip())).collect();
            match (allowed.is_empty(), addrs.first()) {
                (false, _) => Ok(Box::new(allowed.into_iter()) as Addrs),
                (true, Some(first)) => Err(Box::new(Blocked { host, ip: first.ip() }) as _),
                (true, None) => Err(format!("no addresses for {host}").into()),
            }
        })
    }
}

impl GuardedClient {
    /// Builds a client. Proxies from the environment are ignored on purpose: a proxy would
    /// resolve names itself and bypass the address checks.
    pub fn new(config: FetchConfig) -> Result<Self, FetchError> {
        let config = Arc::new(config);
        let redirect_config = config.clone();
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > redirect_config.max_redirects {
                return attempt.error(RedirectLimit(redirect_config.max_redirects));
            }
            match check_literal(attempt.url(), &redirect_config.policy) {
                Ok(()) => attempt.follow(),
                Err(FetchError::BlockedAddress { host, ip }) => attempt.error(Blocked { host, ip }),
                Err(e) => attempt.error(e),
            }
        });
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .dns_resolver(Arc::new(GuardedResolver { policy: config.clone() }))
            .redirect(redirect)
            .no_proxy()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .build()
            .map_err(|e| FetchError::Config(e.to_string()))?;
        Ok(Self { http, robots: RobotsCache::default(), config })
    }

    /// The configuration in use.
    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// Checks a URL without fetching it: scheme, syntax and (for IP literals) the address.
    pub fn check_url(&self, url: &str) -> Result<Url, FetchError> {
        let url = Url::parse(url).map_err(|_| FetchError::InvalidUrl(url.to_string()))?;
        check_literal(&url, &self.config.policy)?;
        Ok(url)
    }

    /// GETs `url` (honouring robots.txt when configured). Non-2xx answers are errors.
    pub async fn get(&self, url: &str) -> Result<FetchedPage, FetchError> {
        self.get_with(url, &Conditional::default(), &self.robots).await
    }

    /// GET with validators from an earlier fetch and a caller-owned robots cache (one per crawl).
    pub async fn get_with(
        &self,
        url: &str,
        conditional: &Conditional,
        robots: &RobotsCache,
    ) -> Result<FetchedPage, FetchError> {
        let url = self.check_url(url)?;
        if self.config.respect_robots && !robots.allowed(self, &url).await? {
            return Err(FetchError::RobotsDisallowed(url.to_string()));
        }
        let mut request = self.http.get(url.clone());
        if let Some(etag) = &conditional.etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &conditional.last_modified {
            request = request.header(reqwest::header::IF_MODIFIED_SINCE, lm);
        }
        self.send(request, &url, self.config.max_response_bytes).await
    }

    /// POSTs a body (webhooks) through the same guard; robots.txt does not apply.
    pub async fn post(
        &self,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<FetchedPage, FetchError> {
        let url = self.check_url(url)?;
        let request = self
            .http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        self.send(request, &url, self.config.max_response_bytes).await
    }

    /// One call to an API a connector or an OAuth2 client talks to: any method, headers and
    /// body, through the same guard (resolved addresses, redirects, timeouts, size cap) but
    /// without robots.txt, and with every status returned as an [`ApiResponse`] (an API's
    /// error bodies say what went wrong). Transport failures are still errors.
    pub async fn call(&self, request: ApiRequest<'_>) -> Result<ApiResponse, FetchError> {
        let url = self.check_url(request.url)?;
        let mut builder = self.http.request(request.method, url.clone());
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        if let Some((content_type, body)) = request.body {
            builder = builder.header(reqwest::header::CONTENT_TYPE, content_type).body(body);
        }
        let response = builder.send().await.map_err(|e| self.classify(e, &url))?;
        let status = response.status().as_u16();
        let header = |name: reqwest::header::HeaderName| {
            response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
        };
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let retry_after_secs =
            header(reqwest::header::RETRY_AFTER).and_then(|v| v.trim().parse().ok());
        let bytes = self.read_capped(response, &url, self.config.max_response_bytes).await?;
        Ok(ApiResponse { status, content_type, retry_after_secs, bytes })
    }

    /// GET without robots.txt and with a specific size cap (used for robots.txt itself and by
    /// the crawler's byte budget).
    pub(crate) async fn get_raw(&self, url: &Url, cap: u64) -> Result<FetchedPage, FetchError> {
        check_literal(url, &self.config.policy)?;
        self.send(self.http.get(url.clone()), url, cap).await
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &Url,
        cap: u64,
    ) -> Result<FetchedPage, FetchError> {
        let response = request.send().await.map_err(|e| self.classify(e, url))?;
        let status = response.status();
        let final_url = response.url().clone();
        if !(status.is_success() || status == reqwest::StatusCode::NOT_MODIFIED) {
            return Err(FetchError::HttpStatus {
                status: status.as_u16(),
                url: final_url.to_string(),
            });
        }
        let header = |name: reqwest::header::HeaderName| {
            response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
        };
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let etag = header(reqwest::header::ETAG);
        let last_modified = header(reqwest::header::LAST_MODIFIED);
        let bytes = self.read_capped(response, url, cap).await?;
        Ok(FetchedPage {
            final_url,
            status: status.as_u16(),
            content_type,
            etag,
            last_modified,
            bytes,
        })
    }

    /// The body, refused as soon as it is known to exceed `cap`: from `Content-Length`, and
    /// counted per chunk (a server may omit or lie about it).
    async fn read_capped(
        &self,
        mut response: reqwest::Response,
        url: &Url,
        cap: u64,
    ) -> Result<Bytes, FetchError> {
        if response.content_length().is_some_and(|len| len > cap) {
            return Err(FetchError::TooLarge { limit: cap });
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(e, url))? {
            if (body.len() + chunk.len()) as u64 > cap {
                return Err(FetchError::TooLarge { limit: cap });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    fn classify(&self, e: reqwest::Error, url: &Url) -> FetchError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = source {
            if let Some(b) = err.downcast_ref::<Blocked>() {
                return FetchError::BlockedAddress { host: b.host.clone(), ip: b.ip };
            }
            if let Some(r) = err.downcast_ref::<RedirectLimit>() {
                return FetchError::TooManyRedirects(r.0);
            }
            if let Some(f) = err.downcast_ref::<FetchError>() {
                return f.clone();
            }
            source = err.source();
        }
        if e.is_timeout() {
            FetchError::Timeout(self.config.timeout)
        } else {
            FetchError::Unreachable(format!("{}: {}", url.host_str().unwrap_or(""), root_cause(&e)))
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}

/// Scheme check plus, for hosts written as IP addresses, the address policy (names are
/// checked by the resolver at connect time).
/// The guard's DNS resolver on its own, for other HTTP clients that talk to hosts a user
/// chose (a workspace's model endpoint): names resolve with the system resolver and every
/// address `policy` refuses is dropped, so a name that resolves only to loopback, private or
/// metadata addresses fails to connect. IP literals bypass resolvers: check them with
/// [`check_url_address`], and turn redirects off in that client.
pub fn guarded_resolver(policy: AddressPolicy) -> Arc<dyn Resolve> {
    Arc::new(GuardedResolver { policy: Arc::new(FetchConfig { policy, ..FetchConfig::default() }) })
}

/// Checks a URL's scheme (http/https) and, for an IP literal, its address against `policy`.
pub fn check_url_address(url: &Url, policy: &AddressPolicy) -> Result<(), FetchError> {
    check_literal(url, policy)
}

fn check_literal(url: &Url, policy: &AddressPolicy) -> Result<(), FetchError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::UnsupportedScheme(url.scheme().to_string()));
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err(FetchError::InvalidUrl(url.to_string())),
    };
    let host = url.host_str().unwrap_or_default().to_string();
    if policy.permits(&host, ip) { Ok(()) } else { Err(FetchError::BlockedAddress { host, ip }) }
}
