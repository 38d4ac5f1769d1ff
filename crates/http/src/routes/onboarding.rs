//! `/api/v1/onboarding`: the template-driven wizard that creates an agent.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::OnboardingId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, ClientIp, JsonBody, path_id};
use crate::routes::agents::CreatedAgentKeyBody;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(get_session))
        .routes(routes!(submit_step))
        .routes(routes!(back))
        .routes(routes!(abandon))
        .routes(routes!(complete))
}

fn session_id(raw: &str) -> Result<OnboardingId, ApiError> {
    path_id(raw, "onboarding session", OnboardingId::parse)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// The template's slug.
    template: String,
}

/// Start the wizard for a template (the plan's agent limit is checked first)
#[utoipa::path(post, path = "/api/v1/onboarding", tag = "onboarding", security(("bearer" = [])), request_body = StartRequest,
    responses((status = 201, body = app::OnboardingView), (status = 402, description = "A limit of the plan is reached (`plan_limit_reached`, `limit` names it)", body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn start(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(r): JsonBody<StartRequest>,
) -> Result<(StatusCode, Json<app::OnboardingView>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.app.start_onboarding(&p, &r.template).await?)))
}

/// A session with its current step, hydrated with saved values and computed visibility
#[utoipa::path(get, path = "/api/v1/onboarding/{id}", tag = "onboarding", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = app::OnboardingView), (status = 404, body = crate::error::Problem)))]
async fn get_session(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<app::OnboardingView>, ApiError> {
    Ok(Json(s.app.onboarding(&p, session_id(&id)?).await?))
}

/// Submit a step's answers (field name → value): validated, saved, then the wizard advances
#[utoipa::path(put, path = "/api/v1/onboarding/{id}/steps/{step_id}", tag = "onboarding", security(("bearer" = [])),
    request_body(content = Object, description = "The step's answers, by field name"),
    params(("id" = String, Path), ("step_id" = String, Path)),
    responses((status = 200, body = app::OnboardingView), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn submit_step(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, step)): Path<(String, String)>,
    JsonBody(values): JsonBody<Map<String, Value>>,
) -> Result<Json<app::OnboardingView>, ApiError> {
    Ok(Json(s.app.submit_onboarding_step(&p, session_id(&id)?, &step, values).await?))
}

/// Go back one step (saved answers are kept)
#[utoipa::path(post, path = "/api/v1/onboarding/{id}/back", tag = "onboarding", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = app::OnboardingView), (status = 409, body = crate::error::Problem)))]
async fn back(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<app::OnboardingView>, ApiError> {
    Ok(Json(s.app.onboarding_back(&p, session_id(&id)?).await?))
}

/// Abandon the session
#[utoipa::path(post, path = "/api/v1/onboarding/{id}/abandon", tag = "onboarding", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = app::OnboardingView), (status = 409, body = crate::error::Problem)))]
async fn abandon(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<app::OnboardingView>, ApiError> {
    Ok(Json(s.app.abandon_onboarding(&p, session_id(&id)?).await?))
}

/// The agent made by the wizard, and its API key (shown this once).
#[derive(Serialize, ToSchema)]
pub struct CompletedBody {
    session: app::OnboardingView,
    agent: app::AgentView,
    api_key: CreatedAgentKeyBody,
    /// Default capabilities left off because they need settings the wizard did not ask for.
    deferred_capabilities: Vec<String>,
}

/// Finish the wizard: creates the agent and its API key
#[utoipa::path(post, path = "/api/v1/onboarding/{id}/complete", tag = "onboarding", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 201, body = CompletedBody), (status = 402, description = "A limit of the plan is reached (`plan_limit_reached`, `limit` names it)", body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn complete(
    State(s): State<AppState>,
    Auth(p): Auth,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<CompletedBody>), ApiError> {
    let done = s.app.complete_onboarding(&p, session_id(&id)?, ip).await?;
    Ok((
        StatusCode::CREATED,
        Json(CompletedBody {
            session: done.session,
            agent: done.agent,
            api_key: done.api_key.into(),
            deferred_capabilities: done.deferred_capabilities,
        }),
    ))
}
