-- Live human handoff. A conversation is answered by the bot until it is handed to a person:
-- `handoff_state` moves bot -> waiting (queued for an operator) -> human (one operator claimed
-- it; the bot stays silent) -> bot (returned) or closed. The conversation row carries the
-- state because every chat turn reads that row anyway: no extra query on the hot path.
-- A handoff row is one such episode (status waiting -> human -> returned | closed; rows from
-- before this migration keep requested/delivered), with the operator who claimed it.
-- Operators' messages are ordinary messages (role `human_agent`) with their `author`.
ALTER TABLE conversations ADD COLUMN handoff_state TEXT NOT NULL DEFAULT 'bot';
ALTER TABLE handoffs ADD COLUMN assignee_id TEXT;
ALTER TABLE handoffs ADD COLUMN assignee_name TEXT;
ALTER TABLE messages ADD COLUMN author TEXT;
-- The inbox (open handoffs of a workspace) and the queue position (waiting ones before).
CREATE INDEX handoffs_by_status ON handoffs (workspace_id, status, id);
CREATE INDEX handoffs_by_conversation ON handoffs (conversation_id, id);

-- handoff_events: every transition (requested, claimed, returned, closed), operator message
-- and internal note of a handoff, with who (`actor_kind` agent | user | key | customer, its
-- id and name) and when. Notes live only here: customers never see them.
CREATE TABLE handoff_events (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    handoff_id       TEXT NOT NULL REFERENCES handoffs(id) ON DELETE CASCADE,
    conversation_id  TEXT,
    kind             TEXT NOT NULL,
    from_state       TEXT,
    to_state         TEXT,
    actor_kind       TEXT NOT NULL,
    actor_id         TEXT,
    actor_name       TEXT,
    body             TEXT,
    message_id       TEXT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX handoff_events_by_handoff ON handoff_events (handoff_id, id);
