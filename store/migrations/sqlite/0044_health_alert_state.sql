-- What an org's admins were last alerted about: the sorted names of the
-- failing CRM health-check items, comma-separated ('' when the check passes).
-- Checks that run at once (on demand, the periodic job, other processes)
-- claim a change here, so that only one of them alerts.
CREATE TABLE health_alert_state (
    org_id  TEXT PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
    failing TEXT NOT NULL
);
