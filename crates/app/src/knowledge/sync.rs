//! Scheduled re-sync of URL sources (a knowledge base's `sync_frequency`: manual, daily,
//! weekly). The server calls [`App::schedule_url_syncs`] periodically; each due knowledge base
//! gets one `kb.crawl` job over its crawl roots (the URLs imported, followed as deep as they
//! were), or its documents' source URLs for bases imported before roots were recorded; the
//! crawl re-indexes only the pages whose content changed and adds pages new to the site. Due-ness comes from the stored last-sync time, and claiming a sync
//! queues its job in the same transaction, so restarts neither lose nor repeat syncs.

use std::time::Duration;

use domain::time::Millis;
use serde::{Deserialize, Serialize};
use store::NewJob;

use crate::knowledge::{CrawlPayload, INGEST_QUEUE};
use crate::{App, AppError};

/// Most knowledge bases queued per scheduler pass (the rest are due on the next pass).
const PER_PASS: i64 = 100;
/// Most URLs re-fetched per knowledge base and sync.
const MAX_URLS: i64 = 500;
/// Most crawl roots kept per knowledge base (the newest imports win).
const MAX_ROOTS: usize = 100;

/// A URL imported into a knowledge base and the link levels followed from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CrawlRoot {
    pub url: String,
    pub hops: u8,
}

fn parse_roots(stored: Option<&str>) -> Vec<CrawlRoot> {
    stored.and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default()
}

/// The crawl roots after importing `urls` with `hops` link levels: a URL imported again keeps
/// the deeper of its crawls. Returns the JSON to store.
pub(crate) fn merge_roots(stored: Option<&str>, urls: &[String], hops: u8) -> String {
    let mut roots = parse_roots(stored);
    for url in urls {
        match roots.iter_mut().find(|r| &r.url == url) {
            Some(r) => r.hops = r.hops.max(hops),
            None => roots.push(CrawlRoot { url: url.clone(), hops }),
        }
    }
    let skip = roots.len().saturating_sub(MAX_ROOTS);
    serde_json::to_string(&roots[skip..]).unwrap_or_else(|_| "[]".into())
}

/// How long after the last sync a knowledge base is due, by frequency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncIntervals {
    pub daily: Duration,
    pub weekly: Duration,
}

impl Default for SyncIntervals {
    fn default() -> Self {
        Self { daily: Duration::from_secs(24 * 3600), weekly: Duration::from_secs(7 * 24 * 3600) }
    }
}

impl App {
    /// Queues a re-sync crawl for every knowledge base whose URL sources are due at `now`
    /// (the clock is a parameter so tests and catch-up can name the time). Returns how many
    /// were queued by this call.
    pub async fn schedule_url_syncs(
        &self,
        now: Millis,
        intervals: SyncIntervals,
    ) -> Result<usize, AppError> {
        let store = &self.inner.store;
        let due = store
            .due_url_syncs(
                now,
                intervals.daily.as_millis() as Millis,
                intervals.weekly.as_millis() as Millis,
                PER_PASS,
            )
            .await?;
        let mut queued = 0;
        for kb in due {
            let scope = crate::auth::job_scope(kb.workspace_id);
            let roots = parse_roots(kb.crawl_roots.as_deref());
            // One crawl per sync: every root, as deep as the deepest was imported.
            let (urls, hops) = if roots.is_empty() {
                (store.url_sources(&scope, kb.id, MAX_URLS).await?, 0)
            } else {
                let hops = roots.iter().map(|r| r.hops).max().unwrap_or(0);
                (roots.into_iter().map(|r| r.url).collect(), hops)
            };
            if urls.is_empty() {
                continue;
            }
            let payload = serde_json::to_value(CrawlPayload {
                workspace_id: kb.workspace_id,
                kb_id: kb.id,
                urls,
                hops,
            })
            .map_err(|e| AppError::Internal(e.to_string()))?;
            let job = NewJob {
                queue: INGEST_QUEUE.into(),
                kind: "kb.crawl".into(),
                payload,
                workspace_id: Some(kb.workspace_id.to_string()),
                max_attempts: 2,
                run_at: now,
            };
            match store.claim_url_sync(&scope, kb.id, kb.last_synced_at, &job, now).await? {
                Some(job_id) => {
                    tracing::info!(kb = %kb.id, job = %job_id, frequency = %kb.sync_frequency, "queued a scheduled URL re-sync");
                    queued += 1;
                }
                None => tracing::debug!(kb = %kb.id, "URL re-sync already claimed elsewhere"),
            }
        }
        Ok(queued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_merge_by_url_keeping_the_deeper_crawl() {
        let first = merge_roots(None, &["https://a.example/".into()], 0);
        let second = merge_roots(
            Some(&first),
            &["https://a.example/".into(), "https://b.example/".into()],
            2,
        );
        let third = merge_roots(Some(&second), &["https://a.example/".into()], 1);
        assert_eq!(
            parse_roots(Some(&third)),
            vec![
                CrawlRoot { url: "https://a.example/".into(), hops: 2 },
                CrawlRoot { url: "https://b.example/".into(), hops: 2 },
            ]
        );
        assert!(parse_roots(Some("not json")).is_empty());
    }
}
