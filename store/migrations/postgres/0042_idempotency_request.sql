-- An idempotency key remembers the (keyed) hash of the request it came
-- with: reusing the key with a different request is refused.
ALTER TABLE messages ADD COLUMN request_hash BYTEA;
ALTER TABLE batches ADD COLUMN request_hash BYTEA;
