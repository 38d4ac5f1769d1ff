-- Billing with Stripe: a workspace's subscription, the webhook events already applied (replay
-- protection), and usage records for metered billing.
--
-- `subscriptions` is one row per workspace (the hub seed's Subscription): Stripe's customer and
-- subscription ids, the plan it pays for, its status (`active`, `trialing`, `past_due`,
-- `canceled`, `unpaid`, `incomplete`, …), the current period and `cancel_at_period_end`.
-- `last_event_at` is the `created` time (epoch ms) of the newest subscription event applied, so
-- an older event delivered late does not undo a newer one. `past_due_since` is when the first
-- failed payment of the current run of failures arrived.
CREATE TABLE subscriptions (
    workspace_id            TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
    stripe_customer_id      TEXT,
    stripe_subscription_id  TEXT,
    plan                    TEXT NOT NULL,
    status                  TEXT NOT NULL,
    current_period_start    BIGINT,
    current_period_end      BIGINT,
    cancel_at_period_end    BOOLEAN NOT NULL DEFAULT FALSE,
    past_due_since          BIGINT,
    last_event_at           BIGINT NOT NULL DEFAULT 0,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);
CREATE UNIQUE INDEX subscriptions_customer ON subscriptions (stripe_customer_id);

-- Every Stripe event applied, by Stripe's event id: a replayed or redelivered event is
-- recognised and not applied twice. Written in the transaction that applies the event.
CREATE TABLE stripe_events (
    id           TEXT PRIMARY KEY,
    type         TEXT NOT NULL,
    workspace_id TEXT,
    received_at  BIGINT NOT NULL
);

-- usage_records: metered usage to report to Stripe (the hub seed's UsageRecord), written in the
-- transaction that adds the same quantities to usage_daily, for workspaces with a Stripe
-- customer. `reported_to_stripe` is when Stripe accepted it (NULL: not yet); the record's id is
-- the idempotency key and meter-event identifier, so a retried report is applied once.
CREATE TABLE usage_records (
    id                  TEXT PRIMARY KEY,
    workspace_id        TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    metric              TEXT NOT NULL,
    quantity            BIGINT NOT NULL,
    period_start        TEXT NOT NULL,
    period_end          TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    reported_to_stripe  BIGINT
);
CREATE INDEX usage_records_unreported ON usage_records (created_at) WHERE reported_to_stripe IS NULL;
