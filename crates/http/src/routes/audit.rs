//! `/api/v1/audit-events`: the audit log, for owners and admins.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Auth;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only events of this action (e.g. `login.failed`).
    action: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// One security event.
#[derive(Serialize, ToSchema)]
pub struct AuditEventBody {
    id: String,
    action: String,
    actor_user_id: Option<String>,
    actor_key_id: Option<String>,
    target: Option<String>,
    ip: Option<String>,
    detail: serde_json::Value,
    created_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    data: Vec<AuditEventBody>,
    next_cursor: Option<String>,
}

/// The workspace's audit log, newest first
#[utoipa::path(get, path = "/api/v1/audit-events", tag = "audit", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 403, body = crate::error::Problem)))]
async fn list_events(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let page = s.app.audit_events(&p, q.action.as_deref(), q.cursor.as_deref(), q.limit).await?;
    Ok(Json(AuditPage {
        data: page
            .data
            .into_iter()
            .map(|e| AuditEventBody {
                id: e.id.to_string(),
                action: e.action,
                actor_user_id: e.actor_user_id,
                actor_key_id: e.actor_key_id,
                target: e.target,
                ip: e.ip,
                detail: e.detail.0,
                created_at: e.created_at,
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}
