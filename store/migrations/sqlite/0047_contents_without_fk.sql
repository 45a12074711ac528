-- Sealed content in transit is written with its message, in the same
-- transaction, and deleted by Switchboard itself (once sent and written to
-- the CRM, or by retention); messages are never deleted. The foreign key
-- checked every content row against its message, for a guarantee the code
-- already gives. SQLite drops a constraint by rebuilding the table.
CREATE TABLE message_contents_new (
    message_id TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    created_at BIGINT NOT NULL
);
INSERT INTO message_contents_new (message_id, org_id, sealed, created_at)
    SELECT message_id, org_id, sealed, created_at FROM message_contents;
DROP TABLE message_contents;
ALTER TABLE message_contents_new RENAME TO message_contents;
CREATE INDEX message_contents_created ON message_contents (created_at);
