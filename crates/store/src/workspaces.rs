//! Workspaces (tenants), their members and pending invites.

use domain::time::Millis;
use domain::{InviteId, Role, UserId, WorkspaceId};
use serde::Serialize;

use crate::db::on_db;
use crate::{Page, Result, Store, StoreError, TenantScope, clamp_limit};

/// A workspace: the business that owns agents, knowledge and keys.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Workspace {
    #[sqlx(try_from = "String")]
    pub id: WorkspaceId,
    pub name: String,
    pub phone: Option<String>,
    pub industry: Option<String>,
    pub website: Option<String>,
    pub logo_url: Option<String>,
    pub plan: String,
    pub is_active: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A workspace to create.
#[derive(Debug, Clone)]
pub struct NewWorkspace {
    pub id: WorkspaceId,
    pub name: String,
    pub plan: String,
}

/// A change to a workspace: `Some(None)` clears an optional field. `plan` is set by operators
/// only (the app decides who may).
#[derive(Debug, Clone, Default)]
pub struct WorkspacePatch {
    pub name: Option<String>,
    pub plan: Option<String>,
    pub phone: Option<Option<String>>,
    pub industry: Option<Option<String>>,
    pub website: Option<Option<String>>,
    pub logo_url: Option<Option<String>>,
}

/// A member of a workspace, with the person's details.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Member {
    #[sqlx(try_from = "String")]
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub joined_at: Millis,
}

/// One of a user's workspaces, with their role there.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct MembershipSummary {
    #[sqlx(try_from = "String")]
    pub workspace_id: WorkspaceId,
    pub workspace_name: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub joined_at: Millis,
}

/// An invitation to join a workspace.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Invite {
    #[sqlx(try_from = "String")]
    pub id: InviteId,
    #[sqlx(try_from = "String")]
    pub workspace_id: WorkspaceId,
    pub email: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    #[sqlx(try_from = "String")]
    pub invited_by: UserId,
    pub expires_at: Millis,
    pub accepted_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    pub created_at: Millis,
}

macro_rules! workspace_columns {
    () => {
        "id, name, phone, industry, website, logo_url, plan, is_active, created_at, updated_at"
    };
}
macro_rules! invite_columns {
    () => {
        "id, workspace_id, email, role, invited_by, expires_at, accepted_at, revoked_at, created_at"
    };
}

impl Store {
    pub async fn get_workspace(&self, scope: &TenantScope) -> Result<Workspace> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", workspace_columns!(), " FROM workspaces WHERE id = $1"))
            .bind(scope.workspace_id().to_string())
            .fetch_optional(pool)
            .await)?
        .ok_or(StoreError::NotFound)
    }

    pub async fn update_workspace(
        &self,
        scope: &TenantScope,
        patch: &WorkspacePatch,
        now: Millis,
    ) -> Result<Workspace> {
        let flag = |o: &Option<Option<String>>| o.is_some();
        let val = |o: &Option<Option<String>>| o.clone().flatten();
        on_db!(write self, pool => sqlx::query_as(concat!("UPDATE workspaces SET
                name = COALESCE($2, name),
                phone = CASE WHEN $3 THEN $4 ELSE phone END,
                industry = CASE WHEN $5 THEN $6 ELSE industry END,
                website = CASE WHEN $7 THEN $8 ELSE website END,
                logo_url = CASE WHEN $9 THEN $10 ELSE logo_url END,
                updated_at = $11,
                plan = COALESCE($12, plan)
             WHERE id = $1 RETURNING ", workspace_columns!()))
            .bind(scope.workspace_id().to_string())
            .bind(patch.name.as_deref())
            .bind(flag(&patch.phone)).bind(val(&patch.phone))
            .bind(flag(&patch.industry)).bind(val(&patch.industry))
            .bind(flag(&patch.website)).bind(val(&patch.website))
            .bind(flag(&patch.logo_url)).bind(val(&patch.logo_url))
            .bind(now)
            .bind(patch.plan.as_deref())
            .fetch_optional(pool)
            .await)?
        .ok_or(StoreError::NotFound)
    }

    /// The workspaces a user belongs to, in the order they joined.
    pub async fn memberships_of(&self, user: UserId) -> Result<Vec<MembershipSummary>> {
        on_db!(read self, pool => sqlx::query_as(
            "SELECT m.workspace_id, w.name AS workspace_name, m.role, m.joined_at
             FROM memberships m JOIN workspaces w ON w.id = m.workspace_id
             WHERE m.user_id = $1 AND w.is_active ORDER BY m.joined_at, m.workspace_id")
            .bind(user.to_string())
            .fetch_all(pool)
            .await)
        .map_err(Into::into)
    }

    pub async fn list_members(&self, scope: &TenantScope) -> Result<Vec<Member>> {
        on_db!(read self, pool => sqlx::query_as(
            "SELECT m.user_id, u.email, u.name, m.role, m.joined_at
             FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.workspace_id = $1 ORDER BY m.joined_at, m.user_id")
            .bind(scope.workspace_id().to_string())
            .fetch_all(pool)
            .await)
        .map_err(Into::into)
    }

    /// Changes a member's role; refuses to leave the workspace without an owner.
    pub async fn set_member_role(
        &self,
        scope: &TenantScope,
        user: UserId,
        role: Role,
        now: Millis,
    ) -> Result<Member> {
        let ws = scope.workspace_id().to_string();
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            // Touching the workspace row first serialises concurrent member changes on
            // PostgreSQL (row lock); SQLite has a single writer anyway.
            sqlx::query("UPDATE workspaces SET updated_at = $2 WHERE id = $1").bind(&ws).bind(now).execute(&mut *tx).await?;
            let current: Option<(String,)> = sqlx::query_as("SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2")
                .bind(&ws).bind(user.to_string()).fetch_optional(&mut *tx).await?;
            let Some((current,)) = current else { return Err(StoreError::NotFound) };
            if current == "owner" && role != Role::Owner {
                let (owners,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM memberships WHERE workspace_id = $1 AND role = 'owner'")
                    .bind(&ws).fetch_one(&mut *tx).await?;
                if owners <= 1 {
                    return Err(StoreError::LastOwner);
                }
            }
            sqlx::query("UPDATE memberships SET role = $3 WHERE workspace_id = $1 AND user_id = $2")
                .bind(&ws).bind(user.to_string()).bind(role.as_str()).execute(&mut *tx).await?;
            let member: Member = sqlx::query_as(
                "SELECT m.user_id, u.email, u.name, m.role, m.joined_at FROM memberships m JOIN users u ON u.id = m.user_id
                 WHERE m.workspace_id = $1 AND m.user_id = $2")
                .bind(&ws).bind(user.to_string()).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(member)
        })
    }

    /// Removes a member; refuses to remove the last owner.
    pub async fn remove_member(
        &self,
        scope: &TenantScope,
        user: UserId,
        now: Millis,
    ) -> Result<()> {
        let ws = scope.workspace_id().to_string();
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE workspaces SET updated_at = $2 WHERE id = $1").bind(&ws).bind(now).execute(&mut *tx).await?;
            let current: Option<(String,)> = sqlx::query_as("SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2")
                .bind(&ws).bind(user.to_string()).fetch_optional(&mut *tx).await?;
            let Some((current,)) = current else { return Err(StoreError::NotFound) };
            if current == "owner" {
                let (owners,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM memberships WHERE workspace_id = $1 AND role = 'owner'")
                    .bind(&ws).fetch_one(&mut *tx).await?;
                if owners <= 1 {
                    return Err(StoreError::LastOwner);
                }
            }
            sqlx::query("DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2")
                .bind(&ws).bind(user.to_string()).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Whether a user with this email is already a member of the workspace.
    pub async fn is_member_email(&self, scope: &TenantScope, email: &str) -> Result<bool> {
        let (n,): (i64,) = on_db!(read self, pool => sqlx::query_as(
            "SELECT COUNT(*) FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.workspace_id = $1 AND u.email = $2")
            .bind(scope.workspace_id().to_string())
            .bind(email)
            .fetch_one(pool)
            .await)?;
        Ok(n > 0)
    }

    /// Creates an invite; an earlier pending invite for the same email is revoked.
    pub async fn create_invite(
        &self,
        scope: &TenantScope,
        id: InviteId,
        email: &str,
        role: Role,
        token_digest: &str,
        invited_by: UserId,
        expires_at: Millis,
        now: Millis,
    ) -> Result<Invite> {
        let ws = scope.workspace_id().to_string();
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE invites SET revoked_at = $3 WHERE workspace_id = $1 AND email = $2 AND accepted_at IS NULL AND revoked_at IS NULL")
                .bind(&ws).bind(email).bind(now).execute(&mut *tx).await?;
            let invite: Invite = sqlx::query_as(concat!("INSERT INTO invites (id, workspace_id, email, role, token_hash, invited_by, expires_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ", invite_columns!()))
                .bind(id.to_string()).bind(&ws).bind(email).bind(role.as_str()).bind(token_digest)
                .bind(invited_by.to_string()).bind(expires_at).bind(now)
                .fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(invite)
        })
    }

    /// Pending (not accepted, not revoked, not expired) invites, newest first.
    pub async fn list_pending_invites(
        &self,
        scope: &TenantScope,
        now: Millis,
    ) -> Result<Vec<Invite>> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", invite_columns!(), " FROM invites WHERE workspace_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2 ORDER BY id DESC"))
            .bind(scope.workspace_id().to_string())
            .bind(now)
            .fetch_all(pool)
            .await)
        .map_err(Into::into)
    }

    /// The workspace's members and its pending invites, counted (the plan's seats).
    pub async fn count_seats(&self, scope: &TenantScope, now: Millis) -> Result<(i64, i64)> {
        on_db!(read self, pool => sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM memberships WHERE workspace_id = $1),
                    (SELECT COUNT(*) FROM invites WHERE workspace_id = $1 AND accepted_at IS NULL
                     AND revoked_at IS NULL AND expires_at > $2)")
            .bind(scope.workspace_id().to_string())
            .bind(now)
            .fetch_one(pool)
            .await)
        .map_err(Into::into)
    }

    pub async fn revoke_invite(
        &self,
        scope: &TenantScope,
        id: InviteId,
        now: Millis,
    ) -> Result<()> {
        let n = on_db!(write self, pool => sqlx::query(
            "UPDATE invites SET revoked_at = $3 WHERE id = $1 AND workspace_id = $2 AND accepted_at IS NULL AND revoked_at IS NULL")
            .bind(id.to_string())
            .bind(scope.workspace_id().to_string())
            .bind(now)
            .execute(pool)
            .await.map(|r| r.rows_affected()))?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Looks up an invite by its token digest (for accepting it; not tenant-scoped, the token
    /// is the authorization).
    pub async fn find_invite_by_token(&self, digest: &str) -> Result<Option<Invite>> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", invite_columns!(), " FROM invites WHERE token_hash = $1"))
            .bind(digest)
            .fetch_optional(pool)
            .await)
        .map_err(Into::into)
    }

    /// Accepts a pending invite for `user`: marks it used and adds the membership, atomically.
    /// Fails with `NotFound` if the invite is no longer pending, `Conflict("membership")` if
    /// the user is already a member.
    pub async fn accept_invite(&self, digest: &str, user: UserId, now: Millis) -> Result<Invite> {
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            let invite: Option<Invite> = sqlx::query_as(concat!("UPDATE invites SET accepted_at = $2 WHERE token_hash = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2
                 RETURNING ", invite_columns!()))
                .bind(digest).bind(now).fetch_optional(&mut *tx).await?;
            let Some(invite) = invite else { return Err(StoreError::NotFound) };
            sqlx::query("INSERT INTO memberships (workspace_id, user_id, role, invited_by, joined_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(invite.workspace_id.to_string()).bind(user.to_string()).bind(invite.role.as_str())
                .bind(invite.invited_by.to_string()).bind(now)
                .execute(&mut *tx).await.map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => StoreError::Conflict("membership"),
                    other => other,
                })?;
            tx.commit().await?;
            Ok(invite)
        })
    }

    /// Creates a workspace owned by `owner` (operators and tests; registration uses
    /// [`Store::create_user`]).
    pub async fn create_workspace(
        &self,
        ws: &NewWorkspace,
        owner: UserId,
        now: Millis,
    ) -> Result<Workspace> {
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            let row: Workspace = sqlx::query_as(concat!("INSERT INTO workspaces (id, name, plan, is_active, created_at, updated_at) VALUES ($1, $2, $3, TRUE, $4, $4) RETURNING ", workspace_columns!()))
                .bind(ws.id.to_string()).bind(&ws.name).bind(&ws.plan).bind(now)
                .fetch_one(&mut *tx).await?;
            sqlx::query("INSERT INTO memberships (workspace_id, user_id, role, invited_by, joined_at) VALUES ($1, $2, 'owner', NULL, $3)")
                .bind(ws.id.to_string()).bind(owner.to_string()).bind(now)
                .execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    /// All invites of a workspace page by page (including past ones), newest first.
    pub async fn list_invites(
        &self,
        scope: &TenantScope,
        cursor: Option<InviteId>,
        limit: Option<u32>,
    ) -> Result<Page<Invite>> {
        let limit = clamp_limit(limit);
        let cursor = cursor.map(|c| c.to_string());
        let mut rows: Vec<Invite> = on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", invite_columns!(), " FROM invites WHERE workspace_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"))
            .bind(scope.workspace_id().to_string()).bind(cursor).bind(limit + 1)
            .fetch_all(pool).await)?;
        Ok(crate::page(&mut rows, limit, |r| r.id.to_string()))
    }
}
