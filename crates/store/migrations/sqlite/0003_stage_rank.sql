-- Where a lead comes in a "call now" list, from the active model's stage order (highest stage
-- first): set by the server when it scores a lead and, for every lead, when a model becomes active.
ALTER TABLE leads ADD COLUMN stage_rank INTEGER;
