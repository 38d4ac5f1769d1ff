-- Conversations and messages, run traces and their steps, pending actions awaiting a user's
-- confirmation, handoffs to humans, and daily usage counters.

-- conversations: a thread with one agent, optionally for one end user (widget and API callers).
-- Deleting is soft (`deleted_at`): a deleted conversation is hidden from every read.
CREATE TABLE conversations (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    agent_id         TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    end_user_id      TEXT,
    channel          TEXT NOT NULL,
    title            TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    last_message_at  BIGINT,
    deleted_at       BIGINT
);
CREATE INDEX conversations_by_workspace ON conversations (workspace_id, id);
CREATE INDEX conversations_by_agent ON conversations (agent_id, id);

-- messages: one turn. `attachments`, `citations` and `tool_calls` are JSON arrays; `run_id`
-- names the run that produced an assistant message.
CREATE TABLE messages (
    id               TEXT PRIMARY KEY,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    workspace_id     TEXT NOT NULL,
    role             TEXT NOT NULL,
    content          TEXT NOT NULL,
    attachments      TEXT NOT NULL DEFAULT '[]',
    citations        TEXT NOT NULL DEFAULT '[]',
    tool_calls       TEXT NOT NULL DEFAULT '[]',
    run_id           TEXT,
    tokens           BIGINT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, id);

-- runs: one execution of an agent (a trace). `usage` is JSON (tokens in/out, tool calls).
CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    agent_id         TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    conversation_id  TEXT,
    status           TEXT NOT NULL,
    model            TEXT,
    started_at       BIGINT NOT NULL,
    finished_at      BIGINT,
    usage            TEXT NOT NULL DEFAULT '{}',
    error            TEXT
);
CREATE INDEX runs_by_workspace ON runs (workspace_id, id);
CREATE INDEX runs_by_agent ON runs (agent_id, id);
CREATE INDEX runs_by_start ON runs (started_at);

-- run_steps: the ordered steps of a run (`seq` from 1): model calls, tool calls, routing
-- decisions and errors, with their input, a summary of their output, latency and tokens.
CREATE TABLE run_steps (
    run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    input       TEXT NOT NULL DEFAULT '{}',
    output      TEXT NOT NULL DEFAULT '{}',
    latency_ms  BIGINT NOT NULL DEFAULT 0,
    tokens_in   BIGINT NOT NULL DEFAULT 0,
    tokens_out  BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- pending_actions: a side-effecting tool call waiting for the user's approval; decided once
-- (pending -> approved | rejected | expired).
CREATE TABLE pending_actions (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    run_id           TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    conversation_id  TEXT,
    tool_name        TEXT NOT NULL,
    arguments        TEXT NOT NULL DEFAULT '{}',
    status           TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    decided_at       BIGINT,
    decided_by       TEXT
);
CREATE INDEX pending_actions_by_conversation ON pending_actions (conversation_id, status, id);
CREATE INDEX pending_actions_by_run ON pending_actions (run_id);

-- handoffs: a request that a human take over a conversation (requested -> delivered -> closed).
CREATE TABLE handoffs (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    agent_id         TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    conversation_id  TEXT,
    reason           TEXT NOT NULL,
    status           TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX handoffs_by_workspace ON handoffs (workspace_id, id);

-- usage_daily: metered quantities per workspace, agent ('' when none), UTC day (YYYY-MM-DD)
-- and metric (messages, tokens_in, tokens_out, tool_calls, ...). Kept when agents are
-- deleted: billing needs the history.
CREATE TABLE usage_daily (
    workspace_id  TEXT NOT NULL,
    agent_id      TEXT NOT NULL DEFAULT '',
    day           TEXT NOT NULL,
    metric        TEXT NOT NULL,
    quantity      BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, agent_id, day, metric)
);
CREATE INDEX usage_daily_by_day ON usage_daily (workspace_id, day);
