//! `/api/v1/agents`: agents, their revisions, export/import and agent API keys.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use domain::{AgentId, ApiKeyId, RevisionId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, ClientIp, JsonBody, path_id};
use crate::routes::keys::{CreateKeyRequest, KeyBody};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_agents, create_agent))
        .routes(routes!(get_agent, update_agent, delete_agent))
        .routes(routes!(list_revisions))
        .routes(routes!(restore_revision))
        .routes(routes!(export_agent))
        .routes(routes!(import_agent))
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
}

fn agent_id(raw: &str) -> Result<AgentId, ApiError> {
    path_id(raw, "agent", AgentId::parse)
}

#[derive(Deserialize, IntoParams)]
pub struct PageQuery {
    cursor: Option<String>,
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct AgentsBody {
    data: Vec<app::AgentView>,
    next_cursor: Option<String>,
}

/// The workspace's agents (an agent key sees only its own)
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = AgentsBody)))]
async fn list_agents(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<PageQuery>,
) -> Result<Json<AgentsBody>, ApiError> {
    let page = s.app.agents(&p, q.cursor.as_deref(), q.limit).await?;
    Ok(Json(AgentsBody { data: page.data, next_cursor: page.next_cursor }))
}

/// Create an agent from a template (the plan's agent limit applies)
#[utoipa::path(post, path = "/api/v1/agents", tag = "agents", security(("bearer" = [])), request_body = app::AgentInput,
    responses((status = 201, body = app::AgentView), (status = 402, description = "A limit of the plan is reached (`plan_limit_reached`, `limit` names it)", body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn create_agent(
    State(s): State<AppState>,
    Auth(p): Auth,
    ClientIp(ip): ClientIp,
    JsonBody(input): JsonBody<app::AgentInput>,
) -> Result<(StatusCode, Json<app::AgentView>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.app.create_agent(&p, input, ip).await?)))
}

/// One agent
#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "agents", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = app::AgentView), (status = 404, body = crate::error::Problem)))]
async fn get_agent(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<app::AgentView>, ApiError> {
    Ok(Json(s.app.agent(&p, agent_id(&id)?).await?))
}

/// The version named by `If-Match` (`"3"`, `W/"3"` or `3`).
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let s = v.to_str().unwrap_or_default().trim();
    let s = s.strip_prefix("W/").unwrap_or(s).trim_matches('"');
    s.parse::<i64>().map(Some).map_err(|_| {
        ApiError::bad_request("invalid_if_match", "If-Match must name the agent's version")
    })
}

/// Change an agent (optimistic concurrency: `version` in the body or `If-Match`)
#[utoipa::path(patch, path = "/api/v1/agents/{id}", tag = "agents", security(("bearer" = [])), request_body = app::AgentPatch,
    params(("id" = String, Path)),
    responses((status = 200, body = app::AgentView), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn update_agent(
    State(s): State<AppState>,
    Auth(p): Auth,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(patch): JsonBody<app::AgentPatch>,
) -> Result<Json<app::AgentView>, ApiError> {
    let id = agent_id(&id)?;
    let version = if_match(&headers)?;
    Ok(Json(s.app.update_agent(&p, id, patch, version, ip).await?))
}

/// Delete an agent (its keys are revoked)
#[utoipa::path(delete, path = "/api/v1/agents/{id}", tag = "agents", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 404, body = crate::error::Problem)))]
async fn delete_agent(
    State(s): State<AppState>,
    Auth(p): Auth,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.app.delete_agent(&p, agent_id(&id)?, ip).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct RevisionsBody {
    data: Vec<app::RevisionView>,
    next_cursor: Option<String>,
}

/// An agent's revisions, newest first
#[utoipa::path(get, path = "/api/v1/agents/{id}/revisions", tag = "agents", security(("bearer" = [])),
    params(("id" = String, Path), PageQuery), responses((status = 200, body = RevisionsBody), (status = 404, body = crate::error::Problem)))]
async fn list_revisions(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<RevisionsBody>, ApiError> {
    let page = s.app.agent_revisions(&p, agent_id(&id)?, q.cursor.as_deref(), q.limit).await?;
    Ok(Json(RevisionsBody { data: page.data, next_cursor: page.next_cursor }))
}

/// Make a revision current again (as a new version)
#[utoipa::path(post, path = "/api/v1/agents/{id}/revisions/{rev}/restore", tag = "agents", security(("bearer" = [])),
    params(("id" = String, Path), ("rev" = String, Path)), responses((status = 200, body = app::AgentView), (status = 404, body = crate::error::Problem)))]
async fn restore_revision(
    State(s): State<AppState>,
    Auth(p): Auth,
    ClientIp(ip): ClientIp,
    Path((id, rev)): Path<(String, String)>,
) -> Result<Json<app::AgentView>, ApiError> {
    let id = agent_id(&id)?;
    let rev = path_id(&rev, "revision", RevisionId::parse)?;
    Ok(Json(s.app.restore_agent_revision(&p, id, rev, ip).await?))
}

/// Export an agent as a self-contained document (no ids, no secrets)
#[utoipa::path(get, path = "/api/v1/agents/{id}/export", tag = "agents", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = app::AgentExport), (status = 404, body = crate::error::Problem)))]
async fn export_agent(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<app::AgentExport>, ApiError> {
    Ok(Json(s.app.export_agent(&p, agent_id(&id)?).await?))
}

/// Import an exported agent (knowledge bases matched by name, the plan's limit applies)
#[utoipa::path(post, path = "/api/v1/agents/import", tag = "agents", security(("bearer" = [])), request_body = app::AgentExport,
    responses((status = 201, body = app::ImportResult), (status = 402, description = "A limit of the plan is reached (`plan_limit_reached`, `limit` names it)", body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn import_agent(
    State(s): State<AppState>,
    Auth(p): Auth,
    ClientIp(ip): ClientIp,
    JsonBody(doc): JsonBody<app::AgentExport>,
) -> Result<(StatusCode, Json<app::ImportResult>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.app.import_agent(&p, doc, ip).await?)))
}

/// A new agent key, with its secret: shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedAgentKeyBody {
    #[serde(flatten)]
    key: KeyBody,
    /// The full key. Store it now: it cannot be shown again.
    secret: String,
}

impl From<app::CreatedKey> for CreatedAgentKeyBody {
    fn from(k: app::CreatedKey) -> Self {
        Self { key: k.key.into(), secret: k.secret }
    }
}

/// Create an API key for one agent (permissions `chat`, `upload`, `config`)
#[utoipa::path(post, path = "/api/v1/agents/{id}/keys", tag = "agents", security(("bearer" = [])), request_body = CreateKeyRequest,
    params(("id" = String, Path)),
    responses((status = 201, body = CreatedAgentKeyBody), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn create_key(
    State(s): State<AppState>,
    Auth(p): Auth,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    JsonBody(r): JsonBody<CreateKeyRequest>,
) -> Result<(StatusCode, Json<CreatedAgentKeyBody>), ApiError> {
    let id = agent_id(&id)?;
    let created = s.app.create_agent_key(&p, id, r.into_input(), ip).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[derive(Serialize, ToSchema)]
pub struct AgentKeysBody {
    data: Vec<KeyBody>,
}

/// An agent's API keys, newest first (revoked ones included)
#[utoipa::path(get, path = "/api/v1/agents/{id}/keys", tag = "agents", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = AgentKeysBody), (status = 404, body = crate::error::Problem)))]
async fn list_keys(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<AgentKeysBody>, ApiError> {
    let keys = s.app.agent_keys(&p, agent_id(&id)?).await?;
    Ok(Json(AgentKeysBody { data: keys.into_iter().map(Into::into).collect() }))
}

/// Revoke one of an agent's API keys
#[utoipa::path(delete, path = "/api/v1/agents/{id}/keys/{key_id}", tag = "agents", security(("bearer" = [])),
    params(("id" = String, Path), ("key_id" = String, Path)), responses((status = 204), (status = 404, body = crate::error::Problem)))]
async fn revoke_key(
    State(s): State<AppState>,
    Auth(p): Auth,
    ClientIp(ip): ClientIp,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = agent_id(&id)?;
    let key = path_id(&key, "API key", ApiKeyId::parse)?;
    s.app.revoke_agent_key(&p, id, key, ip).await?;
    Ok(StatusCode::NO_CONTENT)
}
