//! The Usage page: this month against the plan's limits as bars, and the last 30 days per
//! agent as a bar chart, both drawn here as inline SVG (no script, no chart library). The
//! figures are the API's (`App::usage_report`), so the page and `GET /api/v1/usage` agree.

use app::{UsageQuery, UsageReport};
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;
use serde_json::json;

use super::{WebUser, error_page, render};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/usage", get(usage))
}

/// The chart's drawing box (SVG user units); bars share the width, the tallest fills it.
const CHART_W: f64 = 300.0;
const CHART_H: f64 = 80.0;

/// One bar of an agent's chart.
#[derive(Serialize)]
struct Bar {
    x: String,
    y: String,
    w: String,
    h: String,
    /// The tooltip: the day and its figures.
    label: String,
}

/// One plan limit as a bar.
#[derive(Serialize)]
struct LimitBar {
    name: &'static str,
    used: u64,
    limit: Option<u64>,
    /// 0–100, for the bar's width.
    percent: u64,
    /// `ok`, `near` (80 % or more) or `over` (at the limit).
    level: &'static str,
}

fn limit_bar(name: &'static str, u: app::LimitUsage) -> LimitBar {
    let percent = match u.limit {
        Some(0) => 100,
        Some(l) => (u.used.saturating_mul(100) / l).min(100),
        None => 0,
    };
    let level = match u.limit {
        Some(l) if u.used >= l => "over",
        Some(_) if percent >= 80 => "near",
        _ => "ok",
    };
    LimitBar { name, used: u.used, limit: u.limit, percent, level }
}

/// An agent's messages per day over `days` as bars (a day without usage is an empty slot).
fn chart(report: &UsageReport, agent: Option<&str>, days: &[String]) -> (Vec<Bar>, i64) {
    let per_day: Vec<&app::UsageDay> =
        report.days.iter().filter(|d| d.agent_id.as_deref() == agent).collect();
    let of = |day: &str| per_day.iter().find(|d| d.day == day);
    let peak = per_day.iter().map(|d| d.messages).max().unwrap_or(0).max(1);
    let slot = CHART_W / days.len().max(1) as f64;
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, day)| {
            let d = of(day);
            let messages = d.map_or(0, |d| d.messages);
            let h = CHART_H * messages as f64 / peak as f64;
            let label = match d {
                Some(d) => format!(
                    "{day}: {} message{}, {} tokens in, {} out, {} tool call{}",
                    d.messages,
                    if d.messages == 1 { "" } else { "s" },
                    d.tokens_in,
                    d.tokens_out,
                    d.tool_calls,
                    if d.tool_calls == 1 { "" } else { "s" }
                ),
                None => format!("{day}: no messages"),
            };
            Bar {
                x: format!("{:.2}", i as f64 * slot + slot * 0.1),
                y: format!("{:.2}", CHART_H - h),
                w: format!("{:.2}", slot * 0.8),
                h: format!("{h:.2}"),
                label,
            }
        })
        .collect();
    (bars, peak)
}

async fn usage(State(state): State<AppState>, user: WebUser) -> Response {
    let report = match state.app.usage_report(&user.principal, &UsageQuery::default()).await {
        Ok(r) => r,
        Err(e) => return error_page(e),
    };
    let days = app::days_between(&report.from, &report.to);
    let agents: Vec<_> = report
        .agents
        .iter()
        .map(|a| {
            let (bars, peak) = chart(&report, a.agent_id.as_deref(), &days);
            json!({
                "agent_id": a.agent_id,
                "name": a.display_name.clone().or_else(|| a.agent_id.as_ref().map(|_| "A deleted team member".to_owned())).unwrap_or_else(|| "Not tied to a team member".to_owned()),
                "slug": a.slug,
                "totals": a.totals,
                "bars": bars,
                "peak": peak,
            })
        })
        .collect();
    let m = &report.this_month;
    let limits = [
        limit_bar("Messages this month", m.messages),
        limit_bar("Team members", m.agents),
        limit_bar("Documents", m.documents),
        limit_bar("Storage (MB)", m.storage_mb),
        limit_bar("Seats (people and invites)", m.seats),
        limit_bar("API requests this minute", m.api_requests_per_minute),
    ];
    render(
        "usage.html",
        user.ctx(
            "usage",
            json!({
                "report": report,
                "limits": limits,
                "agents": agents,
                "chart": {"w": CHART_W, "h": CHART_H},
                "first_day": days.first(),
                "last_day": days.last(),
            }),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_bars_fill_up_and_warn_near_and_at_the_limit() {
        let bar = |used, limit| limit_bar("x", app::LimitUsage { used, limit });
        assert_eq!((bar(10, Some(1000)).percent, bar(10, Some(1000)).level), (1, "ok"));
        assert_eq!(bar(800, Some(1000)).level, "near");
        assert_eq!((bar(1200, Some(1000)).percent, bar(1200, Some(1000)).level), (100, "over"));
        assert_eq!((bar(5, None).percent, bar(5, None).level), (0, "ok"));
        assert_eq!(bar(0, Some(0)).level, "over");
    }
}
