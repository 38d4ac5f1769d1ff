//! Usage events (messages, tokens in/out, tool calls per workspace, agent and UTC day),
//! counted in memory on the hot path and written in batches by [`crate::App::flush`].
//!
//! Beside the pending counters, each workspace's messages of the current UTC month are kept in
//! memory for the plan's `messages_per_month` check (see `crate::plan_limits`): seeded from
//! `usage_daily` (plus what is pending here) on first use, bumped by every recorded run,
//! re-read at most every [`MONTH_REFRESH`] so other processes' messages count too, and
//! dropped when a new month starts.
//!
//! [`report`] reads it back for people: usage per agent and day, this month against the plan.

pub(crate) mod report;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use domain::{AgentId, WorkspaceId};
use parking_lot::Mutex;
use store::UsageIncrement;

/// A counter's key: workspace, agent, UTC day, metric.
type CounterKey = (WorkspaceId, AgentId, String, &'static str);

/// How long a workspace's month count is trusted before it is re-read from the store.
pub(crate) const MONTH_REFRESH: Duration = Duration::from_secs(60);

/// Counters not yet written, and each workspace's messages this month.
#[derive(Default)]
pub(crate) struct UsageBuffer {
    counts: Mutex<HashMap<CounterKey, i64>>,
    /// Locked after `counts` when both are held (`record`, `seed_month`).
    months: Mutex<HashMap<WorkspaceId, MonthCount>>,
    /// Held while counters move from here to the store (taken, written or put back) and while
    /// a report reads both, so a report never misses counters that are in neither place.
    moving: tokio::sync::Mutex<()>,
}

/// A workspace's messages in one UTC month.
struct MonthCount {
    /// `YYYY-MM`.
    month: String,
    messages: u64,
    read_at: Instant,
}

/// The UTC day (`YYYY-MM-DD`) of an epoch-milliseconds instant.
pub fn utc_day(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The UTC month (`YYYY-MM`) of an epoch-milliseconds instant.
pub fn utc_month(ms: i64) -> String {
    let mut day = utc_day(ms);
    day.truncate(7);
    day
}

impl UsageBuffer {
    /// Adds one run's usage: `messages` answered, tokens, tool calls and the credits spent.
    pub(crate) fn record(
        &self,
        ws: WorkspaceId,
        agent: AgentId,
        now_ms: i64,
        messages: i64,
        usage: &runtime::RunUsage,
        credits: i64,
    ) {
        let day = utc_day(now_ms);
        let mut counts = self.counts.lock();
        for (metric, n) in [
            ("messages", messages),
            ("tokens_in", i64::from(usage.prompt_tokens)),
            ("tokens_out", i64::from(usage.completion_tokens)),
            ("tool_calls", i64::from(usage.tool_calls)),
            ("credits", credits),
        ] {
            if n != 0 {
                *counts.entry((ws, agent, day.clone(), metric)).or_default() += n;
            }
        }
        if messages > 0 {
            let mut months = self.months.lock();
            if let Some(m) = months.get_mut(&ws) {
                if day.starts_with(m.month.as_str()) {
                    m.messages += messages as u64;
                } else {
                    // A new month: the next check seeds it from the store and what is pending.
                    months.remove(&ws);
                }
            }
        }
    }

    /// The workspace's messages in `month` if known and read recently; `None`: seed it.
    pub(crate) fn month_messages(&self, ws: WorkspaceId, month: &str) -> Option<u64> {
        let months = self.months.lock();
        let m = months.get(&ws)?;
        (m.month == month && m.read_at.elapsed() < MONTH_REFRESH).then_some(m.messages)
    }

    /// Sets the workspace's messages in `month` from `stored` (the store's total) plus what is
    /// pending here, never lowering a count this process already holds for the month (a
    /// flush in flight is in neither place for a moment). Returns the count.
    pub(crate) fn seed_month(&self, ws: WorkspaceId, month: &str, stored: u64) -> u64 {
        let counts = self.counts.lock();
        let pending: i64 = counts
            .iter()
            .filter(|((w, _, day, metric), _)| {
                *w == ws && *metric == "messages" && day.starts_with(month)
            })
            .map(|(_, n)| *n)
            .sum();
        let mut months = self.months.lock();
        let fresh = stored + pending.max(0) as u64;
        let held = months.get(&ws).filter(|m| m.month == month).map_or(0, |m| m.messages);
        let messages = fresh.max(held);
        months
            .insert(ws, MonthCount { month: month.to_owned(), messages, read_at: Instant::now() });
        messages
    }

    /// The workspace's pending counters of the days `from..=to` (`YYYY-MM-DD`), of one agent
    /// or all, left in place.
    pub(crate) fn pending(
        &self,
        ws: WorkspaceId,
        from: &str,
        to: &str,
        agent: Option<AgentId>,
    ) -> Vec<UsageIncrement> {
        let counts = self.counts.lock();
        counts
            .iter()
            .filter(|((w, a, day, _), _)| {
                *w == ws
                    && agent.is_none_or(|x| x == *a)
                    && day.as_str() >= from
                    && day.as_str() <= to
            })
            .map(|((workspace_id, agent, day, metric), quantity)| UsageIncrement {
                workspace_id: *workspace_id,
                agent_id: Some(*agent),
                day: day.clone(),
                metric: (*metric).to_owned(),
                quantity: *quantity,
            })
            .collect()
    }

    /// Takes every pending counter, leaving the buffer empty.
    pub(crate) fn take(&self) -> Vec<UsageIncrement> {
        let counts = std::mem::take(&mut *self.counts.lock());
        counts
            .into_iter()
            .map(|((workspace_id, agent, day, metric), quantity)| UsageIncrement {
                workspace_id,
                agent_id: Some(agent),
                day,
                metric: metric.to_owned(),
                quantity,
            })
            .collect()
    }

    /// Puts counters back after a failed write, so they are retried at the next flush.
    pub(crate) fn restore(&self, increments: Vec<UsageIncrement>) {
        let mut counts = self.counts.lock();
        for inc in increments {
            let metric: &'static str = match inc.metric.as_str() {
                "messages" => "messages",
                "tokens_in" => "tokens_in",
                "tokens_out" => "tokens_out",
                _ => "tool_calls",
            };
            if let Some(agent) = inc.agent_id {
                *counts.entry((inc.workspace_id, agent, inc.day, metric)).or_default() +=
                    inc.quantity;
            }
        }
    }
}

impl crate::App {
    /// Writes the pending usage counters to the store (put back to retry if the write fails).
    /// One move at a time: see [`UsageBuffer::moving`].
    pub(crate) async fn flush_usage(&self) {
        let usage = &self.engine().usage;
        let _moving = usage.moving.lock().await;
        let pending = usage.take();
        if !pending.is_empty()
            && let Err(e) = self.store().add_usage(&pending).await
        {
            tracing::warn!(error = %e, counters = pending.len(), "could not write usage; retrying later");
            usage.restore(pending);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_and_counters_sum_per_key() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(1_700_000_000_000), "2023-11-14");
        let buf = UsageBuffer::default();
        let (ws, agent) = (WorkspaceId::new(), AgentId::new());
        let usage = runtime::RunUsage {
            prompt_tokens: 10,
            completion_tokens: 3,
            tool_calls: 1,
            model_calls: 2,
        };
        buf.record(ws, agent, 0, 1, &usage, 0);
        buf.record(ws, agent, 0, 1, &usage, 0);
        let mut taken = buf.take();
        taken.sort_by(|a, b| a.metric.cmp(&b.metric));
        let got: Vec<(&str, i64)> = taken.iter().map(|i| (i.metric.as_str(), i.quantity)).collect();
        assert_eq!(got, [("messages", 2), ("tokens_in", 20), ("tokens_out", 6), ("tool_calls", 2)]);
        assert!(buf.take().is_empty());
        buf.restore(taken);
        assert_eq!(buf.take().len(), 4);
    }

    #[test]
    fn pending_counters_are_read_by_workspace_days_and_agent_and_left_in_place() {
        let buf = UsageBuffer::default();
        let (ws, other_ws, a, b) =
            (WorkspaceId::new(), WorkspaceId::new(), AgentId::new(), AgentId::new());
        let usage = runtime::RunUsage { prompt_tokens: 5, ..Default::default() };
        let nov14 = 1_700_000_000_000;
        let nov15 = nov14 + 24 * 3600 * 1000;
        buf.record(ws, a, nov14, 1, &usage, 0);
        buf.record(ws, b, nov15, 2, &usage, 0);
        buf.record(other_ws, a, nov14, 4, &usage, 0);
        let sum = |v: Vec<UsageIncrement>| -> i64 {
            v.iter().filter(|i| i.metric == "messages").map(|i| i.quantity).sum()
        };
        assert_eq!(sum(buf.pending(ws, "2023-11-01", "2023-11-30", None)), 3);
        assert_eq!(sum(buf.pending(ws, "2023-11-15", "2023-11-30", None)), 2);
        assert_eq!(sum(buf.pending(ws, "2023-11-01", "2023-11-14", None)), 1);
        assert_eq!(sum(buf.pending(ws, "2023-11-01", "2023-11-30", Some(a))), 1);
        assert_eq!(buf.pending(ws, "2023-12-01", "2023-12-31", None), []);
        assert_eq!(buf.take().len(), 6, "reading took nothing");
    }

    #[test]
    fn the_month_count_is_seeded_bumped_and_dropped_at_the_next_month() {
        assert_eq!(utc_month(1_700_000_000_000), "2023-11");
        let buf = UsageBuffer::default();
        let (ws, agent) = (WorkspaceId::new(), AgentId::new());
        let nov = 1_700_000_000_000; // 2023-11-14
        let dec = nov + 20 * 24 * 3600 * 1000; // 2023-12-04
        let usage = runtime::RunUsage::default();
        assert_eq!(buf.month_messages(ws, "2023-11"), None, "unknown until seeded");
        buf.record(ws, agent, nov, 1, &usage, 0); // pending, not yet flushed
        assert_eq!(buf.seed_month(ws, "2023-11", 10), 11, "stored plus pending");
        buf.record(ws, agent, nov, 2, &usage, 0);
        assert_eq!(buf.month_messages(ws, "2023-11"), Some(13));
        assert_eq!(buf.seed_month(ws, "2023-11", 5), 13, "a re-read never lowers the count");
        assert_eq!(buf.month_messages(ws, "2023-12"), None, "another month is not this one");
        buf.take();
        buf.record(ws, agent, dec, 1, &usage, 0);
        assert_eq!(buf.month_messages(ws, "2023-11"), None, "a new month drops the old count");
        assert_eq!(buf.seed_month(ws, "2023-12", 0), 1);
    }
}
