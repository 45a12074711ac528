-- Chat conversations exported to the CRM (package chat).
--
-- Conversation content is client data: speaker names, message text and the
-- captured fields are sealed (AES-GCM, bound to the conversation) and
-- deleted after a successful export plus the org's retention period. What
-- stays is operational: states, times, counts and the export log.

-- Export settings per org: the JSON settings (no secrets), the CRM
-- private key sealed, and the keyed hash of the public widget token.
CREATE TABLE chat_settings (
    org_id            TEXT PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
    settings          TEXT NOT NULL DEFAULT '{}',
    sealed_key        BYTEA,
    widget_token_hash BYTEA,
    updated_by        TEXT NOT NULL DEFAULT '',
    updated_at        BIGINT NOT NULL
);
CREATE UNIQUE INDEX chat_settings_widget ON chat_settings (widget_token_hash) WHERE widget_token_hash IS NOT NULL;

-- state: open, pending (export queued or running), held (CRM offline),
-- exported, skipped, failed. round counts export requests (close,
-- re-export); the export job of another round does nothing.
CREATE TABLE chat_conversations (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id             TEXT,
    source              TEXT NOT NULL DEFAULT 'api',
    state               TEXT NOT NULL,
    round               INTEGER NOT NULL DEFAULT 0,
    message_count       INTEGER NOT NULL DEFAULT 0,
    sealed_fields       BYTEA,
    visitor_secret_hash BYTEA,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    closed_at           BIGINT,
    exported_at         BIGINT,
    purge_after         BIGINT,
    purged_at           BIGINT
);
CREATE INDEX chat_conversations_org ON chat_conversations (org_id, created_at);
CREATE INDEX chat_conversations_purge ON chat_conversations (purge_after) WHERE purge_after IS NOT NULL AND purged_at IS NULL;

-- One row per message; the speaker's name and the text are sealed.
CREATE TABLE chat_messages (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES chat_conversations(id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    speaker         TEXT NOT NULL,
    sealed          BYTEA NOT NULL,
    at              BIGINT NOT NULL,
    UNIQUE (conversation_id, seq)
);

-- The export log: one row per export round, kept after the content is
-- purged. It holds CRM ids and reasons, never conversation content.
CREATE TABLE chat_exports (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    conversation_id TEXT NOT NULL REFERENCES chat_conversations(id) ON DELETE CASCADE,
    round           INTEGER NOT NULL,
    status          TEXT NOT NULL,
    reason          TEXT NOT NULL DEFAULT '',
    note            TEXT NOT NULL DEFAULT '',
    contact_id      TEXT NOT NULL DEFAULT '',
    contact_action  TEXT NOT NULL DEFAULT '',
    task_ids        TEXT NOT NULL DEFAULT '[]',
    attempts        INTEGER NOT NULL DEFAULT 0,
    requested_by    TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    UNIQUE (conversation_id, round)
);
CREATE INDEX chat_exports_org ON chat_exports (org_id, created_at);
