-- Web UI: sign-in sessions, failed sign-in attempts, and the inbox's index.

-- A session is found by the SHA-256 of the random token in the browser's
-- cookie; the token itself is never stored.
CREATE TABLE sessions (
    token_hash   BYTEA PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_last_seen ON sessions (last_seen_at);

-- Failed sign-ins, keyed by a keyed hash of the email address or client
-- address, for rate limiting across processes.
CREATE TABLE login_failures (
    id        TEXT PRIMARY KEY,
    key_hash  BYTEA NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key_hash, at);
CREATE INDEX login_failures_at ON login_failures (at);

-- The inbox lists unread incoming messages of an org, newest first.
CREATE INDEX messages_unread ON messages (org_id, created_at) WHERE direction = 'incoming' AND read_at IS NULL;
