//! `/api/v1/integrations`: the providers a workspace can connect, its connections (connect
//! through the provider's sign-in page or with credentials, disconnect), and agents' links to
//! them (`/api/v1/agents/{id}/integrations`). The OAuth2 callback is a page of the web app
//! (`/integrations/{provider}/callback`): the browser comes back there with the person's session.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::{AgentId, ConnectionId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, JsonBody, path_id};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_connections))
        .routes(routes!(list_available))
        .routes(routes!(connect))
        .routes(routes!(connect_with_credentials))
        .routes(routes!(get_connection, delete_connection))
        .routes(routes!(list_agent_integrations))
        .routes(routes!(link_agent_integration, unlink_agent_integration))
        .routes(routes!(service_credentials))
}

fn connection_id(raw: &str) -> Result<ConnectionId, ApiError> {
    path_id(raw, "integration", ConnectionId::parse)
}

fn agent_id(raw: &str) -> Result<AgentId, ApiError> {
    path_id(raw, "agent", AgentId::parse)
}

#[derive(Serialize, ToSchema)]
pub struct ConnectionsBody {
    data: Vec<app::ConnectionView>,
}

#[derive(Serialize, ToSchema)]
pub struct ProvidersBody {
    data: Vec<app::ProviderView>,
}

#[derive(Serialize, ToSchema)]
pub struct AgentIntegrationsBody {
    data: Vec<app::AgentIntegrationView>,
}

/// An API-key or basic provider's credentials.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsRequest {
    /// A name for the connection (defaults to the account)
    name: Option<String>,
    /// The provider's fields (see `fields` in `/integrations/available`); secrets are sealed
    /// and never returned
    fields: BTreeMap<String, String>,
}

/// How an agent uses a connection.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentIntegrationRequest {
    /// What the agent should use it for (shown to the model)
    #[serde(default)]
    purpose: String,
    /// `actions` (action ids) limits the tools; `defaults` fills arguments the model leaves out
    #[schema(value_type = Option<Object>)]
    config: Option<serde_json::Value>,
}

/// The workspace's connected integrations
#[utoipa::path(get, path = "/api/v1/integrations", tag = "integrations", security(("bearer" = [])),
    responses((status = 200, body = ConnectionsBody), (status = 403, body = crate::error::Problem)))]
async fn list_connections(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<ConnectionsBody>, ApiError> {
    Ok(Json(ConnectionsBody { data: s.app.integrations(&p).await? }))
}

/// Every provider, with whether this server has it set up
#[utoipa::path(get, path = "/api/v1/integrations/available", tag = "integrations", security(("bearer" = [])),
    responses((status = 200, body = ProvidersBody), (status = 403, body = crate::error::Problem)))]
async fn list_available(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<ProvidersBody>, ApiError> {
    Ok(Json(ProvidersBody { data: s.app.available_integrations(&p).await? }))
}

/// Start connecting an OAuth2 provider: send the browser to `auth_url` (owners and admins,
/// signed in; the link is single use and expires in 10 minutes)
#[utoipa::path(post, path = "/api/v1/integrations/{provider}/connect", tag = "integrations", security(("bearer" = [])),
    params(("provider" = String, Path)),
    responses((status = 200, body = app::ConnectStart), (status = 400, body = crate::error::Problem),
        (status = 402, description = "The plan's integrations limit is reached (`plan_limit_reached`)", body = crate::error::Problem),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 409, description = "The operator has not set the provider up (`provider_unavailable`)", body = crate::error::Problem)))]
async fn connect(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(provider): Path<String>,
) -> Result<Json<app::ConnectStart>, ApiError> {
    Ok(Json(s.app.connect_integration(&p, &provider).await?))
}

/// Connect an API-key or basic provider; the credentials are checked with a test call first
/// (owners and admins)
#[utoipa::path(post, path = "/api/v1/integrations/{provider}/credentials", tag = "integrations", security(("bearer" = [])),
    params(("provider" = String, Path)), request_body = CredentialsRequest,
    responses((status = 201, body = app::ConnectionView), (status = 400, body = crate::error::Problem),
        (status = 402, description = "The plan's integrations limit is reached (`plan_limit_reached`)", body = crate::error::Problem),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn connect_with_credentials(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(provider): Path<String>,
    JsonBody(r): JsonBody<CredentialsRequest>,
) -> Result<(StatusCode, Json<app::ConnectionView>), ApiError> {
    let input = app::CredentialsInput { name: r.name, fields: r.fields };
    Ok((StatusCode::CREATED, Json(s.app.connect_with_credentials(&p, &provider, input).await?)))
}

/// One connection (never its credentials)
#[utoipa::path(get, path = "/api/v1/integrations/{id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = app::ConnectionView), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn get_connection(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<app::ConnectionView>, ApiError> {
    Ok(Json(s.app.integration(&p, connection_id(&id)?).await?))
}

/// Disconnect: revoked at the provider where it can be, tokens deleted, agents unlinked
/// (owners and admins)
#[utoipa::path(delete, path = "/api/v1/integrations/{id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn delete_connection(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.app.disconnect_integration(&p, connection_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The connections an agent uses, and the tools each gives it
#[utoipa::path(get, path = "/api/v1/agents/{id}/integrations", tag = "integrations", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = AgentIntegrationsBody), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn list_agent_integrations(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<AgentIntegrationsBody>, ApiError> {
    Ok(Json(AgentIntegrationsBody { data: s.app.agent_integrations(&p, agent_id(&id)?).await? }))
}

/// Let an agent use a connection (or change how), `config` permission
#[utoipa::path(put, path = "/api/v1/agents/{id}/integrations/{connection_id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = String, Path), ("connection_id" = String, Path)), request_body = AgentIntegrationRequest,
    responses((status = 200, body = app::AgentIntegrationView), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn link_agent_integration(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, connection)): Path<(String, String)>,
    JsonBody(r): JsonBody<AgentIntegrationRequest>,
) -> Result<Json<app::AgentIntegrationView>, ApiError> {
    let input = app::AgentIntegrationInput { purpose: r.purpose, config: r.config };
    let view = s
        .app
        .link_agent_integration(&p, agent_id(&id)?, connection_id(&connection)?, input)
        .await?;
    Ok(Json(view))
}

/// Stop an agent using a connection, `config` permission
#[utoipa::path(delete, path = "/api/v1/agents/{id}/integrations/{connection_id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = String, Path), ("connection_id" = String, Path)),
    responses((status = 204), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn unlink_agent_integration(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, connection)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.app.unlink_agent_integration(&p, agent_id(&id)?, connection_id(&connection)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A connection's credentials for the platform's external runtimes (service-secret auth)
///
/// Send the secret configured as `internal.service_secret` as `Authorization: Bearer` or in
/// `X-Service-Secret`. OAuth2 tokens are refreshed first when they expire within 5 minutes.
/// Every read is audited.
#[utoipa::path(get, path = "/api/internal/integration/{id}/credentials", tag = "integrations", params(("id" = String, Path)),
    responses((status = 200, body = app::ServiceCredentials), (status = 401, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 409, description = "The connection needs reconnecting", body = crate::error::Problem)))]
async fn service_credentials(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<app::ServiceCredentials>, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let secret = header("x-service-secret")
        .or_else(|| header("authorization").and_then(|a| a.strip_prefix("Bearer ")))
        .unwrap_or("");
    Ok(Json(s.app.service_credentials(secret, connection_id(&id)?).await?))
}
