//! Scheduled re-sync of URL sources (a knowledge base's `sync_frequency`: manual, daily,
//! weekly). The server calls [`App::schedule_url_syncs`] periodically; each due knowledge base
//! gets one `kb.crawl` job over its documents' source URLs, which re-indexes only the pages
//! whose content changed. Due-ness comes from the stored last-sync time, and claiming a sync
//! queues its job in the same transaction, so restarts neither lose nor repeat syncs.

use std::time::Duration;

use domain::time::Millis;
use store::NewJob;

use crate::knowledge::{CrawlPayload, INGEST_QUEUE};
use crate::{App, AppError};

/// Most knowledge bases queued per scheduler pass (the rest are due on the next pass).
const PER_PASS: i64 = 100;
/// Most URLs re-fetched per knowledge base and sync.
const MAX_URLS: i64 = 500;

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
            let urls = store.url_sources(&scope, kb.id, MAX_URLS).await?;
            if urls.is_empty() {
                continue;
            }
            let payload = serde_json::to_value(CrawlPayload {
                workspace_id: kb.workspace_id,
                kb_id: kb.id,
                urls,
                hops: 0,
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
