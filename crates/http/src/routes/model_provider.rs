//! `/api/v1/workspace/model-provider`: the workspace's own model provider and key (BYOK),
//! used for its runs instead of the server-wide provider. The key is write-only: reads show
//! whether one is set and its last four characters.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, JsonBody};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_provider, put_provider, delete_provider))
}

/// A provider and key to use for this workspace's runs.
#[derive(Deserialize, ToSchema)]
pub struct ProviderRequest {
    /// `openai` (any OpenAI-compatible endpoint) or `anthropic`
    provider: String,
    /// Endpoint; the vendor's public one when absent
    base_url: Option<String>,
    model: String,
    /// Stored sealed by the vault; never returned
    api_key: String,
}

/// The workspace's provider, without its key.
#[derive(Serialize, ToSchema)]
pub struct ProviderBody {
    provider: String,
    base_url: Option<String>,
    model: String,
    api_key_set: bool,
    /// The key's last four characters
    api_key_last4: String,
    updated_at: i64,
}

impl From<app::ModelProviderView> for ProviderBody {
    fn from(v: app::ModelProviderView) -> Self {
        Self {
            provider: v.provider,
            base_url: v.base_url,
            model: v.model,
            api_key_set: v.api_key_set,
            api_key_last4: v.api_key_last4,
            updated_at: v.updated_at,
        }
    }
}

/// The workspace's own model provider (owners and admins)
#[utoipa::path(get, path = "/api/v1/workspace/model-provider", tag = "workspace", security(("bearer" = [])),
    responses((status = 200, body = ProviderBody), (status = 404, body = crate::error::Problem)))]
async fn get_provider(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<ProviderBody>, ApiError> {
    Ok(Json(s.app.model_provider(&p).await?.into()))
}

/// Set the workspace's own model provider and key (owners and admins)
#[utoipa::path(put, path = "/api/v1/workspace/model-provider", tag = "workspace", security(("bearer" = [])),
    request_body = ProviderRequest,
    responses((status = 200, body = ProviderBody), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn put_provider(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(r): JsonBody<ProviderRequest>,
) -> Result<Json<ProviderBody>, ApiError> {
    let input = app::ModelProviderInput {
        provider: r.provider,
        base_url: r.base_url,
        model: r.model,
        api_key: r.api_key,
    };
    Ok(Json(s.app.set_model_provider(&p, input).await?.into()))
}

/// Remove the workspace's own provider: runs use the server-wide one again (owners and admins)
#[utoipa::path(delete, path = "/api/v1/workspace/model-provider", tag = "workspace", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
async fn delete_provider(State(s): State<AppState>, Auth(p): Auth) -> Result<StatusCode, ApiError> {
    s.app.delete_model_provider(&p).await?;
    Ok(StatusCode::NO_CONTENT)
}
