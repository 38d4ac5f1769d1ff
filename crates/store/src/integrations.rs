//! Integrations: connected accounts (credentials sealed by the vault before they reach here),
//! OAuth2 flows in progress (single-use states), and agents' links to connections.

use domain::time::Millis;
use domain::{AgentId, ConnectionId, UserId, WorkspaceId};
use serde::Serialize;

use crate::db::on_db;
use crate::{Result, Store, StoreError, TenantScope};

/// A connected account as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Connection {
    #[sqlx(try_from = "String")]
    pub id: ConnectionId,
    #[sqlx(try_from = "String")]
    pub workspace_id: WorkspaceId,
    pub provider: String,
    pub name: String,
    pub auth_type: String,
    pub account_id: Option<String>,
    pub account_email: Option<String>,
    pub account_name: Option<String>,
    /// Granted scopes, space separated.
    pub scopes: String,
    /// `active`, `expired` (the refresh failed: reconnect) or `revoked`.
    pub status: String,
    /// The credentials sealed by the vault; never serialised.
    #[serde(skip)]
    pub credentials_sealed: String,
    /// When the access token expires (epoch ms), for OAuth2 connections.
    pub expires_at: Option<Millis>,
    pub connected_by: Option<String>,
    pub connected_at: Millis,
    pub last_used_at: Option<Millis>,
    pub last_error: Option<String>,
    pub updated_at: Millis,
}

/// A connection to record.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub id: ConnectionId,
    pub provider: String,
    pub name: String,
    pub auth_type: String,
    pub account_id: Option<String>,
    pub account_email: Option<String>,
    pub account_name: Option<String>,
    pub scopes: String,
    pub credentials_sealed: String,
    pub expires_at: Option<Millis>,
    pub connected_by: Option<UserId>,
}

/// An authorization-code flow in progress.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OAuthState {
    #[sqlx(try_from = "String")]
    pub workspace_id: WorkspaceId,
    #[sqlx(try_from = "String")]
    pub user_id: UserId,
    pub provider: String,
    pub verifier_sealed: String,
    pub expires_at: Millis,
}

/// An agent's use of a connection.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AgentIntegration {
    #[sqlx(try_from = "String")]
    pub agent_id: AgentId,
    #[sqlx(try_from = "String")]
    pub connection_id: ConnectionId,
    pub purpose: String,
    /// JSON object (field mappings, defaults).
    pub config: String,
    pub created_at: Millis,
}

macro_rules! connection_columns {
    () => {
        "id, workspace_id, provider, name, auth_type, account_id, account_email, account_name, scopes, status,
         credentials_sealed, expires_at, connected_by, connected_at, last_used_at, last_error, updated_at"
    };
}

impl Store {
    /// Records the start of an authorization-code flow (`state_hash` is the SHA-256 of the state).
    pub async fn create_oauth_state(
        &self,
        scope: &TenantScope,
        state_hash: &str,
        user: UserId,
        provider: &str,
        verifier_sealed: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<()> {
        on_db!(write self, pool => sqlx::query(
            "INSERT INTO oauth_states (state_hash, workspace_id, user_id, provider, verifier_sealed, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(state_hash).bind(scope.workspace_id().to_string()).bind(user.to_string()).bind(provider)
            .bind(verifier_sealed).bind(now).bind(expires_at)
            .execute(pool).await.map(|_| ()))?;
        // Flows nobody finished are of no use once expired.
        on_db!(write self, pool => sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
            .bind(now - 24 * 3600 * 1000).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Uses up a state: the first caller within its lifetime gets it, every later one (and any
    /// caller after it expired) gets `NotFound`. Not workspace-scoped: the state is what tells
    /// which workspace the flow belongs to; the caller checks it against the signed-in person.
    pub async fn take_oauth_state(&self, state_hash: &str, now: Millis) -> Result<OAuthState> {
        on_db!(write self, pool => sqlx::query_as(
            "UPDATE oauth_states SET used_at = $2 WHERE state_hash = $1 AND used_at IS NULL AND expires_at > $2
             RETURNING workspace_id, user_id, provider, verifier_sealed, expires_at")
            .bind(state_hash).bind(now)
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    pub async fn create_connection(
        &self,
        scope: &TenantScope,
        c: &NewConnection,
        now: Millis,
    ) -> Result<Connection> {
        on_db!(write self, pool => sqlx::query_as(concat!(
            "INSERT INTO connections (id, workspace_id, provider, name, auth_type, account_id, account_email, account_name,
               scopes, status, credentials_sealed, expires_at, connected_by, connected_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', $10, $11, $12, $13, $13) RETURNING ", connection_columns!()))
            .bind(c.id.to_string()).bind(scope.workspace_id().to_string()).bind(&c.provider).bind(&c.name)
            .bind(&c.auth_type).bind(c.account_id.as_deref()).bind(c.account_email.as_deref()).bind(c.account_name.as_deref())
            .bind(&c.scopes).bind(&c.credentials_sealed).bind(c.expires_at).bind(c.connected_by.map(|u| u.to_string()))
            .bind(now)
            .fetch_one(pool).await).map_err(Into::into)
    }

    /// The workspace's connections, oldest first.
    pub async fn list_connections(&self, scope: &TenantScope) -> Result<Vec<Connection>> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", connection_columns!(),
            " FROM connections WHERE workspace_id = $1 ORDER BY id"))
            .bind(scope.workspace_id().to_string())
            .fetch_all(pool).await)
        .map_err(Into::into)
    }

    pub async fn get_connection(
        &self,
        scope: &TenantScope,
        id: ConnectionId,
    ) -> Result<Connection> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", connection_columns!(),
            " FROM connections WHERE id = $1 AND workspace_id = $2"))
            .bind(id.to_string()).bind(scope.workspace_id().to_string())
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    /// Takes the right to refresh a connection's token until `until`; `false` when another
    /// caller (here or in another process) holds it.
    pub async fn lease_connection_refresh(
        &self,
        scope: &TenantScope,
        id: ConnectionId,
        now: Millis,
        until: Millis,
    ) -> Result<bool> {
        let n = on_db!(write self, pool => sqlx::query(
            "UPDATE connections SET refresh_lease_until = $3
             WHERE id = $1 AND workspace_id = $2 AND (refresh_lease_until IS NULL OR refresh_lease_until < $4)")
            .bind(id.to_string()).bind(scope.workspace_id().to_string()).bind(until).bind(now)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Stores refreshed credentials, marks the connection active and gives the lease back.
    pub async fn store_refreshed_credentials(
        &self,
        scope: &TenantScope,
        id: ConnectionId,
        credentials_sealed: &str,
        expires_at: Option<Millis>,
        now: Millis,
    ) -> Result<()> {
        let n = on_db!(write self, pool => sqlx::query(
            "UPDATE connections SET credentials_sealed = $3, expires_at = $4, status = 'active', last_error = NULL,
               refresh_lease_until = NULL, updated_at = $5 WHERE id = $1 AND workspace_id = $2")
            .bind(id.to_string()).bind(scope.workspace_id().to_string()).bind(credentials_sealed).bind(expires_at).bind(now)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Sets a connection's status and last error, giving any refresh lease back.
    pub async fn set_connection_status(
        &self,
        scope: &TenantScope,
        id: ConnectionId,
        status: &str,
        last_error: Option<&str>,
        now: Millis,
    ) -> Result<()> {
        let n = on_db!(write self, pool => sqlx::query(
            "UPDATE connections SET status = $3, last_error = $4, refresh_lease_until = NULL, updated_at = $5
             WHERE id = $1 AND workspace_id = $2")
            .bind(id.to_string()).bind(scope.workspace_id().to_string()).bind(status).bind(last_error).bind(now)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Records that a connection was just used (and whether the call failed).
    pub async fn touch_connection(
        &self,
        scope: &TenantScope,
        id: ConnectionId,
        last_error: Option<&str>,
        now: Millis,
    ) -> Result<()> {
        on_db!(write self, pool => sqlx::query(
            "UPDATE connections SET last_used_at = $3, last_error = $4 WHERE id = $1 AND workspace_id = $2")
            .bind(id.to_string()).bind(scope.workspace_id().to_string()).bind(now).bind(last_error)
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Deletes a connection and its agent links (`NotFound` if it is not the workspace's).
    pub async fn delete_connection(&self, scope: &TenantScope, id: ConnectionId) -> Result<()> {
        let n = on_db!(write self, pool => sqlx::query("DELETE FROM connections WHERE id = $1 AND workspace_id = $2")
            .bind(id.to_string()).bind(scope.workspace_id().to_string())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Links one of the workspace's agents to one of its connections (or updates the link).
    pub async fn link_agent_connection(
        &self,
        scope: &TenantScope,
        agent: AgentId,
        connection: ConnectionId,
        purpose: &str,
        config: &str,
        now: Millis,
    ) -> Result<AgentIntegration> {
        on_db!(write self, pool => sqlx::query_as(
            "INSERT INTO agent_integrations (agent_id, connection_id, workspace_id, purpose, config, created_at)
             SELECT a.id, c.id, a.workspace_id, $4, $5, $6 FROM agents a JOIN connections c ON c.workspace_id = a.workspace_id
             WHERE a.id = $1 AND c.id = $2 AND a.workspace_id = $3
             ON CONFLICT (agent_id, connection_id) DO UPDATE SET purpose = excluded.purpose, config = excluded.config
             RETURNING agent_id, connection_id, purpose, config, created_at")
            .bind(agent.to_string()).bind(connection.to_string()).bind(scope.workspace_id().to_string())
            .bind(purpose).bind(config).bind(now)
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    pub async fn unlink_agent_connection(
        &self,
        scope: &TenantScope,
        agent: AgentId,
        connection: ConnectionId,
    ) -> Result<()> {
        let n = on_db!(write self, pool => sqlx::query(
            "DELETE FROM agent_integrations WHERE agent_id = $1 AND connection_id = $2 AND workspace_id = $3")
            .bind(agent.to_string()).bind(connection.to_string()).bind(scope.workspace_id().to_string())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// An agent's links, oldest first.
    pub async fn agent_integrations(
        &self,
        scope: &TenantScope,
        agent: AgentId,
    ) -> Result<Vec<AgentIntegration>> {
        on_db!(read self, pool => sqlx::query_as(
            "SELECT agent_id, connection_id, purpose, config, created_at FROM agent_integrations
             WHERE agent_id = $1 AND workspace_id = $2 ORDER BY created_at, connection_id")
            .bind(agent.to_string()).bind(scope.workspace_id().to_string())
            .fetch_all(pool).await)
        .map_err(Into::into)
    }

    /// Agents linked to a connection (their cached snapshots change when it goes).
    pub async fn agents_using_connection(
        &self,
        scope: &TenantScope,
        connection: ConnectionId,
    ) -> Result<Vec<AgentId>> {
        let rows: Vec<(String,)> = on_db!(read self, pool => sqlx::query_as(
            "SELECT agent_id FROM agent_integrations WHERE connection_id = $1 AND workspace_id = $2")
            .bind(connection.to_string()).bind(scope.workspace_id().to_string())
            .fetch_all(pool).await)?;
        Ok(rows.into_iter().filter_map(|(id,)| AgentId::parse(&id).ok()).collect())
    }
}

impl Store {
    /// The workspace a connection belongs to, for the service-secret internal API only (the
    /// caller proved the platform's own secret, not a workspace's).
    pub async fn find_connection_workspace(&self, id: ConnectionId) -> Result<Option<WorkspaceId>> {
        let row: Option<(String,)> = on_db!(read self, pool => sqlx::query_as("SELECT workspace_id FROM connections WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(pool).await)?;
        Ok(row.and_then(|(ws,)| WorkspaceId::parse(&ws).ok()))
    }
}
