//! A workspace's standing: one whose payments have failed for longer than the grace period
//! (`[billing] past_due_grace_days`, since the subscription's `past_due_since`) is read-only
//! until it pays: reads, deletions and billing keep working; everything that writes or starts
//! a run is refused with 402 `workspace_read_only`. Nothing is deleted.
//!
//! The check runs on every write and every chat, so the standing is held in memory per
//! workspace for a few seconds (a webhook handled here forgets it at once).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use domain::WorkspaceId;
use domain::time::{Millis, now_ms};
use parking_lot::{Mutex, RwLock};
use store::TenantScope;

use crate::{App, AppError};

/// How long a workspace's `past_due_since` is trusted.
const STANDING_TTL: Duration = Duration::from_secs(5);

pub(crate) struct Standing {
    grace: RwLock<Duration>,
    past_due: Mutex<HashMap<WorkspaceId, (Option<Millis>, Instant)>>,
}

impl Default for Standing {
    fn default() -> Self {
        Self { grace: RwLock::new(Duration::from_secs(7 * 86_400)), past_due: Default::default() }
    }
}

impl Standing {
    pub(crate) fn forget(&self, ws: WorkspaceId) {
        self.past_due.lock().remove(&ws);
    }
}

impl App {
    /// Sets how long a workspace may be past due before it is read-only (at start).
    pub fn set_past_due_grace(&self, grace: Duration) {
        *self.inner.billing.standing.grace.write() = grace;
    }

    /// Since when (epoch ms) payments have failed, from memory when recently read.
    async fn past_due_since(&self, scope: &TenantScope) -> Result<Option<Millis>, AppError> {
        let standing = &self.inner.billing.standing;
        let ws = scope.workspace_id();
        if let Some((since, at)) = standing.past_due.lock().get(&ws).copied()
            && at.elapsed() < STANDING_TTL
        {
            return Ok(since);
        }
        let since = self.inner.store.get_subscription(scope).await?.and_then(|s| s.past_due_since);
        standing.past_due.lock().insert(ws, (since, Instant::now()));
        Ok(since)
    }

    /// Refuses with 402 `workspace_read_only` when the workspace has been past due for longer
    /// than the grace period.
    pub async fn check_writable(&self, scope: &TenantScope) -> Result<(), AppError> {
        let Some(since) = self.past_due_since(scope).await? else { return Ok(()) };
        let grace = *self.inner.billing.standing.grace.read();
        let now = now_ms();
        if now < since.saturating_add(grace.as_millis() as i64) {
            return Ok(());
        }
        let days = (now - since) / 86_400_000;
        Err(AppError::PaymentRequired {
            code: "workspace_read_only",
            message: format!(
                "this workspace's payments have failed for {days} day(s), longer than the {} day(s) of grace, so it is read-only: nothing is deleted, and it works again as soon as an owner pays (POST /api/v1/billing/portal)",
                grace.as_secs() / 86_400
            ),
        })
    }
}
