-- Bulk sends accept an idempotency key: a retried request returns the
-- first request's result instead of sending again.
ALTER TABLE batches ADD COLUMN idempotency_key TEXT;
ALTER TABLE batches ADD COLUMN result TEXT NOT NULL DEFAULT '{}';
CREATE UNIQUE INDEX batches_idempotency ON batches (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
