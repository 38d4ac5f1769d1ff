-- The credits ledger: append-only, one row per movement of a workspace's credits. `kind` is
-- `allowance` (the plan's monthly credits, once per UTC month: `reference` = `allowance:YYYY-MM`),
-- `grant` (an operator's), `top_up` (bought) or `spend` (`action` = `chat_message`,
-- `tool_call`, `document_upload`; `quantity` actions for `amount` credits, written in batches).
-- `amount` is positive for credits in and negative for spends; the balance is the sum, read
-- once per workspace into memory and kept there. `reference` makes a movement idempotent.
CREATE TABLE credit_ledger (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    amount        BIGINT NOT NULL,
    action        TEXT,
    quantity      BIGINT NOT NULL DEFAULT 1,
    reference     TEXT,
    note          TEXT NOT NULL DEFAULT '',
    actor         TEXT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX credit_ledger_by_workspace ON credit_ledger (workspace_id, id);
CREATE UNIQUE INDEX credit_ledger_reference ON credit_ledger (workspace_id, reference);
