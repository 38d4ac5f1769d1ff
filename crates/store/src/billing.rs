//! Billing: a workspace's Stripe subscription, the Stripe events already applied (replay
//! protection, written in the transaction that applies the event), and the usage records
//! metered billing reports to Stripe.
//!
//! Usage records are written by [`Store::add_usage`] in the transaction that adds the same
//! messages to `usage_daily`, for workspaces with a Stripe customer, together with a job on
//! [`BILLING_QUEUE`] that reports them: a crash can lose neither.

use domain::WorkspaceId;
use domain::time::Millis;
use serde::Serialize;

use crate::db::on_db;
use crate::{Result, Store, StoreError, TenantScope};

/// The job queue billing work goes through.
pub const BILLING_QUEUE: &str = "billing";
/// The job that reports unreported usage records to Stripe.
pub const REPORT_USAGE_JOB: &str = "billing.report_usage";
/// The metric metered billing reports.
pub const METERED_METRIC: &str = "messages";

/// A workspace's subscription as stored (the hub seed's Subscription).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Subscription {
    #[sqlx(try_from = "String")]
    pub workspace_id: WorkspaceId,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    /// The plan it pays for (`starter`, `pro`, `enterprise`).
    pub plan: String,
    /// Stripe's status: `active`, `trialing`, `past_due`, `canceled`, `unpaid`, `incomplete`, …
    pub status: String,
    pub current_period_start: Option<Millis>,
    pub current_period_end: Option<Millis>,
    pub cancel_at_period_end: bool,
    /// When the current run of failed payments began (`None`: paid up).
    pub past_due_since: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

macro_rules! subscription_columns {
    () => {
        "workspace_id, stripe_customer_id, stripe_subscription_id, plan, status, current_period_start, current_period_end, cancel_at_period_end, past_due_since, created_at, updated_at"
    };
}

/// What a Stripe event changes in a subscription: `None` fields are left as they are.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionChange {
    pub customer_id: Option<String>,
    pub subscription_id: Option<String>,
    pub plan: Option<String>,
    pub status: Option<String>,
    pub current_period_start: Option<Millis>,
    pub current_period_end: Option<Millis>,
    pub cancel_at_period_end: Option<bool>,
    /// `Some(true)`: a payment failed (`past_due_since` is set unless already set);
    /// `Some(false)`: paid (cleared).
    pub past_due: Option<bool>,
    /// Subscription snapshots (`customer.subscription.*`) are applied only when at least as
    /// new (`event_at`) as the newest applied, so a late older event cannot undo a newer one.
    pub ordered: bool,
    /// The event's `created` time (epoch ms).
    pub event_at: Millis,
    /// The workspace's plan once applied (`None`: unchanged).
    pub workspace_plan: Option<String>,
}

/// A Stripe event to apply once.
#[derive(Debug, Clone)]
pub struct StripeEventRecord<'a> {
    /// Stripe's event id (`evt_…`).
    pub id: &'a str,
    /// `checkout.session.completed`, `invoice.paid`, …
    pub kind: &'a str,
}

/// What applying an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// The event id was seen before: nothing changed.
    Duplicate,
    /// Recorded. `plan_change` is the workspace's plan before and after when it moved;
    /// `stale` when an older subscription snapshot was recorded but not applied.
    Applied { plan_change: Option<(String, String)>, stale: bool },
}

/// A usage record as stored (the hub seed's UsageRecord).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct UsageRecord {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub workspace_id: WorkspaceId,
    pub metric: String,
    pub quantity: i64,
    /// First and last UTC day (`YYYY-MM-DD`) the quantity was counted on.
    pub period_start: String,
    pub period_end: String,
    pub created_at: Millis,
    /// When Stripe accepted it (`None`: not reported yet).
    pub reported_to_stripe: Option<Millis>,
}

/// An unreported usage record with the Stripe customer it is billed to.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageToReport {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub workspace_id: WorkspaceId,
    pub metric: String,
    pub quantity: i64,
    pub created_at: Millis,
    pub stripe_customer_id: String,
}

impl Store {
    /// The workspace's subscription, if it ever started one.
    pub async fn get_subscription(&self, scope: &TenantScope) -> Result<Option<Subscription>> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", subscription_columns!(), " FROM subscriptions WHERE workspace_id = $1"))
            .bind(scope.workspace_id().to_string())
            .fetch_optional(pool).await)
        .map_err(Into::into)
    }

    /// The workspace a Stripe customer belongs to (for webhooks, which name the customer).
    pub async fn workspace_of_stripe_customer(
        &self,
        customer_id: &str,
    ) -> Result<Option<WorkspaceId>> {
        let row: Option<(String,)> = on_db!(read self, pool => sqlx::query_as(
            "SELECT workspace_id FROM subscriptions WHERE stripe_customer_id = $1")
            .bind(customer_id).fetch_optional(pool).await)?;
        row.map(|(ws,)| WorkspaceId::parse(&ws).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    /// Applies a Stripe event once: records its id and, unless it was seen before, the
    /// subscription change and the workspace's new plan, all in one transaction.
    pub async fn apply_stripe_event(
        &self,
        event: &StripeEventRecord<'_>,
        change: Option<(&TenantScope, &SubscriptionChange)>,
        now: Millis,
    ) -> Result<EventOutcome> {
        let ws = change.map(|(s, _)| s.workspace_id().to_string());
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            let fresh = sqlx::query(
                "INSERT INTO stripe_events (id, type, workspace_id, received_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING")
                .bind(event.id).bind(event.kind).bind(ws.as_deref()).bind(now)
                .execute(&mut *tx).await?.rows_affected();
            if fresh == 0 {
                tx.rollback().await?;
                return Ok(EventOutcome::Duplicate);
            }
            let Some((scope, c)) = change else {
                tx.commit().await?;
                return Ok(EventOutcome::Applied { plan_change: None, stale: false });
            };
            let ws = scope.workspace_id().to_string();
            let past_due: Option<i64> = c.past_due.map(i64::from);
            let applied = sqlx::query(
                "INSERT INTO subscriptions (workspace_id, stripe_customer_id, stripe_subscription_id, plan, status, current_period_start, current_period_end, cancel_at_period_end, past_due_since, last_event_at, created_at, updated_at)
                 VALUES ($1, $2, $3, COALESCE($4, 'starter'), COALESCE($5, 'incomplete'), $6, $7, COALESCE($8, FALSE), CASE WHEN $9 = 1 THEN $12 ELSE NULL END, CASE WHEN $11 THEN $10 ELSE 0 END, $12, $12)
                 ON CONFLICT (workspace_id) DO UPDATE SET
                    stripe_customer_id = COALESCE($2, subscriptions.stripe_customer_id),
                    stripe_subscription_id = COALESCE($3, subscriptions.stripe_subscription_id),
                    plan = COALESCE($4, subscriptions.plan),
                    status = COALESCE($5, subscriptions.status),
                    current_period_start = COALESCE($6, subscriptions.current_period_start),
                    current_period_end = COALESCE($7, subscriptions.current_period_end),
                    cancel_at_period_end = COALESCE($8, subscriptions.cancel_at_period_end),
                    past_due_since = CASE WHEN $9 = 1 THEN COALESCE(subscriptions.past_due_since, $12) WHEN $9 = 0 THEN NULL ELSE subscriptions.past_due_since END,
                    last_event_at = CASE WHEN $11 THEN $10 ELSE subscriptions.last_event_at END,
                    updated_at = $12
                 WHERE NOT $11 OR subscriptions.last_event_at <= $10")
                .bind(&ws).bind(c.customer_id.as_deref()).bind(c.subscription_id.as_deref())
                .bind(c.plan.as_deref()).bind(c.status.as_deref())
                .bind(c.current_period_start).bind(c.current_period_end)
                .bind(c.cancel_at_period_end).bind(past_due)
                .bind(c.event_at).bind(c.ordered).bind(now)
                .execute(&mut *tx).await?.rows_affected();
            if applied == 0 {
                tx.commit().await?;
                return Ok(EventOutcome::Applied { plan_change: None, stale: true });
            }
            let mut plan_change = None;
            if let Some(plan) = &c.workspace_plan {
                let (before,): (String,) = sqlx::query_as("SELECT plan FROM workspaces WHERE id = $1")
                    .bind(&ws).fetch_one(&mut *tx).await?;
                if &before != plan {
                    sqlx::query("UPDATE workspaces SET plan = $1, updated_at = $2 WHERE id = $3")
                        .bind(plan).bind(now).bind(&ws).execute(&mut *tx).await?;
                    plan_change = Some((before, plan.clone()));
                }
            }
            tx.commit().await?;
            Ok(EventOutcome::Applied { plan_change, stale: false })
        })
    }

    /// Whether a Stripe event id was applied already.
    pub async fn stripe_event_seen(&self, id: &str) -> Result<bool> {
        let row: Option<(String,)> = on_db!(read self, pool => sqlx::query_as(
            "SELECT id FROM stripe_events WHERE id = $1").bind(id).fetch_optional(pool).await)?;
        Ok(row.is_some())
    }

    /// The workspace's usage records, newest first.
    pub async fn usage_records(&self, scope: &TenantScope, limit: u32) -> Result<Vec<UsageRecord>> {
        on_db!(read self, pool => sqlx::query_as(
            "SELECT id, workspace_id, metric, quantity, period_start, period_end, created_at, reported_to_stripe
             FROM usage_records WHERE workspace_id = $1 ORDER BY id DESC LIMIT $2")
            .bind(scope.workspace_id().to_string()).bind(i64::from(limit.clamp(1, 1000)))
            .fetch_all(pool).await)
        .map_err(Into::into)
    }

    /// Unreported usage records of every workspace that still has a Stripe customer, oldest
    /// first (the report job's work list; the job is not a workspace's request).
    pub async fn unreported_usage(&self, limit: u32) -> Result<Vec<UsageToReport>> {
        on_db!(read self, pool => sqlx::query_as(
            "SELECT r.id, r.workspace_id, r.metric, r.quantity, r.created_at, s.stripe_customer_id
             FROM usage_records r JOIN subscriptions s ON s.workspace_id = r.workspace_id
             WHERE r.reported_to_stripe IS NULL AND s.stripe_customer_id IS NOT NULL
             ORDER BY r.created_at, r.id LIMIT $1")
            .bind(i64::from(limit.clamp(1, 1000)))
            .fetch_all(pool).await)
        .map_err(Into::into)
    }

    /// Marks a usage record reported (once: `false` if it was already marked).
    pub async fn mark_usage_reported(&self, id: &str, now: Millis) -> Result<bool> {
        let n = on_db!(write self, pool => sqlx::query(
            "UPDATE usage_records SET reported_to_stripe = $1 WHERE id = $2 AND reported_to_stripe IS NULL")
            .bind(now).bind(id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}

/// Inside [`Store::add_usage`]'s transaction: a usage record per workspace of `messages` in
/// the batch (for workspaces billed through Stripe) and, when any was written, the job that
/// reports them.
macro_rules! record_metered_usage {
    ($tx:expr, $sums:expr, $now:expr) => {{
        let now: domain::time::Millis = $now;
        let mut per_ws: std::collections::BTreeMap<&str, (i64, &str, &str)> =
            std::collections::BTreeMap::new();
        for ((ws, _agent, day, metric), quantity) in $sums.iter() {
            if *metric != $crate::billing::METERED_METRIC || *quantity <= 0 {
                continue;
            }
            let e = per_ws.entry(ws.as_str()).or_insert((0, *day, *day));
            e.0 += *quantity;
            e.1 = e.1.min(*day);
            e.2 = e.2.max(*day);
        }
        let mut written = 0u64;
        for (ws, (quantity, first, last)) in &per_ws {
            written += sqlx::query(concat!(
                "INSERT INTO usage_records (id, workspace_id, metric, quantity, period_start, period_end, created_at) ",
                "SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM subscriptions WHERE workspace_id = $2 ",
                "AND stripe_customer_id IS NOT NULL AND status IN ('active', 'trialing', 'past_due'))"))
                .bind(format!("ur_{}", uuid::Uuid::now_v7().simple()))
                .bind(*ws).bind($crate::billing::METERED_METRIC).bind(*quantity)
                .bind(*first).bind(*last).bind(now)
                .execute(&mut *$tx).await?.rows_affected();
        }
        if written > 0 {
            sqlx::query(
                "INSERT INTO jobs (id, queue, kind, payload, workspace_id, status, attempts, max_attempts, run_at, created_at, updated_at)
                 VALUES ($1, $2, $3, '{}', NULL, 'queued', 0, 20, $4, $4, $4)")
                .bind(domain::JobId::new().to_string())
                .bind($crate::billing::BILLING_QUEUE)
                .bind($crate::billing::REPORT_USAGE_JOB)
                .bind(now)
                .execute(&mut *$tx).await?;
        }
    }};
}
pub(crate) use record_metered_usage;

/// A movement of credits to append to the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCreditEntry {
    pub workspace_id: WorkspaceId,
    /// `allowance`, `grant`, `top_up` or `spend`.
    pub kind: String,
    /// Positive in, negative out.
    pub amount: i64,
    /// What was spent on (`chat_message`, `tool_call`, `document_upload`).
    pub action: Option<String>,
    /// How many actions `amount` covers.
    pub quantity: i64,
    /// Makes the movement happen once per workspace (`allowance:2026-12`).
    pub reference: Option<String>,
    pub note: String,
    /// Who (an operator's user id), for grants.
    pub actor: Option<String>,
}

/// A ledger row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct CreditEntry {
    pub id: String,
    pub kind: String,
    pub amount: i64,
    pub action: Option<String>,
    pub quantity: i64,
    pub reference: Option<String>,
    pub note: String,
    pub actor: Option<String>,
    pub created_at: Millis,
}

impl Store {
    /// Appends movements in one transaction. One whose `reference` the workspace already has
    /// is skipped; returns how many were written.
    pub async fn append_credits(&self, entries: &[NewCreditEntry], now: Millis) -> Result<u64> {
        if entries.is_empty() {
            return Ok(0);
        }
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            let mut written = 0;
            for e in entries {
                written += sqlx::query(
                    "INSERT INTO credit_ledger (id, workspace_id, kind, amount, action, quantity, reference, note, actor, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (workspace_id, reference) DO NOTHING")
                    .bind(format!("cr_{}", uuid::Uuid::now_v7().simple()))
                    .bind(e.workspace_id.to_string()).bind(&e.kind).bind(e.amount)
                    .bind(e.action.as_deref()).bind(e.quantity).bind(e.reference.as_deref())
                    .bind(&e.note).bind(e.actor.as_deref()).bind(now)
                    .execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            Ok(written)
        })
    }

    /// The workspace's balance: the sum of its ledger (read once into memory, not per request).
    pub async fn credit_balance(&self, scope: &TenantScope) -> Result<i64> {
        let (sum,): (i64,) = on_db!(read self, pool => sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM credit_ledger WHERE workspace_id = $1")
            .bind(scope.workspace_id().to_string()).fetch_one(pool).await)?;
        Ok(sum)
    }

    /// Credits spent since `since` (epoch ms), as a positive number.
    pub async fn credits_spent_since(&self, scope: &TenantScope, since: Millis) -> Result<i64> {
        let (sum,): (i64,) = on_db!(read self, pool => sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(-amount), 0) AS BIGINT) FROM credit_ledger WHERE workspace_id = $1 AND kind = 'spend' AND created_at >= $2")
            .bind(scope.workspace_id().to_string()).bind(since).fetch_one(pool).await)?;
        Ok(sum)
    }

    /// The workspace's ledger, newest first.
    pub async fn credit_ledger(&self, scope: &TenantScope, limit: u32) -> Result<Vec<CreditEntry>> {
        on_db!(read self, pool => sqlx::query_as(
            "SELECT id, kind, amount, action, quantity, reference, note, actor, created_at FROM credit_ledger
             WHERE workspace_id = $1 ORDER BY id DESC LIMIT $2")
            .bind(scope.workspace_id().to_string()).bind(i64::from(limit.clamp(1, 1000)))
            .fetch_all(pool).await)
        .map_err(Into::into)
    }
}
