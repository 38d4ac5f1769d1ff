//! Users, email tokens (verification and password reset), sessions and refresh tokens.

use domain::time::Millis;
use domain::{Email, SessionId, UserId};
use serde::Serialize;

use crate::db::on_db;
use crate::workspaces::NewWorkspace;
use crate::{Result, Store, StoreError};

/// A person who signs in. The password hash never leaves the store in serialised form.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct User {
    #[sqlx(try_from = "String")]
    pub id: UserId,
    pub email: String,
    pub name: String,
    #[serde(skip)]
    pub password_hash: String,
    pub email_verified_at: Option<Millis>,
    pub is_operator: bool,
    pub created_at: Millis,
}

impl User {
    pub fn is_verified(&self) -> bool {
        self.email_verified_at.is_some()
    }
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub email: Email,
    pub name: String,
    pub password_hash: String,
    pub verified: bool,
    pub is_operator: bool,
}

/// What an emailed single-use token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailPurpose {
    Verify,
    Reset,
}

impl EmailPurpose {
    fn as_str(self) -> &'static str {
        match self {
            EmailPurpose::Verify => "verify",
            EmailPurpose::Reset => "reset",
        }
    }
}

/// A signed-in session: one refresh-token family.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    #[sqlx(try_from = "String")]
    pub id: SessionId,
    #[sqlx(try_from = "String")]
    pub user_id: UserId,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub revoked_at: Option<Millis>,
}

/// The result of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was current; it is now used and `new_hash` is the session's current token.
    Rotated { session_id: SessionId, user_id: UserId },
    /// The token had already been rotated: someone replayed it, so the whole family (session)
    /// has been revoked.
    Reused { session_id: SessionId },
    /// Unknown, expired, or its session is revoked.
    Invalid,
}

/// session id, used_at, expires_at, user id, session revoked_at, session expires_at
type RefreshRow = (String, Option<Millis>, Millis, String, Option<Millis>, Millis);

macro_rules! user_columns {
    () => {
        "id, email, name, password_hash, email_verified_at, is_operator, created_at"
    };
}

impl Store {
    /// Creates a user and, if given, their first workspace with them as owner — atomically.
    pub async fn create_user(
        &self,
        user: &NewUser,
        workspace: Option<&NewWorkspace>,
        now: Millis,
    ) -> Result<User> {
        let verified_at = user.verified.then_some(now);
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            let row: User = sqlx::query_as(concat!("INSERT INTO users (id, email, name, password_hash, email_verified_at, is_operator, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING ", user_columns!()))
                .bind(user.id.to_string())
                .bind(user.email.as_str())
                .bind(&user.name)
                .bind(&user.password_hash)
                .bind(verified_at)
                .bind(user.is_operator)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            if let Some(ws) = workspace {
                sqlx::query(
                    "INSERT INTO workspaces (id, name, plan, is_active, created_at, updated_at)
                     VALUES ($1, $2, $3, TRUE, $4, $4)")
                    .bind(ws.id.to_string())
                    .bind(&ws.name)
                    .bind(&ws.plan)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO memberships (workspace_id, user_id, role, invited_by, joined_at)
                     VALUES ($1, $2, 'owner', NULL, $3)")
                    .bind(ws.id.to_string())
                    .bind(user.id.to_string())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(row)
        })
    }

    pub async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", user_columns!(), " FROM users WHERE email = $1"))
            .bind(email.as_str())
            .fetch_optional(pool)
            .await)
        .map_err(Into::into)
    }

    pub async fn get_user(&self, id: UserId) -> Result<User> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(pool)
            .await)?
        .ok_or(StoreError::NotFound)
    }

    pub async fn mark_email_verified(&self, id: UserId, now: Millis) -> Result<()> {
        on_db!(write self, pool => sqlx::query(
            "UPDATE users SET email_verified_at = COALESCE(email_verified_at, $2), updated_at = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(now)
            .execute(pool)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Sets a new password hash and revokes every session of the user except `keep`.
    pub async fn set_password(
        &self,
        id: UserId,
        hash: &str,
        keep: Option<SessionId>,
        now: Millis,
    ) -> Result<()> {
        let keep = keep.map(|s| s.to_string()).unwrap_or_default();
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
                .bind(id.to_string())
                .bind(hash)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if updated == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(
                "UPDATE sessions SET revoked_at = $3, revoked_reason = 'password_changed'
                 WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL")
                .bind(id.to_string())
                .bind(&keep)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Stores an emailed token's digest. Earlier unused tokens of the same purpose are voided.
    pub async fn insert_email_token(
        &self,
        user: UserId,
        purpose: EmailPurpose,
        digest: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<()> {
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE email_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL")
                .bind(user.to_string())
                .bind(purpose.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO email_tokens (token_hash, user_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(digest)
                .bind(user.to_string())
                .bind(purpose.as_str())
                .bind(now)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Uses an emailed token once: returns its user if the token exists, has this purpose, is
    /// unused and unexpired; marks it used in the same statement.
    pub async fn consume_email_token(
        &self,
        purpose: EmailPurpose,
        digest: &str,
        now: Millis,
    ) -> Result<Option<UserId>> {
        let row: Option<(String,)> = on_db!(write self, pool => sqlx::query_as(
            "UPDATE email_tokens SET used_at = $3
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3
             RETURNING user_id")
            .bind(digest)
            .bind(purpose.as_str())
            .bind(now)
            .fetch_optional(pool)
            .await)?;
        row.map(|(id,)| UserId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    /// Starts a session with its first refresh token.
    pub async fn create_session(
        &self,
        id: SessionId,
        user: UserId,
        refresh_digest: &str,
        ip: Option<&str>,
        user_agent: Option<&str>,
        expires_at: Millis,
        now: Millis,
    ) -> Result<()> {
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("INSERT INTO sessions (id, user_id, ip, user_agent, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(id.to_string())
                .bind(user.to_string())
                .bind(ip)
                .bind(user_agent)
                .bind(now)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(refresh_digest)
                .bind(id.to_string())
                .bind(now)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Rotates a refresh token: the presented one is marked used and `new_digest` becomes the
    /// session's current token. Presenting an already-used token revokes the session.
    pub async fn rotate_refresh_token(
        &self,
        digest: &str,
        new_digest: &str,
        new_expires_at: Millis,
        now: Millis,
    ) -> Result<RefreshOutcome> {
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            let row: Option<RefreshRow> = sqlx::query_as(
                "SELECT r.session_id, r.used_at, r.expires_at, s.user_id, s.revoked_at, s.expires_at
                 FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = $1")
                .bind(digest)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((sid, used_at, expires_at, uid, revoked_at, session_expires)) = row else {
                return Ok(RefreshOutcome::Invalid);
            };
            let session_id = SessionId::parse(&sid).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let user_id = UserId::parse(&uid).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if revoked_at.is_some() || expires_at <= now || session_expires <= now {
                return Ok(RefreshOutcome::Invalid);
            }
            if used_at.is_some() {
                sqlx::query("UPDATE sessions SET revoked_at = $2, revoked_reason = 'refresh_token_reuse' WHERE id = $1")
                    .bind(&sid)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(RefreshOutcome::Reused { session_id });
            }
            sqlx::query("UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1")
                .bind(digest)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(new_digest)
                .bind(&sid)
                .bind(now)
                .bind(new_expires_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(RefreshOutcome::Rotated { session_id, user_id })
        })
    }

    pub async fn get_session(&self, id: SessionId) -> Result<Option<Session>> {
        on_db!(read self, pool => sqlx::query_as(
            "SELECT id, user_id, created_at, expires_at, revoked_at FROM sessions WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(pool)
            .await)
        .map_err(Into::into)
    }

    /// Revokes one session (logout). Revoking twice is harmless.
    pub async fn revoke_session(&self, id: SessionId, reason: &str, now: Millis) -> Result<()> {
        on_db!(write self, pool => sqlx::query(
            "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id.to_string())
            .bind(now)
            .bind(reason)
            .execute(pool)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Sessions of a user revoked since `since` (to keep access-token caches honest).
    pub async fn revoked_sessions_since(&self, since: Millis) -> Result<Vec<SessionId>> {
        let rows: Vec<(String,)> = on_db!(read self, pool => sqlx::query_as(
            "SELECT id FROM sessions WHERE revoked_at IS NOT NULL AND revoked_at >= $1")
            .bind(since)
            .fetch_all(pool)
            .await)?;
        rows.into_iter()
            .map(|(id,)| SessionId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect()
    }
}
