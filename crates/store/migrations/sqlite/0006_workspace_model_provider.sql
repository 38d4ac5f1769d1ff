-- A workspace's own model provider ("bring your own key"): used for that workspace's runs
-- instead of the server-wide one. The API key is sealed by the vault (envelope encryption,
-- bound to the workspace) and never returned; `key_last4` is what the API shows.
CREATE TABLE workspace_model_providers (
    workspace_id     TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
    provider         TEXT NOT NULL,
    base_url         TEXT,
    model            TEXT NOT NULL,
    api_key_sealed   TEXT NOT NULL,
    key_last4        TEXT NOT NULL,
    updated_by       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
