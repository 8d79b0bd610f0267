-- One dedupe key for messages: a messageId counts once per person (the message's userId, else its
-- anonymousId), whichever write key sent it, as the engine counts a messageId once per lead. The
-- table is rebuilt (SQLite cannot drop the old UNIQUE (write_key, message_id) constraint); of
-- copies sent through several write keys the earliest event (then the first stored) is kept.
CREATE TABLE events_new (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    write_key    TEXT    NOT NULL,
    message_id   TEXT    NOT NULL,
    person       TEXT    NOT NULL,
    lead_id      TEXT,
    anonymous_id TEXT,
    group_id     TEXT,
    event_type   TEXT    NOT NULL,
    at           INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    body         TEXT    NOT NULL,
    UNIQUE (person, message_id)
);
INSERT INTO events_new (seq, write_key, message_id, person, lead_id, anonymous_id, group_id, event_type, at,
                        received_at, body)
SELECT seq, write_key, message_id, person, lead_id, anonymous_id, group_id, event_type, at, received_at, body
FROM (
    SELECT *, COALESCE(lead_id, anonymous_id, '') AS person,
           ROW_NUMBER() OVER (PARTITION BY COALESCE(lead_id, anonymous_id, ''), message_id ORDER BY at, seq) AS copy
    FROM events
)
WHERE copy = 1;
DELETE FROM unreadable_events WHERE seq NOT IN (SELECT seq FROM events_new);
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_lead ON events (lead_id);
CREATE INDEX events_anonymous ON events (anonymous_id) WHERE anonymous_id IS NOT NULL;
CREATE INDEX events_group ON events (group_id) WHERE group_id IS NOT NULL;
