//! In-process job workers: each leases jobs from one queue, runs them, and reports the result
//! to the durable queue. Leases are renewed while a job runs and given back on shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use domain::time::now_ms;
use store::{Job, JobStatus, Store};
use tokio::sync::watch;

/// How a job attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth retrying later (network, a busy service).
    #[error("{0}")]
    Retry(String),
    /// Will never succeed (bad input); the job is dead at once.
    #[error("{0}")]
    Permanent(String),
}

/// Runs one job.
pub type Handler =
    Arc<dyn Fn(Job) -> Pin<Box<dyn Future<Output = Result<(), JobError>> + Send>> + Send + Sync>;

/// A worker's settings.
#[derive(Clone)]
pub struct WorkerSpec {
    pub queue: &'static str,
    pub concurrency: usize,
    pub lease: Duration,
    pub idle_poll: Duration,
}

/// Spawns `spec.concurrency` workers on `queue`; they stop when `shutdown` turns true, after
/// giving back their leases. Returns their join handles.
pub fn spawn(
    store: Store,
    owner: String,
    spec: WorkerSpec,
    handler: Handler,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..spec.concurrency)
        .map(|i| {
            let store = store.clone();
            let owner = format!("{owner}/{}/{i}", spec.queue);
            let spec = spec.clone();
            let handler = handler.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { run(store, owner, spec, handler, shutdown).await })
        })
        .collect()
}

async fn run(
    store: Store,
    owner: String,
    spec: WorkerSpec,
    handler: Handler,
    mut shutdown: watch::Receiver<bool>,
) {
    let lease_ms = spec.lease.as_millis() as i64;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let _ = store.bury_exhausted_jobs(now_ms()).await;
        let job = match store.lease_job(spec.queue, &owner, lease_ms, now_ms()).await {
            Ok(Some(job)) => job,
            Ok(None) => {
                tokio::select! {
                    _ = tokio::time::sleep(spec.idle_poll) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, queue = spec.queue, "could not lease a job");
                tokio::time::sleep(spec.idle_poll).await;
                continue;
            }
        };
        let id = job.id;
        let kind = job.kind.clone();
        let work = handler(job);
        tokio::pin!(work);
        let mut renew = tokio::time::interval(spec.lease / 3);
        renew.tick().await;
        let result = loop {
            tokio::select! {
                r = &mut work => break Some(r),
                _ = renew.tick() => {
                    if !store.extend_job_lease(id, &owner, lease_ms, now_ms()).await.unwrap_or(false) {
                        tracing::warn!(job = %id, "lost the lease on a running job");
                    }
                }
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { break None; }
                }
            }
        };
        match result {
            None => break,
            Some(Ok(())) => {
                if let Err(e) = store.complete_job(id, &owner, now_ms()).await {
                    tracing::error!(job = %id, error = %e, "could not mark a job done");
                }
            }
            Some(Err(err)) => {
                let permanent = matches!(err, JobError::Permanent(_));
                match store.fail_job(id, &owner, &err.to_string(), permanent, now_ms()).await {
                    Ok(JobStatus::Dead) => {
                        tracing::error!(job = %id, %kind, error = %err, "job failed for good")
                    }
                    Ok(_) => {
                        tracing::warn!(job = %id, %kind, error = %err, "job failed; will retry")
                    }
                    Err(e) => {
                        tracing::error!(job = %id, error = %e, "could not record a job failure")
                    }
                }
            }
        }
    }
    match store.release_job_leases(&owner, now_ms()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(owner, released = n, "released job leases on shutdown"),
        Err(e) => tracing::warn!(owner, error = %e, "could not release job leases"),
    }
}
