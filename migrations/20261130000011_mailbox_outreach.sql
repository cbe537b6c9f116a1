-- Each mailbox sends as itself (issue #15, part 3).
--
-- `outreach_messages.mailbox`: the mailbox an outreach was sent from (or, for outreach
-- recorded from another system, said to be). NULL means unknown: rows from before this
-- migration, and outreach sent through the default `[smtp]` without `--mailbox`. Matching
-- by sender address prefers outreach of the mailbox a reply arrived in, and counts NULL
-- as "could be this one", so single-mailbox deployments match as before.
ALTER TABLE outreach_messages ADD COLUMN mailbox text CHECK (mailbox <> '');

-- A campaign bound to mailboxes: a reply arriving in any other mailbox never matches
-- the campaign's outreach, by any rule. No rows: the campaign is unbound (matches
-- anywhere). Mailbox names are not foreign keys: the file's mailboxes live in no table.
CREATE TABLE campaign_mailboxes (
    campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    mailbox     text NOT NULL CHECK (mailbox <> ''),
    PRIMARY KEY (campaign_id, mailbox)
);
