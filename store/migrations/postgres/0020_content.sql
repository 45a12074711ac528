-- Templates, tracked links and SMS forms.

-- SMS templates: the org's own texts with merge fields; no personal data.
CREATE TABLE templates (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

-- Tracked links: per-org settings.
CREATE TABLE link_settings (
    org_id     TEXT PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
    enabled    BOOLEAN NOT NULL DEFAULT FALSE,
    mode       TEXT NOT NULL,
    base_url   TEXT NOT NULL DEFAULT '',
    min_length INTEGER NOT NULL,
    updated_by TEXT NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL
);

-- Short links: the code and the org's target URL (the org's own URLs, not
-- personal data). Basic links carry the send (message or batch) they belong
-- to; per-recipient links the one message.
CREATE TABLE links (
    code          TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    url           TEXT NOT NULL,
    mode          TEXT NOT NULL,
    message_id    TEXT,
    batch_id      TEXT,
    clicks        BIGINT NOT NULL DEFAULT 0,
    bot_clicks    BIGINT NOT NULL DEFAULT 0,
    last_click_at BIGINT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX links_message ON links (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX links_batch ON links (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX links_org ON links (org_id, created_at);

-- Clicks by people on per-recipient links, waiting to be written to the CRM.
-- The IP address is sealed and erased once the click is in the CRM.
CREATE TABLE link_clicks (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    code        TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    at          BIGINT NOT NULL,
    sealed_ip   BYTEA,
    domain      TEXT NOT NULL DEFAULT '',
    browser     TEXT NOT NULL DEFAULT '',
    written_at  BIGINT,
    lease_until BIGINT,
    crm_id      TEXT,
    crm_error   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX link_clicks_pending ON link_clicks (org_id, at) WHERE written_at IS NULL;
CREATE INDEX link_clicks_code ON link_clicks (code);

-- SMS forms: the current definition, every version sessions may still run
-- on, and the query codes that start a form by text.
CREATE TABLE forms (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    definition TEXT NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE UNIQUE INDEX forms_name ON forms (org_id, name) WHERE deleted_at IS NULL;

CREATE TABLE form_versions (
    form_id    TEXT NOT NULL REFERENCES forms(id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (form_id, version)
);

CREATE TABLE form_query_codes (
    gateway_id TEXT NOT NULL REFERENCES gateways(id) ON DELETE CASCADE,
    keyword    TEXT NOT NULL,
    org_id     TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    form_id    TEXT NOT NULL REFERENCES forms(id) ON DELETE CASCADE,
    PRIMARY KEY (gateway_id, keyword)
);
CREATE INDEX form_query_codes_form ON form_query_codes (form_id);

-- Form sessions: one run of a form with one phone on one gateway. The phone
-- is a keyed hash, and sealed only to find the CRM record at write-back.
CREATE TABLE form_sessions (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    form_id         TEXT NOT NULL,
    form_version    INTEGER NOT NULL,
    gateway_id      TEXT NOT NULL,
    phone_hash      BYTEA NOT NULL,
    sealed_phone    BYTEA,
    record_id       TEXT NOT NULL DEFAULT '',
    message_id      TEXT NOT NULL DEFAULT '',
    owner_id        TEXT NOT NULL DEFAULT '',
    created_by_id   TEXT NOT NULL DEFAULT '',
    started_by      TEXT NOT NULL,
    question        TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    detail          TEXT NOT NULL DEFAULT '',
    started_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    ended_at        BIGINT,
    version         INTEGER NOT NULL DEFAULT 1,
    crm_version     INTEGER NOT NULL DEFAULT 0,
    crm_lease_until BIGINT,
    crm_record_id   TEXT,
    crm_error       TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX form_sessions_open ON form_sessions (gateway_id, phone_hash) WHERE status = 'open';
CREATE INDEX form_sessions_expiry ON form_sessions (expires_at) WHERE status = 'open';
CREATE INDEX form_sessions_crm_pending ON form_sessions (org_id, updated_at) WHERE version > crm_version;
CREATE INDEX form_sessions_form ON form_sessions (form_id, status);

-- Answers, sealed; deleted once their session has ended and is in the CRM.
CREATE TABLE form_answers (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES form_sessions(id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    question   TEXT NOT NULL,
    sealed     BYTEA NOT NULL,
    at         BIGINT NOT NULL
);
CREATE INDEX form_answers_session ON form_answers (session_id, seq);

-- Built-in CRM: client data, kept apart from the operational tables above.
CREATE TABLE crm_link_clicks (
    id             TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    click_id       TEXT NOT NULL UNIQUE,
    message_id     TEXT NOT NULL DEFAULT '',
    crm_message_id TEXT NOT NULL DEFAULT '',
    record_id      TEXT NOT NULL DEFAULT '',
    url            TEXT NOT NULL,
    short_url      TEXT NOT NULL DEFAULT '',
    ip             TEXT NOT NULL DEFAULT '',
    domain         TEXT NOT NULL DEFAULT '',
    browser        TEXT NOT NULL DEFAULT '',
    clicked_at     BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX crm_link_clicks_record ON crm_link_clicks (org_id, record_id, clicked_at);

CREATE TABLE crm_form_responses (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    session_id    TEXT NOT NULL UNIQUE,
    form_id       TEXT NOT NULL,
    form_name     TEXT NOT NULL,
    record_id     TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL,
    owner_id      TEXT NOT NULL DEFAULT '',
    created_by_id TEXT NOT NULL DEFAULT '',
    answers       TEXT NOT NULL DEFAULT '[]',
    started_at    BIGINT NOT NULL,
    ended_at      BIGINT,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX crm_form_responses_record ON crm_form_responses (org_id, record_id);
