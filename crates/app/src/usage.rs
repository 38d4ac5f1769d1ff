//! Usage events (messages, tokens in/out, tool calls per workspace, agent and UTC day),
//! counted in memory on the hot path and written in batches by [`crate::App::flush`].

use std::collections::HashMap;

use domain::{AgentId, WorkspaceId};
use parking_lot::Mutex;
use store::UsageIncrement;

/// A counter's key: workspace, agent, UTC day, metric.
type CounterKey = (WorkspaceId, AgentId, String, &'static str);

/// Counters not yet written.
#[derive(Default)]
pub(crate) struct UsageBuffer {
    counts: Mutex<HashMap<CounterKey, i64>>,
}

/// The UTC day (`YYYY-MM-DD`) of an epoch-milliseconds instant.
pub fn utc_day(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

impl UsageBuffer {
    /// Adds one run's usage: `messages` answered, tokens and tool calls.
    pub(crate) fn record(
        &self,
        ws: WorkspaceId,
        agent: AgentId,
        now_ms: i64,
        messages: i64,
        usage: &runtime::RunUsage,
    ) {
        let day = utc_day(now_ms);
        let mut counts = self.counts.lock();
        for (metric, n) in [
            ("messages", messages),
            ("tokens_in", i64::from(usage.prompt_tokens)),
            ("tokens_out", i64::from(usage.completion_tokens)),
            ("tool_calls", i64::from(usage.tool_calls)),
        ] {
            if n != 0 {
                *counts.entry((ws, agent, day.clone(), metric)).or_default() += n;
            }
        }
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
        buf.record(ws, agent, 0, 1, &usage);
        buf.record(ws, agent, 0, 1, &usage);
        let mut taken = buf.take();
        taken.sort_by(|a, b| a.metric.cmp(&b.metric));
        let got: Vec<(&str, i64)> = taken.iter().map(|i| (i.metric.as_str(), i.quantity)).collect();
        assert_eq!(got, [("messages", 2), ("tokens_in", 20), ("tokens_out", 6), ("tool_calls", 2)]);
        assert!(buf.take().is_empty());
        buf.restore(taken);
        assert_eq!(buf.take().len(), 4);
    }
}
