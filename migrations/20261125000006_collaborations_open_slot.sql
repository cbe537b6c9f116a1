-- Whether a collaboration holds the one open slot of its creator and campaign, said once:
-- the unique index below and every query for "the open collaboration" use this column, so
-- the rule cannot drift between them.
ALTER TABLE collaborations ADD COLUMN holds_open_slot boolean NOT NULL
    GENERATED ALWAYS AS (status NOT IN ('completed', 'cancelled') AND NOT allow_duplicate) STORED;
DROP INDEX collaborations_one_open;
CREATE UNIQUE INDEX collaborations_one_open ON collaborations (creator_id, campaign_id)
    WHERE holds_open_slot;
