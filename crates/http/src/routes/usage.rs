//! `/api/v1/usage`: the workspace's usage per agent and day, this month against the plan, and
//! the same rows as CSV (`/api/v1/usage.csv`).

use std::fmt::Write as _;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Auth;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(usage)).routes(routes!(usage_csv))
}

/// The range and agent of a report.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// First day, `YYYY-MM-DD` (UTC). Default: 29 days before `to`.
    from: Option<String>,
    /// Last day, included, `YYYY-MM-DD` (UTC). Default: today. At most 366 days after `from`.
    to: Option<String>,
    /// Only this agent's counters (another workspace's agent is not found).
    agent: Option<String>,
}

impl From<UsageParams> for app::UsageQuery {
    fn from(q: UsageParams) -> Self {
        app::UsageQuery { from: q.from, to: q.to, agent: q.agent }
    }
}

/// Usage per agent and day over a range (default: the last 30 days): messages, tokens in and
/// out, tool calls, documents added, and this month against the plan's limits. Counters not
/// yet flushed are included. Needs `read` (not an agent key)
#[utoipa::path(get, path = "/api/v1/usage", tag = "usage", security(("bearer" = [])), params(UsageParams),
    responses((status = 200, body = app::UsageReport),
        (status = 403, description = "Needs `read`; agent keys read no usage", body = crate::error::Problem),
        (status = 404, description = "`agent` is not one of the workspace's agents", body = crate::error::Problem),
        (status = 422, description = "`from`/`to` are not days, `from` is after `to`, or the range is over 366 days", body = crate::error::Problem)))]
async fn usage(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<UsageParams>,
) -> Result<Json<app::UsageReport>, ApiError> {
    Ok(Json(s.app.usage_report(&p, &q.into()).await?))
}

/// The report's rows as CSV: a header, then one row per agent and day with something counted
/// (`day,agent_id,agent_slug,agent_name,messages,tokens_in,tokens_out,tool_calls,credits`), as an
/// attachment. Same parameters, permissions and errors as `GET /api/v1/usage`
#[utoipa::path(get, path = "/api/v1/usage.csv", tag = "usage", security(("bearer" = [])), params(UsageParams),
    responses((status = 200, description = "RFC 4180 CSV, UTF-8", content_type = "text/csv", body = String),
        (status = 403, description = "Needs `read`; agent keys read no usage", body = crate::error::Problem),
        (status = 404, description = "`agent` is not one of the workspace's agents", body = crate::error::Problem),
        (status = 422, description = "`from`/`to` are not days, `from` is after `to`, or the range is over 366 days", body = crate::error::Problem)))]
async fn usage_csv(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<UsageParams>,
) -> Result<Response, ApiError> {
    let report = s.app.usage_report(&p, &q.into()).await?;
    let filename = format!("usage-{}-{}.csv", report.from, report.to);
    let mut resp = to_csv(&report).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The CSV header.
pub(crate) const CSV_HEADER: &str =
    "day,agent_id,agent_slug,agent_name,messages,tokens_in,tokens_out,tool_calls,credits";

/// A report's per-agent-and-day rows as CSV (CRLF line ends, as RFC 4180 has them).
pub(crate) fn to_csv(report: &app::UsageReport) -> String {
    let names: std::collections::HashMap<&str, &app::AgentUsage> =
        report.agents.iter().filter_map(|a| a.agent_id.as_deref().map(|id| (id, a))).collect();
    let mut out = String::with_capacity(64 * (report.days.len() + 1));
    out.push_str(CSV_HEADER);
    out.push_str("\r\n");
    for d in &report.days {
        let agent = d.agent_id.as_deref().and_then(|id| names.get(id));
        let text = [
            d.day.as_str(),
            d.agent_id.as_deref().unwrap_or(""),
            agent.and_then(|a| a.slug.as_deref()).unwrap_or(""),
            agent.and_then(|a| a.display_name.as_deref()).unwrap_or(""),
        ];
        for (i, field) in text.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&csv_field(field));
        }
        let _ = write!(
            out,
            ",{},{},{},{},{}\r\n",
            d.messages, d.tokens_in, d.tokens_out, d.tool_calls, d.credits
        );
    }
    out
}

/// One text field: quoted when it holds a comma, quote or line break (quotes doubled), and
/// prefixed with `'` when a spreadsheet would read it as a formula (`=`, `+`, `-`, `@`, tab,
/// CR), since agent names are anyone's input.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\r', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1"), "'-1");
        assert_eq!(csv_field(""), "");
    }
}
