//! The workspace plan's limits, checked where things are made: agents (a count on create,
//! uploads are rare), documents (a count on upload and URL import), storage (the documents'
//! bytes, on upload), seats (members plus pending invites, on invite), and messages per month,
//! checked before every run on every chat surface from the in-memory month count
//! ([`crate::usage::UsageBuffer`]), so the hot path reads memory, not a `COUNT(*)`.
//!
//! A refusal is [`AppError::PlanLimit`]: HTTP 402 `plan_limit_reached` with `limit` naming the
//! limit and a detail naming the plan, the limit and how to upgrade.
//!
//! Near a limit the workspace's owners and admins are mailed once per limit, period and
//! threshold (80 % and 100 %): the crossing is noticed where the limit is checked, remembered in
//! memory, and recorded in `limit_notices` (the row decides, so two processes send one mail).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use catalog::{Limit, PlanTier};
use domain::WorkspaceId;
use domain::time::now_ms;
use parking_lot::Mutex;
use serde_json::Value;
use store::TenantScope;

use crate::usage::utc_month;
use crate::{App, AppError, Principal};

/// How long a workspace's plan tier is trusted on the chat path (a plan change made through
/// this process is seen at once; one made elsewhere within this time).
const TIER_TTL: Duration = Duration::from_secs(5);

/// Workspaces' plan tiers, for the per-message check, and the limit warnings already sent:
/// by workspace, limit and threshold, the period it was sent for (a new period replaces it).
#[derive(Default)]
pub(crate) struct PlanTiers {
    tiers: Mutex<HashMap<WorkspaceId, (PlanTier, Instant)>>,
    noticed: Mutex<HashMap<(WorkspaceId, &'static str, u8), String>>,
}

/// The warning thresholds, in percent of a limit.
const THRESHOLDS: [u8; 2] = [80, 100];

/// How a limit reads in a warning mail.
fn limit_words(limit: &str) -> &'static str {
    match limit {
        "messages_per_month" => "messages this month",
        "knowledge_docs" => "documents",
        "storage_mb" => "document storage",
        "seats" => "seats",
        _ => "a plan limit",
    }
}

impl PlanTiers {
    fn get(&self, ws: WorkspaceId) -> Option<PlanTier> {
        let tiers = self.tiers.lock();
        tiers.get(&ws).filter(|(_, at)| at.elapsed() < TIER_TTL).map(|(t, _)| *t)
    }

    fn put(&self, ws: WorkspaceId, tier: PlanTier) {
        self.tiers.lock().insert(ws, (tier, Instant::now()));
    }

    /// Forgets a workspace's tier (its plan changed).
    pub(crate) fn forget(&self, ws: WorkspaceId) {
        self.tiers.lock().remove(&ws);
    }
}

/// The name a tier has in the API and in plans data.
pub(crate) fn tier_name(t: PlanTier) -> &'static str {
    match t {
        PlanTier::Starter => "starter",
        PlanTier::Pro => "pro",
        PlanTier::Enterprise => "enterprise",
    }
}

/// What to do about a reached limit: the next plan up, or deleting something.
pub(crate) fn upgrade_hint(tier: PlanTier) -> String {
    match tier {
        PlanTier::Starter => "upgrade to the pro or enterprise plan".into(),
        PlanTier::Pro => "upgrade to the enterprise plan".into(),
        PlanTier::Enterprise => "ask the platform operator to raise the limit".into(),
    }
}

/// The first day (`YYYY-MM-DD`) of the month after `month` (`YYYY-MM`).
pub(crate) fn next_month_start(month: &str) -> String {
    let (y, m) = month.split_once('-').unwrap_or(("1970", "01"));
    let (y, m): (i32, u32) = (y.parse().unwrap_or(1970), m.parse().unwrap_or(1));
    if m >= 12 { format!("{:04}-01-01", y + 1) } else { format!("{y:04}-{:02}-01", m + 1) }
}

fn at_most(limit: Limit) -> u64 {
    match limit {
        Limit::AtMost(n) => n,
        Limit::Unlimited => u64::MAX,
    }
}

impl App {
    /// Mails the workspace's owners and admins, once, when `used` of `max` crosses 80 % or
    /// 100 % of `limit` in the `period` (a month, or `-` for limits that do not reset) made
    /// only then. Below 80 % this is two multiplications; the mail is sent in the background.
    pub(crate) fn notice_limit(
        &self,
        scope: &TenantScope,
        tier: PlanTier,
        limit: &'static str,
        period: impl FnOnce() -> String,
        used: u64,
        max: u64,
    ) {
        // The highest threshold crossed is the one to tell; lower ones are then moot.
        let Some(threshold) = THRESHOLDS
            .into_iter()
            .rev()
            .find(|t| max > 0 && used.saturating_mul(100) >= max.saturating_mul(u64::from(*t)))
        else {
            return;
        };
        let period = period();
        let ws = scope.workspace_id();
        {
            let mut noticed = self.inner.plan_tiers.noticed.lock();
            if noticed.get(&(ws, limit, threshold)) == Some(&period) {
                return;
            }
            for t in THRESHOLDS.into_iter().filter(|t| *t <= threshold) {
                noticed.insert((ws, limit, t), period.clone());
            }
        }
        let (app, scope) = (self.clone(), *scope);
        tokio::spawn(async move {
            if let Err(e) =
                app.send_limit_notice(&scope, tier, limit, &period, threshold, max).await
            {
                tracing::warn!(workspace = %scope.workspace_id(), limit, error = %e, "a plan-limit warning was not sent");
            }
        });
    }

    async fn send_limit_notice(
        &self,
        scope: &TenantScope,
        tier: PlanTier,
        limit: &'static str,
        period: &str,
        threshold: u8,
        max: u64,
    ) -> Result<(), AppError> {
        let store = &self.inner.store;
        for lower in THRESHOLDS.into_iter().filter(|t| *t < threshold) {
            store.record_limit_notice(scope, limit, period, i32::from(lower), now_ms()).await?;
        }
        if !store.record_limit_notice(scope, limit, period, i32::from(threshold), now_ms()).await? {
            return Ok(()); // another process (or an earlier run) sent it
        }
        let workspace = store.get_workspace(scope).await?;
        let what = limit_words(limit);
        // Short subjects (a long one is folded across header lines); the workspace is in the body.
        let (subject, state) = if threshold >= 100 {
            (format!("Your {} plan's {what}: limit reached", tier_name(tier)), "has reached")
        } else {
            (format!("Your {} plan's {what}: {threshold}% used", tier_name(tier)), "is close to")
        };
        let link = format!("{}/usage", self.inner.config.public_url);
        let body = format!(
            "{} {state} the {} plan's limit of {max} {what} ({threshold}%).\n\n{}\n\nSee the usage here:\n\n{link}\n",
            workspace.name,
            tier_name(tier),
            if threshold >= 100 {
                format!(
                    "What needs more is refused until the limit resets or you {}.",
                    upgrade_hint(tier)
                )
            } else {
                format!("To keep going past it, {}.", upgrade_hint(tier))
            },
        );
        for m in store.list_members(scope).await?.into_iter().filter(|m| m.role.can_manage()) {
            self.send_mail(crate::mail::Mail {
                to: m.email,
                subject: subject.clone(),
                body: body.clone(),
                link: Some(link.clone()),
            })
            .await?;
        }
        Ok(())
    }

    /// The workspace's plan tier, read from the store (unknown plan names count as starter).
    pub(crate) async fn scope_tier(&self, scope: &TenantScope) -> Result<PlanTier, AppError> {
        let ws = self.inner.store.get_workspace(scope).await?;
        let tier = serde_json::from_value(Value::String(ws.plan)).unwrap_or(PlanTier::Starter);
        self.inner.plan_tiers.put(scope.workspace_id(), tier);
        Ok(tier)
    }

    /// The workspace's plan tier (unknown plan names count as starter).
    pub(crate) async fn plan_tier(&self, p: &Principal) -> Result<PlanTier, AppError> {
        self.scope_tier(&p.scope()).await
    }

    /// [`App::scope_tier`] from a cache of a few seconds, for the per-message check.
    pub(crate) async fn cached_tier(&self, scope: &TenantScope) -> Result<PlanTier, AppError> {
        match self.inner.plan_tiers.get(scope.workspace_id()) {
            Some(t) => Ok(t),
            None => self.scope_tier(scope).await,
        }
    }

    /// Refuses with `plan_limit_reached` when the workspace cannot have another agent.
    pub(crate) async fn check_agent_limit(&self, p: &Principal) -> Result<(), AppError> {
        let tier = self.plan_tier(p).await?;
        let limit = self.catalog().plan_limits(tier).agents;
        if limit == Limit::Unlimited {
            return Ok(());
        }
        let count = self.inner.store.count_agents(&p.scope()).await?;
        if limit.allows_one_more(count.max(0) as u64) {
            return Ok(());
        }
        Err(AppError::PlanLimit {
            limit: "agents",
            message: format!(
                "the {} plan allows {} agent(s) and this workspace has {count}; {} or delete an agent",
                tier_name(tier),
                at_most(limit),
                upgrade_hint(tier)
            ),
        })
    }

    /// The workspace's tier and, when its plan limits documents, that limit and how many
    /// documents the workspace has.
    async fn documents_against_plan(
        &self,
        scope: &TenantScope,
    ) -> Result<(PlanTier, Option<(u64, u64)>), AppError> {
        let tier = self.scope_tier(scope).await?;
        let room = match self.catalog().plan_limits(tier).knowledge_docs {
            Limit::Unlimited => None,
            Limit::AtMost(max) => {
                Some((max, self.inner.store.count_documents(scope).await?.max(0) as u64))
            }
        };
        Ok((tier, room))
    }

    /// Refuses with `plan_limit_reached` when `adding` more documents would take the
    /// workspace past its plan's document limit.
    pub(crate) async fn check_document_limit(
        &self,
        scope: &TenantScope,
        adding: usize,
    ) -> Result<(), AppError> {
        let (tier, room) = self.documents_against_plan(scope).await?;
        let Some((max, count)) = room else { return Ok(()) };
        let after = count.saturating_add(adding.max(1) as u64);
        if after <= max {
            self.notice_limit(scope, tier, "knowledge_docs", || "-".into(), after, max);
            return Ok(());
        }
        Err(AppError::PlanLimit {
            limit: "knowledge_docs",
            message: format!(
                "the {} plan allows {max} document(s) and this workspace has {count}; {} or delete documents",
                tier_name(tier),
                upgrade_hint(tier)
            ),
        })
    }

    /// How many more documents the workspace may add (`None`: no limit).
    pub(crate) async fn documents_left(
        &self,
        scope: &TenantScope,
    ) -> Result<Option<u64>, AppError> {
        let (_, room) = self.documents_against_plan(scope).await?;
        Ok(room.map(|(max, count)| max.saturating_sub(count)))
    }

    /// The workspace's members and pending invites: what takes the plan's seats.
    pub(crate) async fn seats_in_use(&self, scope: &TenantScope) -> Result<(u64, u64), AppError> {
        let (members, invited) = self.inner.store.count_seats(scope, now_ms()).await?;
        Ok((members.max(0) as u64, invited.max(0) as u64))
    }

    /// The workspace's tier, seats, members and pending invites; `None` when its plan does
    /// not limit seats (nothing is counted then).
    async fn seats_against_plan(
        &self,
        scope: &TenantScope,
    ) -> Result<Option<(PlanTier, u64, u64, u64)>, AppError> {
        let tier = self.scope_tier(scope).await?;
        let Limit::AtMost(seats) = self.catalog().plan_limits(tier).seats else {
            return Ok(None);
        };
        let (members, invited) = self.seats_in_use(scope).await?;
        Ok(Some((tier, seats, members, invited)))
    }

    /// Refuses with `plan_limit_reached` when inviting one more person would take the
    /// workspace's members plus pending invites past its plan's seats.
    pub(crate) async fn check_seat_limit(&self, scope: &TenantScope) -> Result<(), AppError> {
        let Some((tier, seats, members, invited)) = self.seats_against_plan(scope).await? else {
            return Ok(());
        };
        if members + invited < seats {
            self.notice_limit(scope, tier, "seats", || "-".into(), members + invited + 1, seats);
            return Ok(());
        }
        Err(AppError::PlanLimit {
            limit: "seats",
            message: format!(
                "the {} plan allows {seats} seat(s) and this workspace has {members} member(s) and {invited} pending invite(s); {}, revoke an invite or remove a member",
                tier_name(tier),
                upgrade_hint(tier)
            ),
        })
    }

    /// Refuses with `plan_limit_reached` (`seats`) when accepting an invite would take the
    /// workspace's members past its plan's seats (its plan was lowered after the invite).
    pub(crate) async fn check_member_seat(&self, scope: &TenantScope) -> Result<(), AppError> {
        let Some((tier, seats, members, _)) = self.seats_against_plan(scope).await? else {
            return Ok(());
        };
        if members < seats {
            return Ok(());
        }
        Err(AppError::PlanLimit {
            limit: "seats",
            message: format!(
                "the {} plan allows {seats} seat(s) and this workspace has {members} member(s) already; ask its owner to {} or remove a member, then accept the invite again",
                tier_name(tier),
                upgrade_hint(tier)
            ),
        })
    }

    /// Refuses with `plan_limit_reached` when storing `adding` more bytes of documents would
    /// take the workspace past its plan's storage (`adding` 0: when it is full already).
    pub(crate) async fn check_storage_limit(
        &self,
        scope: &TenantScope,
        adding: u64,
    ) -> Result<(), AppError> {
        // Checked right after the document limit, which has just read the tier.
        let tier = self.cached_tier(scope).await?;
        let Limit::AtMost(mb) = self.catalog().plan_limits(tier).storage_mb else {
            return Ok(());
        };
        let max = mb.saturating_mul(1024 * 1024);
        let stored = self.inner.store.document_storage(scope).await?;
        let used =
            stored.iter().find(|t| t.metric == "document_bytes").map_or(0, |t| t.quantity.max(0))
                as u64;
        let fits = if adding == 0 { used < max } else { used.saturating_add(adding) <= max };
        if fits {
            if adding > 0 {
                let after_mb = used.saturating_add(adding).div_ceil(1024 * 1024);
                self.notice_limit(scope, tier, "storage_mb", || "-".into(), after_mb, mb);
            }
            return Ok(());
        }
        let mib = |b: u64| format!("{:.1} MB", b as f64 / (1024.0 * 1024.0));
        Err(AppError::PlanLimit {
            limit: "storage_mb",
            message: format!(
                "the {} plan allows {mb} MB of documents and this workspace stores {}{}; {} or delete documents",
                tier_name(tier),
                mib(used),
                if adding == 0 {
                    String::new()
                } else {
                    format!(" (this upload adds {})", mib(adding))
                },
                upgrade_hint(tier)
            ),
        })
    }

    /// The workspace's messages this UTC month, from memory (seeded from the store on first
    /// use and re-read now and then).
    pub(crate) async fn messages_this_month(&self, scope: &TenantScope) -> Result<u64, AppError> {
        let ws = scope.workspace_id();
        let month = utc_month(now_ms());
        let usage = &self.engine().usage;
        if let Some(n) = usage.month_messages(ws, &month) {
            return Ok(n);
        }
        let (from, to) = (format!("{month}-01"), format!("{month}-31"));
        let totals = self.inner.store.usage_by_metric(scope, &from, &to).await?;
        let stored = totals.iter().find(|t| t.metric == "messages").map_or(0, |t| t.quantity);
        Ok(usage.seed_month(ws, &month, stored.max(0) as u64))
    }

    /// Refuses with `plan_limit_reached` when the workspace has used its plan's messages for
    /// this month. Called before every run starts, on every surface.
    pub(crate) async fn check_message_limit(&self, scope: &TenantScope) -> Result<(), AppError> {
        let tier = self.cached_tier(scope).await?;
        let limit = self.catalog().plan_limits(tier).messages_per_month;
        if limit == Limit::Unlimited {
            return Ok(());
        }
        let used = self.messages_this_month(scope).await?;
        let month = || utc_month(now_ms());
        if limit.allows_one_more(used) {
            self.notice_limit(scope, tier, "messages_per_month", month, used + 1, at_most(limit));
            return Ok(());
        }
        let month = month();
        Err(AppError::PlanLimit {
            limit: "messages_per_month",
            message: format!(
                "the {} plan allows {} messages a month and this workspace has used {used} in {month}; {} or wait until {} (UTC)",
                tier_name(tier),
                at_most(limit),
                upgrade_hint(tier),
                next_month_start(&month)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_month_rolls_over_the_year() {
        assert_eq!(next_month_start("2026-11"), "2026-12-01");
        assert_eq!(next_month_start("2026-12"), "2027-01-01");
    }
}
