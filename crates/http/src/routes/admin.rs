//! `/api/v1/admin/*`: platform-operator tasks on any workspace (operators only).

use axum::Json;
use axum::extract::{Path, State};
use domain::WorkspaceId;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, ClientIp, JsonBody, path_id};
use crate::routes::workspace::WorkspaceBody;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(update_workspace)).routes(routes!(grant_credits))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminWorkspacePatch {
    /// The plan tier: `starter`, `pro` or `enterprise`.
    plan: String,
}

/// Change a workspace's plan (platform operators only; audited in that workspace)
#[utoipa::path(patch, path = "/api/v1/admin/workspaces/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = AdminWorkspacePatch,
    responses((status = 200, body = WorkspaceBody), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn update_workspace(
    State(s): State<AppState>,
    Auth(p): Auth,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    JsonBody(r): JsonBody<AdminWorkspacePatch>,
) -> Result<Json<WorkspaceBody>, ApiError> {
    let id = path_id(&id, "workspace", WorkspaceId::parse)?;
    Ok(Json(s.app.set_workspace_plan(&p, id, &r.plan, ip).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditGrantRequest {
    /// Credits to add (1 to 1,000,000,000).
    amount: i64,
    /// `grant` (the default) or `top_up` (bought).
    #[serde(default = "grant")]
    kind: String,
    /// Why, for the ledger and the audit log.
    #[serde(default)]
    note: String,
}

fn grant() -> String {
    "grant".into()
}

/// Add credits to a workspace's ledger (platform operators only; audited in that workspace)
#[utoipa::path(post, path = "/api/v1/admin/workspaces/{id}/credits", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = CreditGrantRequest,
    responses((status = 200, body = app::CreditsView), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn grant_credits(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    JsonBody(r): JsonBody<CreditGrantRequest>,
) -> Result<Json<app::CreditsView>, ApiError> {
    let id = path_id(&id, "workspace", WorkspaceId::parse)?;
    let grant = app::CreditGrant { kind: r.kind, amount: r.amount, note: r.note };
    Ok(Json(s.app.grant_credits(&p, id, grant).await?))
}
