//! Finished runs written in batches: a run's conversation (when the run started it), the run
//! row with its final status, its messages and its steps, for many runs in one transaction with
//! multi-row inserts. This is the chat hot path's only write (group commit): under load one
//! transaction carries every run that finished meanwhile.

use domain::time::Millis;
use domain::{AgentId, ConversationId, RunId};

use crate::conversations::{NewConversation, NewMessage};
use crate::db::on_db;
use crate::kinds::{RunStatus, json};
use crate::runs::NewRunStep;
use crate::{Result, Store, StoreError, TenantScope};

/// One finished (or paused) run to write, or (status `running`, no messages or steps) the
/// record that a run started.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub scope: TenantScope,
    /// The conversation the run started, created with it; `None` when it already exists
    /// (then its last activity moves to `finished_at`, and a deleted or foreign conversation
    /// makes the record fail with `NotFound`).
    pub new_conversation: Option<NewConversation>,
    pub conversation_id: ConversationId,
    pub run_id: RunId,
    pub agent_id: AgentId,
    pub model: Option<String>,
    pub status: RunStatus,
    pub started_at: Millis,
    /// When the run ended (or paused); stamped as `finished_at` for terminal statuses.
    pub finished_at: Millis,
    pub usage: serde_json::Value,
    pub error: Option<String>,
    /// In order (ids ascending).
    pub messages: Vec<NewMessage>,
    /// Numbered 1, 2, 3, … in order.
    pub steps: Vec<NewRunStep>,
}

/// Rows per multi-row `INSERT` (well under both engines' bind-parameter limits).
const ROWS: usize = 200;

/// `($1, $2, …), ($n, …)` for `rows` rows of `cols` columns.
fn values(rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            s.push('$');
            s.push_str(&(r * cols + c + 1).to_string());
        }
        s.push(')');
    }
    s
}

fn json_array(v: &serde_json::Value) -> String {
    if v.is_null() { "[]".to_owned() } else { json(v) }
}

impl Store {
    /// Writes `records` in one transaction. If that fails (say one run's agent or conversation
    /// was deleted meanwhile), each record is retried on its own so the others are kept; the
    /// result has one entry per record, in order.
    pub async fn record_runs(&self, records: &[RunRecord]) -> Vec<Result<()>> {
        if records.is_empty() {
            return Vec::new();
        }
        match self.record_runs_once(records).await {
            Ok(()) => records.iter().map(|_| Ok(())).collect(),
            Err(_) if records.len() > 1 => {
                let mut out = Vec::with_capacity(records.len());
                for r in records {
                    out.push(self.record_runs_once(std::slice::from_ref(r)).await);
                }
                out
            }
            Err(e) => vec![Err(e)],
        }
    }

    async fn record_runs_once(&self, records: &[RunRecord]) -> Result<()> {
        let new_convs: Vec<(&RunRecord, &NewConversation)> =
            records.iter().filter_map(|r| r.new_conversation.as_ref().map(|c| (r, c))).collect();
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in new_convs.chunks(ROWS) {
                let sql = format!("INSERT INTO conversations (id, workspace_id, agent_id, end_user_id, channel, title, created_at, updated_at, last_message_at) VALUES {}", values(chunk.len(), 9));
                // Only placeholders are formatted in; every value is bound.
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (r, c) in chunk {
                    let last = (!r.messages.is_empty()).then_some(r.finished_at);
                    q = q.bind(c.id.to_string()).bind(r.scope.workspace_id().to_string()).bind(c.agent_id.to_string())
                        .bind(c.end_user_id.clone()).bind(c.channel.as_str()).bind(c.title.clone())
                        .bind(r.started_at).bind(r.finished_at).bind(last);
                }
                q.execute(&mut *tx).await?;
            }
            for r in records.iter().filter(|r| r.new_conversation.is_none() && !r.messages.is_empty()) {
                let n = sqlx::query("UPDATE conversations SET last_message_at = $3, updated_at = $3 WHERE id = $1 AND workspace_id = $2 AND deleted_at IS NULL")
                    .bind(r.conversation_id.to_string()).bind(r.scope.workspace_id().to_string()).bind(r.finished_at)
                    .execute(&mut *tx).await?.rows_affected();
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
            }
            for chunk in records.chunks(ROWS) {
                // A run recorded as started (`begin_run`, or a start record) is finished in place.
                let sql = format!("INSERT INTO runs (id, workspace_id, agent_id, conversation_id, status, model, started_at, finished_at, usage, error) VALUES {}
                    ON CONFLICT (id) DO UPDATE SET status = excluded.status, model = excluded.model, finished_at = excluded.finished_at, usage = excluded.usage, error = excluded.error
                    WHERE runs.workspace_id = excluded.workspace_id AND runs.status = 'running'", values(chunk.len(), 10));
                // Only placeholders are formatted in; every value is bound.
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for r in chunk {
                    let finished = r.status.is_terminal().then_some(r.finished_at);
                    q = q.bind(r.run_id.to_string()).bind(r.scope.workspace_id().to_string()).bind(r.agent_id.to_string())
                        .bind(r.conversation_id.to_string()).bind(r.status.as_str()).bind(r.model.clone())
                        .bind(r.started_at).bind(finished).bind(json(&r.usage)).bind(r.error.clone());
                }
                q.execute(&mut *tx).await?;
            }
            let messages: Vec<(&RunRecord, &NewMessage)> =
                records.iter().flat_map(|r| r.messages.iter().map(move |m| (r, m))).collect();
            for chunk in messages.chunks(ROWS) {
                let sql = format!("INSERT INTO messages (id, conversation_id, workspace_id, role, content, attachments, citations, tool_calls, run_id, tokens, created_at) VALUES {}", values(chunk.len(), 11));
                // Only placeholders are formatted in; every value is bound.
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (r, m) in chunk {
                    q = q.bind(m.id.to_string()).bind(r.conversation_id.to_string()).bind(r.scope.workspace_id().to_string())
                        .bind(m.role.as_str()).bind(m.content.clone()).bind(json_array(&m.attachments))
                        .bind(json_array(&m.citations)).bind(json_array(&m.tool_calls))
                        .bind(m.run_id.map(|id| id.to_string())).bind(m.tokens).bind(r.finished_at);
                }
                q.execute(&mut *tx).await?;
            }
            let steps: Vec<(&RunRecord, i64, &NewRunStep)> = records
                .iter()
                .flat_map(|r| r.steps.iter().enumerate().map(move |(i, s)| (r, i as i64 + 1, s)))
                .collect();
            for chunk in steps.chunks(ROWS) {
                let sql = format!("INSERT INTO run_steps (run_id, seq, kind, name, input, output, latency_ms, tokens_in, tokens_out, created_at) VALUES {}", values(chunk.len(), 10));
                // Only placeholders are formatted in; every value is bound.
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (r, seq, s) in chunk {
                    q = q.bind(r.run_id.to_string()).bind(*seq).bind(s.kind.as_str()).bind(s.name.clone())
                        .bind(json(&s.input)).bind(json(&s.output)).bind(s.latency_ms).bind(s.tokens_in)
                        .bind(s.tokens_out).bind(r.finished_at);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::values;

    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(values(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(values(1, 1), "($1)");
    }
}
