//! Credits: an append-only ledger per workspace (`credit_ledger`: the plan's monthly
//! `allowance`, operators' `grant`s, `top_up`s, and `spend`s per chat message, tool call and
//! uploaded document at the agent template's `credit_costs`, 1 where it names none).
//!
//! The hot path reads memory: each workspace's balance is read once (the ledger's sum, after
//! granting this month's allowance once: `reference` `allowance:YYYY-MM`), re-read at most
//! every [`REFRESH`] so other processes' movements count, and lowered by every spend at once.
//! Spends are written in batches by [`crate::App::flush`], like usage counters. Only plans with
//! a `credits_per_month` limit are held to the balance (a run is refused with 402
//! `credits_exhausted` when it cannot pay for one message); spends are recorded on every plan.
//! Unused allowance carries over to the next month.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use catalog::Limit;
use domain::WorkspaceId;
use domain::time::now_ms;
use parking_lot::Mutex;
use serde::Serialize;
use store::{NewCreditEntry, TenantScope};
use utoipa::ToSchema;

use crate::plan_limits::tier_name;
use crate::usage::utc_month;
use crate::{App, AppError};

/// How long a workspace's balance is trusted before it is re-read.
const REFRESH: Duration = Duration::from_secs(60);

/// Actions credits are spent on.
pub(crate) const CHAT_MESSAGE: &str = "chat_message";
pub(crate) const TOOL_CALL: &str = "tool_call";
pub(crate) const DOCUMENT_UPLOAD: &str = "document_upload";

/// Spends not yet written: (workspace, action) -> (credits, actions).
type PendingSpends = HashMap<(WorkspaceId, &'static str), (i64, i64)>;

/// Balances in memory and spends not yet written.
#[derive(Default)]
pub(crate) struct Credits {
    held: Mutex<HashMap<WorkspaceId, Held>>,
    pending: Mutex<PendingSpends>,
    /// Held while spends move from `pending` to the store and while a balance is read, so a
    /// read never misses spends that are in neither place.
    moving: tokio::sync::Mutex<()>,
}

struct Held {
    balance: i64,
    month: String,
    read_at: Instant,
}

impl Credits {
    fn fresh(&self, ws: WorkspaceId, month: &str) -> Option<i64> {
        let held = self.held.lock();
        held.get(&ws)
            .filter(|h| h.month == month && h.read_at.elapsed() < REFRESH)
            .map(|h| h.balance)
    }

    fn pending_sum(&self, ws: WorkspaceId) -> i64 {
        self.pending.lock().iter().filter(|((w, _), _)| *w == ws).map(|(_, (c, _))| *c).sum()
    }

    /// Records a spend: lowers the balance now, written at the next flush.
    pub(crate) fn spend(&self, ws: WorkspaceId, action: &'static str, cost: i64, count: i64) {
        if count <= 0 || cost <= 0 {
            return;
        }
        let credits = cost.saturating_mul(count);
        let mut pending = self.pending.lock();
        let e = pending.entry((ws, action)).or_default();
        e.0 -= credits;
        e.1 += count;
        if let Some(h) = self.held.lock().get_mut(&ws) {
            h.balance -= credits;
        }
    }

    fn forget(&self, ws: WorkspaceId) {
        self.held.lock().remove(&ws);
    }
}

/// A workspace's credits as the API shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CreditsView {
    /// Credits left (allowance, grants and top-ups less spends).
    pub balance: i64,
    /// The plan's monthly allowance (`null`: credits are not enforced on this plan).
    pub monthly_allowance: Option<u64>,
    /// Credits spent this UTC month.
    pub spent_this_month: i64,
}

/// An operator's grant or top-up.
#[derive(Debug, Clone)]
pub struct CreditGrant {
    /// `grant` or `top_up`.
    pub kind: String,
    pub amount: i64,
    pub note: String,
}

impl App {
    /// What an action costs with this agent: its template's `credit_costs`, else 1.
    pub(crate) fn credit_cost(&self, template_slug: Option<&str>, action: &str) -> i64 {
        template_slug
            .and_then(|slug| self.catalog().template(slug).ok())
            .map_or(1, |t| i64::from(t.credit_cost(action)))
    }

    /// The workspace's balance, from memory when read recently; else this month's allowance
    /// is granted (once) and the ledger summed.
    async fn credit_balance(&self, scope: &TenantScope, allowance: Limit) -> Result<i64, AppError> {
        let ws = scope.workspace_id();
        let month = utc_month(now_ms());
        let credits = &self.inner.billing.credits;
        if let Some(b) = credits.fresh(ws, &month) {
            return Ok(b);
        }
        let _moving = credits.moving.lock().await;
        if let Limit::AtMost(n) = allowance {
            let entry = NewCreditEntry {
                workspace_id: ws,
                kind: "allowance".into(),
                amount: n.min(i64::MAX as u64) as i64,
                action: None,
                quantity: 1,
                reference: Some(format!("allowance:{month}")),
                note: format!("monthly allowance, {month}"),
                actor: None,
            };
            self.inner.store.append_credits(&[entry], now_ms()).await?;
        }
        let balance = self.inner.store.credit_balance(scope).await? + credits.pending_sum(ws);
        credits.held.lock().insert(ws, Held { balance, month, read_at: Instant::now() });
        Ok(balance)
    }

    /// Refuses with `credits_exhausted` when the workspace's plan holds it to its credits and
    /// the balance cannot pay `cost`.
    pub(crate) async fn check_credits(
        &self,
        scope: &TenantScope,
        cost: i64,
    ) -> Result<(), AppError> {
        let tier = self.cached_tier(scope).await?;
        let allowance = self.catalog().plan_limits(tier).credits_per_month;
        if allowance == Limit::Unlimited {
            return Ok(());
        }
        let balance = self.credit_balance(scope, allowance).await?;
        if balance >= cost {
            return Ok(());
        }
        Err(AppError::PaymentRequired {
            code: "credits_exhausted",
            message: format!(
                "this workspace has {balance} credit(s) left and this needs {cost}; the {} plan grants {} a month: ask the platform operator for a top-up, upgrade, or wait until next month",
                tier_name(tier),
                match allowance {
                    Limit::AtMost(n) => n.to_string(),
                    Limit::Unlimited => "unlimited".into(),
                }
            ),
        })
    }

    pub(crate) fn spend_credits(
        &self,
        ws: WorkspaceId,
        action: &'static str,
        cost: i64,
        count: i64,
    ) {
        self.inner.billing.credits.spend(ws, action, cost, count);
    }

    /// Writes pending spends to the ledger (put back to retry if the write fails).
    pub(crate) async fn flush_credits(&self) {
        let credits = &self.inner.billing.credits;
        let _moving = credits.moving.lock().await;
        let taken = std::mem::take(&mut *credits.pending.lock());
        if taken.is_empty() {
            return;
        }
        let entries: Vec<NewCreditEntry> = taken
            .iter()
            .map(|((ws, action), (amount, count))| NewCreditEntry {
                workspace_id: *ws,
                kind: "spend".into(),
                amount: *amount,
                action: Some((*action).to_owned()),
                quantity: *count,
                reference: None,
                note: String::new(),
                actor: None,
            })
            .collect();
        if let Err(e) = self.inner.store.append_credits(&entries, now_ms()).await {
            tracing::warn!(error = %e, entries = entries.len(), "could not write credit spends; retrying later");
            let mut pending = credits.pending.lock();
            for (key, (amount, count)) in taken {
                let p = pending.entry(key).or_default();
                p.0 += amount;
                p.1 += count;
            }
        }
    }

    /// The workspace's credits for people (not the hot path).
    pub(crate) async fn credits_view(&self, scope: &TenantScope) -> Result<CreditsView, AppError> {
        let tier = self.scope_tier(scope).await?;
        let allowance = self.catalog().plan_limits(tier).credits_per_month;
        // Fresh figures: drop the held balance so it is re-read with this month's allowance.
        self.inner.billing.credits.forget(scope.workspace_id());
        let balance = self.credit_balance(scope, allowance).await?;
        let month = utc_month(now_ms());
        let start = month_start_ms(&month);
        let credits = &self.inner.billing.credits;
        let pending: i64 = {
            let _moving = credits.moving.lock().await;
            -credits.pending_sum(scope.workspace_id())
        };
        let spent = self.inner.store.credits_spent_since(scope, start).await? + pending;
        Ok(CreditsView {
            balance,
            monthly_allowance: match allowance {
                Limit::AtMost(n) => Some(n),
                Limit::Unlimited => None,
            },
            spent_this_month: spent,
        })
    }

    /// Adds credits to a workspace (operators only): a `grant` or a `top_up`, audited.
    pub async fn grant_credits(
        &self,
        p: &crate::Principal,
        workspace_id: WorkspaceId,
        grant: CreditGrant,
    ) -> Result<CreditsView, AppError> {
        self.require_operator(p).await?;
        if !matches!(grant.kind.as_str(), "grant" | "top_up") {
            return Err(AppError::field("/kind", "invalid_kind", "use `grant` or `top_up`"));
        }
        if grant.amount <= 0 || grant.amount > 1_000_000_000 {
            return Err(AppError::field(
                "/amount",
                "out_of_range",
                "must be a whole number of credits from 1 to 1000000000",
            ));
        }
        let scope = crate::admin::operator_scope(workspace_id);
        self.inner.store.get_workspace(&scope).await.map_err(AppError::from_store("workspace"))?;
        let entry = NewCreditEntry {
            workspace_id,
            kind: grant.kind.clone(),
            amount: grant.amount,
            action: None,
            quantity: 1,
            reference: None,
            note: grant.note.clone(),
            actor: p.user_id().map(|u| u.to_string()),
        };
        self.inner.store.append_credits(&[entry], now_ms()).await?;
        self.audit(store::NewAuditEvent {
            workspace_id: Some(workspace_id),
            actor_user_id: p.user_id(),
            actor_key_id: p.key_id(),
            action: "credits.granted",
            target: Some(workspace_id.to_string()),
            ip: None,
            detail: serde_json::json!({"kind": grant.kind, "amount": grant.amount, "note": grant.note}),
        })
        .await;
        self.credits_view(&scope).await
    }
}

/// Epoch ms of the first instant of `month` (`YYYY-MM`, UTC).
fn month_start_ms(month: &str) -> i64 {
    let (y, m) = month.split_once('-').unwrap_or(("1970", "01"));
    let (y, m): (i32, u8) = (y.parse().unwrap_or(1970), m.parse().unwrap_or(1));
    time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap_or(time::Month::January), 1)
        .map(|d| d.midnight().assume_utc().unix_timestamp() * 1000)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_starts_are_utc_midnights() {
        assert_eq!(month_start_ms("1970-01"), 0);
        assert_eq!(month_start_ms("2023-11"), 1_698_796_800_000);
    }

    #[test]
    fn spends_lower_a_held_balance_and_wait_for_the_flush() {
        let c = Credits::default();
        let ws = WorkspaceId::new();
        c.held
            .lock()
            .insert(ws, Held { balance: 10, month: "2026-12".into(), read_at: Instant::now() });
        c.spend(ws, CHAT_MESSAGE, 2, 3);
        c.spend(ws, TOOL_CALL, 1, 1);
        c.spend(ws, TOOL_CALL, 1, 0);
        assert_eq!(c.fresh(ws, "2026-12"), Some(3));
        assert_eq!(c.fresh(ws, "2027-01"), None, "another month is read again");
        assert_eq!(c.pending_sum(ws), -7);
        assert_eq!(c.pending.lock()[&(ws, CHAT_MESSAGE)], (-6, 3));
    }
}
