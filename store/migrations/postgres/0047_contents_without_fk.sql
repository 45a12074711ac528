-- Sealed content in transit is written with its message, in the same
-- transaction, and deleted by Switchboard itself (once sent and written to
-- the CRM, or by retention); messages are never deleted. The foreign key
-- checked every content row against its message one row at a time, and
-- locked that message row to do so: a WAL record and a dirtied page per
-- message accepted, for a guarantee the code already gives.
ALTER TABLE message_contents DROP CONSTRAINT IF EXISTS message_contents_message_id_fkey;
