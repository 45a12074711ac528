-- The CRM write-back looks for urgent changes (incoming messages whose CRM
-- record is still to be created) at every gathering step; without an index
-- of their own, finding that there are none meant reading every pending
-- change of the org.
CREATE INDEX messages_crm_urgent ON messages (org_id, updated_at) WHERE direction = 'incoming' AND crm_message_id IS NULL;

-- While an org is sending, its Queued messages wait to be sent before they
-- are written to the CRM: the write-back reads the other pending changes
-- here rather than skip over a bulk send's queue.
CREATE INDEX messages_crm_pending_sent ON messages (org_id, updated_at) WHERE version > crm_version AND status <> 'Queued';
