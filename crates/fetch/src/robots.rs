//! robots.txt, fetched once per origin and cached (per client, or per crawl), interpreted for
//! the `EchoForgeBot` agent with texting_robots. Following RFC 9309: a missing robots.txt (4xx)
//! allows everything; a server error (5xx) is treated as "disallow everything" for now.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use url::Url;

use crate::FetchError;
use crate::client::{GuardedClient, ROBOTS_AGENT};

/// How long fetched rules are trusted (RFC 9309 recommends no more than 24 hours).
const TTL: Duration = Duration::from_secs(24 * 3600);

/// robots.txt files larger than this are cut (RFC 9309 requires at least 500 KiB be parsed).
const MAX_ROBOTS_BYTES: u64 = 512 * 1024;

#[derive(Debug)]
enum Rules {
    AllowAll,
    DisallowAll,
    Parsed(texting_robots::Robot),
}

/// Rules of one origin and when they were fetched.
type Cached = (Instant, Arc<Rules>);

/// Parsed robots.txt per origin. Clone it to share; create a fresh one per crawl so a re-crawl
/// sees the current rules.
#[derive(Debug, Clone, Default)]
pub struct RobotsCache {
    inner: Arc<Mutex<HashMap<String, Cached>>>,
}

impl RobotsCache {
    /// A new, empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether robots.txt of `url`'s origin lets EchoForgeBot fetch `url`.
    pub async fn allowed(&self, client: &GuardedClient, url: &Url) -> Result<bool, FetchError> {
        let origin = url.origin().ascii_serialization();
        // Held across the fetch so concurrent requests to one origin fetch robots.txt once.
        let mut map = self.inner.lock().await;
        let rules = match map.get(&origin) {
            Some((at, rules)) if at.elapsed() < TTL => rules.clone(),
            _ => {
                let rules = Arc::new(fetch_rules(client, url).await?);
                map.insert(origin, (Instant::now(), rules.clone()));
                rules
            }
        };
        drop(map);
        Ok(match rules.as_ref() {
            Rules::AllowAll => true,
            Rules::DisallowAll => false,
            Rules::Parsed(robot) => robot.allowed(url.as_str()),
        })
    }

    /// The crawl delay robots.txt asks of us for `url`'s origin, if it is cached.
    pub async fn crawl_delay(&self, url: &Url) -> Option<f32> {
        let map = self.inner.lock().await;
        match map.get(&url.origin().ascii_serialization())?.1.as_ref() {
            Rules::Parsed(robot) => robot.delay,
            _ => None,
        }
    }
}

async fn fetch_rules(client: &GuardedClient, url: &Url) -> Result<Rules, FetchError> {
    let mut robots_url = url.clone();
    robots_url.set_path("/robots.txt");
    robots_url.set_query(None);
    robots_url.set_fragment(None);
    match client.get_raw(&robots_url, MAX_ROBOTS_BYTES).await {
        Ok(page) => Ok(match texting_robots::Robot::new(ROBOTS_AGENT, &page.bytes) {
            Ok(robot) => Rules::Parsed(robot),
            // Unparseable rules: behave as if there were none.
            Err(_) => Rules::AllowAll,
        }),
        Err(FetchError::HttpStatus { status, .. }) if (400..500).contains(&status) => {
            Ok(Rules::AllowAll)
        }
        Err(FetchError::HttpStatus { .. }) => Ok(Rules::DisallowAll),
        Err(FetchError::TooLarge { .. }) => Ok(Rules::AllowAll),
        Err(e) => Err(e),
    }
}
