-- Operational tables: never a readable recipient number or message body.
CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    settings    TEXT NOT NULL DEFAULT '{}',
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    name          TEXT NOT NULL,
    permissions   TEXT NOT NULL DEFAULT '[]',
    crm_user_id   TEXT,
    password_hash TEXT,
    operator      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    UNIQUE (org_id, email)
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    secret_hash  BLOB NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_keys_org ON api_keys (org_id);

CREATE TABLE gateways (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    provider      TEXT NOT NULL,
    number        TEXT NOT NULL,
    number_type   TEXT NOT NULL,
    rate          DOUBLE PRECISION NOT NULL,
    rate_unit     TEXT NOT NULL,
    keywords      TEXT NOT NULL,
    help_text     TEXT NOT NULL,
    opt_out_reply TEXT NOT NULL,
    opt_in_reply  TEXT NOT NULL,
    sandbox       BOOLEAN NOT NULL DEFAULT FALSE,
    -- provider settings and credentials, sealed as one JSON document
    sealed_config BLOB NOT NULL,
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (org_id, provider, number)
);

-- Shared send pacing: the next free send slot of each gateway, so several
-- processes never exceed its rate together.
CREATE TABLE gateway_pacing (
    gateway_id TEXT PRIMARY KEY REFERENCES gateways(id) ON DELETE CASCADE,
    next_at    BIGINT NOT NULL
);

CREATE TABLE batches (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    gateway_id  TEXT NOT NULL REFERENCES gateways(id),
    created_by  TEXT NOT NULL,
    total       INTEGER NOT NULL,
    excluded    TEXT NOT NULL DEFAULT '[]',
    created_at  BIGINT NOT NULL
);
CREATE INDEX batches_org ON batches (org_id, created_at);

CREATE TABLE messages (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    gateway_id          TEXT NOT NULL REFERENCES gateways(id),
    direction           TEXT NOT NULL,
    status              TEXT NOT NULL,
    status_rank         INTEGER NOT NULL,
    debug               TEXT NOT NULL DEFAULT '',
    error_code          TEXT NOT NULL DEFAULT '',
    segments            INTEGER NOT NULL DEFAULT 1,
    provider_message_id TEXT,
    batch_id            TEXT,
    record_id           TEXT,
    crm_message_id      TEXT,
    owner_id            TEXT,
    created_by_id       TEXT,
    phone_hash          BLOB NOT NULL,
    idempotency_key     TEXT,
    source              TEXT NOT NULL DEFAULT '',
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    sent_at             BIGINT,
    delivered_at        BIGINT,
    failed_at           BIGINT,
    received_at         BIGINT,
    -- CRM write-back state: version counts changes, crm_version the last
    -- change written; a lease keeps two writers off the same row.
    version             INTEGER NOT NULL DEFAULT 1,
    crm_version         INTEGER NOT NULL DEFAULT 0,
    crm_lease_until     BIGINT,
    crm_error           TEXT NOT NULL DEFAULT '',
    read_at             BIGINT
);
CREATE UNIQUE INDEX messages_idempotency ON messages (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX messages_incoming_pid ON messages (gateway_id, provider_message_id) WHERE direction = 'incoming' AND provider_message_id IS NOT NULL;
CREATE INDEX messages_outgoing_pid ON messages (gateway_id, provider_message_id) WHERE direction = 'outgoing' AND provider_message_id IS NOT NULL;
CREATE INDEX messages_phone ON messages (org_id, phone_hash, gateway_id, created_at);
CREATE INDEX messages_record ON messages (org_id, record_id, created_at) WHERE record_id IS NOT NULL;
CREATE INDEX messages_batch ON messages (batch_id, status) WHERE batch_id IS NOT NULL;
CREATE INDEX messages_crm_pending ON messages (org_id, updated_at) WHERE version > crm_version;
CREATE INDEX messages_org_created ON messages (org_id, created_at);

-- Message content in transit, sealed with AES-GCM; deleted once the message
-- has been sent and written to the CRM.
CREATE TABLE message_contents (
    message_id TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    org_id     TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX message_contents_created ON message_contents (created_at);

-- Status reports that arrived before the send that they report on was
-- recorded (receipts racing the submit answer).
CREATE TABLE unmatched_statuses (
    gateway_id          TEXT NOT NULL,
    provider_message_id TEXT NOT NULL,
    status              TEXT NOT NULL,
    error_code          TEXT NOT NULL DEFAULT '',
    debug               TEXT NOT NULL DEFAULT '',
    opted_out           BOOLEAN NOT NULL DEFAULT FALSE,
    at                  BIGINT NOT NULL,
    PRIMARY KEY (gateway_id, provider_message_id, status)
);
CREATE INDEX unmatched_statuses_at ON unmatched_statuses (at);

CREATE TABLE subscriptions (
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    gateway_id  TEXT NOT NULL REFERENCES gateways(id) ON DELETE CASCADE,
    phone_hash  BLOB NOT NULL,
    status      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    via         TEXT NOT NULL,
    by_keyword  BOOLEAN NOT NULL DEFAULT FALSE,
    updated_by  TEXT,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (gateway_id, phone_hash)
);
CREATE INDEX subscriptions_phone ON subscriptions (org_id, phone_hash);

CREATE TABLE subscription_events (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    gateway_id  TEXT NOT NULL,
    phone_hash  BLOB NOT NULL,
    status      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    via         TEXT NOT NULL,
    user_id     TEXT,
    at          BIGINT NOT NULL
);
CREATE INDEX subscription_events_phone ON subscription_events (org_id, phone_hash, at);

-- CRM connections (Salesforce): tokens sealed.
CREATE TABLE crm_connections (
    org_id         TEXT PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
    sealed         BLOB NOT NULL,
    offline        BOOLEAN NOT NULL DEFAULT FALSE,
    offline_reason TEXT NOT NULL DEFAULT '',
    updated_at     BIGINT NOT NULL
);

CREATE TABLE health_checks (
    id      TEXT PRIMARY KEY,
    org_id  TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    ok      BOOLEAN NOT NULL,
    report  TEXT NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX health_checks_org ON health_checks (org_id, at);

-- Built-in CRM: client data, kept apart from the operational tables above.
CREATE TABLE crm_contacts (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    first_name  TEXT NOT NULL DEFAULT '',
    last_name   TEXT NOT NULL DEFAULT '',
    email       TEXT NOT NULL DEFAULT '',
    phone       TEXT NOT NULL DEFAULT '',
    owner_id    TEXT NOT NULL DEFAULT '',
    opt_out     BOOLEAN NOT NULL DEFAULT FALSE,
    fields      TEXT NOT NULL DEFAULT '{}',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX crm_contacts_phone ON crm_contacts (org_id, phone);
CREATE INDEX crm_contacts_email ON crm_contacts (org_id, email);

CREATE TABLE crm_messages (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    message_id          TEXT NOT NULL UNIQUE,
    record_id           TEXT NOT NULL DEFAULT '',
    direction           TEXT NOT NULL,
    status              TEXT NOT NULL,
    debug               TEXT NOT NULL DEFAULT '',
    body                TEXT NOT NULL DEFAULT '',
    phone               TEXT NOT NULL DEFAULT '',
    media_urls          TEXT NOT NULL DEFAULT '[]',
    gateway_id          TEXT NOT NULL DEFAULT '',
    gateway_number      TEXT NOT NULL DEFAULT '',
    owner_id            TEXT NOT NULL DEFAULT '',
    created_by_id       TEXT NOT NULL DEFAULT '',
    segments            INTEGER NOT NULL DEFAULT 1,
    provider_message_id TEXT NOT NULL DEFAULT '',
    batch_id            TEXT NOT NULL DEFAULT '',
    created_at          BIGINT NOT NULL,
    status_at           BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX crm_messages_record ON crm_messages (org_id, record_id, created_at);
CREATE INDEX crm_messages_phone ON crm_messages (org_id, phone, created_at);

CREATE TABLE crm_tasks (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    who_id        TEXT NOT NULL,
    owner_id      TEXT NOT NULL DEFAULT '',
    subject       TEXT NOT NULL,
    status        TEXT NOT NULL,
    activity_date TEXT NOT NULL,
    description   TEXT NOT NULL,
    external_id   TEXT,
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX crm_tasks_external ON crm_tasks (org_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX crm_tasks_who ON crm_tasks (org_id, who_id);
