//! `/api/v1/auth/*`: registration, verification, sign-in, sessions, passwords.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ClientIp, JsonBody, UserAuth};
use crate::routes::workspace::MembershipBody;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(verify_email))
        .routes(routes!(resend_verification))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(request_password_reset))
        .routes(routes!(confirm_password_reset))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    email: String,
    /// At least 8 characters, one uppercase letter, one digit.
    password: String,
    name: String,
    company_name: String,
}

/// A user as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct UserBody {
    pub id: String,
    pub email: String,
    pub name: String,
    pub email_verified: bool,
    pub is_operator: bool,
    pub created_at: i64,
}

impl From<&store::User> for UserBody {
    fn from(u: &store::User) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email.clone(),
            name: u.name.clone(),
            email_verified: u.is_verified(),
            is_operator: u.is_operator,
            created_at: u.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RegisterResponse {
    user: UserBody,
    /// What happens next.
    message: String,
}

/// Create an account and its workspace
///
/// The new user owns a new workspace on the default plan. A verification link is emailed;
/// the account can sign in once the address is verified.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = RegisterResponse), (status = 422, body = crate::error::Problem)))]
async fn register(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(r): JsonBody<RegisterRequest>,
) -> Result<(StatusCode, Json<RegisterResponse>), ApiError> {
    let user = s
        .app
        .register(
            app::RegisterInput {
                email: r.email,
                password: r.password,
                name: r.name,
                company_name: r.company_name,
            },
            ip,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(RegisterResponse {
            user: (&user).into(),
            message: "check your inbox for a verification link".into(),
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    token: String,
}

#[derive(Serialize, ToSchema)]
pub struct Ok_ {
    ok: bool,
}

/// Verify an email address with the emailed token
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", request_body = TokenRequest,
    responses((status = 200, body = Ok_), (status = 400, body = crate::error::Problem)))]
async fn verify_email(
    State(s): State<AppState>,
    JsonBody(r): JsonBody<TokenRequest>,
) -> Result<Json<Ok_>, ApiError> {
    s.app.verify_email(&r.token).await?;
    Ok(Json(Ok_ { ok: true }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    email: String,
}

/// Send the verification link again
///
/// Answers 202 whether or not the address has an unverified account.
#[utoipa::path(post, path = "/api/v1/auth/resend-verification", tag = "auth", request_body = EmailRequest,
    responses((status = 202, body = Ok_)))]
async fn resend_verification(
    State(s): State<AppState>,
    JsonBody(r): JsonBody<EmailRequest>,
) -> Result<(StatusCode, Json<Ok_>), ApiError> {
    s.app.resend_verification(&r.email).await?;
    Ok((StatusCode::ACCEPTED, Json(Ok_ { ok: true })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
}

/// Access and refresh tokens.
#[derive(Serialize, ToSchema)]
pub struct TokensBody {
    access_token: String,
    refresh_token: String,
    token_type: String,
    /// Access token expiry, epoch milliseconds.
    expires_at: i64,
}

impl From<app::TokenPair> for TokensBody {
    fn from(t: app::TokenPair) -> Self {
        Self {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            token_type: t.token_type.into(),
            expires_at: t.expires_at,
        }
    }
}

/// Sign in
///
/// Failed attempts are limited per account and per IP address (429 with `Retry-After`).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokensBody), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
async fn login(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(r): JsonBody<LoginRequest>,
) -> Result<Json<TokensBody>, ApiError> {
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    let result = s.app.login(&r.email, &r.password, ip, ua).await?;
    Ok(Json(result.tokens.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

/// Exchange a refresh token for new tokens
///
/// Refresh tokens rotate: each works once. Presenting a used one signs the session out.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokensBody), (status = 401, body = crate::error::Problem)))]
async fn refresh(
    State(s): State<AppState>,
    JsonBody(r): JsonBody<RefreshRequest>,
) -> Result<Json<TokensBody>, ApiError> {
    Ok(Json(s.app.refresh(&r.refresh_token).await?.into()))
}

/// Sign out this session
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])), responses((status = 204)))]
async fn logout(State(s): State<AppState>, user: UserAuth) -> Result<StatusCode, ApiError> {
    s.app.logout(user.session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct MeBody {
    user: UserBody,
    workspaces: Vec<MembershipBody>,
}

/// The signed-in user and their workspaces with roles
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])), responses((status = 200, body = MeBody)))]
async fn me(State(s): State<AppState>, user: UserAuth) -> Result<Json<MeBody>, ApiError> {
    let me = s.app.me(user.user_id).await?;
    Ok(Json(MeBody {
        user: (&me.user).into(),
        workspaces: me.workspaces.iter().map(Into::into).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    current_password: String,
    new_password: String,
}

/// Change the password (signs out every other session)
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses((status = 204), (status = 422, body = crate::error::Problem)))]
async fn change_password(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    user: UserAuth,
    JsonBody(r): JsonBody<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    s.app
        .change_password(user.user_id, user.session_id, &r.current_password, &r.new_password, ip)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Email a password-reset link
///
/// Answers 202 whether or not the address has an account.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth", request_body = EmailRequest, responses((status = 202, body = Ok_)))]
async fn request_password_reset(
    State(s): State<AppState>,
    JsonBody(r): JsonBody<EmailRequest>,
) -> Result<(StatusCode, Json<Ok_>), ApiError> {
    s.app.request_password_reset(&r.email).await?;
    Ok((StatusCode::ACCEPTED, Json(Ok_ { ok: true })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    token: String,
    new_password: String,
}

/// Set a new password with an emailed reset token (signs out every session)
#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", tag = "auth", request_body = ResetRequest,
    responses((status = 204), (status = 400, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn confirm_password_reset(
    State(s): State<AppState>,
    JsonBody(r): JsonBody<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    s.app.reset_password(&r.token, &r.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}
