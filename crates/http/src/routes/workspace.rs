//! `/api/v1/workspace*` and `/api/v1/invites/*`: profile, members, invites.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::{InviteId, Role, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, ClientIp, JsonBody, MaybeUser, path_id};
use crate::routes::double_option;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_workspace, update_workspace))
        .routes(routes!(list_members))
        .routes(routes!(change_role, remove_member))
        .routes(routes!(create_invite, list_invites))
        .routes(routes!(revoke_invite))
        .routes(routes!(accept_invite))
}

/// One of the caller's workspaces.
#[derive(Serialize, ToSchema)]
pub struct MembershipBody {
    workspace_id: String,
    workspace_name: String,
    #[schema(value_type = String, example = "owner")]
    role: Role,
    joined_at: i64,
}

impl From<&store::MembershipSummary> for MembershipBody {
    fn from(m: &store::MembershipSummary) -> Self {
        Self {
            workspace_id: m.workspace_id.to_string(),
            workspace_name: m.workspace_name.clone(),
            role: m.role,
            joined_at: m.joined_at,
        }
    }
}

/// A workspace profile.
#[derive(Serialize, ToSchema)]
pub struct WorkspaceBody {
    id: String,
    name: String,
    phone: Option<String>,
    industry: Option<String>,
    website: Option<String>,
    logo_url: Option<String>,
    plan: String,
    created_at: i64,
    updated_at: i64,
}

impl From<store::Workspace> for WorkspaceBody {
    fn from(w: store::Workspace) -> Self {
        Self {
            id: w.id.to_string(),
            name: w.name,
            phone: w.phone,
            industry: w.industry,
            website: w.website,
            logo_url: w.logo_url,
            plan: w.plan,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// The current workspace's profile
#[utoipa::path(get, path = "/api/v1/workspace", tag = "workspace", security(("bearer" = [])), responses((status = 200, body = WorkspaceBody)))]
async fn get_workspace(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<WorkspaceBody>, ApiError> {
    Ok(Json(s.app.workspace(&p).await?.into()))
}

/// A profile change: absent fields stay, `null` clears.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspacePatchRequest {
    name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    industry: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    website: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    logo_url: Option<Option<String>>,
}

/// Edit the workspace profile (owners and admins)
#[utoipa::path(patch, path = "/api/v1/workspace", tag = "workspace", security(("bearer" = [])), request_body = WorkspacePatchRequest,
    responses((status = 200, body = WorkspaceBody), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn update_workspace(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(r): JsonBody<WorkspacePatchRequest>,
) -> Result<Json<WorkspaceBody>, ApiError> {
    let input = app::ProfileInput {
        name: r.name,
        phone: r.phone,
        industry: r.industry,
        website: r.website,
        logo_url: r.logo_url,
    };
    Ok(Json(s.app.update_workspace(&p, input).await?.into()))
}

/// A member of the workspace.
#[derive(Serialize, ToSchema)]
pub struct MemberBody {
    user_id: String,
    email: String,
    name: String,
    #[schema(value_type = String, example = "member")]
    role: Role,
    joined_at: i64,
}

impl From<store::Member> for MemberBody {
    fn from(m: store::Member) -> Self {
        Self {
            user_id: m.user_id.to_string(),
            email: m.email,
            name: m.name,
            role: m.role,
            joined_at: m.joined_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MembersBody {
    data: Vec<MemberBody>,
}

/// The workspace's members
#[utoipa::path(get, path = "/api/v1/workspace/members", tag = "workspace", security(("bearer" = [])), responses((status = 200, body = MembersBody)))]
async fn list_members(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<MembersBody>, ApiError> {
    Ok(Json(MembersBody { data: s.app.members(&p).await?.into_iter().map(Into::into).collect() }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    #[schema(value_type = String, example = "admin")]
    role: Role,
}

/// Change a member's role (the last owner cannot be demoted)
#[utoipa::path(patch, path = "/api/v1/workspace/members/{user_id}", tag = "workspace", security(("bearer" = [])), request_body = RoleRequest,
    params(("user_id" = String, Path)), responses((status = 200, body = MemberBody), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn change_role(
    State(s): State<AppState>,
    Auth(p): Auth,
    ClientIp(ip): ClientIp,
    Path(user_id): Path<String>,
    JsonBody(r): JsonBody<RoleRequest>,
) -> Result<Json<MemberBody>, ApiError> {
    let user = path_id(&user_id, "member", UserId::parse)?;
    Ok(Json(s.app.change_member_role(&p, user, r.role, ip).await?.into()))
}

/// Remove a member (the last owner cannot be removed)
#[utoipa::path(delete, path = "/api/v1/workspace/members/{user_id}", tag = "workspace", security(("bearer" = [])),
    params(("user_id" = String, Path)), responses((status = 204), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn remove_member(
    State(s): State<AppState>,
    Auth(p): Auth,
    ClientIp(ip): ClientIp,
    Path(user_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user = path_id(&user_id, "member", UserId::parse)?;
    s.app.remove_member(&p, user, ip).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    email: String,
    #[schema(value_type = String, example = "member")]
    role: Role,
}

/// A pending invitation.
#[derive(Serialize, ToSchema)]
pub struct InviteBody {
    id: String,
    email: String,
    #[schema(value_type = String)]
    role: Role,
    invited_by: String,
    expires_at: i64,
    created_at: i64,
}

impl From<store::Invite> for InviteBody {
    fn from(i: store::Invite) -> Self {
        Self {
            id: i.id.to_string(),
            email: i.email,
            role: i.role,
            invited_by: i.invited_by.to_string(),
            expires_at: i.expires_at,
            created_at: i.created_at,
        }
    }
}

/// Invite someone by email (owners and admins)
///
/// Emails a single-use link valid for 7 days.
#[utoipa::path(post, path = "/api/v1/workspace/invites", tag = "workspace", security(("bearer" = [])), request_body = InviteRequest,
    responses((status = 201, body = InviteBody), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn create_invite(
    State(s): State<AppState>,
    Auth(p): Auth,
    ClientIp(ip): ClientIp,
    JsonBody(r): JsonBody<InviteRequest>,
) -> Result<(StatusCode, Json<InviteBody>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.app.invite(&p, &r.email, r.role, ip).await?.into())))
}

#[derive(Serialize, ToSchema)]
pub struct InvitesBody {
    data: Vec<InviteBody>,
}

/// Pending invites (owners and admins)
#[utoipa::path(get, path = "/api/v1/workspace/invites", tag = "workspace", security(("bearer" = [])), responses((status = 200, body = InvitesBody)))]
async fn list_invites(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<InvitesBody>, ApiError> {
    Ok(Json(InvitesBody {
        data: s.app.pending_invites(&p).await?.into_iter().map(Into::into).collect(),
    }))
}

/// Revoke a pending invite
#[utoipa::path(delete, path = "/api/v1/workspace/invites/{invite_id}", tag = "workspace", security(("bearer" = [])),
    params(("invite_id" = String, Path)), responses((status = 204), (status = 404, body = crate::error::Problem)))]
async fn revoke_invite(
    State(s): State<AppState>,
    Auth(p): Auth,
    ClientIp(ip): ClientIp,
    Path(invite_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&invite_id, "invite", InviteId::parse)?;
    s.app.revoke_invite(&p, id, ip).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accepting as a new user: name and password. A signed-in user sends `{}`.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct AcceptInviteRequest {
    name: Option<String>,
    password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AcceptedBody {
    workspace_id: String,
    user_id: String,
    #[schema(value_type = String)]
    role: Role,
}

/// Accept an invite
///
/// A signed-in user (Bearer access token) joins with their account, if the invite was sent to
/// their email. Without a token, `name` and `password` create the account.
#[utoipa::path(post, path = "/api/v1/invites/{token}/accept", tag = "workspace", request_body = AcceptInviteRequest,
    params(("token" = String, Path)), responses((status = 200, body = AcceptedBody), (status = 401, description = "A bearer token was sent and is not valid", body = crate::error::Problem), (status = 402, description = "The workspace's plan has no seat left for another member (`plan_limit_reached`, `limit`: `seats`)", body = crate::error::Problem), (status = 403, description = "Invites are accepted by people, not API keys", body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn accept_invite(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    MaybeUser(user): MaybeUser,
    Path(token): Path<String>,
    JsonBody(r): JsonBody<AcceptInviteRequest>,
) -> Result<Json<AcceptedBody>, ApiError> {
    let input = match user {
        Some(u) => app::InviteAcceptInput::ExistingUser(u.user_id),
        None => app::InviteAcceptInput::NewUser {
            name: r.name.unwrap_or_default(),
            password: r.password.unwrap_or_default(),
        },
    };
    let (invite, user_id) = s.app.accept_invite(&token, input, ip).await?;
    Ok(Json(AcceptedBody {
        workspace_id: invite.workspace_id.to_string(),
        user_id: user_id.to_string(),
        role: invite.role,
    }))
}
