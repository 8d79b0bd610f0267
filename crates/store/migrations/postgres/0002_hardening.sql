-- Hardening: unreadable stored messages, dashboard sessions shared by every process, the
-- readiness probe's write, and a per-receiver index for webhook dispatch.
CREATE TABLE unreadable_events (
    seq      BIGINT PRIMARY KEY,
    reason   TEXT    NOT NULL,
    found_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_digest    TEXT PRIMARY KEY,
    role            TEXT    NOT NULL,
    key_fingerprint TEXT    NOT NULL,
    csrf            TEXT    NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE readiness (
    id         BIGINT PRIMARY KEY,
    checked_at BIGINT NOT NULL
);

CREATE INDEX deliveries_receiver ON deliveries (url, status, next_attempt_at);
