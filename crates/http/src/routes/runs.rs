//! `/api/v1/runs`: run traces ("Logs & Monitoring") with their steps.

use axum::Json;
use axum::extract::{Path, Query, State};
use domain::{AgentId, RunId};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, path_id};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_runs)).routes(routes!(get_run))
}

#[derive(Deserialize, IntoParams)]
pub struct RunsQuery {
    agent_id: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// Runs newest first, optionally one agent's (needs `read` or `chat`)
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", security(("bearer" = [])), params(RunsQuery),
    responses((status = 200, description = "`{data, next_cursor}`")))]
async fn list_runs(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<RunsQuery>,
) -> Result<Json<Value>, ApiError> {
    let agent = match q.agent_id {
        Some(a) => Some(
            AgentId::parse(&a)
                .map_err(|_| ApiError::bad_request("invalid_agent_id", "agent_id is not an id"))?,
        ),
        None => None,
    };
    let cursor = match q.cursor {
        Some(c) => Some(
            RunId::parse(&c)
                .map_err(|_| ApiError::bad_request("invalid_cursor", "the cursor is invalid"))?,
        ),
        None => None,
    };
    let page = s.app.runs(&p, agent, cursor, q.limit).await?;
    Ok(Json(json!({ "data": page.data, "next_cursor": page.next_cursor })))
}

/// A run with its steps: model calls (model, tokens, latency), tool calls (arguments, result
/// summary, latency), errors
#[utoipa::path(get, path = "/api/v1/runs/{run_id}", tag = "runs", security(("bearer" = [])),
    params(("run_id" = String, Path)), responses((status = 200, description = "The run and its steps"), (status = 404, body = crate::error::Problem)))]
async fn get_run(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(run_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = path_id(&run_id, "run", RunId::parse)?;
    let run = s.app.run(&p, id).await?;
    Ok(Json(serde_json::to_value(&run).unwrap_or(Value::Null)))
}
