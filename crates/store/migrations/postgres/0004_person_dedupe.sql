-- One dedupe key for messages: a messageId counts once per person (the message's userId, else its
-- anonymousId), whichever write key sent it, as the engine counts a messageId once per lead. Of
-- copies sent through several write keys the earliest event (then the first stored) is kept.
ALTER TABLE events ADD COLUMN person TEXT;
UPDATE events SET person = COALESCE(lead_id, anonymous_id, '');
ALTER TABLE events ALTER COLUMN person SET NOT NULL;
DELETE FROM events WHERE seq IN (
    SELECT seq FROM (
        SELECT seq, ROW_NUMBER() OVER (PARTITION BY person, message_id ORDER BY at, seq) AS copy FROM events
    ) copies
    WHERE copy > 1
);
DELETE FROM unreadable_events WHERE seq NOT IN (SELECT seq FROM events);
ALTER TABLE events DROP CONSTRAINT events_write_key_message_id_key;
ALTER TABLE events ADD CONSTRAINT events_person_message_id_key UNIQUE (person, message_id);
