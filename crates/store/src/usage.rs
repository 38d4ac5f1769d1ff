//! Daily usage counters per workspace, agent, day and metric. The hot path aggregates in
//! memory and flushes batches here; a batch is one transaction of upserts that add to what is
//! stored, so flushes from many processes sum correctly.

use std::collections::BTreeMap;

use domain::{AgentId, WorkspaceId};
use serde::Serialize;

use crate::db::on_db;
use crate::{Result, Store, TenantScope};

/// An amount to add to a counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageIncrement {
    pub workspace_id: WorkspaceId,
    pub agent_id: Option<AgentId>,
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// `messages`, `tokens_in`, `tokens_out`, `tool_calls`, …
    pub metric: String,
    pub quantity: i64,
}

/// A metric's total over a range of days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct UsageTotal {
    pub metric: String,
    pub quantity: i64,
}

/// A metric's total for one agent (`None`: usage not tied to an agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentUsageTotal {
    pub agent_id: Option<AgentId>,
    pub metric: String,
    pub quantity: i64,
}

/// A metric's total for one agent on one day (`agent_id` `None`: usage not tied to an agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentDailyUsage {
    pub day: String,
    pub agent_id: Option<AgentId>,
    pub metric: String,
    pub quantity: i64,
}

/// A metric's total on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DailyUsage {
    pub day: String,
    pub metric: String,
    pub quantity: i64,
}

impl Store {
    /// Adds a batch of increments in one transaction (increments to the same counter are
    /// summed first, so each counter is written once per batch). For workspaces billed through
    /// Stripe the same transaction writes the batch's messages as a usage record and queues
    /// the job that reports it (see [`crate::billing`]). Counters are written in key
    /// order, so concurrent flushes on PostgreSQL take row locks in the same order and cannot
    /// deadlock.
    pub async fn add_usage(&self, increments: &[UsageIncrement]) -> Result<()> {
        let mut sums: BTreeMap<(String, String, &str, &str), i64> = BTreeMap::new();
        for inc in increments {
            let key = (
                inc.workspace_id.to_string(),
                inc.agent_id.map(|a| a.to_string()).unwrap_or_default(),
                inc.day.as_str(),
                inc.metric.as_str(),
            );
            *sums.entry(key).or_default() += inc.quantity;
        }
        if sums.is_empty() {
            return Ok(());
        }
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            for ((ws, agent, day, metric), quantity) in &sums {
                sqlx::query(
                    "INSERT INTO usage_daily (workspace_id, agent_id, day, metric, quantity) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (workspace_id, agent_id, day, metric) DO UPDATE SET quantity = usage_daily.quantity + excluded.quantity")
                    .bind(ws).bind(agent).bind(*day).bind(*metric).bind(*quantity)
                    .execute(&mut *tx).await?;
            }
            crate::billing::record_metered_usage!(tx, sums, domain::time::now_ms());
            tx.commit().await?;
            Ok(())
        })
    }

    /// Totals per metric for the days `from..=to` (`YYYY-MM-DD`), ordered by metric.
    pub async fn usage_by_metric(
        &self,
        scope: &TenantScope,
        from: &str,
        to: &str,
    ) -> Result<Vec<UsageTotal>> {
        on_db!(read self, pool => sqlx::query_as(
            "SELECT metric, CAST(SUM(quantity) AS BIGINT) AS quantity FROM usage_daily
             WHERE workspace_id = $1 AND day >= $2 AND day <= $3 GROUP BY metric ORDER BY metric")
            .bind(scope.workspace_id().to_string()).bind(from).bind(to)
            .fetch_all(pool).await)
        .map_err(Into::into)
    }

    /// The counters of the days `from..=to` (`YYYY-MM-DD`), of one agent or all, ordered by
    /// day, agent and metric.
    pub async fn usage_by_agent_and_day(
        &self,
        scope: &TenantScope,
        from: &str,
        to: &str,
        agent: Option<AgentId>,
    ) -> Result<Vec<AgentDailyUsage>> {
        let rows: Vec<(String, String, String, i64)> = on_db!(read self, pool => sqlx::query_as(
            "SELECT day, agent_id, metric, CAST(SUM(quantity) AS BIGINT) FROM usage_daily
             WHERE workspace_id = $1 AND day >= $2 AND day <= $3 AND ($4 IS NULL OR agent_id = $4)
             GROUP BY day, agent_id, metric ORDER BY day, agent_id, metric")
            .bind(scope.workspace_id().to_string()).bind(from).bind(to)
            .bind(agent.map(|a| a.to_string()))
            .fetch_all(pool).await)?;
        rows.into_iter()
            .map(|(day, agent, metric, quantity)| {
                Ok(AgentDailyUsage { day, agent_id: parse_agent(&agent)?, metric, quantity })
            })
            .collect()
    }

    /// Totals per agent and metric for the days `from..=to`, ordered by agent then metric.
    pub async fn usage_by_agent(
        &self,
        scope: &TenantScope,
        from: &str,
        to: &str,
    ) -> Result<Vec<AgentUsageTotal>> {
        let rows: Vec<(String, String, i64)> = on_db!(read self, pool => sqlx::query_as(
            "SELECT agent_id, metric, CAST(SUM(quantity) AS BIGINT) FROM usage_daily
             WHERE workspace_id = $1 AND day >= $2 AND day <= $3 GROUP BY agent_id, metric ORDER BY agent_id, metric")
            .bind(scope.workspace_id().to_string()).bind(from).bind(to)
            .fetch_all(pool).await)?;
        rows.into_iter()
            .map(|(agent, metric, quantity)| {
                Ok(AgentUsageTotal { agent_id: parse_agent(&agent)?, metric, quantity })
            })
            .collect()
    }

    /// Per-day totals of each metric (or one metric) for the days `from..=to`, by day.
    pub async fn usage_by_day(
        &self,
        scope: &TenantScope,
        from: &str,
        to: &str,
        metric: Option<&str>,
    ) -> Result<Vec<DailyUsage>> {
        on_db!(read self, pool => sqlx::query_as(
            "SELECT day, metric, CAST(SUM(quantity) AS BIGINT) AS quantity FROM usage_daily
             WHERE workspace_id = $1 AND day >= $2 AND day <= $3 AND ($4 IS NULL OR metric = $4) GROUP BY day, metric ORDER BY day, metric")
            .bind(scope.workspace_id().to_string()).bind(from).bind(to).bind(metric)
            .fetch_all(pool).await)
        .map_err(Into::into)
    }
}

impl Store {
    /// The workspace's documents created on the days `from..=to` (`YYYY-MM-DD`, UTC) that are
    /// still stored, per day, as metrics `documents` (how many) and `document_bytes` (their
    /// files' size), ordered by day and metric. Read through the knowledge bases' index like
    /// [`Store::count_documents`]; the day is an integer division, the same on both engines.
    pub async fn documents_added_by_day(
        &self,
        scope: &TenantScope,
        from: &str,
        to: &str,
    ) -> Result<Vec<DailyUsage>> {
        let (Some(first), Some(last)) = (epoch_day(from), epoch_day(to)) else {
            return Err(crate::StoreError::Corrupt(format!("not a day: {from} or {to}")));
        };
        let rows: Vec<(i64, i64, i64)> = on_db!(read self, pool => sqlx::query_as(
            "SELECT created_at / 86400000, COUNT(*), CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) FROM documents
             WHERE workspace_id = $1 AND kb_id IN (SELECT id FROM knowledge_bases WHERE workspace_id = $1)
             AND created_at >= $2 AND created_at < $3
             GROUP BY created_at / 86400000 ORDER BY created_at / 86400000")
            .bind(scope.workspace_id().to_string())
            .bind(first.saturating_mul(DAY_MS)).bind((last + 1).saturating_mul(DAY_MS))
            .fetch_all(pool).await)?;
        let mut out = Vec::with_capacity(rows.len() * 2);
        for (n, documents, bytes) in rows {
            let day = day_of_epoch(n);
            out.push(DailyUsage {
                day: day.clone(),
                metric: "document_bytes".into(),
                quantity: bytes,
            });
            out.push(DailyUsage { day, metric: "documents".into(), quantity: documents });
        }
        Ok(out)
    }

    /// What the workspace's documents hold now: metrics `document_bytes` (their files' size,
    /// summed) and `documents` (how many), in that order.
    pub async fn document_storage(&self, scope: &TenantScope) -> Result<Vec<UsageTotal>> {
        let (documents, bytes): (i64, i64) = on_db!(read self, pool => sqlx::query_as(
            "SELECT COUNT(*), CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) FROM documents
             WHERE workspace_id = $1 AND kb_id IN (SELECT id FROM knowledge_bases WHERE workspace_id = $1)")
            .bind(scope.workspace_id().to_string()).fetch_one(pool).await)?;
        Ok(vec![
            UsageTotal { metric: "document_bytes".into(), quantity: bytes },
            UsageTotal { metric: "documents".into(), quantity: documents },
        ])
    }

    /// Records that the workspace was warned about `limit` reaching `threshold` % in `period`;
    /// `false` when it already was (the warning is sent once).
    pub async fn record_limit_notice(
        &self,
        scope: &TenantScope,
        limit: &str,
        period: &str,
        threshold: i32,
        now: domain::time::Millis,
    ) -> Result<bool> {
        let n = on_db!(write self, pool => sqlx::query(
            "INSERT INTO limit_notices (workspace_id, limit_name, period, threshold, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")
            .bind(scope.workspace_id().to_string()).bind(limit).bind(period).bind(threshold).bind(now)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}

const DAY_MS: i64 = 86_400_000;

/// Days since 1970-01-01 of a `YYYY-MM-DD` day (proleptic Gregorian calendar).
fn epoch_day(day: &str) -> Option<i64> {
    let mut parts = day.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// The `YYYY-MM-DD` of a number of days since 1970-01-01 (Hinnant's civil_from_days).
fn day_of_epoch(n: i64) -> String {
    let z = n + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A stored agent column: `''` is usage not tied to an agent.
fn parse_agent(agent: &str) -> Result<Option<AgentId>> {
    if agent.is_empty() {
        return Ok(None);
    }
    AgentId::parse(agent).map(Some).map_err(|e| crate::StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_days_round_trip_through_leap_years() {
        assert_eq!(epoch_day("1970-01-01"), Some(0));
        assert_eq!(epoch_day("2023-11-14"), Some(1_700_000_000_000 / DAY_MS));
        for n in [0, 59, 60, 365, 10_956, 11_016, 19_782, 20_000, 30_000] {
            assert_eq!(epoch_day(&day_of_epoch(n)), Some(n), "{}", day_of_epoch(n));
        }
        assert_eq!(day_of_epoch(11_016), "2000-02-29");
        assert_eq!(epoch_day("2026-13-01"), None);
        assert_eq!(epoch_day("nonsense"), None);
    }
}
