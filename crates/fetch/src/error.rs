//! The one error type of the crate; messages name the URL or host and what to do.

use std::net::IpAddr;

/// Why a fetch failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// The URL does not parse.
    #[error("invalid URL {0:?}")]
    InvalidUrl(String),
    /// Only `http` and `https` are fetched.
    #[error("unsupported URL scheme {0:?}: only http and https can be fetched")]
    UnsupportedScheme(String),
    /// The host is, or resolves to, an address that is not on the public internet (loopback,
    /// private, link-local, metadata…) and the operator has not allowed it.
    #[error("blocked address: {host} resolves to {ip}, which is not a public internet address")]
    BlockedAddress {
        /// Host name (or literal) from the URL.
        host: String,
        /// The refused address.
        ip: IpAddr,
    },
    /// DNS failed or the connection was refused/reset.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The response body is larger than the cap (checked while streaming).
    #[error("too large: the response exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The cap, in bytes.
        limit: u64,
    },
    /// The request took longer than the configured timeout.
    #[error("timeout: no complete response within {0:?}")]
    Timeout(std::time::Duration),
    /// robots.txt forbids EchoForgeBot from fetching this URL.
    #[error("robots disallowed: the site's robots.txt does not allow fetching {0}")]
    RobotsDisallowed(String),
    /// The server answered with an error status.
    #[error("HTTP {status} from {url}")]
    HttpStatus {
        /// The status code.
        status: u16,
        /// The URL that answered.
        url: String,
    },
    /// More redirects than allowed.
    #[error("too many redirects (more than {0})")]
    TooManyRedirects(usize),
    /// The HTTP client could not be built (bad configuration).
    #[error("HTTP client configuration error: {0}")]
    Config(String),
}

impl FetchError {
    /// A stable machine-readable code (for APIs, tool results and metrics).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidUrl(_) => "invalid_url",
            Self::UnsupportedScheme(_) => "unsupported_scheme",
            Self::BlockedAddress { .. } => "blocked_address",
            Self::Unreachable(_) => "unreachable",
            Self::TooLarge { .. } => "too_large",
            Self::Timeout(_) => "timeout",
            Self::RobotsDisallowed(_) => "robots_disallowed",
            Self::HttpStatus { .. } => "http_status",
            Self::TooManyRedirects(_) => "too_many_redirects",
            Self::Config(_) => "config",
        }
    }
}
