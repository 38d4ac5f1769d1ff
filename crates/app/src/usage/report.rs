//! Usage a person can read: a workspace's counters per agent and UTC day over a range of
//! days (messages, tokens in and out, tool calls), the documents it added, and this month
//! against its plan's limits.
//!
//! The counters are what `usage_daily` holds plus what this process has not flushed yet, read
//! while no flush is moving counters (so nothing is counted twice or missed); the month's
//! messages are the count the plan check uses, refreshed by the same read.

use std::collections::BTreeMap;

use catalog::Limit;
use domain::time::now_ms;
use domain::{AgentId, Permission};
use serde::Serialize;
use time::{Date, Duration, Month};
use utoipa::ToSchema;

use crate::auth::access::key_agent;
use crate::plan_limits::{next_month_start, tier_name};
use crate::usage::{utc_day, utc_month};
use crate::{App, AppError, FieldError, Principal};

/// The longest range a report covers, in days (a leap year).
pub const MAX_DAYS: i64 = 366;
/// The range when none is given: the last 30 days, today included.
pub const DEFAULT_DAYS: i64 = 30;

/// What a report is asked for, as it arrived (validated by [`App::usage_report`]).
#[derive(Debug, Clone, Default)]
pub struct UsageQuery {
    /// First day, `YYYY-MM-DD` (UTC); default: 29 days before `to`.
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC); default: today.
    pub to: Option<String>,
    /// Only this agent's counters.
    pub agent: Option<String>,
}

/// Counters summed over some days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct UsageCounts {
    /// Messages answered (one per run).
    pub messages: i64,
    /// Prompt tokens sent to the model.
    pub tokens_in: i64,
    /// Completion tokens the model produced.
    pub tokens_out: i64,
    /// Tools the agent called.
    pub tool_calls: i64,
    /// Credits its messages and tool calls spent (the templates' `credit_costs`).
    pub credits: i64,
}

impl UsageCounts {
    fn add(&mut self, metric: &str, quantity: i64) {
        match metric {
            "messages" => self.messages += quantity,
            "tokens_in" => self.tokens_in += quantity,
            "tokens_out" => self.tokens_out += quantity,
            "tool_calls" => self.tool_calls += quantity,
            "credits" => self.credits += quantity,
            _ => {} // a metric this report does not show (yet)
        }
    }

    fn plus(mut self, o: UsageCounts) -> Self {
        self.messages += o.messages;
        self.tokens_in += o.tokens_in;
        self.tokens_out += o.tokens_out;
        self.tool_calls += o.tool_calls;
        self.credits += o.credits;
        self
    }
}

/// One agent's counters on one day (only days with something counted are listed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UsageDay {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// `null`: usage not tied to an agent.
    pub agent_id: Option<String>,
    pub messages: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub tool_calls: i64,
    pub credits: i64,
}

/// An agent and its counters over the range. Every agent of the workspace is listed (or
/// only the one asked for), and agents since deleted that still have usage in the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AgentUsage {
    /// `null`: usage not tied to an agent.
    pub agent_id: Option<String>,
    /// `null` for a deleted agent.
    pub slug: Option<String>,
    /// `null` for a deleted agent.
    pub display_name: Option<String>,
    pub totals: UsageCounts,
}

/// Documents the workspace added on one day (still stored), and their files' size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DocumentsDay {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub documents: i64,
    pub bytes: i64,
}

/// The workspace's documents added in the range (workspace-wide, whatever `agent` is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DocumentsUsage {
    pub added: i64,
    pub bytes_added: i64,
    /// Days with documents added, oldest first.
    pub days: Vec<DocumentsDay>,
}

/// How much of one plan limit is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct LimitUsage {
    pub used: u64,
    /// `null`: unlimited.
    pub limit: Option<u64>,
}

impl LimitUsage {
    fn of(used: u64, limit: Limit) -> Self {
        let limit = match limit {
            Limit::AtMost(n) => Some(n),
            Limit::Unlimited => None,
        };
        LimitUsage { used, limit }
    }
}

/// This UTC month against the workspace's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PlanUsage {
    /// `starter`, `pro` or `enterprise`.
    pub plan: String,
    /// `YYYY-MM` (UTC).
    pub month: String,
    /// The first day of the next month, when `messages` starts again from 0.
    pub resets_on: String,
    /// Messages this month (what the plan's `messages_per_month` check counts).
    pub messages: LimitUsage,
    /// Agents the workspace has.
    pub agents: LimitUsage,
    /// Documents the workspace has (the plan's `knowledge_docs`).
    pub documents: LimitUsage,
    /// The workspace's documents' files, in bytes.
    pub storage_bytes: i64,
    /// The same in MB (rounded up) against the plan's `storage_mb`.
    pub storage_mb: LimitUsage,
    /// Members plus pending invites against the plan's `seats`.
    pub seats: LimitUsage,
    /// The workspace's API-key requests in the current minute against the plan's
    /// `api_requests_per_minute` (all keys together).
    pub api_requests_per_minute: LimitUsage,
    /// The credits ledger: balance, the plan's monthly allowance, spent this month.
    pub credits: crate::billing::CreditsView,
}

/// A workspace's usage over a range of days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UsageReport {
    /// First day of the range, `YYYY-MM-DD` (UTC).
    pub from: String,
    /// Last day of the range, included.
    pub to: String,
    /// The agent the report is limited to, if one was asked for.
    pub agent_id: Option<String>,
    /// The counters over the range.
    pub totals: UsageCounts,
    /// Per agent over the range, busiest first.
    pub agents: Vec<AgentUsage>,
    /// Per agent and day, by day then agent.
    pub days: Vec<UsageDay>,
    pub documents: DocumentsUsage,
    pub this_month: PlanUsage,
}

/// A `YYYY-MM-DD` day, strictly.
fn parse_day(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits(0..4) || !digits(5..7) {
        return None;
    }
    if !digits(8..10) {
        return None;
    }
    let month = Month::try_from(s[5..7].parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(s[0..4].parse().ok()?, month, s[8..10].parse().ok()?).ok()
}

fn day_string(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The range asked for, with defaults, or the field errors (`/from`, `/to`).
pub(crate) fn resolve_range(
    from: Option<&str>,
    to: Option<&str>,
    today: &str,
) -> Result<(String, String), AppError> {
    let mut errors = Vec::new();
    let mut day = |field: &str, v: Option<&str>| match v {
        None => None,
        Some(s) => {
            let d = parse_day(s.trim());
            if d.is_none() {
                errors.push(FieldError::new(field, "invalid_date", "must be a day as YYYY-MM-DD"));
            }
            d
        }
    };
    let (from_day, to_day) = (day("/from", from), day("/to", to));
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let to_day = to_day.unwrap_or_else(|| parse_day(today).unwrap_or(Date::MIN));
    let from_day = match from_day {
        Some(d) => d,
        None => to_day.checked_sub(Duration::days(DEFAULT_DAYS - 1)).unwrap_or(Date::MIN),
    };
    if from_day > to_day {
        return Err(AppError::field("/from", "after_to", "must not be after `to`"));
    }
    let days = (to_day - from_day).whole_days() + 1;
    if days > MAX_DAYS {
        return Err(AppError::field(
            "/to",
            "range_too_long",
            format!("the range may span at most {MAX_DAYS} days; this one spans {days}"),
        ));
    }
    Ok((day_string(from_day), day_string(to_day)))
}

/// Every day of `from..=to` (both valid `YYYY-MM-DD`), for charts.
pub fn days_between(from: &str, to: &str) -> Vec<String> {
    let (Some(mut d), Some(last)) = (parse_day(from), parse_day(to)) else { return Vec::new() };
    let mut out = Vec::new();
    while d <= last && out.len() <= MAX_DAYS as usize {
        out.push(day_string(d));
        let Some(next) = d.next_day() else { break };
        d = next;
    }
    out
}

impl App {
    /// The workspace's usage over a range of days (see [`UsageQuery`]). Needs `read`; an agent
    /// key reads no usage (it shows the whole workspace's plan). An agent that is not the
    /// workspace's is "not found".
    pub async fn usage_report(
        &self,
        p: &Principal,
        q: &UsageQuery,
    ) -> Result<UsageReport, AppError> {
        if key_agent(p).is_some() {
            return Err(AppError::forbidden("agent_key", "an agent API key cannot read usage"));
        }
        p.require(Permission::Read)?;
        let now = now_ms();
        let (from, to) = resolve_range(q.from.as_deref(), q.to.as_deref(), &utc_day(now))?;
        let scope = p.scope();
        let agent = match q.agent.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(a) => {
                let id = AgentId::parse(a).map_err(|_| AppError::NotFound { what: "agent" })?;
                self.load_agent(p, id).await?;
                Some(id)
            }
        };
        let month = utc_month(now);
        let (month_from, month_to) = (format!("{month}-01"), format!("{month}-31"));

        // Stored and pending counters, read while no flush moves them between the two.
        let usage = &self.engine().usage;
        let (stored, pending, month_messages) = {
            let _moving = usage.moving.lock().await;
            let stored = self.store().usage_by_agent_and_day(&scope, &from, &to, agent).await?;
            let pending = usage.pending(scope.workspace_id(), &from, &to, agent);
            let month_stored = self.store().usage_by_metric(&scope, &month_from, &month_to).await?;
            let stored_messages =
                month_stored.iter().find(|t| t.metric == "messages").map_or(0, |t| t.quantity);
            let month_messages =
                usage.seed_month(scope.workspace_id(), &month, stored_messages.max(0) as u64);
            (stored, pending, month_messages)
        };
        let mut per_day: BTreeMap<(String, Option<AgentId>), UsageCounts> = BTreeMap::new();
        for row in stored {
            per_day.entry((row.day, row.agent_id)).or_default().add(&row.metric, row.quantity);
        }
        for inc in pending {
            per_day.entry((inc.day, inc.agent_id)).or_default().add(&inc.metric, inc.quantity);
        }

        let mut totals = UsageCounts::default();
        let mut per_agent: BTreeMap<Option<AgentId>, UsageCounts> = BTreeMap::new();
        let days: Vec<UsageDay> = per_day
            .into_iter()
            .map(|((day, agent_id), c)| {
                totals = totals.plus(c);
                let t = per_agent.entry(agent_id).or_default();
                *t = t.plus(c);
                UsageDay {
                    day,
                    agent_id: agent_id.map(|a| a.to_string()),
                    messages: c.messages,
                    tokens_in: c.tokens_in,
                    tokens_out: c.tokens_out,
                    tool_calls: c.tool_calls,
                    credits: c.credits,
                }
            })
            .collect();
        let agents = self.agents_with_usage(p, agent, per_agent).await?;

        let doc_days = self.store().documents_added_by_day(&scope, &from, &to).await?;
        let mut documents = DocumentsUsage { added: 0, bytes_added: 0, days: Vec::new() };
        for row in doc_days {
            if documents.days.last().is_none_or(|d| d.day != row.day) {
                documents.days.push(DocumentsDay { day: row.day.clone(), documents: 0, bytes: 0 });
            }
            let d = documents.days.last_mut().expect("pushed above");
            match row.metric.as_str() {
                "documents" => {
                    d.documents += row.quantity;
                    documents.added += row.quantity;
                }
                "document_bytes" => {
                    d.bytes += row.quantity;
                    documents.bytes_added += row.quantity;
                }
                _ => {}
            }
        }

        let tier = self.scope_tier(&scope).await?;
        let limits = self.catalog().plan_limits(tier);
        let storage = self.store().document_storage(&scope).await?;
        let stored_of = |m: &str| storage.iter().find(|t| t.metric == m).map_or(0, |t| t.quantity);
        let agent_count = self.store().count_agents(&scope).await?;
        let (members, invited) = self.seats_in_use(&scope).await?;
        let this_month = PlanUsage {
            plan: tier_name(tier).to_owned(),
            resets_on: next_month_start(&month),
            month,
            messages: LimitUsage::of(month_messages, limits.messages_per_month),
            agents: LimitUsage::of(agent_count.max(0) as u64, limits.agents),
            documents: LimitUsage::of(stored_of("documents").max(0) as u64, limits.knowledge_docs),
            storage_bytes: stored_of("document_bytes"),
            storage_mb: LimitUsage::of(
                (stored_of("document_bytes").max(0) as u64).div_ceil(1024 * 1024),
                limits.storage_mb,
            ),
            seats: LimitUsage::of(members + invited, limits.seats),
            api_requests_per_minute: LimitUsage::of(
                self.plan_rate_used(scope.workspace_id()),
                limits.api_requests_per_minute,
            ),
            credits: self.credits_view(&scope).await?,
        };
        Ok(UsageReport {
            from,
            to,
            agent_id: agent.map(|a| a.to_string()),
            totals,
            agents,
            days,
            documents,
            this_month,
        })
    }

    /// The workspace's agents (or the one asked for) with their totals, plus the ids with
    /// usage but no agent any more; busiest first, then by name.
    async fn agents_with_usage(
        &self,
        p: &Principal,
        only: Option<AgentId>,
        mut totals: BTreeMap<Option<AgentId>, UsageCounts>,
    ) -> Result<Vec<AgentUsage>, AppError> {
        let scope = p.scope();
        let mut listed = Vec::new();
        match only {
            Some(id) => listed.push(self.load_agent(p, id).await?),
            None => {
                let mut cursor = None;
                loop {
                    let page = self.store().list_agents(&scope, None, cursor, Some(100)).await?;
                    listed.extend(page.data);
                    match page.next_cursor.as_deref().map(AgentId::parse) {
                        Some(Ok(next)) => cursor = Some(next),
                        _ => break,
                    }
                }
            }
        }
        let mut out: Vec<AgentUsage> = listed
            .into_iter()
            .map(|a| AgentUsage {
                agent_id: Some(a.id.to_string()),
                totals: totals.remove(&Some(a.id)).unwrap_or_default(),
                slug: Some(a.slug),
                display_name: Some(a.display_name),
            })
            .collect();
        out.extend(totals.into_iter().map(|(id, t)| AgentUsage {
            agent_id: id.map(|a| a.to_string()),
            slug: None,
            display_name: None,
            totals: t,
        }));
        out.sort_by(|a, b| {
            (b.totals.messages, b.totals.tokens_in + b.totals.tokens_out)
                .cmp(&(a.totals.messages, a.totals.tokens_in + a.totals.tokens_out))
                .then_with(|| a.display_name.cmp(&b.display_name))
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(e: AppError) -> Vec<(String, String)> {
        match e {
            AppError::Validation(errors) => errors.into_iter().map(|e| (e.path, e.code)).collect(),
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn the_range_defaults_to_the_last_thirty_days() {
        assert_eq!(
            resolve_range(None, None, "2026-03-01").unwrap(),
            ("2026-01-31".into(), "2026-03-01".into())
        );
        assert_eq!(
            resolve_range(None, Some("2026-01-30"), "2026-12-07").unwrap(),
            ("2026-01-01".into(), "2026-01-30".into())
        );
        assert_eq!(
            resolve_range(Some("2026-12-01"), None, "2026-12-07").unwrap(),
            ("2026-12-01".into(), "2026-12-07".into())
        );
    }

    #[test]
    fn bad_days_reversed_and_long_ranges_are_field_errors() {
        let e = resolve_range(Some("2026-02-30"), Some("12/07/2026"), "2026-12-07").unwrap_err();
        assert_eq!(
            codes(e),
            [("/from".into(), "invalid_date".into()), ("/to".into(), "invalid_date".into())]
        );
        for bad in ["2026-1-01", "+026-01-01", "2026-01-01T00:00", "", "2026-13-01"] {
            assert!(resolve_range(Some(bad), None, "2026-12-07").is_err(), "{bad:?}");
        }
        let e = resolve_range(Some("2026-12-08"), Some("2026-12-07"), "2026-12-07").unwrap_err();
        assert_eq!(codes(e), [("/from".into(), "after_to".into())]);
        // 366 days is the most (a leap year); 367 is too many.
        assert!(resolve_range(Some("2024-01-01"), Some("2024-12-31"), "2026-12-07").is_ok());
        let e = resolve_range(Some("2023-01-01"), Some("2024-01-02"), "2026-12-07").unwrap_err();
        assert_eq!(codes(e), [("/to".into(), "range_too_long".into())]);
    }

    #[test]
    fn days_between_lists_every_day_across_a_month_end() {
        assert_eq!(
            days_between("2024-02-28", "2024-03-01"),
            ["2024-02-28", "2024-02-29", "2024-03-01"]
        );
        assert!(days_between("2024-03-02", "2024-03-01").is_empty());
    }
}
