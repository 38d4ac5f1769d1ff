//! `/api/v1/templates`: seeded, operator (system) and workspace templates; saving an agent as
//! a workspace template.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use domain::AgentId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, JsonBody, path_id};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates, create_template))
        .routes(routes!(get_template, update_template, delete_template))
        .routes(routes!(save_as_template))
}

#[derive(Deserialize, IntoParams)]
pub struct TemplateQuery {
    /// Only templates of this category.
    category: Option<String>,
    /// Only featured (`true`) or not featured (`false`) templates.
    featured: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct TemplatesBody {
    data: Vec<app::TemplateView>,
}

/// Templates available to the workspace, with availability on its plan
#[utoipa::path(get, path = "/api/v1/templates", tag = "templates", security(("bearer" = [])), params(TemplateQuery),
    responses((status = 200, body = TemplatesBody)))]
async fn list_templates(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<TemplateQuery>,
) -> Result<Json<TemplatesBody>, ApiError> {
    let data = s.app.templates(&p, q.category.as_deref(), q.featured).await?;
    Ok(Json(TemplatesBody { data }))
}

/// One template with its whole document
#[utoipa::path(get, path = "/api/v1/templates/{slug}", tag = "templates", security(("bearer" = [])),
    params(("slug" = String, Path)), responses((status = 200, body = app::TemplateView), (status = 404, body = crate::error::Problem)))]
async fn get_template(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(slug): Path<String>,
) -> Result<Json<app::TemplateView>, ApiError> {
    Ok(Json(s.app.template(&p, &slug).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTemplateRequest {
    /// The template document (validated by the catalog).
    #[schema(value_type = Object)]
    document: Value,
    /// A system template (operators only) instead of a workspace template.
    #[serde(default)]
    system: bool,
}

/// Create a template: a system one (operators, `system: true`) or one for this workspace
#[utoipa::path(post, path = "/api/v1/templates", tag = "templates", security(("bearer" = [])), request_body = CreateTemplateRequest,
    responses((status = 201, body = app::TemplateView), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn create_template(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(r): JsonBody<CreateTemplateRequest>,
) -> Result<(StatusCode, Json<app::TemplateView>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.app.create_template(&p, r.document, r.system).await?)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTemplateRequest {
    /// A replacement document (its slug must match the URL).
    #[schema(value_type = Option<Object>)]
    document: Option<Value>,
    /// `false` retires the template; `true` offers it again.
    is_active: Option<bool>,
    #[serde(default)]
    system: bool,
}

/// Edit or (re)activate a template (system ones: operators only)
#[utoipa::path(patch, path = "/api/v1/templates/{slug}", tag = "templates", security(("bearer" = [])), request_body = UpdateTemplateRequest,
    params(("slug" = String, Path)), responses((status = 200, body = app::TemplateView), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn update_template(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(slug): Path<String>,
    JsonBody(r): JsonBody<UpdateTemplateRequest>,
) -> Result<Json<app::TemplateView>, ApiError> {
    Ok(Json(s.app.update_template(&p, &slug, r.document, r.is_active, r.system).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct DeleteTemplateQuery {
    /// Retire a system template (operators) instead of deleting a workspace template.
    #[serde(default)]
    system: bool,
}

/// Delete one of the workspace's templates, or retire a system template (`?system=true`)
#[utoipa::path(delete, path = "/api/v1/templates/{slug}", tag = "templates", security(("bearer" = [])),
    params(("slug" = String, Path), DeleteTemplateQuery), responses((status = 204), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn delete_template(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(slug): Path<String>,
    Query(q): Query<DeleteTemplateQuery>,
) -> Result<StatusCode, ApiError> {
    s.app.delete_template(&p, &slug, q.system).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveAsTemplateRequest {
    slug: String,
    name: Option<String>,
}

/// Save an agent's setup as a workspace template
#[utoipa::path(post, path = "/api/v1/agents/{id}/save-as-template", tag = "templates", security(("bearer" = [])), request_body = SaveAsTemplateRequest,
    params(("id" = String, Path)), responses((status = 201, body = app::TemplateView), (status = 404, body = crate::error::Problem), (status = 409, description = "A template with this slug exists", body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn save_as_template(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    JsonBody(r): JsonBody<SaveAsTemplateRequest>,
) -> Result<(StatusCode, Json<app::TemplateView>), ApiError> {
    let id = path_id(&id, "agent", AgentId::parse)?;
    let t = s.app.save_agent_as_template(&p, id, &r.slug, r.name.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(t)))
}
