-- Integrations: a workspace's connected accounts at outside providers, the OAuth2 flows in
-- progress, and which agents use which connection.
--
-- Credentials (OAuth2 tokens, API keys) are sealed by the vault (envelope encryption bound to
-- the workspace and the connection) and never stored in the clear. `refresh_lease_until` is the
-- row lease that makes a token refresh single-flight across processes.
CREATE TABLE connections (
    id                    TEXT PRIMARY KEY,
    workspace_id          TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    provider              TEXT NOT NULL,
    name                  TEXT NOT NULL,
    auth_type             TEXT NOT NULL,
    account_id            TEXT,
    account_email         TEXT,
    account_name          TEXT,
    scopes                TEXT NOT NULL DEFAULT '',
    status                TEXT NOT NULL,
    credentials_sealed    TEXT NOT NULL,
    expires_at            BIGINT,
    refresh_lease_until   BIGINT,
    connected_by          TEXT,
    connected_at          BIGINT NOT NULL,
    last_used_at          BIGINT,
    last_error            TEXT,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX connections_workspace ON connections (workspace_id, provider);

-- An authorization-code flow in progress: single use (`used_at`), bound to the person and the
-- workspace that started it, valid until `expires_at`. The state itself is only stored hashed;
-- the PKCE verifier is sealed.
CREATE TABLE oauth_states (
    state_hash       TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider         TEXT NOT NULL,
    verifier_sealed  TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    used_at          BIGINT
);

-- An agent's use of a connection: what for, and its settings (field mappings, defaults).
CREATE TABLE agent_integrations (
    agent_id       TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    connection_id  TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    workspace_id   TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    purpose        TEXT NOT NULL DEFAULT '',
    config         TEXT NOT NULL DEFAULT '{}',
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (agent_id, connection_id)
);
CREATE INDEX agent_integrations_connection ON agent_integrations (connection_id);
