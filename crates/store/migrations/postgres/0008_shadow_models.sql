-- Shadow models: versions scored live beside the active one (stored per lead and version; no
-- webhooks, history or CRM writes). `state` is the lead's fold state under that version.
ALTER TABLE models ADD COLUMN shadow BIGINT NOT NULL DEFAULT 0;
CREATE TABLE shadow_scores (
    model_version  BIGINT           NOT NULL,
    lead_id        TEXT             NOT NULL,
    scored_at      BIGINT           NOT NULL,
    scores         TEXT             NOT NULL,
    total          DOUBLE PRECISION NOT NULL,
    stage          TEXT             NOT NULL,
    grade          TEXT,
    probability    DOUBLE PRECISION,
    contributions  TEXT             NOT NULL,
    next_change_at BIGINT,
    state          BYTEA,
    PRIMARY KEY (model_version, lead_id)
);
CREATE INDEX shadow_scores_lead ON shadow_scores (lead_id);
CREATE INDEX shadow_scores_due ON shadow_scores (next_change_at) WHERE next_change_at IS NOT NULL;
-- Notes in a lead's history beside its stage changes (sales' "contacted"), with the stage and
-- total at the time.
ALTER TABLE history ADD COLUMN note TEXT;
