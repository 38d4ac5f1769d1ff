//! The `web_fetch` tool's port: the SSRF-guarded client (addresses checked where connections
//! are made, redirects included; private addresses refused unless the operator allowed them
//! with `knowledge.allow_private_urls`), robots.txt respected, a smaller size and time cap than
//! ingestion, and the page's main content extracted (navigation and other chrome dropped).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use runtime::{FetchedPage, WebFetcher};

use crate::knowledge::KnowledgeSlot;

/// Largest response body the tool reads.
pub const MAX_BYTES: u64 = 2 * 1024 * 1024;
/// Time allowed for the whole fetch, extraction included.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// Characters of extracted text handed back (the tool truncates further for the model).
const MAX_TEXT_CHARS: usize = 100_000;

/// Fetches pages for agents through the knowledge services' address policy.
pub struct GuardedWebFetch {
    pub(crate) slot: Arc<KnowledgeSlot>,
    client: OnceLock<Result<fetch::GuardedClient, String>>,
}

impl GuardedWebFetch {
    pub(crate) fn new(slot: Arc<KnowledgeSlot>) -> Self {
        Self { slot, client: OnceLock::new() }
    }

    fn client(&self) -> Result<&fetch::GuardedClient, String> {
        let Some(k) = self.slot.get() else {
            return Err("web fetching is not available on this server yet".to_owned());
        };
        self.client
            .get_or_init(|| {
                fetch::GuardedClient::new(fetch::FetchConfig {
                    policy: k.fetcher.config().policy.clone(),
                    timeout: TIMEOUT,
                    connect_timeout: Duration::from_secs(5),
                    max_response_bytes: MAX_BYTES,
                    ..Default::default()
                })
                .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

#[async_trait]
impl WebFetcher for GuardedWebFetch {
    async fn fetch(&self, url: &str) -> Result<FetchedPage, String> {
        let client = self.client()?;
        client.check_url(url).map_err(|e| format!("{url} cannot be fetched: {e}"))?;
        let work = async {
            let page =
                client.get(url).await.map_err(|e| format!("{url} could not be fetched: {e}"))?;
            let limits = extract::Limits { max_input_bytes: MAX_BYTES, ..Default::default() };
            let doc =
                page.extract(limits).await.map_err(|e| format!("{url} could not be read: {e}"))?;
            let text: String = doc.markdown.chars().take(MAX_TEXT_CHARS).collect();
            Ok(FetchedPage {
                url: page.final_url.to_string(),
                title: doc.title.unwrap_or_default(),
                text,
            })
        };
        tokio::time::timeout(TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err(format!("{url} took too long to fetch")))
    }
}
