-- The CRM write-back lets an org's changes gather while it has outgoing
-- messages in flight (Queued or Sent, changed lately): it looks for them by
-- org and time of their last change.
CREATE INDEX messages_in_flight ON messages (org_id, updated_at) WHERE direction = 'outgoing' AND status IN ('Queued', 'Sent');
