-- The write-back asks at every gathering step whether an org is sending (an
-- outgoing message became Sent within the gather window). Under a bulk
-- send's backlog the in-flight index ordered by change time held tens of
-- thousands of Queued messages ahead of the first Sent one; keyed by status
-- first, the question is one index seek.
DROP INDEX messages_in_flight;
CREATE INDEX messages_in_flight ON messages (org_id, status, updated_at) WHERE direction = 'outgoing' AND status IN ('Queued', 'Sent');
