-- Each lead's fold state under the model of its stored score (`model_version`), written with the
-- score: ingest applies new events to it instead of re-reading the lead's whole history.
ALTER TABLE leads ADD COLUMN state BLOB;
