-- A user may be limited to some gateways (a JSON list of gateway ids);
-- empty means every gateway. System Admins always have every gateway.
ALTER TABLE users ADD COLUMN gateway_ids TEXT NOT NULL DEFAULT '[]';
