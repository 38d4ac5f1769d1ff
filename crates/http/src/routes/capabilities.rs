//! `/api/v1/capabilities`: what agents can do, with availability for the caller's workspace.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Auth;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_capabilities))
}

#[derive(Serialize, ToSchema)]
pub struct CapabilitiesBody {
    data: Vec<app::CapabilityView>,
}

/// Every capability with `is_available`, `connected_via` and `requires` for this workspace
#[utoipa::path(get, path = "/api/v1/capabilities", tag = "capabilities", security(("bearer" = [])),
    responses((status = 200, body = CapabilitiesBody), (status = 401, body = crate::error::Problem)))]
async fn list_capabilities(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<CapabilitiesBody>, ApiError> {
    Ok(Json(CapabilitiesBody { data: s.app.capabilities(&p).await? }))
}
