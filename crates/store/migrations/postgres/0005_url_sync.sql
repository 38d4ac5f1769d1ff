-- Scheduled re-sync of URL sources. `last_synced_at` is when the last re-sync of a knowledge
-- base's URL sources was queued (or its first import); the scheduler finds bases whose
-- `sync_frequency` interval has passed since then (or since creation when never synced) and
-- moves it forward in the same transaction that queues the crawl, so a restart neither loses
-- nor repeats a sync.
ALTER TABLE knowledge_bases ADD COLUMN last_synced_at BIGINT;
