-- collabd schema. Every table the daemon writes to lives here; see README "Data model".

CREATE TYPE collab_status AS ENUM ('pending', 'negotiating', 'fulfilling', 'completed', 'cancelled');

CREATE TABLE campaigns (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CHECK (name <> ''),
    archived_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX campaigns_name_key ON campaigns (lower(name));

-- The Creator Pool.
CREATE TABLE creators (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL CHECK (name <> ''),
    platform        text NOT NULL CHECK (platform <> ''),
    handle          text NOT NULL CHECK (handle <> ''),
    tags            text[] NOT NULL DEFAULT '{}',
    -- Set when the creator asked to hear nothing more from any campaign.
    unsubscribed_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX creators_platform_handle_key ON creators (lower(platform), lower(handle));

-- Addresses are stored normalised (lower case, "+tag" removed) so lookups are exact.
CREATE TABLE creator_emails (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    creator_id bigint NOT NULL REFERENCES creators (id) ON DELETE CASCADE,
    address    text NOT NULL UNIQUE CHECK (address = lower(address) AND address LIKE '%@%'),
    role       text NOT NULL CHECK (role IN ('creator', 'manager')),
    -- True when collabd learned the address from a reply on a known thread.
    learned    boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX creator_emails_creator_idx ON creator_emails (creator_id);

-- Per-campaign opt-outs ("remove me" answered to one campaign's outreach).
CREATE TABLE campaign_unsubscribes (
    creator_id  bigint NOT NULL REFERENCES creators (id) ON DELETE CASCADE,
    campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (creator_id, campaign_id)
);

CREATE TABLE outreach_messages (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Stored without angle brackets, exactly as it appears inside <...>.
    message_id  text NOT NULL UNIQUE CHECK (message_id <> ''),
    creator_id  bigint NOT NULL REFERENCES creators (id),
    campaign_id bigint NOT NULL REFERENCES campaigns (id),
    to_address  text NOT NULL,
    subject     text NOT NULL DEFAULT '',
    sent_at     timestamptz NOT NULL DEFAULT now(),
    -- 'queued' while collabd sends it; 'sent' once the SMTP server accepted it.
    status      text NOT NULL DEFAULT 'sent'
                CHECK (status IN ('queued', 'sent', 'failed', 'replied', 'bounced', 'declined')),
    body        text,
    -- Plus-address token ("partners+<token>@brand") when sent by collabd.
    reply_token text UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outreach_creator_idx ON outreach_messages (creator_id, sent_at DESC);

CREATE TABLE collaborations (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    creator_id       bigint NOT NULL REFERENCES creators (id),
    campaign_id      bigint NOT NULL REFERENCES campaigns (id),
    status           collab_status NOT NULL DEFAULT 'pending',
    source           text NOT NULL CHECK (source IN ('email', 'manual')),
    -- [{"post_type": "tiktok_video", "quantity": 2, "talking_points": [..], "hashtags": [..],
    --   "attribution_keywords": [..]}]
    deliverables     jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(deliverables) = 'array'),
    -- {"fixed_fee": {"amount": "500", "currency": "USD"}, "commission_percent": "10",
    --  "product": "..."}
    compensation     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(compensation) = 'object'),
    -- {"deadlines": [{"what": "...", "date": "2026-12-01"}]}
    timeline         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(timeline) = 'object'),
    additional_terms text,
    -- A manual duplicate explicitly allowed by an operator escapes the one-open rule.
    allow_duplicate  boolean NOT NULL DEFAULT false,
    outreach_id      bigint REFERENCES outreach_messages (id),
    -- The Message-ID of the outreach thread the collaboration grew from.
    thread_id        text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- At most one open collaboration per creator and campaign.
CREATE UNIQUE INDEX collaborations_one_open ON collaborations (creator_id, campaign_id)
    WHERE status NOT IN ('completed', 'cancelled') AND NOT allow_duplicate;
CREATE INDEX collaborations_campaign_idx ON collaborations (campaign_id, status);

CREATE TABLE inbound_messages (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mailbox          text NOT NULL,
    uidvalidity      bigint NOT NULL,
    uid              bigint NOT NULL,
    -- Message-ID, or "sha256:<digest>" of the raw bytes when the mail has none.
    dedupe_key       text NOT NULL,
    message_id       text,
    in_reply_to      text[] NOT NULL DEFAULT '{}',
    "references"     text[] NOT NULL DEFAULT '{}',
    from_address     text,
    from_name        text,
    to_addresses     text[] NOT NULL DEFAULT '{}',
    subject          text,
    sent_date        timestamptz,
    text_body        text,
    reply_text       text,
    size             bigint NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('reply', 'auto_reply', 'bounce', 'decline',
                                                    'bulk', 'unmatched', 'own', 'skipped')),
    kind_reason      text NOT NULL,
    match_rule       text,
    outreach_id      bigint REFERENCES outreach_messages (id),
    creator_id       bigint REFERENCES creators (id),
    campaign_id      bigint REFERENCES campaigns (id),
    collaboration_id bigint REFERENCES collaborations (id),
    received_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (mailbox, uidvalidity, uid),
    -- The same mail seen again (UIDVALIDITY reset, copy) is never processed twice.
    UNIQUE (mailbox, dedupe_key)
);
CREATE INDEX inbound_collab_idx ON inbound_messages (collaboration_id);
CREATE INDEX inbound_kind_idx ON inbound_messages (kind, received_at DESC);

CREATE TABLE collaboration_events (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collaboration_id bigint NOT NULL REFERENCES collaborations (id) ON DELETE CASCADE,
    -- created, status, declined, terms_updated, message
    kind             text NOT NULL,
    from_status      collab_status,
    to_status        collab_status,
    actor            text NOT NULL,
    reason           text,
    inbound_id       bigint REFERENCES inbound_messages (id),
    at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX collaboration_events_collab_idx ON collaboration_events (collaboration_id, id);

CREATE TABLE mailbox_sync (
    mailbox     text PRIMARY KEY,
    folder      text NOT NULL,
    uidvalidity bigint NOT NULL,
    -- Highest UID whose processing is committed; everything at or below it is done.
    last_uid    bigint NOT NULL DEFAULT 0,
    processed   bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
