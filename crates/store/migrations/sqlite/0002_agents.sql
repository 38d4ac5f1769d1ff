-- Agents (team members), their revisions, workspace and system templates, and onboarding
-- wizard sessions. JSON is stored as TEXT; times are epoch milliseconds; ids are prefixed text.

-- agents: a workspace's configured agent. `version` grows by one on every change (optimistic
-- concurrency); `public_id` is the unguessable handle the embeddable widget uses (not tenant
-- scoped, hence unique across workspaces); `system_prompt` is the rendered prompt.
CREATE TABLE agents (
    id                    TEXT PRIMARY KEY,
    workspace_id          TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    slug                  TEXT NOT NULL,
    display_name          TEXT NOT NULL,
    avatar                TEXT,
    role                  TEXT,
    tagline               TEXT,
    description           TEXT,
    template_slug         TEXT,
    enabled_capabilities  TEXT NOT NULL DEFAULT '[]',
    knowledge_base_ids    TEXT NOT NULL DEFAULT '[]',
    integrations          TEXT NOT NULL DEFAULT '{}',
    personality           TEXT NOT NULL DEFAULT '{}',
    behavior              TEXT NOT NULL DEFAULT '{}',
    config                TEXT NOT NULL DEFAULT '{}',
    routing_rules         TEXT NOT NULL DEFAULT '[]',
    model_override        TEXT,
    system_prompt         TEXT NOT NULL DEFAULT '',
    onboarding_answers    TEXT NOT NULL DEFAULT '{}',
    public_id             TEXT NOT NULL,
    is_active             BOOLEAN NOT NULL DEFAULT TRUE,
    version               BIGINT NOT NULL,
    created_by            TEXT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE UNIQUE INDEX agents_workspace_slug ON agents (workspace_id, slug);
CREATE UNIQUE INDEX agents_public_id ON agents (public_id);
CREATE INDEX agents_by_workspace ON agents (workspace_id, id);

-- agent_revisions: one row per version of an agent: the whole agent as JSON after the change,
-- the names of the fields that changed, and who changed them.
CREATE TABLE agent_revisions (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    agent_id        TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    version         BIGINT NOT NULL,
    snapshot        TEXT NOT NULL,
    changed_fields  TEXT NOT NULL DEFAULT '[]',
    actor_user_id   TEXT,
    created_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX agent_revisions_agent_version ON agent_revisions (agent_id, version);
CREATE INDEX agent_revisions_by_agent ON agent_revisions (agent_id, id);

-- templates: workspace-made templates (workspace_id set) and operator-managed system templates
-- (workspace_id NULL). The catalog's seeded templates are not stored; a row here with the same
-- slug overrides or extends them. `document` is the catalog's template as JSON.
CREATE TABLE templates (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT REFERENCES workspaces(id) ON DELETE CASCADE,
    slug          TEXT NOT NULL,
    document      TEXT NOT NULL,
    is_active     BOOLEAN NOT NULL DEFAULT TRUE,
    usage_count   BIGINT NOT NULL DEFAULT 0,
    created_by    TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
-- One slug per workspace, and one per system: NULL is not equal to NULL in a unique index,
-- so each case gets its own partial index.
CREATE UNIQUE INDEX templates_workspace_slug ON templates (workspace_id, slug) WHERE workspace_id IS NOT NULL;
CREATE UNIQUE INDEX templates_system_slug ON templates (slug) WHERE workspace_id IS NULL;

-- onboarding_sessions: one run through a template's onboarding wizard. `answers` is the flat
-- object of answers so far, `completed_steps` the step ids submitted; `agent_id` is set when
-- the session completes (in the same transaction that creates the agent).
CREATE TABLE onboarding_sessions (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL,
    template_slug    TEXT NOT NULL,
    status           TEXT NOT NULL,
    current_step     TEXT,
    answers          TEXT NOT NULL DEFAULT '{}',
    completed_steps  TEXT NOT NULL DEFAULT '[]',
    agent_id         TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX onboarding_sessions_by_workspace ON onboarding_sessions (workspace_id, id);
