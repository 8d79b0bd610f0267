-- A lead's messages are found through the dedupe key's index (person, message_id): its own by
-- `person` (the userId) and those of its anonymous ids by `person` (the anonymousId). Two indexes
-- fewer to write for every message.
DROP INDEX events_lead;
DROP INDEX events_anonymous;
