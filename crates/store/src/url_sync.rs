//! Scheduled re-sync of knowledge bases' URL sources. Due-ness is computed from the stored
//! `last_synced_at` alone, and claiming a sync moves it forward in the same transaction that
//! queues the crawl job: after a crash or restart nothing is lost (the time was not moved
//! unless the job was queued) and nothing repeats (the time was moved with the job), even with
//! several schedulers on one database.

use domain::time::Millis;
use domain::{JobId, KnowledgeBaseId};

use crate::db::on_db;
use crate::jobs::NewJob;
use crate::knowledge::{KnowledgeBase, kb_columns};
use crate::{Result, Store, TenantScope};

impl Store {
    /// Knowledge bases of every workspace whose URL sources are due for a re-sync at `now`:
    /// `daily` ones `daily_ms` and `weekly` ones `weekly_ms` after their last sync (or
    /// creation), that have crawl roots or at least one document from a URL. Oldest first, at
    /// most `limit`.
    pub async fn due_url_syncs(
        &self,
        now: Millis,
        daily_ms: Millis,
        weekly_ms: Millis,
        limit: i64,
    ) -> Result<Vec<KnowledgeBase>> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", kb_columns!(), " FROM knowledge_bases kb
             WHERE kb.sync_frequency IN ('daily', 'weekly')
               AND COALESCE(kb.last_synced_at, kb.created_at)
                   + CASE kb.sync_frequency WHEN 'daily' THEN $1 ELSE $2 END <= $3
               AND (kb.crawl_roots IS NOT NULL
                    OR EXISTS (SELECT 1 FROM documents d WHERE d.kb_id = kb.id AND d.source_url IS NOT NULL))
             ORDER BY COALESCE(kb.last_synced_at, kb.created_at), kb.id LIMIT $4"))
            .bind(daily_ms).bind(weekly_ms).bind(now).bind(limit)
            .fetch_all(pool).await)
        .map_err(Into::into)
    }

    /// The distinct source URLs of a knowledge base's documents (at most `limit`).
    pub async fn url_sources(
        &self,
        scope: &TenantScope,
        kb: KnowledgeBaseId,
        limit: i64,
    ) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = on_db!(read self, pool => sqlx::query_as(
            "SELECT DISTINCT source_url FROM documents
             WHERE kb_id = $1 AND workspace_id = $2 AND source_url IS NOT NULL
             ORDER BY source_url LIMIT $3")
            .bind(kb.to_string()).bind(scope.workspace_id().to_string()).bind(limit)
            .fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|(u,)| u).collect())
    }

    /// Claims the re-sync of `kb` that was due when its last sync time read `seen` and queues
    /// `job` for it, atomically. Returns the job, or `None` when someone else claimed it first
    /// (the stored time is no longer `seen`).
    pub async fn claim_url_sync(
        &self,
        scope: &TenantScope,
        kb: KnowledgeBaseId,
        seen: Option<Millis>,
        job: &NewJob,
        now: Millis,
    ) -> Result<Option<JobId>> {
        let id = JobId::new();
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            let claimed = sqlx::query(
                "UPDATE knowledge_bases SET last_synced_at = $3
                 WHERE id = $1 AND workspace_id = $2
                   AND (last_synced_at = $4 OR (last_synced_at IS NULL AND $4 IS NULL))")
                .bind(kb.to_string()).bind(scope.workspace_id().to_string()).bind(now).bind(seen)
                .execute(&mut *tx).await?.rows_affected();
            if claimed == 0 {
                return Ok(None);
            }
            sqlx::query(
                "INSERT INTO jobs (id, queue, kind, payload, workspace_id, status, attempts, max_attempts, run_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, $8, $8)")
                .bind(id.to_string()).bind(&job.queue).bind(&job.kind).bind(job.payload.to_string())
                .bind(job.workspace_id.as_deref()).bind(job.max_attempts.max(1)).bind(job.run_at).bind(now)
                .execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(Some(id))
        })
    }

    /// Records an import of URLs into `kb`: its crawl roots (JSON, see
    /// [`KnowledgeBase::crawl_roots`]) and that the next scheduled sync counts from `now`.
    pub async fn record_url_import(
        &self,
        scope: &TenantScope,
        kb: KnowledgeBaseId,
        crawl_roots: &str,
        now: Millis,
    ) -> Result<()> {
        on_db!(write self, pool => sqlx::query("UPDATE knowledge_bases SET last_synced_at = $3, crawl_roots = $4 WHERE id = $1 AND workspace_id = $2")
            .bind(kb.to_string()).bind(scope.workspace_id().to_string()).bind(now).bind(crawl_roots)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
