//! The durable job queue: enqueue, lease, complete, retry with backoff, dead after N attempts.
//!
//! A leased job carries an owner and a lease deadline. A worker that dies (even `kill -9`)
//! simply stops renewing; once the deadline passes the job is leased again. A worker shutting
//! down gracefully releases its leases so the work restarts at once without costing an attempt.

use domain::JobId;
use domain::time::Millis;
use serde::Serialize;

use crate::db::{Db, on_db};
use crate::{Result, Store, StoreError};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Dead,
}

impl TryFrom<String> for JobStatus {
    type Error = StoreError;
    fn try_from(s: String) -> Result<Self> {
        Ok(match s.as_str() {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "done" => JobStatus::Done,
            "dead" => JobStatus::Dead,
            other => return Err(StoreError::Corrupt(format!("job status `{other}`"))),
        })
    }
}

/// A job as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Job {
    #[sqlx(try_from = "String")]
    pub id: JobId,
    pub queue: String,
    pub kind: String,
    pub payload: String,
    pub workspace_id: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: JobStatus,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at: Millis,
    pub lease_owner: Option<String>,
    pub lease_until: Option<Millis>,
    pub last_error: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub queue: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub workspace_id: Option<String>,
    pub max_attempts: i64,
    /// Earliest time to run (now, or later for scheduled work).
    pub run_at: Millis,
}

macro_rules! job_columns {
    () => {
        "id, queue, kind, payload, workspace_id, status, attempts, max_attempts, run_at, lease_owner, lease_until, last_error, created_at, updated_at"
    };
}

/// Delay before retry number `attempt` (1-based): 2s, 4s, 8s, … capped at 10 minutes.
pub fn backoff_ms(attempt: i64) -> Millis {
    let exp = attempt.clamp(1, 20) as u32;
    (1_000i64 << exp).min(600_000)
}

impl Store {
    pub async fn enqueue_job(&self, job: &NewJob, now: Millis) -> Result<JobId> {
        let id = JobId::new();
        on_db!(write self, pool => sqlx::query(
            "INSERT INTO jobs (id, queue, kind, payload, workspace_id, status, attempts, max_attempts, run_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, $8, $8)")
            .bind(id.to_string())
            .bind(&job.queue)
            .bind(&job.kind)
            .bind(job.payload.to_string())
            .bind(job.workspace_id.as_deref())
            .bind(job.max_attempts.max(1))
            .bind(job.run_at)
            .bind(now)
            .execute(pool)
            .await.map(|r| r.rows_affected()))?;
        Ok(id)
    }

    /// Leases the next ready job of `queue` for `lease_ms`: a queued job whose time has come,
    /// or a running job whose lease expired (its worker died). Attempts count leases.
    pub async fn lease_job(
        &self,
        queue: &str,
        owner: &str,
        lease_ms: Millis,
        now: Millis,
    ) -> Result<Option<Job>> {
        let sql: &'static str = match self.db {
            Db::Sqlite { .. } => concat!(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = $1, lease_until = $2, updated_at = $3 ",
                "WHERE id = (SELECT id FROM jobs WHERE queue = $4 AND ((status = 'queued' AND run_at <= $3) OR (status = 'running' AND lease_until < $3)) ",
                "ORDER BY run_at, id LIMIT 1) RETURNING ",
                job_columns!()
            ),
            // SKIP LOCKED lets many workers lease concurrently without blocking each other.
            Db::Postgres(_) => concat!(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = $1, lease_until = $2, updated_at = $3 ",
                "WHERE id = (SELECT id FROM jobs WHERE queue = $4 AND ((status = 'queued' AND run_at <= $3) OR (status = 'running' AND lease_until < $3)) ",
                "ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING ",
                job_columns!()
            ),
        };
        on_db!(write self, pool => sqlx::query_as(sql)
            .bind(owner)
            .bind(now + lease_ms)
            .bind(now)
            .bind(queue)
            .fetch_optional(pool)
            .await)
        .map_err(Into::into)
    }

    /// Extends a lease the caller still holds; `false` if it lost it.
    pub async fn extend_job_lease(
        &self,
        id: JobId,
        owner: &str,
        lease_ms: Millis,
        now: Millis,
    ) -> Result<bool> {
        let n = on_db!(write self, pool => sqlx::query(
            "UPDATE jobs SET lease_until = $3, updated_at = $4 WHERE id = $1 AND lease_owner = $2 AND status = 'running'")
            .bind(id.to_string()).bind(owner).bind(now + lease_ms).bind(now)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Marks a job done; `false` if the caller no longer held its lease.
    pub async fn complete_job(&self, id: JobId, owner: &str, now: Millis) -> Result<bool> {
        let n = on_db!(write self, pool => sqlx::query(
            "UPDATE jobs SET status = 'done', lease_owner = NULL, lease_until = NULL, last_error = NULL, updated_at = $3
             WHERE id = $1 AND lease_owner = $2 AND status = 'running'")
            .bind(id.to_string()).bind(owner).bind(now)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Records a failed attempt: the job is retried after a backoff, or is dead once it has used
    /// `max_attempts` (or when `permanent`). Returns the new status.
    pub async fn fail_job(
        &self,
        id: JobId,
        owner: &str,
        error: &str,
        permanent: bool,
        now: Millis,
    ) -> Result<JobStatus> {
        let error: String = error.chars().take(2_000).collect();
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            let row: Option<(i64, i64)> = sqlx::query_as(
                "SELECT attempts, max_attempts FROM jobs WHERE id = $1 AND lease_owner = $2 AND status = 'running'")
                .bind(id.to_string()).bind(owner).fetch_optional(&mut *tx).await?;
            let Some((attempts, max)) = row else { return Err(StoreError::NotFound) };
            let dead = permanent || attempts >= max;
            let status = if dead { "dead" } else { "queued" };
            sqlx::query(
                "UPDATE jobs SET status = $2, run_at = $3, last_error = $4, lease_owner = NULL, lease_until = NULL, updated_at = $5 WHERE id = $1")
                .bind(id.to_string()).bind(status).bind(now + backoff_ms(attempts)).bind(&error).bind(now)
                .execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(if dead { JobStatus::Dead } else { JobStatus::Queued })
        })
    }

    /// Marks jobs whose leases expired after their last allowed attempt as dead (a job that
    /// crashes its worker every time must not loop forever). Returns how many.
    pub async fn bury_exhausted_jobs(&self, now: Millis) -> Result<u64> {
        let n = on_db!(write self, pool => sqlx::query(
            "UPDATE jobs SET status = 'dead', last_error = COALESCE(last_error, 'worker lost the job on its last attempt'), lease_owner = NULL, lease_until = NULL, updated_at = $1
             WHERE status = 'running' AND lease_until < $1 AND attempts >= max_attempts")
            .bind(now).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n)
    }

    /// Gives back every lease `owner` holds (graceful shutdown): the jobs are ready again at
    /// once and the interrupted attempt is not counted.
    pub async fn release_job_leases(&self, owner: &str, now: Millis) -> Result<u64> {
        let n = on_db!(write self, pool => sqlx::query(
            "UPDATE jobs SET status = 'queued', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
                 lease_owner = NULL, lease_until = NULL, run_at = $2, updated_at = $2
             WHERE lease_owner = $1 AND status = 'running'")
            .bind(owner).bind(now).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n)
    }

    pub async fn get_job(&self, id: JobId) -> Result<Job> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1"))
            .bind(id.to_string()).fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    /// Counts jobs by status in a queue (for metrics and tests).
    pub async fn count_jobs(&self, queue: &str, status: JobStatus) -> Result<i64> {
        let status = match status {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Dead => "dead",
        };
        let (n,): (i64,) = on_db!(read self, pool => sqlx::query_as(
            "SELECT COUNT(*) FROM jobs WHERE queue = $1 AND status = $2")
            .bind(queue).bind(status).fetch_one(pool).await)?;
        Ok(n)
    }
}

impl Store {
    /// Payloads of unfinished jobs that hold a sealed secret (`{"sealed": …}`), for re-wrapping
    /// after a master-key rotation.
    pub async fn sealed_job_payloads(&self) -> Result<Vec<(JobId, String)>> {
        let rows: Vec<(String, String)> = on_db!(read self, pool => sqlx::query_as(
            "SELECT id, payload FROM jobs WHERE status IN ('queued', 'running') AND payload LIKE '%\"sealed\"%'")
            .fetch_all(pool).await)?;
        rows.into_iter()
            .map(|(id, payload)| {
                Ok((JobId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?, payload))
            })
            .collect()
    }

    /// Replaces a job's payload (re-wrapped secrets).
    pub async fn set_job_payload(&self, id: JobId, payload: &str) -> Result<()> {
        on_db!(write self, pool => sqlx::query("UPDATE jobs SET payload = $2 WHERE id = $1")
            .bind(id.to_string()).bind(payload).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
