//! Fetching on a user's behalf, safely: one SSRF guard ([`GuardedClient`]) for crawls, the
//! agent's web tool and webhooks, robots.txt handling, and a same-site [`crawl`]er.
//!
//! The guard refuses every address that is not public unicast (loopback, RFC 1918, CGNAT, ULA,
//! link-local, multicast, unspecified, cloud metadata…) at connect time — names are checked by
//! a custom DNS resolver, IP literals on each request and redirect — so DNS rebinding and
//! redirects into the internal network fail too. Operators open exceptions with
//! [`AddressPolicy`]. Only http/https, capped redirects, timeouts, a size cap enforced while
//! streaming, and the User-Agent `EchoForgeBot/0.1`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), fetch::FetchError> {
//! let client = fetch::GuardedClient::new(fetch::FetchConfig::default())?;
//! let page = client.get("https://example.com/").await?;
//! let report = fetch::crawl(&client, &["https://example.com/"], &fetch::CrawlLimits::default()).await?;
//! # Ok(()) }
//! ```

mod client;
mod crawl;
mod error;
mod policy;
mod robots;

pub use client::{
    ApiRequest, ApiResponse, Conditional, FetchConfig, FetchedPage, GuardedClient, ROBOTS_AGENT,
    USER_AGENT, check_url_address, guarded_resolver,
};
pub use crawl::{CrawlLimits, CrawlReport, CrawledPage, crawl, normalise, refetch};
pub use error::FetchError;
pub use ipnet::IpNet;
pub use policy::{AddressPolicy, is_public};
pub use reqwest::Method;
pub use robots::RobotsCache;
pub use url::Url;
