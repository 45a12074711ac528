-- Salesforce connections: compare-and-swap on the refresh token (by hash)
-- so a rotated token is never lost between processes.
ALTER TABLE crm_connections ADD COLUMN refresh_hash BLOB;

-- OAuth authorization requests in flight (state → PKCE verifier, sealed).
CREATE TABLE oauth_states (
    state_hash BLOB PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Which process holds a connection-oriented gateway (SMPP bind) at a time.
CREATE TABLE listener_leases (
    gateway_id TEXT PRIMARY KEY REFERENCES gateways(id) ON DELETE CASCADE,
    holder     TEXT NOT NULL,
    until      BIGINT NOT NULL
);
