-- Scheduled re-sync of URL sources. `last_synced_at` is when the last re-sync of a knowledge
-- base's URL sources was queued (or its last import); the scheduler finds bases whose
-- `sync_frequency` interval has passed since then (or since creation when never synced) and
-- moves it forward in the same transaction that queues the crawl, so a restart neither loses
-- nor repeats a sync. `crawl_roots` (JSON `[{"url", "hops"}]`) are the URLs imported and how
-- many link levels were followed from each: a re-sync crawls them again, so pages added to
-- the site since are found too.
ALTER TABLE knowledge_bases ADD COLUMN last_synced_at BIGINT;
ALTER TABLE knowledge_bases ADD COLUMN crawl_roots TEXT;
