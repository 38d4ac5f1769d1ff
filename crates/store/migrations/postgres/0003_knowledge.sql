-- Knowledge bases and their documents. Chunks live in the search index, not here; a document
-- row records where its file is, what its extracted text hashed to, and how ingestion went.

-- knowledge_bases: a workspace's collection of documents with its chunking and embedding
-- settings. `sync_frequency` (manual | daily | weekly) applies to URL sources.
CREATE TABLE knowledge_bases (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    description      TEXT,
    chunk_size       BIGINT NOT NULL,
    chunk_overlap    BIGINT NOT NULL,
    embedding        TEXT NOT NULL,
    sync_frequency   TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    last_indexed_at  BIGINT
);
CREATE INDEX knowledge_bases_by_workspace ON knowledge_bases (workspace_id, id);

-- documents: one uploaded file or fetched page. `status` is pending | processing | indexed |
-- failed (with `error`); `content_sha256` is the SHA-256 of the extracted text, unique within a
-- knowledge base so identical content is never indexed twice; `etag`/`last_modified` come from
-- the source URL's last fetch, for re-sync.
CREATE TABLE documents (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    kb_id           TEXT NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    title           TEXT NOT NULL,
    filename        TEXT,
    content_type    TEXT,
    size_bytes      BIGINT NOT NULL DEFAULT 0,
    source_url      TEXT,
    storage_key     TEXT,
    content_sha256  TEXT,
    status          TEXT NOT NULL,
    error           TEXT,
    chunk_count     BIGINT NOT NULL DEFAULT 0,
    etag            TEXT,
    last_modified   TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    indexed_at      BIGINT
);
CREATE INDEX documents_by_kb ON documents (kb_id, id);
CREATE INDEX documents_by_source_url ON documents (kb_id, source_url);
CREATE UNIQUE INDEX documents_kb_content_sha256 ON documents (kb_id, content_sha256) WHERE content_sha256 IS NOT NULL;
