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
    /// summed first, so each counter is written once per batch). Counters are written in key
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

/// A stored agent column: `''` is usage not tied to an agent.
fn parse_agent(agent: &str) -> Result<Option<AgentId>> {
    if agent.is_empty() {
        return Ok(None);
    }
    AgentId::parse(agent).map(Some).map_err(|e| crate::StoreError::Corrupt(e.to_string()))
}
