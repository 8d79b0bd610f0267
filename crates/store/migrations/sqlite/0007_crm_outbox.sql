-- The CRM write-back outbox ([[sync]]): one row per sync and lead, coalesced. A score change marks
-- the lead's row pending (and bumps its version); the sender writes the lead's latest values, so
-- a lead whose score changed a hundred times before it was sent is written once.
CREATE TABLE crm_outbox (
    sync            TEXT    NOT NULL,
    lead_id         TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    version         INTEGER  NOT NULL,
    changed_at      INTEGER  NOT NULL,
    next_attempt_at INTEGER  NOT NULL,
    attempts        INTEGER  NOT NULL DEFAULT 0,
    last_attempt_at INTEGER,
    last_error      TEXT,
    sent_at         INTEGER,
    sent            TEXT,
    PRIMARY KEY (sync, lead_id)
);
CREATE INDEX crm_outbox_due ON crm_outbox (sync, status, next_attempt_at);
