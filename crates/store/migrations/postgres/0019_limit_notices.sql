-- Plan-limit warnings sent: one row per workspace, limit, period and threshold (80 or 100 %),
-- so the admins are mailed once, whichever process sees the crossing first.
CREATE TABLE limit_notices (
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    limit_name    TEXT NOT NULL,
    period        TEXT NOT NULL,
    threshold     INTEGER NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, limit_name, period, threshold)
);
