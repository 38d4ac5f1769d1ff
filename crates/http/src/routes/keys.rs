//! `/api/v1/api-keys`: workspace API keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::ApiKeyId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, ClientIp, JsonBody, path_id};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_key, list_keys)).routes(routes!(revoke_key))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    name: String,
    /// Any of `read`, `write`, `chat`, `upload`, `config`, `admin` (the API reference's
    /// introduction has what each reaches). Omitted: `read` and `chat` for a workspace key,
    /// `chat` and `upload` for an agent key.
    #[serde(default)]
    permissions: Option<Vec<String>>,
    rate_per_minute: Option<i64>,
    rate_per_day: Option<i64>,
    /// IP addresses or CIDR blocks the key may be used from; empty means anywhere.
    #[serde(default)]
    ip_allowlist: Vec<String>,
}

impl CreateKeyRequest {
    pub(crate) fn into_input(self) -> app::CreateKeyInput {
        app::CreateKeyInput {
            name: self.name,
            permissions: self.permissions,
            rate_per_minute: self.rate_per_minute,
            rate_per_day: self.rate_per_day,
            ip_allowlist: self.ip_allowlist,
        }
    }
}

/// An API key, without its secret.
#[derive(Serialize, ToSchema)]
pub struct KeyBody {
    id: String,
    name: String,
    /// The visible start of the key (`ef_XXXXXXXX`).
    prefix: String,
    permissions: Vec<String>,
    agent_id: Option<String>,
    rate_per_minute: Option<i64>,
    rate_per_day: Option<i64>,
    ip_allowlist: Vec<String>,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl From<store::ApiKey> for KeyBody {
    fn from(k: store::ApiKey) -> Self {
        Self {
            id: k.id.to_string(),
            permissions: k.permissions.iter().map(|p| p.as_str().to_owned()).collect(),
            ip_allowlist: serde_json::from_str(&k.ip_allowlist).unwrap_or_default(),
            name: k.name,
            prefix: k.prefix,
            agent_id: k.agent_id,
            rate_per_minute: k.rate_per_minute,
            rate_per_day: k.rate_per_day,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A new key, with its secret: shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedKeyBody {
    #[serde(flatten)]
    key: KeyBody,
    /// The full key. Store it now: it cannot be shown again.
    secret: String,
}

/// Create an API key (needs `admin`)
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", security(("bearer" = [])), request_body = CreateKeyRequest,
    responses((status = 201, body = CreatedKeyBody), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn create_key(
    State(s): State<AppState>,
    Auth(p): Auth,
    ClientIp(ip): ClientIp,
    JsonBody(r): JsonBody<CreateKeyRequest>,
) -> Result<(StatusCode, Json<CreatedKeyBody>), ApiError> {
    let input = app::CreateKeyInput {
        name: r.name,
        permissions: r.permissions,
        rate_per_minute: r.rate_per_minute,
        rate_per_day: r.rate_per_day,
        ip_allowlist: r.ip_allowlist,
    };
    let created = s.app.create_api_key(&p, input, ip).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKeyBody { key: created.key.into(), secret: created.secret }),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct KeysBody {
    data: Vec<KeyBody>,
}

/// The workspace's API keys, newest first (revoked ones included)
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", security(("bearer" = [])), responses((status = 200, body = KeysBody)))]
async fn list_keys(State(s): State<AppState>, Auth(p): Auth) -> Result<Json<KeysBody>, ApiError> {
    Ok(Json(KeysBody { data: s.app.api_keys(&p).await?.iter().cloned().map(Into::into).collect() }))
}

/// Revoke an API key (needs `admin`)
#[utoipa::path(delete, path = "/api/v1/api-keys/{key_id}", tag = "api-keys", security(("bearer" = [])),
    params(("key_id" = String, Path)), responses((status = 204), (status = 404, body = crate::error::Problem)))]
async fn revoke_key(
    State(s): State<AppState>,
    Auth(p): Auth,
    ClientIp(ip): ClientIp,
    Path(key_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&key_id, "API key", ApiKeyId::parse)?;
    s.app.revoke_api_key(&p, id, ip).await?;
    Ok(StatusCode::NO_CONTENT)
}
