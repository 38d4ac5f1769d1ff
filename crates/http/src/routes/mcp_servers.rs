//! `/api/v1/mcp-servers`: MCP servers a workspace registers as tool sources (streamable HTTP,
//! or stdio running a command the operator approved), their tools, and which tools each agent
//! may call (`/api/v1/agents/{id}/mcp-servers/{server_id}`). See `docs/MCP.md`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::{AgentId, McpServerId};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, JsonBody, path_id};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_servers, register_server))
        .routes(routes!(get_server, delete_server))
        .routes(routes!(refresh_server))
        .routes(routes!(set_agent_tools, remove_agent_tools))
}

fn server_id(raw: &str) -> Result<McpServerId, ApiError> {
    path_id(raw, "MCP server", McpServerId::parse)
}

fn agent_id(raw: &str) -> Result<AgentId, ApiError> {
    path_id(raw, "agent", AgentId::parse)
}

#[derive(Serialize, ToSchema)]
pub struct McpServersBody {
    data: Vec<app::mcp::McpServerView>,
}

/// The workspace's MCP servers, with their tools and whether each is running
#[utoipa::path(get, path = "/api/v1/mcp-servers", tag = "mcp", security(("bearer" = [])),
    responses((status = 200, body = McpServersBody), (status = 403, body = crate::error::Problem)))]
async fn list_servers(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<McpServersBody>, ApiError> {
    Ok(Json(McpServersBody { data: s.app.mcp_servers(&p).await? }))
}

/// Register an MCP server (`config` permission); it is connected and its tools listed at once
/// (a server that cannot be reached is registered with the reason in `last_error`)
#[utoipa::path(post, path = "/api/v1/mcp-servers", tag = "mcp", security(("bearer" = [])),
    request_body = app::mcp::McpServerInput,
    responses((status = 201, body = app::mcp::McpServerView), (status = 400, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)))]
async fn register_server(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(input): JsonBody<app::mcp::McpServerInput>,
) -> Result<(StatusCode, Json<app::mcp::McpServerView>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.app.register_mcp_server(&p, input).await?)))
}

/// One MCP server
#[utoipa::path(get, path = "/api/v1/mcp-servers/{server_id}", tag = "mcp", security(("bearer" = [])),
    params(("server_id" = String, Path)),
    responses((status = 200, body = app::mcp::McpServerView), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)))]
async fn get_server(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<app::mcp::McpServerView>, ApiError> {
    Ok(Json(s.app.mcp_server(&p, server_id(&id)?).await?))
}

/// Remove an MCP server (`config`); agents lose its tools and its process stops
#[utoipa::path(delete, path = "/api/v1/mcp-servers/{server_id}", tag = "mcp", security(("bearer" = [])),
    params(("server_id" = String, Path)),
    responses((status = 204), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn delete_server(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.app.delete_mcp_server(&p, server_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Test the connection and list the server's tools again (`config`)
#[utoipa::path(post, path = "/api/v1/mcp-servers/{server_id}/refresh", tag = "mcp", security(("bearer" = [])),
    params(("server_id" = String, Path)),
    responses((status = 200, body = app::mcp::McpServerView), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)))]
async fn refresh_server(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<app::mcp::McpServerView>, ApiError> {
    Ok(Json(s.app.refresh_mcp_server(&p, server_id(&id)?).await?))
}

/// Let an agent call some of a server's tools (`config`); replaces its earlier choice
#[utoipa::path(put, path = "/api/v1/agents/{id}/mcp-servers/{server_id}", tag = "mcp", security(("bearer" = [])),
    params(("id" = String, Path), ("server_id" = String, Path)), request_body = app::mcp::AgentMcpToolsInput,
    responses((status = 200, body = app::mcp::AgentMcpToolsView), (status = 400, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)))]
async fn set_agent_tools(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, server)): Path<(String, String)>,
    JsonBody(input): JsonBody<app::mcp::AgentMcpToolsInput>,
) -> Result<Json<app::mcp::AgentMcpToolsView>, ApiError> {
    Ok(Json(s.app.set_agent_mcp_tools(&p, agent_id(&id)?, server_id(&server)?, input).await?))
}

/// Stop an agent using a server's tools (`config`)
#[utoipa::path(delete, path = "/api/v1/agents/{id}/mcp-servers/{server_id}", tag = "mcp", security(("bearer" = [])),
    params(("id" = String, Path), ("server_id" = String, Path)),
    responses((status = 204), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn remove_agent_tools(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, server)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.app.remove_agent_mcp_tools(&p, agent_id(&id)?, server_id(&server)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
