-- Feedback-loop complaints are a kind of their own (issue #12).
ALTER TABLE inbound_messages DROP CONSTRAINT inbound_messages_kind_check;
ALTER TABLE inbound_messages ADD CONSTRAINT inbound_messages_kind_check
    CHECK (kind IN ('reply', 'auto_reply', 'bounce', 'complaint', 'decline', 'bulk', 'unmatched',
                    'own', 'skipped'));

-- Every change to a creator's standing that a message caused (a decline, an opt-out, a
-- complaint), and every undoing of one, so an operator can see and reverse it.
CREATE TABLE creator_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    creator_id  bigint NOT NULL REFERENCES creators (id) ON DELETE CASCADE,
    campaign_id bigint REFERENCES campaigns (id),
    inbound_id  bigint REFERENCES inbound_messages (id),
    -- declined: from one campaign; opted_out: from all mail; complained: marked as spam;
    -- undeclined: an operator reversed the message's effect; revived: a human message came
    -- from an address whose outreach had bounced.
    kind        text NOT NULL
                CHECK (kind IN ('declined', 'opted_out', 'complained', 'undeclined', 'revived')),
    reason      text NOT NULL,
    actor       text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX creator_events_creator_idx ON creator_events (creator_id, at);
CREATE INDEX creator_events_inbound_idx ON creator_events (inbound_id);
