//! Errors become HTTP here, and only here: `application/problem+json` with a stable `code`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type (`/problems/<code>`).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable, machine-readable code.
    pub code: String,
    /// Field errors, for 422.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemFieldError>,
    /// For `plan_limit_reached` (402): the plan limit that was reached (`agents`,
    /// `messages_per_month`, `knowledge_docs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

/// One invalid field, addressed by a JSON pointer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemFieldError {
    pub path: String,
    pub code: String,
    pub message: String,
}

/// A handler error.
#[derive(Debug)]
pub struct ApiError(pub app::AppError);

impl From<app::AppError> for ApiError {
    fn from(e: app::AppError) -> Self {
        ApiError(e)
    }
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError(app::AppError::bad_request(code, message))
    }

    pub fn status(&self) -> StatusCode {
        use app::AppError as E;
        match &self.0 {
            E::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            E::BadRequest { .. } => StatusCode::BAD_REQUEST,
            E::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            E::Forbidden { .. } => StatusCode::FORBIDDEN,
            E::PlanLimit { .. } | E::PaymentRequired { .. } => StatusCode::PAYMENT_REQUIRED,
            E::NotFound { .. } => StatusCode::NOT_FOUND,
            E::Conflict { .. } => StatusCode::CONFLICT,
            E::RateLimited { .. } | E::PlanRateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            E::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            E::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

pub(crate) fn problem(
    status: StatusCode,
    code: &str,
    detail: String,
    errors: Vec<ProblemFieldError>,
) -> Response {
    problem_body(status, code, detail, errors, None)
}

fn problem_body(
    status: StatusCode,
    code: &str,
    detail: String,
    errors: Vec<ProblemFieldError>,
    limit: Option<String>,
) -> Response {
    let body = Problem {
        kind: format!("/problems/{code}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail,
        code: code.to_owned(),
        errors,
        limit,
    };
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use app::AppError as E;
        let status = self.status();
        let (code, detail, errors): (&str, String, Vec<ProblemFieldError>) = match &self.0 {
            E::Validation(errors) => (
                "validation_failed",
                "some fields are invalid; see `errors`".into(),
                errors
                    .iter()
                    .map(|e| ProblemFieldError {
                        path: e.path.clone(),
                        code: e.code.clone(),
                        message: e.message.clone(),
                    })
                    .collect(),
            ),
            E::BadRequest { code, message }
            | E::Unauthorized { code, message }
            | E::Forbidden { code, message }
            | E::Conflict { code, message } => (code, message.clone(), Vec::new()),
            E::PlanLimit { message, .. } => ("plan_limit_reached", message.clone(), Vec::new()),
            E::PaymentRequired { code, message } => (code, message.clone(), Vec::new()),
            E::PlanRateLimited { message, .. } => {
                ("plan_rate_limited", message.clone(), Vec::new())
            }
            E::NotFound { what } => ("not_found", format!("{what} not found"), Vec::new()),
            E::RateLimited { retry_after_secs } => (
                "rate_limited",
                format!("too many attempts; retry in {retry_after_secs} seconds"),
                Vec::new(),
            ),
            E::Unavailable(cause) => {
                tracing::error!(%cause, "dependency unavailable");
                (
                    "unavailable",
                    "the service is temporarily unavailable; try again shortly".into(),
                    Vec::new(),
                )
            }
            E::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                (
                    "internal",
                    "something went wrong on our side; it has been logged".into(),
                    Vec::new(),
                )
            }
        };
        let limit = match &self.0 {
            E::PlanLimit { limit, .. } => Some((*limit).to_owned()),
            E::PlanRateLimited { .. } => Some("api_requests_per_minute".to_owned()),
            _ => None,
        };
        let mut resp = problem_body(status, code, detail, errors, limit);
        if let E::RateLimited { retry_after_secs } | E::PlanRateLimited { retry_after_secs, .. } =
            &self.0
        {
            crate::rate_headers::refused(resp.headers_mut(), *retry_after_secs);
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// A panic in a handler becomes a generic 500 (the panic message goes to the log only).
pub(crate) fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let msg = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %msg, "handler panicked");
    problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "something went wrong on our side; it has been logged".into(),
        Vec::new(),
    )
}
