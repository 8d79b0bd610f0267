-- Leadscore schema, SQLite dialect. Times are epoch milliseconds (INTEGER); JSON is TEXT.
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    write_key    TEXT    NOT NULL,
    message_id   TEXT    NOT NULL,
    lead_id      TEXT,
    anonymous_id TEXT,
    group_id     TEXT,
    event_type   TEXT    NOT NULL,
    at           INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    body         TEXT    NOT NULL,
    UNIQUE (write_key, message_id)
);
CREATE INDEX events_lead ON events (lead_id);
CREATE INDEX events_anonymous ON events (anonymous_id) WHERE anonymous_id IS NOT NULL;
CREATE INDEX events_group ON events (group_id) WHERE group_id IS NOT NULL;

CREATE TABLE links (
    anonymous_id TEXT    NOT NULL,
    lead_id      TEXT    NOT NULL,
    at           INTEGER NOT NULL,
    PRIMARY KEY (anonymous_id, lead_id)
);
CREATE INDEX links_lead ON links (lead_id);

CREATE TABLE leads (
    id             TEXT PRIMARY KEY,
    traits         TEXT    NOT NULL DEFAULT '{}',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    scored_at      INTEGER,
    model_version  INTEGER,
    scores         TEXT    NOT NULL DEFAULT '{}',
    total          REAL    NOT NULL DEFAULT 0,
    stage          TEXT    NOT NULL DEFAULT 'lead',
    grade          TEXT,
    probability    REAL,
    contributions  TEXT    NOT NULL DEFAULT '[]',
    current_traits TEXT    NOT NULL DEFAULT '{}',
    account_id     TEXT,
    next_change_at INTEGER
);
CREATE INDEX leads_total ON leads (total, id);
CREATE INDEX leads_updated ON leads (updated_at, id);
CREATE INDEX leads_stage ON leads (stage, total);
CREATE INDEX leads_account ON leads (account_id) WHERE account_id IS NOT NULL;
CREATE INDEX leads_due ON leads (next_change_at) WHERE next_change_at IS NOT NULL;

CREATE TABLE outcomes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    lead_id     TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL
);
CREATE INDEX outcomes_lead ON outcomes (lead_id);

CREATE TABLE history (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    lead_id TEXT    NOT NULL,
    at      INTEGER NOT NULL,
    stage   TEXT    NOT NULL,
    total   REAL    NOT NULL
);
CREATE INDEX history_lead ON history (lead_id, at);

CREATE TABLE models (
    version      INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    activated_at INTEGER,
    active       INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    lead_id         TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_attempt_at INTEGER,
    last_error      TEXT,
    delivered_at    INTEGER
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_lead ON deliveries (lead_id);
